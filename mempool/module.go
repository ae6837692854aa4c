package mempool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/timer"
)

// ErrStopped is returned by Module.ApplyEvents once Run has returned.
var ErrStopped = errors.New("mempool: module stopped")

// ModuleParams are the tunables of a Module.
type ModuleParams struct {
	// BatchTimeout: a request that holds at least one transaction but is not
	// full is answered this long after it got its first transaction.
	BatchTimeout time.Duration
}

// DefaultModuleParams returns the defaults.
func DefaultModuleParams() ModuleParams {
	return ModuleParams{BatchTimeout: 20 * time.Millisecond}
}

// ModuleOption configures a Module.
type ModuleOption func(*Module)

// WithClock sets the module's clock (default timer.RealClock{}); tests use a
// timer.VirtualClock.
func WithClock(c timer.Clock) ModuleOption { return func(m *Module) { m.clock = c } }

// Module serves the ISS mempool contract from a Pool. It is an active module
// (mir.ActiveModule and mir.Runner): transactions reach the pool
// concurrently (clients, gossip), so the module wakes on the pool's Notify
// and on its own batch timers, not only on events.
//
// A request (iss.RequestBatch) takes transactions from the pool as they come
// (Pool.Select, which marks them proposed) until it is full, and is then
// answered with iss.NewBatch to its ReplyTo. A request holding at least one
// transaction but not full is answered BatchTimeout after it got its first
// one; iss.CutBatch answers it at once, even empty. Requests are served in
// arrival order. iss.TxsDelivered goes to Pool.Committed (and drops the
// committed nonces from what pending requests hold); iss.ResetProposals
// forgets pending requests and calls Pool.ResetProposals, so that what they
// held is offered again; iss.SubmitTx goes to Pool.Add with OriginLocal.
// Follow-ups (Next) of an event are emitted once the event is applied.
//
// Run must be running for anything to come out. When it returns, every timer
// is stopped, EventsOut is closed and ApplyEvents fails with ErrStopped.
type Module struct {
	pool  Pool
	p     ModuleParams
	clock timer.Clock
	out   chan mir.EventList
	// wake has a value when queue may be non-empty.
	wake chan struct{}
	// running is set once Run started.
	running atomic.Bool

	// mu guards the fields below. Lock order: mu before the pool's lock
	// (the pool never calls back).
	mu sync.Mutex
	// stopped is set when Run returns; nothing is emitted afterwards.
	stopped bool
	// parked holds the unanswered requests in arrival order.
	parked []*request
	// byID indexes parked by ReqID.
	byID map[uint64]*request
	// queue holds events to emit, in order.
	queue mir.EventList
	// stats are the module's counters.
	stats ModuleStats
}

// request is a parked RequestBatch. Invariant: txs is within the request's
// limits, bytes is their total size, and timer is non-nil iff txs is
// non-empty.
type request struct {
	req   iss.RequestBatch
	txs   []ordering.Tx
	bytes int
	timer timer.Timer
}

// ModuleStats are a Module's counters.
type ModuleStats struct {
	// Requests counts RequestBatch events; DuplicateRequests those ignored
	// because a request with the same ReqID was pending.
	Requests, DuplicateRequests uint64
	// AnsweredFull, AnsweredTimeout and AnsweredCut count answers by cause.
	AnsweredFull, AnsweredTimeout, AnsweredCut uint64
	// Reset counts pending requests forgotten at ResetProposals.
	Reset uint64
	// StaleCuts counts CutBatch events for requests no longer pending.
	StaleCuts uint64
	// Submitted and SubmitRejected count SubmitTx events and their
	// rejections (the pool's Stats say why).
	Submitted, SubmitRejected uint64
	// Parked is the number of pending requests.
	Parked int
}

