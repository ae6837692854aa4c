package mir

import (
	"errors"
	"fmt"
)

// ErrStopped is returned by Run when the node was stopped by Stop or by the
// cancellation of its context.
var ErrStopped = errors.New("mir: node stopped")

// ErrUnknownModule is returned when an event is addressed to a module the
// node does not have.
var ErrUnknownModule = errors.New("mir: unknown module")

// ModuleError is the error a node stops with when a module fails: it names the
// module and the event being processed.
type ModuleError struct {
	Module ModuleID
	// Event is the event being processed when the module failed, if known.
	Event *Event
	// Batch is the number of events in the batch being processed.
	Batch int
	// Panic holds the recovered value if the module panicked.
	Panic any
	Err   error
}

// Error describes the failure.
func (e *ModuleError) Error() string {
	what := "failed"
	if e.Panic != nil {
		what = "panicked"
	}
	ev := fmt.Sprintf("a batch of %d events", e.Batch)
	if e.Event != nil {
		ev = fmt.Sprintf("event %s for %s", PayloadName(e.Event.Payload), e.Event.Dest)
	}
	if e.Panic != nil {
		return fmt.Sprintf("module %s %s on %s: %v", e.Module, what, ev, e.Panic)
	}
	return fmt.Sprintf("module %s %s on %s: %v", e.Module, what, ev, e.Err)
}

// Unwrap returns the module's error.
func (e *ModuleError) Unwrap() error { return e.Err }

// EventError annotates an error with the event that caused it. ApplyEach
// produces it; the node uses it to name the event in a ModuleError.
type EventError struct {
	Event Event
	Err   error
}

// Error describes the failure.
func (e *EventError) Error() string {
	return fmt.Sprintf("event %s for %s: %v", PayloadName(e.Event.Payload), e.Event.Dest, e.Err)
}

// Unwrap returns the underlying error.
func (e *EventError) Unwrap() error { return e.Err }

// eventPanic carries a panic raised while applying one event out of ApplyEach.
type eventPanic struct {
	event Event
	value any
}

// ApplyEach is the usual body of a passive module's ApplyEvents: it applies
// apply to each event in order and concatenates the outputs. Errors are
// annotated with the event (EventError) unless apply already returned an
// EventError (from a submodule's ApplyEach), which is kept so that the
// innermost event is named; a panic is likewise re-raised carrying the
// innermost event so that the node can name it.
func ApplyEach(events EventList, apply func(Event) (EventList, error)) (out EventList, err error) {
	var cur *Event
	defer func() {
		if r := recover(); r != nil {
			if cur == nil {
				panic(r)
			}
			if ep, ok := r.(eventPanic); ok {
				panic(ep)
			}
			panic(eventPanic{event: *cur, value: r})
		}
	}()
	for i := range events {
		cur = &events[i]
		evs, err := apply(events[i])
		if err != nil {
			var ee *EventError
			if errors.As(err, &ee) {
				return nil, err
			}
			return nil, &EventError{Event: events[i], Err: err}
		}
		out = append(out, evs...)
	}
	return out, nil
}
