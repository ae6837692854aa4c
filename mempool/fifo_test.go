package mempool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

const big = 1 << 30

func TestNonceGapBlocksThenReleasesInOrder(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	add(t, p, mkTx("a", 0), mkTx("a", 2), mkTx("a", 3))
	if st := p.Stats(); st.Gapped != 2 || st.Txs != 3 {
		t.Fatalf("stats %+v, want 2 gapped of 3", st)
	}
	expectSelect(t, p, []int{0}, 1, 10, big, "a/0")
	expectSelect(t, p, []int{0}, 1, 10, big) // a/2 waits for a/1
	add(t, p, mkTx("a", 1))
	if st := p.Stats(); st.Gapped != 0 {
		t.Fatalf("gapped %d after filling the gap", st.Gapped)
	}
	// a/0 is in flight: were its batch aborted while a later one with a/1
	// committed, a/1 would be ordered before a/0. a/1.. wait for its commit.
	expectSelect(t, p, []int{0}, 1, 10, big)
	p.Committed([]ordering.Tx{mkTx("a", 0)})
	expectSelect(t, p, []int{0}, 1, 10, big, "a/1", "a/2", "a/3")
}

// TestInFlightSenderWaitsForReset: a sender whose batch was aborted (no
// commit) gets nothing proposed until ResetProposals offers the aborted
// transactions again, in nonce order; other senders are not held up.
func TestInFlightSenderWaitsForReset(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	add(t, p, mkTx("a", 0), mkTx("a", 1))
	expectSelect(t, p, []int{0}, 1, 1, big, "a/0") // a batch of one
	add(t, p, mkTx("b", 0), mkTx("a", 2))
	expectSelect(t, p, []int{0}, 1, 10, big, "b/0")
	p.ResetProposals() // both slots were aborted: everything is offered again
	expectSelect(t, p, []int{0}, 1, 10, big, "a/0", "a/1", "b/0", "a/2")
}

func TestFirstComeAcrossSenders(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	add(t, p, mkTx("a", 0), mkTx("b", 0), mkTx("a", 1), mkTx("c", 0), mkTx("b", 1))
	expectSelect(t, p, []int{0}, 1, 10, big, "a/0", "b/0", "a/1", "c/0", "b/1")

	// A sender's head counts from when it arrived: d/1 arrived first but
	// waits for d/0, which arrived after e/0.
	p = newPool(t, Params{NumBuckets: 1})
	add(t, p, mkTx("d", 1), mkTx("e", 0), mkTx("d", 0), mkTx("e", 1))
	expectSelect(t, p, []int{0}, 1, 10, big, "e/0", "d/0", "d/1", "e/1")
}

func TestFirstComeAcrossBuckets(t *testing.T) {
	const nb = 4
	s0, s1, s2 := sendersIn(0, nb, 1)[0], sendersIn(1, nb, 1)[0], sendersIn(2, nb, 1)[0]
	p := newPool(t, Params{NumBuckets: nb})
	add(t, p, mkTx(s2, 0), mkTx(s0, 0), mkTx(s1, 0), mkTx(s0, 1), mkTx(s2, 1))
	want := []string{s2 + "/0", s0 + "/0", s1 + "/0", s0 + "/1", s2 + "/1"}
	expectSelect(t, p, all(nb), nb, 10, big, want...)
}

