package iss

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// PoolParams are the tunables of the reference pool.
type PoolParams struct {
	// BatchTimeout: a request that cannot be filled is answered this long
	// after it first could be answered with at least one transaction.
	BatchTimeout time.Duration
	// MaxTxs bounds the transactions the pool holds (submissions above it
	// are refused and counted).
	MaxTxs int
	// NumBuckets must equal the ISS parameter of the same name.
	NumBuckets int
	// Gossip, if set, forwards every client submission to the pools of
	// Peers through Net, so that it reaches whichever leader owns its bucket.
	Gossip bool
	Net    mir.ModuleID
	Peers  []mir.NodeID
}

// GossipTx carries transactions from one pool to the others.
type GossipTx struct {
	_   struct{} `cbor:",toarray"`
	Txs []ordering.Tx
}

// Pool is a reference mempool as a passive module, implementing the ISS
// mempool contract (RequestBatch, CutBatch, TxsDelivered, ResetProposals,
// SubmitTx). It keeps one FIFO per bucket and deduplicates by transaction
// ID. The simulator and the ordering benchmark use it; the production pool
// lives in package mempool.
type Pool struct {
	self, timer mir.ModuleID
	p           PoolParams
	// buckets[b] holds available transactions of bucket b in arrival order
	// (entries at index < heads[b] are consumed).
	buckets [][]poolTx
	heads   []int
	// availTxs[b] and availBytes[b] are the number and total Size of the
	// transactions of bucket b whose state is txAvailable (each has an
	// entry at or after heads[b]); they make serve O(buckets) per call
	// instead of a scan of every queued transaction.
	availTxs   []int
	availBytes []int
	// state maps every known transaction to where it is.
	state map[ordering.TxID]txState
	// proposed holds transactions handed out in a batch and not yet seen
	// delivered; ResetProposals makes them available again.
	proposed map[ordering.TxID]poolTx
	// own lists transactions clients submitted here, not yet seen delivered
	// at the last ResetProposals; they are gossiped again at every reset so
	// that lost gossip cannot strand them.
	own []poolTx
	// parked are requests waiting for transactions, in arrival order.
	parked []*parkedReq
	// senderBucket memoizes ordering.BucketOf(sender, len(buckets)) (a
	// SHA-256 per call, needed for every submitted and delivered
	// transaction); it is cleared when it reaches maxSenderCache entries.
	senderBucket map[string]int
	// Refused counts submissions refused because the pool was full.
	Refused int
	seq     uint64
}

type poolTx struct {
	tx  ordering.Tx
	id  ordering.TxID
	seq uint64
}

type txState uint8

const (
	txAvailable txState = iota + 1
	txProposed
)

type parkedReq struct {
	req      RequestBatch
	timerSet bool
	// has[b] reports whether bucket b is one of req.Buckets.
	has []bool
}

func newParkedReq(r RequestBatch) *parkedReq {
	pr := &parkedReq{req: r, has: make([]bool, r.NumBuckets)}
	for _, b := range r.Buckets {
		if b >= 0 && b < len(pr.has) {
			pr.has[b] = true
		}
	}
	return pr
}

// poolCut is the pool's own batch-timeout event.
type poolCut struct {
	_     struct{} `cbor:",toarray"`
	ReqID uint64
}

func init() {
	mir.RegisterPayload(mir.TagBaseISS+90, poolCut{})
	mir.RegisterPayload(mir.TagBaseISS+91, GossipTx{})
}

// NewPool returns a pool whose module ID is self, using timer for its batch
// timeout.
func NewPool(self, timer mir.ModuleID, p PoolParams) *Pool {
	if p.MaxTxs <= 0 {
		p.MaxTxs = 1 << 20
	}
	if p.NumBuckets <= 0 {
		p.NumBuckets = 1
	}
	pool := &Pool{self: self, timer: timer, p: p, state: map[ordering.TxID]txState{}, proposed: map[ordering.TxID]poolTx{},
		senderBucket: map[string]int{}}
	pool.ensureBuckets(p.NumBuckets)
	return pool
}

// Len returns the number of transactions the pool holds.
func (p *Pool) Len() int { return len(p.state) }

// ApplyEvents implements mir.PassiveModule.
func (p *Pool) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, p.apply)
}

