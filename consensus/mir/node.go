package mir

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// NodeParams are the node's tunables.
type NodeParams struct {
	// HighWatermark: above this many buffered events the loop stops reading
	// the outputs of active modules. Buffered events are those queued in the
	// dispatcher plus those handed to active modules' feeders and not yet
	// accepted by their ApplyEvents. They never exceed HighWatermark plus the
	// size of one inbound batch, unless passive modules themselves produce
	// more events than they consume. In addition, up to InboundCapacity
	// batches wait in the inbound channel and each active module's forwarder
	// holds at most one batch.
	HighWatermark int
	// LowWatermark: the loop resumes reading once buffered events fall to
	// this number or below.
	LowWatermark int
	// InboundCapacity is the capacity of the channel active modules' outputs
	// enter through (in batches).
	InboundCapacity int
}

// DefaultNodeParams returns watermarks suitable for a validator.
func DefaultNodeParams() NodeParams {
	return NodeParams{HighWatermark: 100_000, LowWatermark: 50_000, InboundCapacity: 64}
}

// Node holds modules and runs the event loop.
type Node struct {
	id          NodeID
	params      NodeParams
	disp        *Dispatcher
	active      map[ModuleID]*activeRunner
	activeOrder []ModuleID

	// inbound carries batches from active modules and InjectEvents.
	inbound chan ActiveBatch
	// drained is signalled (non-blocking) when a feeder hands a batch over.
	drained chan struct{}
	// activeBuffered counts events queued for active modules and not yet
	// handed to them.
	activeBuffered atomic.Int64
	// maxBuffered is the largest number of buffered events seen.
	maxBuffered atomic.Int64
	// paused counts transitions into the paused (not reading) state.
	paused atomic.Int64
	// pauseMu guards nextPause, which NextPause made and the next pause
	// closes.
	pauseMu   sync.Mutex
	nextPause chan struct{}
	// dispatchedAtomic mirrors the dispatcher's count for Stats.
	dispatchedAtomic atomic.Uint64

	stopOnce sync.Once
	stopCh   chan struct{}
	// started is set by the first call of Run.
	started atomic.Bool
	// done is closed when Run has returned; err is valid from then on.
	done chan struct{}
	err  error
}

// activeRunner feeds one active module from a queue on its own goroutine.
type activeRunner struct {
	id  ModuleID
	mod ActiveModule
	mu  sync.Mutex
	// queue holds batches not yet handed to the module.
	queue  []EventList
	signal chan struct{}
}

