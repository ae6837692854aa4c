package mir

import "context"

// Module is either a PassiveModule or an ActiveModule.
type Module interface{}

// PassiveModule is a pure state machine. ApplyEvents processes a batch of
// events in order and returns the events they produce. A passive module must
// not start goroutines, read a clock, use global randomness, perform I/O or
// take locks, so that replaying its inputs reproduces its outputs exactly.
// It must not modify the events it is given, nor retain and later modify the
// events it returns. It may keep the Event values it is given, but not the
// slice holding them: the dispatcher reuses that slice once ApplyEvents has
// returned (unless an interceptor is installed).
type PassiveModule interface {
	ApplyEvents(events EventList) (EventList, error)
}

// ActiveModule owns goroutines and talks to the world (network, disk,
// timers, worker pools). The node hands it events with ApplyEvents (called
// from one goroutine per module, never concurrently) and reads what it emits
// from EventsOut. An active module releases the follow-ups (Next) of events it
// is given itself, by emitting them when their parent is done. A batch sent
// on EventsOut belongs to the node from then on: the node writes Src into it,
// so the module must not touch the slice again. The node does not reuse the
// batches it hands to ApplyEvents.
type ActiveModule interface {
	// ApplyEvents hands over events. It may block to apply backpressure but
	// must return once ctx is done.
	ApplyEvents(ctx context.Context, events EventList) error
	// EventsOut is the channel the module emits events on.
	EventsOut() <-chan EventList
}

// Runner is implemented by active modules that run goroutines of their own.
// The node calls Run once in its own goroutine when it starts, cancels ctx
// when it stops and waits for Run to return. A non-nil error other than
// ctx.Err() stops the node.
type Runner interface {
	Run(ctx context.Context) error
}

// Interceptor sees every event the node dispatches, in dispatch order, and
// every event entering the node from an active module or from outside, in
// arrival order. It is called on the event loop goroutine; it may retain the
// events (they are immutable) but must not block for long.
type Interceptor interface {
	Intercept(kind RecordKind, module ModuleID, events EventList) error
}

// RecordKind says what an intercepted batch is.
type RecordKind uint8

const (
	// RecordDispatch is a batch dispatched to the module named (top-level ID).
	RecordDispatch RecordKind = 1
	// RecordInbound is a batch that entered the node from the named active
	// module (or from outside, with an empty module).
	RecordInbound RecordKind = 2
)

// String returns "dispatch" or "inbound".
func (k RecordKind) String() string {
	switch k {
	case RecordDispatch:
		return "dispatch"
	case RecordInbound:
		return "inbound"
	default:
		return "unknown"
	}
}
