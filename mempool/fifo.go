package mempool

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// FIFO is the default Pool: per-sender nonce order, first-come order across
// senders, deduplication by transaction ID, limits per sender and in total.
//
// A sender's pending transactions are selectable only as a contiguous run of
// nonces starting at its next expected nonce; a transaction after a missing
// nonce waits until the gap is filled by Add or closed by a commit that uses
// the missing nonce. Across senders, Select takes transactions in the order their
// selectable transaction arrived: it repeatedly takes the head of the run
// (the sender's lowest selectable nonce) that arrived first among the
// requested buckets. Once a transaction is handed out, the sender's next
// transaction becomes its head.
//
// All operations are O(log n) in the number of senders, plus O(1) map work
// per transaction; Select touches only senders of the requested buckets that
// have a selectable transaction. A FIFO is safe for concurrent use.
type FIFO struct {
	p         Params
	validator Validator
	nonces    NonceSource
	gossiper  Gossiper
	// notify holds at most one pending wake-up for the consumer.
	notify chan struct{}
	// rejected[r] counts rejections with reason r.
	rejected [numReasons]atomic.Uint64

	// mu guards the fields below.
	mu sync.Mutex
	// numBuckets is the bucket count of the index: every account's bucket
	// is ordering.BucketOf(name, numBuckets) and len(buckets) == numBuckets.
	numBuckets int
	// accounts holds every sender with at least one pending transaction.
	accounts map[string]*account
	// byID holds every pending transaction (admitted, not yet removed).
	byID map[ordering.TxID]*entry
	// buckets[b] holds the accounts of bucket b with a selectable head
	// (cursor < runEnd), earliest head arrival first.
	buckets []acctHeap
	// proposed holds exactly the accounts with handed-out transactions
	// (cursor > next).
	proposed map[*account]struct{}
	// committedNext is the default nonce source (nil with a NonceSource):
	// one past the highest committed nonce of every sender seen committed.
	committedNext map[string]uint64
	// retired holds, with a NonceSource, the next nonce of every sender
	// whose account was removed (all its transactions committed) while the
	// NonceSource may not have caught up yet; an entry is dropped once the
	// NonceSource reports at least as much (checked at ResetProposals).
	retired map[string]uint64
	// local lists, in arrival order, the pending transactions admitted with
	// OriginLocal (only with a Gossiper); it may also hold removed ones
	// until pruned (at ResetProposals, or when it reaches 2*len(byID)+1024).
	local []*entry
	// seq is the arrival number of the last admitted transaction.
	seq uint64
	// bytes is the total size of byID's transactions.
	bytes int
	// nLocal counts byID's transactions admitted with OriginLocal.
	nLocal int
	// gapped is the sum of gapped() over accounts.
	gapped int
	// nProposed is the sum of cursor-next over accounts.
	nProposed int
	// admitted, committed and superseded are the Stats counters.
	admitted, committed, superseded uint64
}

// entry is one pending transaction.
type entry struct {
	tx   ordering.Tx
	id   ordering.TxID
	size int
	// local marks a transaction this node's clients submitted.
	local bool
	// seq is the arrival number (unique, increasing in admission order).
	seq uint64
}

// account is the pending state of one sender. Invariant: next <= cursor <=
// runEnd; txs holds a transaction at every nonce in [next, runEnd) and none
// at runEnd nor below next.
type account struct {
	name   string
	bucket int
	// next is the sender's next expected nonce (all lower ones are used).
	next uint64
	// runEnd is the first nonce >= next without a pending transaction.
	runEnd uint64
	// cursor is the first nonce not handed out: txs in [next, cursor) are
	// proposed, txs[cursor] (if cursor < runEnd) is the selectable head.
	cursor uint64
	// txs holds the sender's pending transactions by nonce.
	txs map[uint64]*entry
	// key is txs[cursor].seq while the account is in its bucket heap.
	key uint64
	// heapIdx is the index in buckets[bucket], or -1 if not there.
	heapIdx int
}

// gapped returns the number of the account's transactions beyond its run.
func (a *account) gapped() int { return len(a.txs) - int(a.runEnd-a.next) }