func TestDedup(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	tx := mkTx("a", 0)
	add(t, p, tx)
	wantReason(t, addErr(p, tx), ReasonDuplicate)
	wantReason(t, p.Add(context.Background(), tx, OriginGossip), ReasonDuplicate)
	// Proposed transactions are still pending: still duplicates.
	p.Select([]int{0}, 1, 10, big)
	wantReason(t, addErr(p, tx), ReasonDuplicate)
	// Committed ones are too old.
	p.Committed([]ordering.Tx{tx})
	wantReason(t, addErr(p, tx), ReasonNonceTooLow)
	if st := p.Stats(); st.Txs != 0 || st.Admitted != 1 || st.Committed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

var errBadSig = errors.New("bad signature")

func TestRejectionReasons(t *testing.T) {
	params := Params{NumBuckets: 1, MaxTxs: 4, MaxBytes: 1000, MaxPerSender: 3, MaxGapped: 2, MaxNonceGap: 5, MaxTxSize: 100}
	validator := func(tx ordering.Tx) error {
		if strings.HasPrefix(string(tx.Data), "forged") {
			return errBadSig
		}
		return nil
	}
	cases := []struct {
		name  string
		setup []ordering.Tx
		tx    ordering.Tx
		want  Reason
	}{
		{"duplicate", []ordering.Tx{mkTx("a", 0)}, mkTx("a", 0), ReasonDuplicate},
		{"nonce too low", nil, mkTx("a", 0), ReasonNonceTooLow}, // after commit below
		{"nonce too high", nil, mkTx("a", 6), ReasonNonceTooHigh},
		{"nonce max", nil, mkTx("a", math.MaxUint64), ReasonNonceTooHigh},
		{"nonce taken", []ordering.Tx{mkTx("a", 0)}, ordering.Tx{Sender: "a", Nonce: 0, Data: []byte("other")}, ReasonNonceTaken},
		{"too large", nil, ordering.Tx{Sender: "a", Data: make([]byte, 100)}, ReasonTooLarge},
		{"invalid shape", nil, ordering.Tx{Sender: ""}, ReasonInvalid},
		{"invalid signature", nil, ordering.Tx{Sender: "a", Data: []byte("forged")}, ReasonInvalid},
		{"full total", []ordering.Tx{mkTx("a", 0), mkTx("b", 0), mkTx("c", 0), mkTx("d", 0)}, mkTx("e", 0), ReasonFull},
		{"full sender", []ordering.Tx{mkTx("a", 0), mkTx("a", 1), mkTx("a", 2)}, mkTx("a", 3), ReasonFull},
		{"full bytes", []ordering.Tx{
			{Sender: "a", Data: make([]byte, 90)}, {Sender: "b", Data: make([]byte, 90)},
			{Sender: "c", Data: make([]byte, 90)},
		}, ordering.Tx{Sender: "d", Data: make([]byte, 80)}, ReasonFull},
		{"full gapped", []ordering.Tx{mkTx("a", 2), mkTx("b", 2)}, mkTx("c", 1), ReasonFull},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := params
			if c.name == "full bytes" {
				ps.MaxBytes = 300
			}
			p := newPool(t, ps, WithValidator(validator))
			add(t, p, c.setup...)
			if c.want == ReasonNonceTooLow {
				p.Committed([]ordering.Tx{mkTx("a", 0)})
			}
			err := addErr(p, c.tx)
			wantReason(t, err, c.want)
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Error() == "" {
				t.Fatalf("not a *Rejection: %v", err)
			}
			if c.name == "invalid signature" && !errors.Is(err, errBadSig) {
				t.Fatalf("validator's error lost: %v", err)
			}
			if got := p.Stats().Rejected[c.want]; got != 1 {
				t.Fatalf("Rejected[%v] = %d, want 1", c.want, got)
			}
			t.Logf("%v", err)
		})
	}
}

