package timer

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Errors returned for requests the timer cannot accept. Requests come from
// local protocol modules, never from peers, so a bad request is a bug in the
// requester: the module returns the error (annotated with the event as a
// mir.EventError) and the node stops with it.
var (
	// ErrInvalidDelay: a TimerDelay with a negative After.
	ErrInvalidDelay = errors.New("timer: negative delay")
	// ErrInvalidPeriod: a TimerRepeat with a zero or negative Period.
	ErrInvalidPeriod = errors.New("timer: period must be positive")
	// ErrInvalidEvents: a request whose Events fail mir.CheckEvent.
	ErrInvalidEvents = errors.New("timer: invalid events in request")
	// ErrUnknownEvent: an event whose payload is not a timer request.
	ErrUnknownEvent = errors.New("timer: unknown event")
	// ErrStopped: a request given after Stop.
	ErrStopped = errors.New("timer: stopped")
)

// EmitFunc receives events that are due. id names the request they come
// from (the same id on every firing of a repeat), or is 0 for events emitted
// at once (zero delays and released follow-ups). It is called with the
// Scheduler's lock held, on the goroutine of ApplyEvents or of the clock:
// it must return quickly and must not call the Scheduler.
type EmitFunc func(id uint64, evs mir.EventList)

// Stats are the counters of a Scheduler.
type Stats struct {
	// Pending is the number of delays and repeats waiting.
	Pending int
	// Fired counts firings of delays and repeats.
	Fired uint64
	// Cancelled counts delays and repeats removed by garbage collection.
	Cancelled uint64
	// Stale counts requests dropped because their retention index was
	// already garbage-collected when they arrived.
	Stale uint64
	// SkippedTicks counts repeat periods skipped because the clock had
	// moved past them (a real clock falling behind; never a virtual one).
	SkippedTicks uint64
}

// Scheduler holds the pending timers of one node and fires them on a Clock.
// It has no goroutine of its own; it is safe for concurrent use.
//
// Semantics:
//   - TimerDelay emits Events once After has passed; After == 0 emits them
//     at once, during Apply, in request order; After < 0 is ErrInvalidDelay.
//   - TimerRepeat emits Events every Period (first at Now+Period) until
//     garbage-collected or the scheduler stops; Period <= 0 is
//     ErrInvalidPeriod.
//   - TimerGarbageCollect{R} cancels every pending delay and repeat with a
//     retention index below R. The scheduler remembers the highest R seen
//     and drops later requests with a retention index below it (they would
//     have been cancelled had they come earlier); they are counted as Stale.
//   - Firings due at the same instant come in the order their clock timers
//     were armed; a repeat re-arms its timer at each firing.
//   - Requests with no Events schedule nothing.
//   - The follow-ups (Next) of a request event are emitted once the request
//     is accepted, right after any events it emits at once.
//
// Once Stop returns, nothing is emitted any more.
type Scheduler struct {
	clock Clock
	emit  EmitFunc

	// mu guards the fields below and is held while emit runs.
	mu sync.Mutex
	// entries holds every pending delay and repeat by id.
	entries map[uint64]*entry
	// nextID is the id of the next request; ids start at 1 (0 means "at once").
	nextID uint64
	// gcIndex is the highest retention index garbage-collected so far.
	gcIndex uint64
	// stopped is set by Stop and never cleared.
	stopped bool
	stats   Stats
}

// entry is one pending delay or repeat.
type entry struct {
	id        uint64
	retention uint64
	events    mir.EventList
	// period is zero for a delay.
	period time.Duration
	// next is the deadline of the next firing.
	next time.Time
	// timer is the clock timer of the next firing.
	timer Timer
}

// NewScheduler returns a scheduler on clock that hands due events to emit.
func NewScheduler(clock Clock, emit EmitFunc) *Scheduler {
	return &Scheduler{clock: clock, emit: emit, entries: map[uint64]*entry{}, nextID: 1}
}

// Apply handles a batch of timer requests in order. It stops at the first
// bad request and returns its error wrapped in a mir.EventError.
func (s *Scheduler) Apply(evs mir.EventList) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		if s.stopped {
			return ErrStopped
		}
		if err := s.applyOne(evs[i]); err != nil {
			return &mir.EventError{Event: evs[i], Err: err}
		}
		if len(evs[i].Next) > 0 {
			s.emit(0, evs[i].Next)
		}
	}
	return nil
}

func (s *Scheduler) applyOne(ev mir.Event) error {
	switch req := ev.Payload.(type) {
	case events.TimerDelay:
		if req.After < 0 {
			return fmt.Errorf("%w: %v", ErrInvalidDelay, req.After)
		}
		if err := checkEvents(req.Events); err != nil {
			return err
		}
		if len(req.Events) == 0 {
			return nil
		}
		if req.RetentionIndex < s.gcIndex {
			s.stats.Stale++
			return nil
		}
		if req.After == 0 {
			s.emit(0, req.Events)
			return nil
		}
		s.schedule(&entry{retention: req.RetentionIndex, events: req.Events}, req.After)
	case events.TimerRepeat:
		if req.Period <= 0 {
			return fmt.Errorf("%w: %v", ErrInvalidPeriod, req.Period)
		}
		if err := checkEvents(req.Events); err != nil {
			return err
		}
		if len(req.Events) == 0 {
			return nil
		}
		if req.RetentionIndex < s.gcIndex {
			s.stats.Stale++
			return nil
		}
		s.schedule(&entry{retention: req.RetentionIndex, events: req.Events, period: req.Period}, req.Period)
	case events.TimerGarbageCollect:
		s.collect(req.RetentionIndex)
	default:
		return fmt.Errorf("%w: %s", ErrUnknownEvent, mir.PayloadName(ev.Payload))
	}
	return nil
}

func checkEvents(evs mir.EventList) error {
	for i := range evs {
		if err := mir.CheckEvent(evs[i]); err != nil {
			return fmt.Errorf("%w: event %d: %v", ErrInvalidEvents, i, err)
		}
	}
	return nil
}

// schedule registers e and arms its first firing after d. s.mu is held.
func (s *Scheduler) schedule(e *entry, d time.Duration) {
	e.id = s.nextID
	s.nextID++
	e.next = s.clock.Now().Add(d)
	s.entries[e.id] = e
	e.timer = s.clock.AfterFunc(d, func() { s.fire(e) })
}

// fire runs on the clock's goroutine when e is due.
func (s *Scheduler) fire(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.entries[e.id] != e {
		return // cancelled while the clock was calling us
	}
	s.stats.Fired++
	s.emit(e.id, e.events)
	if e.period == 0 {
		delete(s.entries, e.id)
		return
	}
	now := s.clock.Now()
	e.next = e.next.Add(e.period)
	if !e.next.After(now) {
		missed := now.Sub(e.next)/e.period + 1
		s.stats.SkippedTicks += uint64(missed)
		e.next = e.next.Add(missed * e.period)
	}
	e.timer = s.clock.AfterFunc(e.next.Sub(now), func() { s.fire(e) })
}

// collect cancels the entries below retention. s.mu is held.
func (s *Scheduler) collect(retention uint64) {
	if retention > s.gcIndex {
		s.gcIndex = retention
	}
	for id, e := range s.entries {
		if e.retention < retention {
			e.timer.Stop()
			delete(s.entries, id)
			s.stats.Cancelled++
		}
	}
}

// Stop cancels every pending timer. Nothing is emitted after Stop returns,
// and later requests fail with ErrStopped. Stop is idempotent.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for id, e := range s.entries {
		e.timer.Stop()
		delete(s.entries, id)
	}
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Pending = len(s.entries)
	return st
}
