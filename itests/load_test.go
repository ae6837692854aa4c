package itests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mirsubnet/mirsubnet/apps/kvstore"
	"github.com/mirsubnet/mirsubnet/client"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// txSpec is a generated transaction and its ID.
type txSpec struct {
	ordering.Tx
	ID ordering.TxID
}

func makeTx(sender string, nonce uint64) txSpec {
	tx := ordering.Tx{Sender: sender, Nonce: nonce, Data: kvstore.Command{
		Op: kvstore.OpSet, Key: fmt.Sprintf("%s/k%d", sender, nonce%50), Value: []byte(fmt.Sprintf("v%d", nonce)),
	}.Encode()}
	return txSpec{Tx: tx, ID: tx.ID()}
}

// loader drives a bounded load: senders goroutines, each submitting its
// transactions with consecutive nonces from 0, one every interval, at most
// perSender of them, until stopped.
//
// Every transaction goes to one validator (rotating with the nonce; the
// next ones in turn if it is refused or unreachable), and the loader moves
// on to the next nonce once one validator acknowledged it (or holds it
// already, or reports it committed). One copy is enough: a validator
// acknowledges a transaction only once its mempool journal holds it, so a
// validator SIGKILLed right after the acknowledgement, before it gossiped
// or proposed the transaction, gives it back to its pool when it restarts.
// Holding back the next nonce until a transaction is placed keeps every
// sender's nonces free of gaps, which would otherwise stall the sender
// behind a refused transaction.
type loader struct {
	c         *cluster
	senders   int
	interval  time.Duration
	perSender int

	mu sync.Mutex
	// txs holds every transaction generated, by ID.
	txs map[ordering.TxID]txSpec
	// acked holds the IDs some validator answered "admitted".
	acked map[ordering.TxID]bool
	// reasons counts refusals by reason (and "unreachable").
	reasons map[string]int
	// unplaced counts transactions abandoned at stop before a validator
	// took them (their sender generates nothing after them).
	unplaced int

	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoader(c *cluster, senders, perSender int, interval time.Duration) *loader {
	return &loader{c: c, senders: senders, interval: interval, perSender: perSender,
		txs: map[ordering.TxID]txSpec{}, acked: map[ordering.TxID]bool{}, reasons: map[string]int{}, stop: make(chan struct{})}
}

// start starts the senders; ctx bounds them in time, perSender in count.
func (l *loader) start(ctx context.Context) {
	for s := 0; s < l.senders; s++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.runSender(ctx, s)
		}()
	}
}

// halt stops the senders and waits for them.
func (l *loader) halt() {
	close(l.stop)
	l.wg.Wait()
}

func (l *loader) runSender(ctx context.Context, s int) {
	sender := fmt.Sprintf("sender-%d", s)
	n := len(l.c.nw.IDs)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for nonce := 0; nonce < l.perSender; nonce++ {
		select {
		case <-ctx.Done():
			return
		case <-l.stop:
			return
		case <-t.C:
		}
		tx := makeTx(sender, uint64(nonce))
		l.mu.Lock()
		l.txs[tx.ID] = tx
		l.mu.Unlock()
		// Validators in turn, starting from one rotating with the nonce.
		first := (s + nonce) % n
		order := []int{first}
		for k := 1; k < n; k++ {
			order = append(order, (first+k)%n)
		}
		if !l.place(ctx, tx, order) {
			l.mu.Lock()
			l.unplaced++
			l.mu.Unlock()
			return
		}
	}
}

// place submits tx to validators in order until one holds it or it is
// committed, retrying refusals; false if stopped first.
func (l *loader) place(ctx context.Context, tx txSpec, order []int) bool {
	for {
		for _, i := range order {
			res, reason := l.c.submit(ctx, i, tx)
			l.mu.Lock()
			switch res {
			case resAdmitted:
				l.acked[tx.ID] = true
			case resRefused:
				l.reasons[reason]++
			}
			l.mu.Unlock()
			if res != resRefused {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-l.stop:
			return false
		case <-time.After(50 * time.Millisecond): // retry pacing, not a wait for a condition
		}
	}
}

// ackedIDs returns the acknowledged IDs.
func (l *loader) ackedIDs() []ordering.TxID {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]ordering.TxID, 0, len(l.acked))
	for id := range l.acked {
		ids = append(ids, id)
	}
	return ids
}

func (l *loader) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rs []string
	for r, n := range l.reasons {
		rs = append(rs, fmt.Sprintf("%s=%d", r, n))
	}
	sort.Strings(rs)
	return fmt.Sprintf("generated=%d acked=%d unplaced=%d refusals: %s", len(l.txs), len(l.acked), l.unplaced, strings.Join(rs, " "))
}

func (l *loader) lookup(id ordering.TxID) (txSpec, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tx, ok := l.txs[id]
	return tx, ok
}