func TestGappedLimitStillAdmitsNextNonces(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1, MaxTxs: 10, MaxGapped: 1})
	add(t, p, mkTx("a", 2))
	wantReason(t, addErr(p, mkTx("b", 3)), ReasonFull)
	add(t, p, mkTx("b", 0), mkTx("a", 0)) // contiguous: always room
	add(t, p, mkTx("a", 1))               // fills the gap: a/2 is no longer gapped
	add(t, p, mkTx("b", 3))
	if st := p.Stats(); st.Gapped != 1 || st.Txs != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBackpressure(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1, MaxTxs: 10})
	admitted := 0
	for i := range 20 {
		err := addErr(p, mkTx(fmt.Sprint("s", i), 0))
		if err == nil {
			admitted++
			continue
		}
		wantReason(t, err, ReasonFull)
		if st := p.Stats(); st.Txs > 10 {
			t.Fatalf("%d pending > MaxTxs", st.Txs)
		}
	}
	if admitted != 10 {
		t.Fatalf("admitted %d, want 10", admitted)
	}
	got, _ := p.Select([]int{0}, 1, 5, big)
	wantReason(t, addErr(p, mkTx("x", 0)), ReasonFull) // proposed still count
	p.Committed(got)
	add(t, p, mkTx("x", 0))
	if st := p.Stats(); st.Txs != 6 || st.Rejected[ReasonFull] != 11 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSelectRespectsBucketsAndLimits(t *testing.T) {
	const nb = 4
	p := newPool(t, Params{NumBuckets: nb})
	var want1, want3 []string
	for i, s := range sendersIn(1, nb, 3) {
		add(t, p, mkTx(s, 0))
		want1 = append(want1, fmt.Sprintf("%s/0", s))
		_ = i
	}
	for _, s := range sendersIn(3, nb, 3) {
		add(t, p, mkTx(s, 0))
		want3 = append(want3, fmt.Sprintf("%s/0", s))
	}
	for _, s := range sendersIn(2, nb, 3) {
		add(t, p, mkTx(s, 0))
	}
	// Bucket 0 is empty, 3 is asked for twice, 7 and -1 are out of range.
	got, full := p.Select([]int{3, 0, 3, 7, -1}, nb, 2, big)
	if !eqStrings(names(got), want3[:2]) || !full {
		t.Fatalf("Select = %v %v, want %v full", names(got), full, want3[:2])
	}
	sz := mkTx(sendersIn(1, nb, 1)[0], 0).Size()
	got, full = p.Select([]int{1, 3}, nb, 10, 2*sz+sz/2)
	if !eqStrings(names(got), []string{want1[0], want1[1]}) || !full {
		t.Fatalf("Select with byte limit = %v %v", names(got), full)
	}
	got, full = p.Select([]int{1, 3}, nb, 10, big)
	if !eqStrings(names(got), []string{want1[2], want3[2]}) || full {
		t.Fatalf("Select rest = %v %v", names(got), full)
	}
	expectSelect(t, p, []int{1, 3}, nb, 10, big) // nothing twice
	if st := p.Stats(); st.Proposed != 6 {
		t.Fatalf("proposed %d", st.Proposed)
	}
	p.ResetProposals()
	// Offered again, in arrival order.
	expectSelect(t, p, []int{1, 3}, nb, 10, big, append(want1, want3...)...)
}

func TestSelectReindexesOnBucketCountChange(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 4})
	s := sendersIn(5, 8, 1)[0]
	add(t, p, mkTx(s, 0), mkTx(s, 1))
	expectSelect(t, p, []int{4}, 8, 10, big)
	expectSelect(t, p, []int{5}, 8, 10, big, s+"/0", s+"/1")
}

func TestCommittedAdvancesAndRemoves(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	add(t, p, mkTx("a", 0), mkTx("a", 1), mkTx("a", 2), mkTx("b", 0))
	got, _ := p.Select([]int{0}, 1, 2, big) // a/0 a/1
	p.Committed(got)
	wantReason(t, addErr(p, mkTx("a", 1)), ReasonNonceTooLow)
	expectSelect(t, p, []int{0}, 1, 10, big, "a/2", "b/0")
	// A different transaction committed at b's nonce supersedes b/0.
	p.Committed([]ordering.Tx{{Sender: "b", Nonce: 0, Data: []byte("elsewhere")}})
	if st := p.Stats(); st.Txs != 1 || st.Superseded != 1 || st.Committed != 2 || st.Proposed != 1 || st.Senders != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A commit far ahead (the node lagged) drops everything below.
	add(t, p, mkTx("c", 0), mkTx("c", 1), mkTx("c", 3))
	p.Committed([]ordering.Tx{{Sender: "c", Nonce: 1_000_000}})
	add(t, p, mkTx("c", 1_000_001))
	wantReason(t, addErr(p, mkTx("c", 1_000_000)), ReasonNonceTooLow)
	p.Committed([]ordering.Tx{{Sender: "c", Nonce: math.MaxUint64}})
	if st := p.Stats(); st.Txs != 1 || st.Gapped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

type fixedNonces map[string]uint64

func (f fixedNonces) NextNonce(s string) uint64 { return f[s] }

func TestNonceSource(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1}, WithNonceSource(fixedNonces{"x": 5}))
	wantReason(t, addErr(p, mkTx("x", 4)), ReasonNonceTooLow)
	add(t, p, mkTx("x", 6))
	expectSelect(t, p, []int{0}, 1, 10, big)
	add(t, p, mkTx("x", 5), mkTx("y", 0))
	expectSelect(t, p, []int{0}, 1, 10, big, "x/5", "x/6", "y/0")
}

type recGossip struct {
	mu  sync.Mutex
	txs []string
}