// NewNode creates a node with the given modules. Each module must be a
// PassiveModule or an ActiveModule; IDs are single path elements.
func NewNode(id NodeID, params NodeParams, modules map[ModuleID]Module, interceptor Interceptor) (*Node, error) {
	if params.HighWatermark <= 0 || params.LowWatermark < 0 || params.LowWatermark >= params.HighWatermark {
		return nil, fmt.Errorf("mir: need 0 <= LowWatermark < HighWatermark, got %d and %d", params.LowWatermark, params.HighWatermark)
	}
	if params.InboundCapacity <= 0 {
		params.InboundCapacity = 1
	}
	passive := map[ModuleID]PassiveModule{}
	n := &Node{
		id:      id,
		params:  params,
		active:  map[ModuleID]*activeRunner{},
		inbound: make(chan ActiveBatch, params.InboundCapacity),
		drained: make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	for mid, m := range modules {
		switch mod := m.(type) {
		case PassiveModule:
			passive[mid] = mod
		case ActiveModule:
			n.active[mid] = &activeRunner{id: mid, mod: mod, signal: make(chan struct{}, 1)}
			n.activeOrder = append(n.activeOrder, mid)
		default:
			return nil, fmt.Errorf("mir: module %q (%T) is neither passive nor active", mid, m)
		}
	}
	sort.Slice(n.activeOrder, func(i, j int) bool { return n.activeOrder[i] < n.activeOrder[j] })
	disp, err := NewDispatcher(passive, n.activeOrder, interceptor)
	if err != nil {
		return nil, err
	}
	n.disp = disp
	return n, nil
}

// ID returns the node's ID.
func (n *Node) ID() NodeID { return n.id }

// Stats are counters of a running node.
type Stats struct {
	// Dispatched is the number of events handed to modules.
	Dispatched uint64
	// MaxBuffered is the largest number of buffered events the loop saw
	// (see NodeParams.HighWatermark).
	MaxBuffered int64
	// Pauses is the number of times the loop stopped reading inbound events.
	Pauses int64
}

// Stats returns the node's counters. Dispatched is exact only after Run returned.
func (n *Node) Stats() Stats {
	return Stats{MaxBuffered: n.maxBuffered.Load(), Pauses: n.paused.Load(), Dispatched: n.dispatchedAtomic.Load()}
}

// NextPause returns a channel closed the next time flow control stops the
// loop reading inbound events (Stats.Pauses counts them), for monitoring
// and tests.
func (n *Node) NextPause() <-chan struct{} {
	n.pauseMu.Lock()
	defer n.pauseMu.Unlock()
	if n.nextPause == nil {
		n.nextPause = make(chan struct{})
	}
	return n.nextPause
}

// InjectEvents feeds events into the node from outside (tests, clients). It
// validates the events (registered payloads, known destination modules),
// blocks while the node applies backpressure and returns ErrStopped once the
// node was stopped or Run returned. The events are copied; the caller keeps
// the slice. Events accepted before the node stops may never be dispatched.
func (n *Node) InjectEvents(ctx context.Context, events EventList) error {
	for _, e := range events {
		if err := CheckEvent(e); err != nil {
			return err
		}
		if !n.disp.Has(e.Dest) { // the index is read-only after NewNode
			return fmt.Errorf("%w %q (injected event %s)", ErrUnknownModule, e.Dest, PayloadName(e.Payload))
		}
	}
	if len(events) == 0 {
		return nil
	}
	// Check first: select picks at random among ready cases, and the inbound
	// channel may have room after the node stopped.
	select {
	case <-n.stopCh:
		return ErrStopped
	case <-n.done:
		return ErrStopped
	default:
	}
	batch := ActiveBatch{Events: append(EventList(nil), events...)}
	select {
	case n.inbound <- batch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopCh:
		return ErrStopped
	case <-n.done:
		return ErrStopped
	}
}

// Stop stops the node; Run returns ErrStopped (unless it already failed).
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopCh) })
}

// Done is closed when Run has returned.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns the error Run returned (valid once Done is closed).
func (n *Node) Err() error {
	<-n.done
	return n.err
}

// Run starts the active modules, runs the event loop until the node is
// stopped, ctx is cancelled or a module fails, then stops every goroutine it
// started and returns. It returns ErrStopped after Stop or cancellation, or
// the error that stopped the node. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("mir: Run called twice")
	}
	err := n.run(ctx)
	n.err = err
	close(n.done)
	return err
}

func (n *Node) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	// Every goroutine below sends at most one error: errCh never blocks.
	errCh := make(chan error, 2*len(n.active)+1)
	for _, id := range n.activeOrder {
		r := n.active[id]
		if runner, ok := r.mod.(Runner); ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := runModule(ctx, id, runner); err != nil {
					errCh <- err
				}
			}()
		}
		wg.Add(2)
		go func() { defer wg.Done(); n.forward(ctx, r) }()
		go func() {
			defer wg.Done()
			if err := n.feed(ctx, r); err != nil {
				errCh <- err
			}
		}()
	}
	err := n.loop(ctx, errCh)
	cancel()
	wg.Wait()
	return err
}

// runModule runs an active module's Run, turning a failure or a panic into a
// *ModuleError. It returns nil when Run ends because ctx was cancelled.
func runModule(ctx context.Context, id ModuleID, runner Runner) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ModuleError{Module: id, Panic: r, Err: fmt.Errorf("panic in Run: %v", r)}
		}
	}()
	if err := runner.Run(ctx); err != nil && ctx.Err() == nil {
		return &ModuleError{Module: id, Err: err}
	}
	return nil
}

// applyActive hands a batch to an active module, turning a panic into a
// *ModuleError.
func applyActive(ctx context.Context, r *activeRunner, batch EventList) (err error) {
	defer func() {
		if p := recover(); p != nil {
			me := &ModuleError{Module: r.id, Batch: len(batch), Panic: p, Err: fmt.Errorf("panic: %v", p)}
			if len(batch) == 1 {
				ev := batch[0]
				me.Event = &ev
			}
			err = me
		}
	}()
	if err := r.mod.ApplyEvents(ctx, batch); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		me := &ModuleError{Module: r.id, Batch: len(batch), Err: err}
		var ee *EventError
		if errors.As(err, &ee) {
			ev := ee.Event
			me.Event = &ev
		} else if len(batch) == 1 {
			ev := batch[0]
			me.Event = &ev
		}
		return me
	}
	return nil
}

