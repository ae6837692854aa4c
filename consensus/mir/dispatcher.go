package mir

import (
	"errors"
	"fmt"
	"sort"
)

// Dispatcher is the single-threaded core of the event loop: per-module FIFO
// queues, routing on the top-level module ID, deterministic dispatch to
// passive modules, release of follow-up events and interception. The Node
// drives it from its loop goroutine; the simulator drives it directly in
// virtual time. A Dispatcher is not safe for concurrent use.
type Dispatcher struct {
	// order lists all modules sorted by ID; dispatch rounds follow it.
	order []*queue
	// index maps a top-level module ID to its queue.
	index map[ModuleID]*queue
	// interceptor sees every batch; nil records nothing.
	interceptor Interceptor
	// pending is the number of events (top-level) waiting in all queues.
	pending int
	// dispatched counts events handed to modules since creation.
	dispatched uint64
	// lastDest and lastQueue cache the last successful lookup: lastQueue is
	// the queue lastDest routes to, or nil before the first lookup.
	lastDest  ModuleID
	lastQueue *queue
}

// queue holds the events waiting for one module.
type queue struct {
	id      ModuleID
	passive PassiveModule // nil for an active module
	// events waits for the module, in arrival order.
	events EventList
	// spare is a recycled backing array (only used without an interceptor,
	// which may retain batches).
	spare EventList
}

// ActiveBatch is a batch of events the dispatcher hands to an active module.
type ActiveBatch struct {
	Module ModuleID
	Events EventList
}

// NewDispatcher returns a dispatcher for the given passive modules and the
// IDs of the active modules (which the caller drives).
func NewDispatcher(passive map[ModuleID]PassiveModule, active []ModuleID, interceptor Interceptor) (*Dispatcher, error) {
	d := &Dispatcher{index: map[ModuleID]*queue{}, interceptor: interceptor}
	add := func(id ModuleID, p PassiveModule) error {
		if !id.Valid() || id.Top() != id {
			return fmt.Errorf("mir: module ID %q must be a single non-empty path element", id)
		}
		if _, dup := d.index[id]; dup {
			return fmt.Errorf("mir: module %q given twice", id)
		}
		q := &queue{id: id, passive: p}
		d.index[id] = q
		d.order = append(d.order, q)
		return nil
	}
	for id, p := range passive {
		if p == nil {
			return nil, fmt.Errorf("mir: passive module %q is nil", id)
		}
		if err := add(id, p); err != nil {
			return nil, err
		}
	}
	for _, id := range active {
		if err := add(id, nil); err != nil {
			return nil, err
		}
	}
	sort.Slice(d.order, func(i, j int) bool { return d.order[i].id < d.order[j].id })
	return d, nil
}

// Has reports whether the dispatcher knows the top-level module id.
func (d *Dispatcher) Has(id ModuleID) bool {
	_, ok := d.index[id.Top()]
	return ok
}

// Pending returns the number of events waiting in the dispatcher's queues.
func (d *Dispatcher) Pending() int { return d.pending }

// Dispatched returns the number of events dispatched so far.
func (d *Dispatcher) Dispatched() uint64 { return d.dispatched }

// HasWork reports whether any queue holds events.
func (d *Dispatcher) HasWork() bool { return d.pending > 0 }

// Enqueue accepts events entering from an active module (src) or from
// outside (src ""). It stamps Src on each event, records the batch and
// queues the events for their destinations. Enqueue takes ownership of the
// slice (it writes Src into it). If an event is addressed to an unknown
// module, Enqueue queues none of the events and returns an error wrapping
// ErrUnknownModule (a *ModuleError naming src when src is not empty).
func (d *Dispatcher) Enqueue(src ModuleID, events EventList) error {
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		events[i].Src = src
		if d.lookup(events[i].Dest) == nil {
			err := fmt.Errorf("%w %q (event %s from %q)", ErrUnknownModule, events[i].Dest, PayloadName(events[i].Payload), src)
			if src == "" {
				return err
			}
			ev := events[i]
			return &ModuleError{Module: src, Event: &ev, Batch: len(events), Err: err}
		}
	}
	if d.interceptor != nil {
		if err := d.interceptor.Intercept(RecordInbound, src, events); err != nil {
			return fmt.Errorf("mir: interceptor: %w", err)
		}
	}
	if i, err := d.routeRuns(events); err != nil {
		return fmt.Errorf("%w (event %d of an inbound batch): %w", errBrokenInvariant, i, err)
	}
	return nil
}

// errBrokenInvariant marks an error that cannot happen unless the
// dispatcher's code is wrong.
var errBrokenInvariant = errors.New("mir: broken dispatcher invariant")

// routeRuns queues evs, appending each run of consecutive events for the
// same module at once. On an unknown destination it returns the index of
// the event and an error wrapping ErrUnknownModule; the events before it
// are queued.
func (d *Dispatcher) routeRuns(evs EventList) (int, error) {
	for i := 0; i < len(evs); {
		q := d.lookup(evs[i].Dest)
		if q == nil {
			return i, fmt.Errorf("%w %q (event %s from %q)", ErrUnknownModule, evs[i].Dest, PayloadName(evs[i].Payload), evs[i].Src)
		}
		j := i + 1
		for j < len(evs) && (evs[j].Dest == d.lastDest || d.lookup(evs[j].Dest) == q) {
			j++
		}
		q.pushAll(evs[i:j])
		d.pending += j - i
		i = j
	}
	return len(evs), nil
}

