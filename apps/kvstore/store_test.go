package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

var _ iss.App = (*Store)(nil)

func TestEmptyStore(t *testing.T) {
	s := New()
	if got, want := Hash(s.Root()), storeRefRoot(s); got != want {
		t.Fatalf("empty root %x, reference %x", got, want)
	}
	if s.Len() != 0 || s.NextNonce("alice") != 0 || s.NextSeqNr() != 0 {
		t.Fatal("new store is not empty")
	}
	if _, ok := s.Get("k"); ok {
		t.Fatal("Get on an empty store found a key")
	}
}

func TestEmptyHash(t *testing.T) {
	if EmptyHash(0) != (Hash{}) {
		t.Fatal("EmptyHash(0) is not zero")
	}
	for h := 1; h <= PathBits; h++ {
		l := EmptyHash(h - 1)
		if EmptyHash(h) != innerHash(&l, &l) {
			t.Fatalf("EmptyHash(%d) is not the inner hash of two EmptyHash(%d)", h, h-1)
		}
	}
}

func TestApplyBasics(t *testing.T) {
	s := New()
	res := mustApply(t, s, setTx("alice", 0, "a", "1"), setTx("bob", 0, "b", "2"), setTx("alice", 1, "a", "3"))
	if res.Applied != 3 || res.BadNonce != 0 || res.Invalid != 0 {
		t.Fatalf("result %+v", res)
	}
	if v, ok := s.Get("a"); !ok || string(v) != "3" {
		t.Fatalf("a = %q, %v", v, ok)
	}
	if s.Len() != 2 || s.NextNonce("alice") != 2 || s.NextNonce("bob") != 1 {
		t.Fatalf("len %d, nonces %d %d", s.Len(), s.NextNonce("alice"), s.NextNonce("bob"))
	}
	mustApply(t, s, delTx("bob", 1, "a"), delTx("bob", 2, "missing"))
	if _, ok := s.Get("a"); ok || s.Len() != 1 {
		t.Fatal("delete did not remove a")
	}
	// An empty batch (an aborted slot) still advances the sequence number
	// and changes the root.
	before := s.Root()
	mustApply(t, s)
	if s.NextSeqNr() != 3 || bytes.Equal(before, s.Root()) {
		t.Fatal("empty batch did not advance the sequence number")
	}
	if got, want := Hash(s.Root()), storeRefRoot(s); got != want {
		t.Fatalf("root %x, reference %x", got, want)
	}
}

func TestApplyOutOfOrder(t *testing.T) {
	s := New()
	mustApply(t, s, setTx("alice", 0, "a", "1"))
	_, before, _ := s.Snapshot()
	for _, sn := range []ordering.SeqNr{0, 2, math.MaxUint64} {
		if err := s.Apply(sn, ordering.Batch{Txs: []ordering.Tx{setTx("alice", 1, "a", "2")}}); !errors.Is(err, ErrOutOfOrder) {
			t.Fatalf("Apply(%d): %v, want ErrOutOfOrder", sn, err)
		}
	}
	if _, after, _ := s.Snapshot(); !bytes.Equal(before, after) {
		t.Fatal("a rejected batch changed the state")
	}
}

