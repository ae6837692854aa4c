package timer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Module is the timer active module (mir.ActiveModule and mir.Runner). It
// handles events.TimerDelay, events.TimerRepeat and events.TimerGarbageCollect
// with the semantics of Scheduler and emits due events on EventsOut, in the
// order they fell due. Run must be running for anything to come out; the
// node starts it.
//
// The output queue holds at most one undelivered firing per repeat: if a
// repeat falls due again before its previous firing left the module (the
// node is applying backpressure), the new firing is dropped and counted in
// Stats.Coalesced, as time.Ticker drops ticks. Memory therefore stays
// bounded by the number of requests the module was given.
//
// When Run returns (its context is cancelled) every timer is cancelled,
// nothing more is emitted, EventsOut is closed and ApplyEvents fails with
// ErrStopped.
type Module struct {
	sched *Scheduler
	out   chan mir.EventList
	// signal has a value when queue may be non-empty.
	signal chan struct{}
	// running is set once Run started.
	running atomic.Bool

	// mu guards the fields below (taken inside the scheduler's lock).
	mu sync.Mutex
	// queue holds fired events not yet sent on out, in firing order.
	queue mir.EventList
	// queued holds the ids of requests with a firing in queue.
	queued map[uint64]bool
	// coalesced counts repeat firings dropped because one was still queued.
	coalesced uint64
}

// ModuleStats are the counters of a Module.
type ModuleStats struct {
	Stats
	// Coalesced counts repeat firings dropped because the previous firing
	// of the same repeat had not left the module yet.
	Coalesced uint64
}

// New returns a timer module on clock.
func New(clock Clock) *Module {
	m := &Module{
		out:    make(chan mir.EventList),
		signal: make(chan struct{}, 1),
		queued: map[uint64]bool{},
	}
	m.sched = NewScheduler(clock, m.enqueue)
	return m
}

// enqueue is the scheduler's EmitFunc.
func (m *Module) enqueue(id uint64, evs mir.EventList) {
	m.mu.Lock()
	if id != 0 {
		if m.queued[id] {
			m.coalesced++
			m.mu.Unlock()
			return
		}
		m.queued[id] = true
	}
	m.queue = append(m.queue, evs...)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// ApplyEvents hands timer requests to the module. It never blocks. A bad
// request returns an error (see the Err variables) that stops the node.
func (m *Module) ApplyEvents(_ context.Context, evs mir.EventList) error {
	return m.sched.Apply(evs)
}

// EventsOut returns the channel due events are emitted on. It is closed
// when Run returns.
func (m *Module) EventsOut() <-chan mir.EventList { return m.out }

// Run feeds EventsOut until ctx is cancelled, then stops every timer,
// closes EventsOut and returns nil. It may be called once.
func (m *Module) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("timer: Run called twice")
	}
	defer close(m.out)
	defer m.sched.Stop()
	for {
		select {
		case <-m.signal:
		case <-ctx.Done():
			return nil
		}
		m.mu.Lock()
		batch := m.queue
		m.queue = nil
		clear(m.queued)
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

// Stats returns the module's counters.
func (m *Module) Stats() ModuleStats {
	st := ModuleStats{Stats: m.sched.Stats()}
	m.mu.Lock()
	st.Coalesced = m.coalesced
	m.mu.Unlock()
	return st
}
