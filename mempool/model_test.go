package mempool

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

var seedFlag = flag.Uint64("mempool.seed", 0, "seed of TestPoolMatchesModel (0: from the clock)")

// model is a deliberately simple reference for FIFO: flat maps and linear
// scans, written from the documented semantics.
type model struct {
	p       Params
	next    map[string]uint64
	pending map[string]map[uint64]mtx
	// proposed holds the IDs handed out since the last reset.
	proposed   map[ordering.TxID]bool
	seq        uint64
	admitted   uint64
	committed  uint64
	superseded uint64
}

type mtx struct {
	tx    ordering.Tx
	id    ordering.TxID
	seq   uint64
	local bool
}

func newModel(p Params) *model {
	return &model{p: p.withDefaults(), next: map[string]uint64{}, pending: map[string]map[uint64]mtx{}, proposed: map[ordering.TxID]bool{}}
}

func modelValidator(tx ordering.Tx) error {
	if bytes.HasPrefix(tx.Data, []byte{0xee}) {
		return errBadSig
	}
	return nil
}

func (m *model) local() (n int) {
	for _, txs := range m.pending {
		for _, t := range txs {
			if t.local {
				n++
			}
		}
	}
	return n
}

func (m *model) count() (n, size, gapped int) {
	for s, txs := range m.pending {
		run := m.next[s]
		for {
			if _, ok := txs[run]; !ok {
				break
			}
			run++
		}
		for _, t := range txs {
			n++
			size += t.tx.Size()
			if t.tx.Nonce > run {
				gapped++
			}
		}
	}
	return
}

func (m *model) add(tx ordering.Tx, origin Origin) Reason {
	if len(tx.Sender) == 0 || len(tx.Sender) > ordering.MaxSenderLen {
		return ReasonInvalid
	}
	if tx.Size() > m.p.MaxTxSize {
		return ReasonTooLarge
	}
	if tx.Check() != nil {
		return ReasonInvalid
	}
	id := tx.ID()
	for _, txs := range m.pending {
		for _, t := range txs {
			if t.id == id {
				return ReasonDuplicate
			}
		}
	}
	next := m.next[tx.Sender]
	switch {
	case tx.Nonce < next:
		return ReasonNonceTooLow
	case tx.Nonce-next > m.p.MaxNonceGap || tx.Nonce == math.MaxUint64:
		return ReasonNonceTooHigh
	}
	mine := m.pending[tx.Sender]
	if _, ok := mine[tx.Nonce]; ok {
		return ReasonNonceTaken
	}
	if len(mine) >= m.p.MaxPerSender {
		return ReasonFull
	}
	n, size, gapped := m.count()
	run := next
	for {
		if _, ok := mine[run]; !ok {
			break
		}
		run++
	}
	if n >= m.p.MaxTxs || size+tx.Size() > m.p.MaxBytes || (tx.Nonce > run && gapped >= m.p.MaxGapped) ||
		(origin == OriginLocal && m.local() >= m.p.MaxLocalTxs) {
		return ReasonFull
	}
	if modelValidator(tx) != nil {
		return ReasonInvalid
	}
	if mine == nil {
		mine = map[uint64]mtx{}
		m.pending[tx.Sender] = mine
	}
	m.seq++
	m.admitted++
	mine[tx.Nonce] = mtx{tx: tx, id: id, seq: m.seq, local: origin == OriginLocal}
	return 0
}

func (m *model) selectTxs(buckets []int, nb, maxTxs, maxBytes int) ([]ordering.Tx, bool) {
	if maxTxs <= 0 || maxBytes <= 0 {
		return nil, true
	}
	in := map[int]bool{}
	for _, b := range buckets {
		in[b] = true
	}
	var out []ordering.Tx
	size := 0
	// A sender with transactions handed out earlier and not committed gets
	// none now (they might be aborted while later ones commit), unless this
	// call handed them out.
	inCall := map[string]bool{}
	for {
		var best *mtx
		for s, txs := range m.pending {
			if !in[ordering.BucketOf(s, nb)] {
				continue
			}
			n := m.next[s]
			for {
				t, ok := txs[n]
				if !ok {
					break
				}
				if !m.proposed[t.id] {
					if (n == m.next[s] || inCall[s]) && (best == nil || t.seq < best.seq) {
						best = &t
					}
					break
				}
				n++
			}
		}
		if best == nil {
			return out, len(out) >= maxTxs
		}
		if len(out) >= maxTxs || size+best.tx.Size() > maxBytes {
			return out, true
		}
		out = append(out, best.tx)
		size += best.tx.Size()
		m.proposed[best.id] = true
		inCall[best.tx.Sender] = true
	}
}