func TestNonces(t *testing.T) {
	s := New()
	tooLong := string(make([]byte, ordering.MaxSenderLen+1))
	for i, step := range []struct {
		txs                       []ordering.Tx
		applied, badNonce, invald int
		next                      uint64 // alice's next nonce after the batch
	}{
		// Duplicate in one batch: the second copy is skipped.
		{[]ordering.Tx{setTx("alice", 0, "a", "x"), setTx("alice", 0, "a", "y")}, 1, 1, 0, 1},
		// Replay of an applied transaction in a later batch.
		{[]ordering.Tx{setTx("alice", 0, "a", "z")}, 0, 1, 0, 1},
		// Out of order: 2 before 1 skips 2; 1 applies; 2 again applies.
		{[]ordering.Tx{setTx("alice", 2, "a", "two"), setTx("alice", 1, "a", "one"), setTx("alice", 2, "b", "two")}, 2, 1, 0, 3},
		// A malformed command with the right nonce consumes it.
		{[]ordering.Tx{{Sender: "alice", Nonce: 3, Data: []byte("nonsense")}, setTx("alice", 3, "a", "late")}, 0, 1, 1, 4},
		// A transaction failing ordering.Tx.Check consumes nothing.
		{[]ordering.Tx{setTx("", 0, "a", "anon"), setTx(tooLong, 0, "a", "long")}, 0, 0, 2, 4},
		// A gap is skipped, not queued.
		{[]ordering.Tx{setTx("alice", 9, "a", "gap"), setTx("alice", 4, "c", "ok")}, 1, 1, 0, 5},
	} {
		res := mustApply(t, s, step.txs...)
		if res.Applied != step.applied || res.BadNonce != step.badNonce || res.Invalid != step.invald {
			t.Fatalf("step %d: result %+v, want applied %d bad nonce %d invalid %d", i, res, step.applied, step.badNonce, step.invald)
		}
		if got := s.NextNonce("alice"); got != step.next {
			t.Fatalf("step %d: next nonce %d, want %d", i, got, step.next)
		}
	}
	for k, want := range map[string]string{"a": "one", "b": "two", "c": "ok"} {
		if v, _ := s.Get(k); string(v) != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if st := s.Stats(); st.Batches != 6 || st.Applied != 4 || st.BadNonce != 5 || st.Invalid != 3 {
		t.Errorf("stats %+v", st)
	}
	// The reserved nonce can never be applied, even restored as next nonce.
	_, snap, _ := s.Snapshot()
	snap = bytes.Replace(snap, append([]byte("alice"), 0, 0, 0, 0, 0, 0, 0, 5), append([]byte("alice"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 1)
	if _, err := s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if s.NextNonce("alice") != math.MaxUint64 {
		t.Fatalf("restored next nonce %d", s.NextNonce("alice"))
	}
	if res := mustApply(t, s, setTx("alice", math.MaxUint64, "a", "wrap")); res.BadNonce != 1 {
		t.Fatalf("nonce MaxUint64 applied: %+v", res)
	}
}

// TestDeterminism feeds two stores the same batches and compares their
// roots: a's root is computed after every batch, b's only every few batches
// (Apply defers rehashing), so the lazy root must match the eager one.
func TestDeterminism(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		g := newOpGen(seed, 50, 8)
		a, b := New(), New()
		for i := range 50 {
			batch := g.batch(20)
			if err := a.Apply(ordering.SeqNr(i), batch); err != nil {
				t.Fatal(err)
			}
			ra := a.Root()
			if err := b.Apply(ordering.SeqNr(i), batch); err != nil {
				t.Fatal(err)
			}
			if i%int(seed+2) != 0 {
				continue
			}
			if rb := b.Root(); !bytes.Equal(ra, rb) {
				t.Fatalf("seed %d batch %d: roots differ: %x vs %x", seed, i, ra, rb)
			} else if Hash(rb) != storeRefRoot(b) {
				t.Fatalf("seed %d batch %d: lazy root differs from the reference", seed, i)
			}
		}
		_, sa, _ := a.Snapshot()
		_, sb, _ := b.Snapshot()
		if !bytes.Equal(sa, sb) {
			t.Fatalf("seed %d: snapshots differ", seed)
		}
	}
}

// TestRootCommitsToEveryValue changes one value, one nonce, or the sequence
// number of a state and checks the root changes each time.
func TestRootCommitsToEveryValue(t *testing.T) {
	s := New()
	g := newOpGen(7, 40, 5)
	for range 10 {
		mustApply(t, s, g.batch(30).Txs...)
	}
	_, base, _ := s.Snapshot()
	root := s.Root()
	seen := map[string]bool{string(root): true}
	check := func(what string, mutate func(st *state)) {
		t.Helper()
		st, err := decodeSnapshot(base)
		if err != nil {
			t.Fatal(err)
		}
		mutate(st)
		r := refRoot(values(st.kv), nextNonces(st.nonces), st.next)
		if seen[string(r[:])] {
			t.Errorf("%s: root did not change", what)
		}
		seen[string(r[:])] = true
	}
	st, _ := decodeSnapshot(base)
	for k, e := range st.kv {
		check("value of "+k, func(st *state) { st.kv[k] = kvEntry{value: e.value + "!"} })
		check("delete "+k, func(st *state) { delete(st.kv, k) })
	}
	for snd, acc := range st.nonces {
		check("nonce of "+snd, func(st *state) { st.nonces[snd] = account{next: acc.next + 1} })
	}
	check("new key", func(st *state) { st.kv["fresh"] = kvEntry{} })
	check("sequence number", func(st *state) { st.next++ })
	// And through Apply: one differing value in otherwise equal histories.
	a, b := New(), New()
	mustApply(t, a, setTx("x", 0, "k", "v1"))
	mustApply(t, b, setTx("x", 0, "k", "v2"))
	if bytes.Equal(a.Root(), b.Root()) {
		t.Fatal("different values, same root")
	}
}

// TestIncrementalMatchesRebuild is the property test: after every batch of a
// random history the incrementally maintained root equals the root computed
// from scratch (by the reference definition and by Restore's bulk build),
// and a restored store continues identically.
func TestIncrementalMatchesRebuild(t *testing.T) {
	seeds := uint64(30)
	if testing.Short() {
		seeds = 5
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		keys := []int{3, 20, 200}[seed%3]
		g := newOpGen(seed, keys, 1+int(seed%7))
		s := New()
		for i := range 40 {
			mustApply(t, s, g.batch(1+int(seed+uint64(i))%25).Txs...)
			got := Hash(s.Root())
			if want := storeRefRoot(s); got != want {
				t.Fatalf("seed %d batch %d: incremental root %x, reference %x", seed, i, got, want)
			}
			_, data, _ := s.Snapshot()
			r := New()
			rr, err := r.Restore(data)
			if err != nil {
				t.Fatalf("seed %d batch %d: %v", seed, i, err)
			}
			if Hash(rr) != got {
				t.Fatalf("seed %d batch %d: rebuilt root %x, incremental %x", seed, i, rr, got)
			}
			if i%10 == 9 {
				// Continue on the restored copy and compare.
				next := g.batch(10)
				mustApply(t, s, next.Txs...)
				mustApply(t, r, next.Txs...)
				if !bytes.Equal(s.Root(), r.Root()) {
					t.Fatalf("seed %d batch %d: restored store diverged", seed, i)
				}
			}
		}
	}
}

// TestConcurrentReaders runs the thread-safe accessors while batches are
// applied (meaningful under -race).
func TestConcurrentReaders(t *testing.T) {
	s := New()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				key := fmt.Sprintf("k%d", i%30)
				s.NextNonce(fmt.Sprintf("s%d", r))
				s.Get(key)
				s.Len()
				if v, ok, p, root := s.Prove(key); ok {
					if err := VerifyProof(root, key, v, p); err != nil {
						t.Error(err)
						return
					}
				} else if err := VerifyAbsence(root, key, p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	g := newOpGen(3, 30, 4)
	for range 200 {
		mustApply(t, s, g.batch(10).Txs...)
	}
	close(done)
	wg.Wait()
}
