package mir

// Event is the envelope every message between modules travels in.
//
// Events are values. Once emitted, an event and everything it references
// (payload, Next) must not be modified by anyone: the node hands the same
// values to the interceptor, which may encode them on another goroutine.
type Event struct {
	_ struct{} `cbor:",toarray"`
	// Src is the module that emitted the event. The node sets it on every
	// event it receives from a module; emitters leave it empty.
	Src ModuleID
	// Dest is the module (path) the event is for.
	Dest ModuleID
	// Payload is a value of a type registered with RegisterPayload.
	Payload any
	// Next holds follow-up events, released only after this event has been
	// processed: by the node once a passive module applied it, by an active
	// module itself (the WAL releases them once the event is durable).
	Next []Event
}

// EventList is a batch of events, processed in order.
type EventList = []Event

// NewEvent returns an event for dest carrying payload.
func NewEvent(dest ModuleID, payload any) Event {
	return Event{Dest: dest, Payload: payload}
}

// WithNext returns e with follow-up events appended to its Next.
func (e Event) WithNext(next ...Event) Event {
	n := make([]Event, 0, len(e.Next)+len(next))
	n = append(n, e.Next...)
	e.Next = append(n, next...)
	return e
}

// CountEvents returns the number of events in evs including all nested
// follow-ups.
func CountEvents(evs []Event) int {
	n := len(evs)
	for i := range evs {
		if len(evs[i].Next) > 0 {
			n += CountEvents(evs[i].Next)
		}
	}
	return n
}