// NewModule returns a module serving pool.
func NewModule(pool Pool, params ModuleParams, opts ...ModuleOption) *Module {
	m := &Module{
		pool:  pool,
		p:     params,
		clock: timer.RealClock{},
		out:   make(chan mir.EventList),
		wake:  make(chan struct{}, 1),
		byID:  map[uint64]*request{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

var (
	_ mir.ActiveModule = (*Module)(nil)
	_ mir.Runner       = (*Module)(nil)
)

// EventsOut implements mir.ActiveModule. It is closed when Run returns.
func (m *Module) EventsOut() <-chan mir.EventList { return m.out }

// ApplyEvents implements mir.ActiveModule. It blocks only while the pool's
// validator runs for a SubmitTx. An unexpected event or a malformed request
// is a wiring bug and returns an error.
func (m *Module) ApplyEvents(ctx context.Context, evs mir.EventList) error {
	for _, e := range evs {
		if err := m.apply(ctx, e); err != nil {
			return &mir.EventError{Event: e, Err: err}
		}
	}
	m.signal()
	return nil
}

func (m *Module) apply(ctx context.Context, e mir.Event) error {
	if sub, ok := e.Payload.(iss.SubmitTx); ok {
		err := m.pool.Add(ctx, sub.Tx, OriginLocal)
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.stopped {
			return ErrStopped
		}
		m.stats.Submitted++
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.stats.SubmitRejected++
		}
		m.queue = append(m.queue, e.Next...)
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	switch ev := e.Payload.(type) {
	case events.Init:
	case iss.RequestBatch:
		if ev.NumBuckets <= 0 || ev.MaxTxs <= 0 || ev.MaxBytes <= 0 {
			return fmt.Errorf("mempool: bad request %+v", ev)
		}
		m.stats.Requests++
		if m.byID[ev.ReqID] != nil {
			m.stats.DuplicateRequests++
			break
		}
		r := &request{req: ev}
		m.parked = append(m.parked, r)
		m.byID[ev.ReqID] = r
		m.serve(r)
	case iss.CutBatch:
		r := m.byID[ev.ReqID]
		if r == nil {
			m.stats.StaleCuts++
			break
		}
		m.topUp(r)
		m.answer(r)
		m.stats.AnsweredCut++
	case iss.TxsDelivered:
		m.pool.Committed(ev.Txs)
		m.dropCommitted(ev.Txs)
	case iss.ResetProposals:
		for _, r := range m.parked {
			if r.timer != nil {
				r.timer.Stop()
			}
		}
		m.stats.Reset += uint64(len(m.parked))
		clear(m.parked)
		m.parked = m.parked[:0]
		clear(m.byID)
		m.pool.ResetProposals()
	default:
		return fmt.Errorf("mempool: unexpected event %s", mir.PayloadName(e.Payload))
	}
	m.queue = append(m.queue, e.Next...)
	return nil
}

// serve tops request r up and answers it if full, else arms its batch timer
// once it holds a transaction. It reports whether r was answered. The
// caller holds mu.
func (m *Module) serve(r *request) bool {
	if m.topUp(r) {
		m.answer(r)
		m.stats.AnsweredFull++
		return true
	}
	if len(r.txs) > 0 && r.timer == nil {
		r.timer = m.clock.AfterFunc(m.p.BatchTimeout, func() { m.timeout(r) })
	}
	return false
}

// serveAll serves the parked requests in arrival order. The caller holds mu.
func (m *Module) serveAll() {
	for i := 0; i < len(m.parked); {
		if !m.serve(m.parked[i]) {
			i++
		}
	}
}

// topUp adds what the pool can give to r and reports whether r is full.
// The caller holds mu.
func (m *Module) topUp(r *request) bool {
	if len(r.txs) >= r.req.MaxTxs || r.bytes >= r.req.MaxBytes {
		return true
	}
	txs, full := m.pool.Select(r.req.Buckets, r.req.NumBuckets, r.req.MaxTxs-len(r.txs), r.req.MaxBytes-r.bytes)
	for _, tx := range txs {
		r.bytes += tx.Size()
	}
	r.txs = append(r.txs, txs...)
	// A request that got nothing yet is not full even if the pool says so:
	// the pool's next transaction is larger than the whole batch (MaxTxSize
	// above the batch byte limit, a misconfiguration) and answering at once
	// would make the leader spin on empty proposals.
	return (full && len(r.txs) > 0) || len(r.txs) >= r.req.MaxTxs
}

// answer emits r's NewBatch and forgets r. The caller holds mu.
func (m *Module) answer(r *request) {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	delete(m.byID, r.req.ReqID)
	if i := slices.Index(m.parked, r); i >= 0 {
		m.parked = slices.Delete(m.parked, i, i+1)
	}
	m.queue = append(m.queue, mir.NewEvent(r.req.ReplyTo, iss.NewBatch{ReqID: r.req.ReqID, Txs: r.txs}))
}

// timeout answers r when its batch timer fires, if it is still pending.
func (m *Module) timeout(r *request) {
	m.mu.Lock()
	if m.stopped || m.byID[r.req.ReqID] != r || r.timer == nil {
		m.mu.Unlock()
		return
	}
	m.topUp(r)
	m.answer(r)
	m.stats.AnsweredTimeout++
	m.mu.Unlock()
	m.signal()
}

// dropCommitted removes from pending requests every transaction whose
// sender committed its nonce (or a higher one), so that no answer carries a
// transaction the pool already saw committed. The caller holds mu.
func (m *Module) dropCommitted(txs []ordering.Tx) {
	holding := false
	for _, r := range m.parked {
		holding = holding || len(r.txs) > 0
	}
	if !holding || len(txs) == 0 {
		return
	}
	used := make(map[string]uint64, len(txs))
	for _, tx := range txs {
		if n, ok := used[tx.Sender]; !ok || tx.Nonce > n {
			used[tx.Sender] = tx.Nonce
		}
	}
	for _, r := range m.parked {
		kept := r.txs[:0]
		r.bytes = 0
		for _, tx := range r.txs {
			if n, ok := used[tx.Sender]; ok && tx.Nonce <= n {
				continue
			}
			kept = append(kept, tx)
			r.bytes += tx.Size()
		}
		clear(r.txs[len(kept):])
		r.txs = kept
		if len(r.txs) == 0 && r.timer != nil {
			r.timer.Stop()
			r.timer = nil
		}
	}
}

func (m *Module) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run implements mir.Runner: it serves parked requests when the pool
// signals new transactions and emits queued events, until ctx is done. It
// may be called once.
func (m *Module) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("mempool: Run called twice")
	}
	defer close(m.out)
	defer m.stop()
	notify := m.pool.Notify()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-notify:
			m.mu.Lock()
			m.serveAll()
			m.mu.Unlock()
		}
		m.mu.Lock()
		batch := m.queue
		m.queue = nil
		m.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		select {
		case m.out <- batch:
		case <-ctx.Done():
			return nil
		}
	}
}

// stop stops every timer and refuses further work.
func (m *Module) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	for _, r := range m.parked {
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	m.parked = nil
	clear(m.byID)
	m.queue = nil
}

// Stats returns the module's counters.
func (m *Module) Stats() ModuleStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.Parked = len(m.parked)
	return st
}