// lookup returns the queue of the module dest is routed to, or nil. It
// caches the last destination looked up: consecutive events usually go to
// the same module, and comparing equal strings that share their bytes is
// cheaper than hashing them.
func (d *Dispatcher) lookup(dest ModuleID) *queue {
	if dest == d.lastDest && d.lastQueue != nil {
		return d.lastQueue
	}
	q := d.index[dest.Top()]
	if q != nil {
		d.lastDest, d.lastQueue = dest, q
	}
	return q
}

func (d *Dispatcher) route(e Event) error {
	q := d.lookup(e.Dest)
	if q == nil {
		return fmt.Errorf("%w %q (event %s from %q)", ErrUnknownModule, e.Dest, PayloadName(e.Payload), e.Src)
	}
	q.push(e)
	d.pending++
	return nil
}

// push appends e to the queue, reusing the spare backing array if the queue
// is empty.
func (q *queue) push(e Event) {
	if q.events == nil && q.spare != nil {
		q.events, q.spare = q.spare[:0], nil
	}
	q.events = append(q.events, e)
}

// pushAll appends evs to the queue (see push).
func (q *queue) pushAll(evs EventList) {
	if q.events == nil && q.spare != nil {
		q.events, q.spare = q.spare[:0], nil
	}
	q.events = append(q.events, evs...)
}

// Round dispatches, in module-ID order, the whole queue of every module that
// has events. Passive modules are applied at once; their outputs and the
// released follow-ups of their inputs are queued. Batches for active modules
// are returned for the caller to hand over. Round stops at the first error.
func (d *Dispatcher) Round() ([]ActiveBatch, error) {
	var active []ActiveBatch
	for _, q := range d.order {
		if len(q.events) == 0 {
			continue
		}
		batch := q.events
		q.events = nil
		d.pending -= len(batch)
		d.dispatched += uint64(len(batch))
		if d.interceptor != nil {
			if err := d.interceptor.Intercept(RecordDispatch, q.id, batch); err != nil {
				return active, fmt.Errorf("mir: interceptor: %w", err)
			}
		}
		if q.passive == nil {
			active = append(active, ActiveBatch{Module: q.id, Events: batch})
			continue
		}
		if err := d.applyPassive(q, batch); err != nil {
			return active, err
		}
		if d.interceptor == nil {
			clear(batch)
			q.spare = batch[:0]
		}
	}
	return active, nil
}

// applyPassive applies a batch to a passive module, then queues its outputs
// followed by the follow-ups of the batch's events, all stamped with the
// module as source (the order replay relies on).
func (d *Dispatcher) applyPassive(q *queue, batch EventList) error {
	out, err := safeApply(q, batch)
	if err != nil {
		return err
	}
	for i := range out {
		out[i].Src = q.id
	}
	if _, err := d.routeRuns(out); err != nil {
		return &ModuleError{Module: q.id, Batch: len(batch), Err: err}
	}
	for i := range batch {
		for _, f := range batch[i].Next {
			f.Src = q.id
			if err := d.route(f); err != nil {
				ev := batch[i]
				return &ModuleError{Module: q.id, Event: &ev, Batch: len(batch), Err: err}
			}
		}
	}
	return nil
}

// ExpectedOutputs returns what dispatching batch to a passive module with the
// given outputs queues, in queuing order: the outputs, then the follow-ups of
// the batch's events, all with Src set to module. Replay compares it with a
// recorded log.
func ExpectedOutputs(module ModuleID, batch, out EventList) EventList {
	res := make(EventList, 0, len(out))
	for _, e := range out {
		e.Src = module
		res = append(res, e)
	}
	for i := range batch {
		for _, f := range batch[i].Next {
			f.Src = module
			res = append(res, f)
		}
	}
	return res
}

func safeApply(q *queue, batch EventList) (out EventList, err error) {
	defer func() {
		if r := recover(); r != nil {
			me := &ModuleError{Module: q.id, Batch: len(batch), Panic: r}
			if ep, ok := r.(eventPanic); ok {
				ev := ep.event
				me.Event, me.Panic = &ev, ep.value
			} else if len(batch) == 1 {
				ev := batch[0]
				me.Event = &ev
			}
			me.Err = fmt.Errorf("panic: %v", me.Panic)
			out, err = nil, me
		}
	}()
	out, err = q.passive.ApplyEvents(batch)
	if err != nil {
		me := &ModuleError{Module: q.id, Batch: len(batch), Err: err}
		var ee *EventError
		if errors.As(err, &ee) {
			ev := ee.Event
			me.Event = &ev
		} else if len(batch) == 1 {
			ev := batch[0]
			me.Event = &ev
		}
		return nil, me
	}
	return out, nil
}