// follower records one validator's commit notices from the moment it
// subscribed: the transaction IDs of every delivered batch, in order.
type follower struct {
	mu sync.Mutex
	// first is the first sequence number seen (valid once started); next
	// the one expected after the last seen.
	first, next ordering.SeqNr
	started     bool
	// batches[sn-first] are the IDs of batch sn.
	batches [][]ordering.TxID
	// count maps each ID to the number of batches it appeared in.
	count map[ordering.TxID]int
	// err records a gap in sequence numbers or a broken stream.
	err error
	// replay is the application replayed from the notices (see rootAt);
	// roots[h] is its state root at height h.
	replay *kvstore.Store
	roots  [][]byte
}

// follow subscribes to validator i's commits until ctx ends.
func follow(ctx context.Context, c *cluster, i int) (*follower, error) {
	cl, err := c.client(ctx, i)
	if err != nil {
		return nil, err
	}
	ch, err := cl.Follow(ctx, 0)
	if err != nil {
		return nil, err
	}
	f := &follower{count: map[ordering.TxID]int{}}
	go func() {
		for cm := range ch {
			f.add(cm)
		}
		f.mu.Lock()
		if ctx.Err() == nil && f.err == nil {
			f.err = fmt.Errorf("follow stream of %s closed", c.nw.IDs[i])
		}
		f.mu.Unlock()
	}()
	return f, nil
}

func (f *follower) add(cm client.Commit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		f.started, f.first, f.next = true, cm.SeqNr, cm.SeqNr
	}
	if cm.SeqNr != f.next {
		if f.err == nil {
			f.err = fmt.Errorf("commit notice for %d, expected %d", cm.SeqNr, f.next)
		}
		return
	}
	f.next++
	f.batches = append(f.batches, cm.TxIDs)
	for _, id := range cm.TxIDs {
		f.count[id]++
	}
}

// missing returns how many of ids have not been seen yet, and one of them.
func (f *follower) missing(ids []ordering.TxID) (int, ordering.TxID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	var one ordering.TxID
	for _, id := range ids {
		if f.count[id] == 0 {
			n++
			one = id
		}
	}
	return n, one, f.err
}

// committedCount returns how many transactions were seen.
func (f *follower) committedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.count)
}

// rootAt returns the state root at height h (after batches 0..h-1) of a
// kvstore replayed from the notices, the transactions looked up by ID;
// false if the notices do not reach h yet. Batches before the first notice
// are empty: no transaction was submitted before the follower started.
func (f *follower) rootAt(h ordering.SeqNr, lookup func(ordering.TxID) (txSpec, bool)) ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started || h > f.next {
		return nil, false, nil
	}
	if f.replay == nil {
		f.replay = kvstore.New()
		f.roots = [][]byte{f.replay.Root()}
	}
	for sn := ordering.SeqNr(len(f.roots) - 1); sn < h; sn++ {
		var b ordering.Batch
		if sn >= f.first {
			for _, id := range f.batches[sn-f.first] {
				tx, ok := lookup(id)
				if !ok {
					return nil, false, fmt.Errorf("batch %d holds a transaction %x nobody submitted", sn, id[:6])
				}
				b.Txs = append(b.Txs, tx.Tx)
			}
		}
		if err := f.replay.Apply(sn, b); err != nil {
			return nil, false, err
		}
		f.roots = append(f.roots, f.replay.Root())
	}
	return f.roots[h], true, nil
}

// replayStats returns what replaying the log into a fresh store did.
func (f *follower) replayStats() kvstore.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.replay.Stats()
}

// around describes where the neighbouring nonces of tx's sender were
// delivered (failure diagnostics).
func (f *follower) around(tx txSpec, lookup func(ordering.TxID) (txSpec, bool)) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, ids := range f.batches {
		for _, id := range ids {
			o, ok := lookup(id)
			if ok && o.Sender == tx.Sender && o.Nonce+3 >= tx.Nonce && o.Nonce <= tx.Nonce+3 {
				out = append(out, fmt.Sprintf("nonce %d at %d", o.Nonce, f.first+ordering.SeqNr(k)))
			}
		}
	}
	return fmt.Sprintf("%s nonce %d: %s", tx.Sender, tx.Nonce, strings.Join(out, ", "))
}

// checkExactlyOnce checks that every acknowledged transaction appeared in
// exactly one delivered batch, and no transaction in more than one.
func (f *follower) checkExactlyOnce(acked []ordering.TxID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []string
	for _, id := range acked {
		if n := f.count[id]; n != 1 {
			errs = append(errs, fmt.Sprintf("acknowledged tx %x delivered %d times", id[:6], n))
		}
	}
	for id, n := range f.count {
		if n > 1 {
			errs = append(errs, fmt.Sprintf("tx %x delivered %d times", id[:6], n))
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Sprintf("... %d more", len(errs)-10))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