// forward moves a module's outputs into the node's inbound channel. It blocks
// while the loop is not reading (flow control).
func (n *Node) forward(ctx context.Context, r *activeRunner) {
	out := r.mod.EventsOut()
	for {
		select {
		case evs, ok := <-out:
			if !ok {
				return
			}
			if len(evs) == 0 {
				continue
			}
			select {
			case n.inbound <- ActiveBatch{Module: r.id, Events: evs}:
			case <-ctx.Done():
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// feed hands batches queued by the loop to the module, in order.
func (n *Node) feed(ctx context.Context, r *activeRunner) error {
	for {
		select {
		case <-r.signal:
		case <-ctx.Done():
			return nil
		}
		for {
			r.mu.Lock()
			q := r.queue
			r.queue = nil
			r.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, batch := range q {
				if err := applyActive(ctx, r, batch); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
				n.activeBuffered.Add(-int64(len(batch)))
				select {
				case n.drained <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (n *Node) buffered() int64 {
	return int64(n.disp.Pending()) + n.activeBuffered.Load()
}

// loop is the event loop. Invariant: it reads inbound batches only while
// reading is true, and reading turns false as soon as more than HighWatermark
// events are buffered, so buffered events never exceed HighWatermark plus one
// inbound batch.
func (n *Node) loop(ctx context.Context, errCh chan error) error {
	reading := true
	for {
		reading = n.flowControl(reading)

		if n.disp.HasWork() {
			// Take what has arrived without blocking, then run a round.
			if reading {
				var err error
				if reading, err = n.pollInbound(); err != nil {
					return err
				}
			}
			select {
			case err := <-errCh:
				return err
			case <-n.stopCh:
				return ErrStopped
			case <-ctx.Done():
				return ErrStopped
			default:
			}
			if err := n.round(); err != nil {
				return err
			}
			continue
		}

		var in chan ActiveBatch
		if reading {
			in = n.inbound
		}
		select {
		case batch := <-in:
			if err := n.disp.Enqueue(batch.Module, batch.Events); err != nil {
				return err
			}
		case <-n.drained:
		case err := <-errCh:
			return err
		case <-n.stopCh:
			return ErrStopped
		case <-ctx.Done():
			return ErrStopped
		}
	}
}

// flowControl updates the statistics and returns whether the loop may read
// inbound batches: it stops above HighWatermark buffered events and resumes
// at LowWatermark or below.
func (n *Node) flowControl(reading bool) bool {
	b := n.buffered()
	if b > n.maxBuffered.Load() {
		n.maxBuffered.Store(b)
	}
	switch {
	case reading && b > int64(n.params.HighWatermark):
		n.paused.Add(1)
		n.pauseMu.Lock()
		if n.nextPause != nil {
			close(n.nextPause)
			n.nextPause = nil
		}
		n.pauseMu.Unlock()
		return false
	case !reading && b <= int64(n.params.LowWatermark):
		return true
	}
	return reading
}

// pollInbound enqueues at most a few waiting batches without blocking,
// applying flow control after each. It returns whether the loop may go on
// reading.
func (n *Node) pollInbound() (bool, error) {
	for i := 0; i < maxPollBatches; i++ {
		select {
		case batch := <-n.inbound:
			if err := n.disp.Enqueue(batch.Module, batch.Events); err != nil {
				return false, err
			}
			if !n.flowControl(true) {
				return false, nil
			}
		default:
			return true, nil
		}
	}
	return true, nil
}

// maxPollBatches bounds the inbound batches taken between two rounds, so that
// a flood of inbound events cannot starve dispatch.
const maxPollBatches = 8

func (n *Node) round() error {
	batches, err := n.disp.Round()
	for _, ab := range batches {
		r := n.active[ab.Module]
		n.activeBuffered.Add(int64(len(ab.Events)))
		r.mu.Lock()
		r.queue = append(r.queue, ab.Events)
		r.mu.Unlock()
		select {
		case r.signal <- struct{}{}:
		default:
		}
	}
	n.dispatchedAtomic.Store(n.disp.Dispatched())
	return err
}