func (p *Pool) apply(e mir.Event) (mir.EventList, error) {
	switch ev := e.Payload.(type) {
	case events.Init:
		return nil, nil
	case SubmitTx:
		out, ok := p.submit(ev.Tx)
		if ok && p.p.Gossip && len(p.p.Peers) > 0 {
			p.own = append(p.own, poolTx{tx: ev.Tx, id: ev.Tx.ID()})
			out = append(out, p.gossip([]ordering.Tx{ev.Tx}))
		}
		return out, nil
	case events.MessageReceived:
		g, ok := ev.Msg.(GossipTx)
		if !ok || len(g.Txs) > 4096 {
			return nil, nil
		}
		var out mir.EventList
		for _, tx := range g.Txs {
			evs, _ := p.submit(tx)
			out = append(out, evs...)
		}
		return out, nil
	case RequestBatch:
		if ev.NumBuckets != len(p.buckets) || ev.MaxTxs <= 0 || ev.MaxBytes <= 0 {
			return nil, fmt.Errorf("pool: bad request %+v (pool has %d buckets)", ev, len(p.buckets))
		}
		p.parked = append(p.parked, newParkedReq(ev))
		return p.serve(-1), nil
	case CutBatch:
		for i, pr := range p.parked {
			if pr.req.ReqID == ev.ReqID {
				p.parked = append(p.parked[:i:i], p.parked[i+1:]...)
				return mir.EventList{p.answer(pr.req, true)}, nil
			}
		}
		return nil, nil
	case poolCut:
		for i, pr := range p.parked {
			if pr.req.ReqID == ev.ReqID {
				ev := p.answer(pr.req, false)
				if len(ev.Payload.(NewBatch).Txs) == 0 {
					pr.timerSet = false
					return nil, nil
				}
				p.parked = append(p.parked[:i:i], p.parked[i+1:]...)
				return mir.EventList{ev}, nil
			}
		}
		return nil, nil
	case TxsDelivered:
		for _, tx := range ev.Txs {
			id := tx.ID()
			st, known := p.state[id]
			if !known {
				continue
			}
			if st == txAvailable {
				p.setState(id, p.bucketOf(tx.Sender), tx, 0)
			}
			delete(p.state, id)
			delete(p.proposed, id)
		}
		return nil, nil
	case ResetProposals:
		p.parked = nil
		p.resetProposals()
		return p.regossip(), nil
	}
	return nil, fmt.Errorf("pool: unexpected event %T", e.Payload)
}

// maxSenderCache bounds Pool.senderBucket.
const maxSenderCache = 1 << 16

// bucketOf returns the bucket of sender (see senderBucket).
func (p *Pool) bucketOf(sender string) int {
	if b, ok := p.senderBucket[sender]; ok {
		return b
	}
	if len(p.senderBucket) >= maxSenderCache {
		clear(p.senderBucket)
	}
	b := ordering.BucketOf(sender, len(p.buckets))
	p.senderBucket[sender] = b
	return b
}

func (p *Pool) ensureBuckets(n int) {
	for len(p.buckets) < n {
		p.buckets = append(p.buckets, nil)
		p.heads = append(p.heads, 0)
		p.availTxs = append(p.availTxs, 0)
		p.availBytes = append(p.availBytes, 0)
	}
}

// setState sets the state of transaction tx (ID id, bucket b), keeping
// availTxs and availBytes in step when it enters or leaves txAvailable.
func (p *Pool) setState(id ordering.TxID, b int, tx ordering.Tx, st txState) {
	old := p.state[id]
	switch {
	case old != txAvailable && st == txAvailable:
		p.availTxs[b]++
		p.availBytes[b] += tx.Size()
	case old == txAvailable && st != txAvailable:
		p.availTxs[b]--
		p.availBytes[b] -= tx.Size()
	}
	p.state[id] = st
}

func (p *Pool) gossip(txs []ordering.Tx) mir.Event {
	return mir.NewEvent(p.p.Net, events.SendMessage{Destinations: p.p.Peers, DestModule: p.self, Msg: GossipTx{Txs: txs}})
}

// regossip sends the still pending own transactions to the peers again.
func (p *Pool) regossip() mir.EventList {
	kept := p.own[:0]
	var txs []ordering.Tx
	for _, t := range p.own {
		if _, pending := p.state[t.id]; pending {
			kept = append(kept, t)
			txs = append(txs, t.tx)
		}
	}
	clear(p.own[len(kept):])
	p.own = kept
	if len(txs) == 0 || !p.p.Gossip {
		return nil
	}
	var out mir.EventList
	for len(txs) > 0 {
		n := min(len(txs), 4096)
		out = append(out, p.gossip(txs[:n]))
		txs = txs[n:]
	}
	return out
}