func (m *model) commit(txs []ordering.Tx) {
	for _, tx := range txs {
		id := tx.ID()
		nx := nextAfter(tx.Nonce)
		if nx <= m.next[tx.Sender] {
			continue
		}
		m.next[tx.Sender] = nx
		for n, t := range m.pending[tx.Sender] {
			if n < nx || n == math.MaxUint64 && nx == math.MaxUint64 {
				if n == tx.Nonce && t.id == id {
					m.committed++
				} else {
					m.superseded++
				}
				delete(m.pending[tx.Sender], n)
				delete(m.proposed, t.id)
			}
		}
		if len(m.pending[tx.Sender]) == 0 {
			delete(m.pending, tx.Sender)
		}
	}
}

func (m *model) stats() Stats {
	n, size, gapped := m.count()
	return Stats{Txs: n, Bytes: size, Senders: len(m.pending), Local: m.local(), Gapped: gapped, Proposed: len(m.proposed),
		Admitted: m.admitted, Committed: m.committed, Superseded: m.superseded}
}

// TestPoolMatchesModel runs random operation sequences against FIFO and the
// model and compares every answer. Reproduce a failure with
// -mempool.seed=<seed printed>.
func TestPoolMatchesModel(t *testing.T) {
	base := *seedFlag
	runs := 200
	if base == 0 {
		base = uint64(time.Now().UnixNano())
	} else {
		runs = 1
	}
	if testing.Short() {
		runs = 50
	}
	for i := range runs {
		seed := base + uint64(i)
		if msg := runModel(seed, 400); msg != "" {
			t.Fatalf("seed %d (rerun with -mempool.seed=%d): %s", seed, seed, msg)
		}
	}
	t.Logf("base seed %d, %d runs", base, runs)
}

func runModel(seed uint64, steps int) string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	params := Params{MaxTxs: 20, MaxLocalTxs: 14, MaxBytes: 500, MaxPerSender: 6, MaxGapped: 5, MaxNonceGap: 4, MaxTxSize: 45, NumBuckets: 3}
	p, err := New(params, WithValidator(modelValidator))
	if err != nil {
		return err.Error()
	}
	m := newModel(params)
	senders := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6"}
	var history []ordering.Tx  // every tx tried
	var selected []ordering.Tx // last selection
	for step := range steps {
		var op string
		switch k := rng.IntN(100); {
		case k < 55:
			var tx ordering.Tx
			if len(history) > 0 && rng.IntN(8) == 0 {
				tx = history[rng.IntN(len(history))]
			} else {
				s := senders[rng.IntN(len(senders))]
				nonce := m.next[s] + uint64(rng.IntN(8))
				if nonce > 0 && rng.IntN(10) == 0 {
					nonce--
				}
				data := make([]byte, rng.IntN(40))
				for i := range data {
					data[i] = byte(rng.IntN(256))
				}
				tx = ordering.Tx{Sender: s, Nonce: nonce, Data: data}
			}
			history = append(history, tx)
			origin := OriginLocal
			if rng.IntN(3) == 0 {
				origin = OriginGossip
			}
			want := m.add(tx, origin)
			err := p.Add(context.Background(), tx, origin)
			got, _ := ReasonOf(err)
			if err != nil && got == 0 {
				return fmt.Sprintf("step %d: Add: unexpected error %v", step, err)
			}
			if got != want {
				return fmt.Sprintf("step %d: Add(%s/%d): pool %v (%v), model %v", step, tx.Sender, tx.Nonce, got, err, want)
			}
			op = "add"
		case k < 80:
			nb := params.NumBuckets
			if rng.IntN(20) == 0 {
				nb = 2
			}
			var bs []int
			for b := range nb {
				if rng.IntN(2) == 0 {
					bs = append(bs, b)
				}
			}
			maxTxs, maxBytes := rng.IntN(8), rng.IntN(200)
			wantTxs, wantFull := m.selectTxs(bs, nb, maxTxs, maxBytes)
			gotTxs, gotFull := p.Select(bs, nb, maxTxs, maxBytes)
			if !eqStrings(names(gotTxs), names(wantTxs)) || gotFull != wantFull {
				return fmt.Sprintf("step %d: Select(%v, %d, %d, %d): pool %v %v, model %v %v",
					step, bs, nb, maxTxs, maxBytes, names(gotTxs), gotFull, names(wantTxs), wantFull)
			}
			selected = gotTxs
			op = "select"
		case k < 95:
			var txs []ordering.Tx
			if len(selected) > 0 && rng.IntN(4) != 0 {
				txs = selected[:rng.IntN(len(selected)+1)]
				selected = selected[len(txs):]
			} else {
				s := senders[rng.IntN(len(senders))]
				txs = []ordering.Tx{{Sender: s, Nonce: m.next[s] + uint64(rng.IntN(3)), Data: []byte{1}}}
			}
			m.commit(txs)
			p.Committed(txs)
			op = "commit"
		default:
			clear(m.proposed)
			p.ResetProposals()
			selected = nil
			op = "reset"
		}
		got, want := p.Stats(), m.stats()
		got.Rejected = nil
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Sprintf("step %d (%s): stats: pool %+v, model %+v", step, op, got, want)
		}
	}
	return ""
}