func (g *recGossip) Publish(tx ordering.Tx) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.txs = append(g.txs, fmt.Sprintf("%s/%d", tx.Sender, tx.Nonce))
}

func (g *recGossip) take() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.txs
	g.txs = nil
	return t
}

func TestGossip(t *testing.T) {
	g := &recGossip{}
	p := newPool(t, Params{NumBuckets: 1}, WithGossiper(g))
	add(t, p, mkTx("a", 0), mkTx("a", 1))
	if err := p.Add(context.Background(), mkTx("b", 0), OriginGossip); err != nil {
		t.Fatal(err)
	}
	_ = addErr(p, mkTx("a", 0)) // rejected: not published
	if got := g.take(); !eqStrings(got, []string{"a/0", "a/1"}) {
		t.Fatalf("published %v", got)
	}
	p.Committed([]ordering.Tx{mkTx("a", 0)})
	p.ResetProposals()
	if got := g.take(); !eqStrings(got, []string{"a/1"}) {
		t.Fatalf("republished %v", got)
	}
}

func TestAddContext(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Add(ctx, mkTx("a", 0), OriginLocal); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add with cancelled ctx: %v", err)
	}
}

func TestNotifyCoalesces(t *testing.T) {
	p := newPool(t, Params{NumBuckets: 1})
	add(t, p, mkTx("a", 0), mkTx("a", 1))
	select {
	case <-p.Notify():
	default:
		t.Fatal("no notification after Add")
	}
	select {
	case <-p.Notify():
		t.Fatal("second notification not coalesced")
	default:
	}
}

func TestBadParams(t *testing.T) {
	if _, err := New(Params{MaxTxs: 10, MaxGapped: 11}); !errors.Is(err, ErrBadParams) {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Params{MaxBytes: -1}); !errors.Is(err, ErrBadParams) {
		t.Fatalf("New: %v", err)
	}
}

// TestConcurrent adds from many goroutines (local and gossip, with
// duplicates) while the consensus side selects, commits and resets. Every
// admitted transaction must come out exactly once in a commit, and the pool
// must never hold more than MaxTxs.
func TestConcurrent(t *testing.T) {
	const (
		writers   = 8
		perWriter = 400
		nb        = 8
		maxTxs    = 500
	)
	p := newPool(t, Params{NumBuckets: nb, MaxTxs: maxTxs, MaxPerSender: 50})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				if time.Now().After(deadline) {
					t.Error("writer timed out")
					return
				}
				tx := mkTx(fmt.Sprintf("w%d-%d", w, i%10), uint64(i/10))
				origin := OriginLocal
				if i%3 == 0 {
					origin = OriginGossip
				}
				err := p.Add(context.Background(), tx, origin)
				switch r, _ := ReasonOf(err); {
				case err == nil:
					admitted.Add(1)
					// A duplicate from "gossip" must be refused (as too
					// old if it was committed in between).
					if r, _ := ReasonOf(p.Add(context.Background(), tx, OriginGossip)); r != ReasonDuplicate && r != ReasonNonceTooLow {
						t.Errorf("duplicate admitted or wrong reason %v", r)
					}
					i++
				case r == ReasonFull:
					// Backpressure: retry the same transaction.
					runtimeYield()
				default:
					t.Errorf("Add(%v): %v", names([]ordering.Tx{tx}), err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[ordering.TxID]bool{}
	round := 0
	for {
		round++
		got, _ := p.Select(all(nb)[round%2*nb/2:round%2*nb/2+nb/2], nb, 64, 1<<20)
		for _, tx := range got {
			if seen[tx.ID()] {
				t.Fatalf("%v selected twice", names([]ordering.Tx{tx}))
			}
			seen[tx.ID()] = true
		}
		p.Committed(got)
		if round%50 == 0 {
			p.ResetProposals()
		}
		if st := p.Stats(); st.Txs > maxTxs {
			t.Fatalf("%d pending > MaxTxs", st.Txs)
		}
		select {
		case <-done:
			if st := p.Stats(); st.Txs == 0 {
				if int64(len(seen)) != admitted.Load() || admitted.Load() != writers*perWriter {
					t.Fatalf("committed %d, admitted %d", len(seen), admitted.Load())
				}
				return
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", p.Stats())
		}
	}
}

// runtimeYield lets other goroutines run while a writer waits for room.
func runtimeYield() { runtime.Gosched() }