func (p *Pool) submit(tx ordering.Tx) (mir.EventList, bool) {
	if tx.Check() != nil {
		return nil, false
	}
	id := tx.ID()
	if _, dup := p.state[id]; dup {
		return nil, false
	}
	if len(p.state) >= p.p.MaxTxs {
		p.Refused++
		return nil, false
	}
	b := p.bucketOf(tx.Sender)
	p.seq++
	p.buckets[b] = append(p.buckets[b], poolTx{tx: tx, id: id, seq: p.seq})
	p.setState(id, b, tx, txAvailable)
	return p.serve(b), true
}

// serve answers parked requests that can be filled and arms batch timers for
// those that can be partly filled.
//
// If bucket is not -1, serve considers only the requests for that bucket:
// after every serve, each parked request is unfillable and has its timer
// armed if it can get anything; only a transaction becoming available
// changes that, so a submission to bucket b cannot affect requests without b.
func (p *Pool) serve(bucket int) mir.EventList {
	if bucket >= 0 && !p.parkedFor(bucket) {
		return nil
	}
	var out mir.EventList
	kept := p.parked[:0]
	for _, pr := range p.parked {
		if bucket >= 0 && !pr.has[bucket] {
			kept = append(kept, pr)
			continue
		}
		n, bytes := p.available(pr.req)
		switch {
		case n >= pr.req.MaxTxs || bytes >= pr.req.MaxBytes:
			out = append(out, p.answer(pr.req, false))
			continue
		case n > 0 && !pr.timerSet:
			pr.timerSet = true
			out = append(out, mir.NewEvent(p.timer, events.TimerDelay{
				Events: []mir.Event{mir.NewEvent(p.self, poolCut{ReqID: pr.req.ReqID})}, After: p.p.BatchTimeout,
				// Never collected: ISS garbage-collects timers by epoch at
				// every stable checkpoint, which must not cancel the pool's.
				RetentionIndex: math.MaxUint64}))
		}
		kept = append(kept, pr)
	}
	p.parked = kept
	return out
}

// parkedFor reports whether a parked request includes bucket b.
func (p *Pool) parkedFor(b int) bool {
	for _, pr := range p.parked {
		if pr.has[b] {
			return true
		}
	}
	return false
}

// available returns the number and size of the available transactions of
// the request's buckets (serve only compares them with the limits).
func (p *Pool) available(r RequestBatch) (int, int) {
	n, bytes := 0, 0
	for _, b := range r.Buckets {
		if b < 0 || b >= len(p.buckets) {
			continue
		}
		n += p.availTxs[b]
		bytes += p.availBytes[b]
	}
	return n, bytes
}

// answer takes transactions for the request, oldest first per bucket, and
// returns the NewBatch event.
func (p *Pool) answer(r RequestBatch, _ bool) mir.Event {
	var txs []ordering.Tx
	bytes := 0
	for _, b := range r.Buckets {
		if b < 0 || b >= len(p.buckets) {
			continue
		}
		q := p.buckets[b]
		i := p.heads[b]
		for ; i < len(q) && len(txs) < r.MaxTxs; i++ {
			t := q[i]
			if p.state[t.id] != txAvailable {
				continue
			}
			if bytes+t.tx.Size() > r.MaxBytes && len(txs) > 0 {
				break
			}
			txs = append(txs, t.tx)
			bytes += t.tx.Size()
			p.setState(t.id, b, t.tx, txProposed)
			p.proposed[t.id] = t
		}
		p.heads[b] = i
		if p.heads[b] == len(q) {
			p.buckets[b], p.heads[b] = q[:0], 0
		} else if p.heads[b] > 1024 && p.heads[b] > len(q)/2 {
			p.buckets[b] = append(q[:0:0], q[p.heads[b]:]...)
			p.heads[b] = 0
		}
		if len(txs) >= r.MaxTxs {
			break
		}
	}
	return mir.NewEvent(r.ReplyTo, NewBatch{ReqID: r.ReqID, Txs: txs})
}

// resetProposals puts transactions handed out and not delivered back into
// their buckets, in their original arrival order.
func (p *Pool) resetProposals() {
	if len(p.proposed) == 0 {
		return
	}
	back := make([]poolTx, 0, len(p.proposed))
	for _, t := range p.proposed {
		back = append(back, t)
	}
	clear(p.proposed)
	sort.Slice(back, func(i, j int) bool { return back[i].seq < back[j].seq })
	touched := map[int]bool{}
	for _, t := range back {
		b := p.bucketOf(t.tx.Sender)
		p.buckets[b] = append(p.buckets[b], t)
		p.setState(t.id, b, t.tx, txAvailable)
		touched[b] = true
	}
	for b := range touched {
		q := p.buckets[b][p.heads[b]:]
		sort.SliceStable(q, func(i, j int) bool { return q[i].seq < q[j].seq })
	}
}
