package mempool

import (
	"sync"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// lagSource is a NonceSource the test advances by hand, as the application
// does some time after the pool saw the commit.
type lagSource struct {
	mu   sync.Mutex
	next map[string]uint64
}

func (s *lagSource) NextNonce(sender string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next[sender]
}

func (s *lagSource) set(sender string, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[sender] = n
}

// TestLaggingNonceSourceAfterCommit: a sender's only pending transaction
// commits (its account goes away) and its next transaction arrives before
// the NonceSource caught up. The pool must start the sender at the nonce it
// saw committed, not at the stale one, or the new transaction waits forever
// for a nonce that is already used (found by itests.TestKillRestart).
func TestLaggingNonceSourceAfterCommit(t *testing.T) {
	src := &lagSource{next: map[string]uint64{}}
	p := newPool(t, Params{NumBuckets: 1}, WithNonceSource(src))
	add(t, p, mkTx("a", 0))
	expectSelect(t, p, []int{0}, 1, 10, 1<<20, "a/0")
	p.Committed([]ordering.Tx{mkTx("a", 0)})
	add(t, p, mkTx("a", 1)) // the source still says 0
	p.ResetProposals()
	expectSelect(t, p, []int{0}, 1, 10, 1<<20, "a/1")
	src.set("a", 1)
	p.ResetProposals()
	if n := len(p.retired); n != 0 {
		t.Fatalf("%d retired entries after the source caught up", n)
	}
}

// TestNonceSourceAheadAfterStateTransfer: the node jumped ahead by state
// transfer, so no Committed told the pool that a sender's nonces were used;
// at the next ResetProposals the pool catches up with the NonceSource and
// the sender's waiting transactions become selectable.
func TestNonceSourceAheadAfterStateTransfer(t *testing.T) {
	src := &lagSource{next: map[string]uint64{}}
	p := newPool(t, Params{NumBuckets: 1}, WithNonceSource(src))
	add(t, p, mkTx("a", 5), mkTx("a", 6)) // gapped: the pool thinks next is 0
	expectSelect(t, p, []int{0}, 1, 10, 1<<20)
	src.set("a", 5)
	p.ResetProposals()
	expectSelect(t, p, []int{0}, 1, 10, 1<<20, "a/5", "a/6")
}

// TestUsedNoncesDroppedAtReset: transactions whose nonces the NonceSource
// reports used, though no Committed named them (state transfer, or a pool
// refilled from the journal by a restarted node), are dropped at the next
// ResetProposals even when nothing waits behind them: proposing them again
// would order the same transaction twice.
func TestUsedNoncesDroppedAtReset(t *testing.T) {
	src := &lagSource{next: map[string]uint64{}}
	p := newPool(t, Params{NumBuckets: 1}, WithNonceSource(src))
	add(t, p, mkTx("a", 0), mkTx("a", 1), mkTx("a", 2), mkTx("b", 0))
	src.set("a", 2)
	p.ResetProposals()
	expectSelect(t, p, []int{0}, 1, 10, 1<<20, "a/2", "b/0")
	if st := p.Stats(); st.Txs != 2 {
		t.Fatalf("%d transactions pending, want 2", st.Txs)
	}
}