var _ Pool = (*FIFO)(nil)

// New returns an empty FIFO pool with params (zero fields take defaults).
func New(params Params, opts ...Option) (*FIFO, error) {
	params = params.withDefaults()
	if err := params.Check(); err != nil {
		return nil, err
	}
	p := &FIFO{
		p:          params,
		notify:     make(chan struct{}, 1),
		numBuckets: params.NumBuckets,
		accounts:   map[string]*account{},
		byID:       map[ordering.TxID]*entry{},
		buckets:    make([]acctHeap, params.NumBuckets),
		proposed:   map[*account]struct{}{},
	}
	for _, o := range opts {
		o(p)
	}
	if p.nonces == nil {
		p.committedNext = map[string]uint64{}
	} else {
		p.retired = map[string]uint64{}
	}
	return p, nil
}

// Params returns the pool's parameters (with defaults applied).
func (p *FIFO) Params() Params { return p.p }

// Notify implements Pool.
func (p *FIFO) Notify() <-chan struct{} { return p.notify }

// Add implements Pool. Cheap checks (shape, size, duplicate, nonce, room)
// run before the validator so that floods of duplicates cost no signature
// checks; they run again after it, under the lock, before admission.
func (p *FIFO) Add(ctx context.Context, tx ordering.Tx, origin Origin) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(tx.Sender) == 0 || len(tx.Sender) > ordering.MaxSenderLen {
		return p.reject(&Rejection{Reason: ReasonInvalid, Detail: fmt.Sprintf("sender length %d not in [1, %d]", len(tx.Sender), ordering.MaxSenderLen)})
	}
	size := tx.Size()
	id := tx.ID()
	if size > p.p.MaxTxSize {
		return p.reject(&Rejection{Reason: ReasonTooLarge, TxID: id, Detail: fmt.Sprintf("size %d exceeds %d", size, p.p.MaxTxSize)})
	}
	if err := tx.Check(); err != nil {
		return p.reject(&Rejection{Reason: ReasonInvalid, TxID: id, Detail: err.Error()})
	}

	p.mu.Lock()
	next, known := p.knownNext(tx.Sender)
	floor := p.retired[tx.Sender]
	p.mu.Unlock()
	if !known {
		// The NonceSource may lag behind Committed: never start a sender
		// below what the pool already saw committed, or its transactions
		// would wait for a nonce that is already used.
		next = max(p.nonces.NextNonce(tx.Sender), floor)
	}
	p.mu.Lock()
	rej := p.check(tx, id, size, next, origin)
	p.mu.Unlock()
	if rej != nil {
		return p.reject(rej)
	}

	if p.validator != nil {
		if err := p.validator(tx); err != nil {
			return p.reject(&Rejection{Reason: ReasonInvalid, TxID: id, Err: err})
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	p.mu.Lock()
	if rej := p.check(tx, id, size, next, origin); rej != nil {
		p.mu.Unlock()
		return p.reject(rej)
	}
	e := p.insert(tx, id, size, next, origin)
	if origin == OriginLocal && p.gossiper != nil {
		if len(p.local) >= 2*len(p.byID)+1024 {
			p.pruneLocal()
		}
		p.local = append(p.local, e)
	}
	p.mu.Unlock()

	select {
	case p.notify <- struct{}{}:
	default:
	}
	if origin == OriginLocal && p.gossiper != nil {
		p.gossiper.Publish(tx)
	}
	return nil
}

// knownNext returns the sender's next nonce if the pool knows it without
// asking the NonceSource. The caller holds mu.
func (p *FIFO) knownNext(sender string) (uint64, bool) {
	if a := p.accounts[sender]; a != nil {
		return a.next, true
	}
	if p.committedNext != nil {
		return p.committedNext[sender], true
	}
	return 0, false
}

func (p *FIFO) reject(r *Rejection) error {
	p.rejected[r.Reason].Add(1)
	return r
}

// check decides whether tx may be admitted. next is the sender's next nonce
// if the pool does not track the sender. The caller holds mu.
func (p *FIFO) check(tx ordering.Tx, id ordering.TxID, size int, next uint64, origin Origin) *Rejection {
	if _, dup := p.byID[id]; dup {
		return &Rejection{Reason: ReasonDuplicate, TxID: id, Detail: "already pending"}
	}
	a := p.accounts[tx.Sender]
	runEnd := next
	if a != nil {
		next, runEnd = a.next, a.runEnd
	} else if p.committedNext != nil {
		next = p.committedNext[tx.Sender]
		runEnd = next
	}
	switch {
	case tx.Nonce < next:
		return &Rejection{Reason: ReasonNonceTooLow, TxID: id, Detail: fmt.Sprintf("nonce %d, expected at least %d", tx.Nonce, next)}
	case tx.Nonce-next > p.p.MaxNonceGap || tx.Nonce == math.MaxUint64:
		return &Rejection{Reason: ReasonNonceTooHigh, TxID: id, Detail: fmt.Sprintf("nonce %d, expected at most %d", tx.Nonce, next+p.p.MaxNonceGap)}
	}
	if a != nil {
		if _, taken := a.txs[tx.Nonce]; taken {
			return &Rejection{Reason: ReasonNonceTaken, TxID: id, Detail: fmt.Sprintf("sender %q has another pending transaction with nonce %d", tx.Sender, tx.Nonce)}
		}
		if len(a.txs) >= p.p.MaxPerSender {
			return &Rejection{Reason: ReasonFull, TxID: id, Detail: fmt.Sprintf("sender %q has %d pending transactions (limit)", tx.Sender, len(a.txs))}
		}
	}
	switch {
	case len(p.byID) >= p.p.MaxTxs:
		return &Rejection{Reason: ReasonFull, TxID: id, Detail: fmt.Sprintf("%d pending transactions (limit)", len(p.byID))}
	case origin == OriginLocal && p.nLocal >= p.p.MaxLocalTxs:
		return &Rejection{Reason: ReasonFull, TxID: id, Detail: fmt.Sprintf("%d pending transactions submitted here (limit)", p.nLocal)}
	case p.bytes+size > p.p.MaxBytes:
		return &Rejection{Reason: ReasonFull, TxID: id, Detail: fmt.Sprintf("%d pending bytes, limit %d", p.bytes, p.p.MaxBytes)}
	case tx.Nonce > runEnd && p.gapped >= p.p.MaxGapped:
		return &Rejection{Reason: ReasonFull, TxID: id, Detail: fmt.Sprintf("%d transactions wait for missing nonces (limit); nonce %d is not next", p.gapped, tx.Nonce)}
	}
	return nil
}

// insert admits a transaction that passed check. The caller holds mu.
func (p *FIFO) insert(tx ordering.Tx, id ordering.TxID, size int, next uint64, origin Origin) *entry {
	a := p.accounts[tx.Sender]
	if a == nil {
		if p.committedNext != nil {
			next = p.committedNext[tx.Sender]
		}
		a = &account{name: tx.Sender, bucket: ordering.BucketOf(tx.Sender, p.numBuckets),
			next: next, runEnd: next, cursor: next, txs: map[uint64]*entry{}, heapIdx: -1}
		p.accounts[tx.Sender] = a
	}
	p.seq++
	e := &entry{tx: tx, id: id, size: size, seq: p.seq, local: origin == OriginLocal}
	if e.local {
		p.nLocal++
	}
	before := a.gapped()
	a.txs[tx.Nonce] = e
	p.byID[id] = e
	p.bytes += size
	p.admitted++
	if tx.Nonce == a.runEnd {
		for a.txs[a.runEnd] != nil {
			a.runEnd++
		}
	}
	p.gapped += a.gapped() - before
	p.fix(a)
	return e
}

// fix puts the account into, updates it in, or removes it from its bucket
// heap after its cursor or run changed. The caller holds mu.
func (p *FIFO) fix(a *account) {
	// An account with transactions in flight (handed out, not committed)
	// hands out no more until they are committed or reset: were their slot
	// aborted while a later slot with its next nonces commits, those would
	// be ordered ahead of the nonces they follow, and the application would
	// skip them all. (Within one Select call, one batch, it may hand out a
	// whole run: see Select.)
	p.place(a, a.cursor < a.runEnd && a.cursor == a.next)
}

// place puts the account into (or updates it in) its bucket heap if
// selectable, or removes it from there. The caller holds mu.
func (p *FIFO) place(a *account, selectable bool) {
	h := &p.buckets[a.bucket]
	if selectable {
		a.key = a.txs[a.cursor].seq
		if a.heapIdx < 0 {
			h.push(a)
		} else {
			h.fix(a.heapIdx)
		}
	} else if a.heapIdx >= 0 {
		h.remove(a.heapIdx)
	}
}

// Select implements Pool. Buckets out of [0, numBuckets) and repeated
// buckets are ignored. It stops at the first transaction in order that does
// not fit in maxBytes (reporting full) rather than skipping it, so that
// large transactions are not starved by small ones.
func (p *FIFO) Select(buckets []int, numBuckets, maxTxs, maxBytes int) ([]ordering.Tx, bool) {
	if maxTxs <= 0 || maxBytes <= 0 {
		return nil, true
	}
	if numBuckets <= 0 {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if numBuckets != p.numBuckets {
		p.reindex(numBuckets)
	}
	m := bucketHeap{buckets: p.buckets, bs: make([]int, 0, len(buckets))}
	for _, b := range buckets {
		if b < 0 || b >= numBuckets || len(p.buckets[b]) == 0 || containsInt(m.bs, b) {
			continue
		}
		m.bs = append(m.bs, b)
	}
	m.init()
	var txs []ordering.Tx
	// The accounts this call put in flight stay selectable until it returns
	// (a batch may take a sender's whole run); then fix takes them out.
	var inFlight []*account
	defer func() {
		for _, a := range inFlight {
			p.fix(a)
		}
	}()
	bytes := 0
	for len(m.bs) > 0 {
		if len(txs) >= maxTxs {
			return txs, true
		}
		h := &p.buckets[m.bs[0]]
		a := (*h)[0]
		e := a.txs[a.cursor]
		if bytes+e.size > maxBytes {
			return txs, true
		}
		if txs == nil {
			txs = make([]ordering.Tx, 0, min(maxTxs, 256))
		}
		txs = append(txs, e.tx)
		bytes += e.size
		if a.cursor == a.next {
			p.proposed[a] = struct{}{}
			inFlight = append(inFlight, a)
		}
		a.cursor++
		p.nProposed++
		p.place(a, a.cursor < a.runEnd)
		m.fixTop()
	}
	return txs, len(txs) >= maxTxs
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// reindex rebuilds the bucket index for n buckets. The caller holds mu.
func (p *FIFO) reindex(n int) {
	p.numBuckets = n
	p.buckets = make([]acctHeap, n)
	for _, a := range p.accounts {
		a.heapIdx = -1
		a.bucket = ordering.BucketOf(a.name, n)
		p.fix(a)
	}
}

// Committed implements Pool. A committed transaction with nonce n of a
// sender removes the sender's pending transactions with nonces up to n:
// the one with the same ID counts as committed, any other as superseded
// (its nonce is used, it can never be valid).
func (p *FIFO) Committed(txs []ordering.Tx) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tx := range txs {
		if p.committedNext != nil && nextAfter(tx.Nonce) > p.committedNext[tx.Sender] {
			p.committedNext[tx.Sender] = nextAfter(tx.Nonce)
		}
		a := p.accounts[tx.Sender]
		if a == nil || tx.Nonce < a.next {
			continue
		}
		p.advance(a, tx.Nonce, &tx)
	}
}

// advance marks nonces up to upto used for account a, removing its pending
// transactions with those nonces; committed, if not nil, is the committed
// transaction with nonce upto. The caller holds mu.
func (p *FIFO) advance(a *account, upto uint64, committed *ordering.Tx) {
	gBefore, propBefore := a.gapped(), int(a.cursor-a.next)
	remove := func(nonce uint64, e *entry) {
		delete(a.txs, nonce)
		delete(p.byID, e.id)
		p.bytes -= e.size
		if e.local {
			p.nLocal--
		}
		// Same sender and nonce: the same transaction iff the same data (and
		// so the same ID, without hashing it again).
		if nonce == upto && committed != nil && bytes.Equal(e.tx.Data, committed.Data) {
			p.committed++
		} else {
			p.superseded++
		}
	}
	if upto-a.next >= uint64(len(a.txs)) || upto == math.MaxUint64 {
		for nonce, e := range a.txs {
			if nonce <= upto {
				remove(nonce, e)
			}
		}
	} else {
		for nonce := a.next; nonce <= upto; nonce++ {
			if e := a.txs[nonce]; e != nil {
				remove(nonce, e)
			}
		}
	}
	a.next = nextAfter(upto)
	a.runEnd = max(a.runEnd, a.next)
	for a.txs[a.runEnd] != nil {
		a.runEnd++
	}
	a.cursor = max(a.cursor, a.next)
	p.gapped += a.gapped() - gBefore
	p.nProposed += int(a.cursor-a.next) - propBefore
	if a.cursor == a.next {
		delete(p.proposed, a)
	}
	p.fix(a)
	if len(a.txs) == 0 {
		delete(p.accounts, a.name)
		if p.retired != nil {
			p.retired[a.name] = a.next
		}
	}
}

// nextAfter returns the nonce after n, saturating at math.MaxUint64 (a nonce
// the pool never admits).
func nextAfter(n uint64) uint64 {
	if n == math.MaxUint64 {
		return n
	}
	return n + 1
}

// ResetProposals implements Pool. It also publishes the pending local
// transactions again through the Gossiper, so that lost gossip cannot
// strand a transaction on a node that does not lead its bucket.
func (p *FIFO) ResetProposals() {
	p.mu.Lock()
	for a := range p.proposed {
		p.nProposed -= int(a.cursor - a.next)
		a.cursor = a.next
		p.fix(a)
	}
	clear(p.proposed)
	p.resyncNonces()
	var republish []ordering.Tx
	if p.gossiper != nil {
		p.pruneLocal()
		republish = make([]ordering.Tx, len(p.local))
		for i, e := range p.local {
			republish[i] = e.tx
		}
	}
	p.mu.Unlock()
	for _, tx := range republish {
		p.gossiper.Publish(tx)
	}
}

// resyncNonces reconciles the pool with its NonceSource. An account whose
// next nonce the NonceSource reports used (the node jumped ahead by state
// transfer, or its pool was refilled from the journal before it caught up,
// so no Committed reported those nonces) is advanced: its transactions with
// used nonces are dropped, so that they are never proposed (and ordered)
// again, and the ones waiting behind them become selectable. Retired
// entries the NonceSource caught up with are dropped. The caller holds mu.
func (p *FIFO) resyncNonces() {
	if p.nonces == nil {
		return
	}
	for name, a := range p.accounts {
		if n := p.nonces.NextNonce(name); n > a.next {
			p.advance(a, n-1, nil)
		}
	}
	for name, next := range p.retired {
		if p.nonces.NextNonce(name) >= next {
			delete(p.retired, name)
		}
	}
}

// pruneLocal drops removed transactions from local. The caller holds mu.
func (p *FIFO) pruneLocal() {
	kept := p.local[:0]
	for _, e := range p.local {
		if p.byID[e.id] == e {
			kept = append(kept, e)
		}
	}
	clear(p.local[len(kept):])
	p.local = kept
}

// Stats implements Pool.
func (p *FIFO) Stats() Stats {
	st := Stats{Rejected: map[Reason]uint64{}}
	for r := 1; r < numReasons; r++ {
		if n := p.rejected[r].Load(); n > 0 {
			st.Rejected[Reason(r)] = n
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st.Txs, st.Bytes, st.Senders, st.Local = len(p.byID), p.bytes, len(p.accounts), p.nLocal
	st.Gapped, st.Proposed = p.gapped, p.nProposed
	st.Admitted, st.Committed, st.Superseded = p.admitted, p.committed, p.superseded
	return st
}
