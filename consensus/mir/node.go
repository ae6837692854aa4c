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
	// the outputs of active modules.
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
	// dispatchedAtomic mirrors the dispatcher's count for Stats.
	dispatchedAtomic atomic.Uint64

	stopOnce sync.Once
	stopCh   chan struct{}
	runOnce  sync.Once
	done     chan struct{}
	err      error
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
	Dispatched  uint64
	MaxBuffered int64
	Pauses      int64
}

// Stats returns the node's counters. Dispatched is exact only after Run returned.
func (n *Node) Stats() Stats {
	return Stats{MaxBuffered: n.maxBuffered.Load(), Pauses: n.paused.Load(), Dispatched: n.dispatchedAtomic.Load()}
}

// InjectEvents feeds events into the node from outside (tests, clients). It
// blocks while the node applies backpressure and fails once it stopped.
func (n *Node) InjectEvents(ctx context.Context, events EventList) error {
	for _, e := range events {
		if err := CheckEvent(e); err != nil {
			return err
		}
	}
	select {
	case n.inbound <- ActiveBatch{Events: events}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
	err := errors.New("mir: Run called twice")
	n.runOnce.Do(func() {
		err = n.run(ctx)
		n.err = err
		close(n.done)
	})
	return err
}

func (n *Node) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	errCh := make(chan error, 2*len(n.active)+1)
	for _, id := range n.activeOrder {
		r := n.active[id]
		if runner, ok := r.mod.(Runner); ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := runner.Run(ctx); err != nil && ctx.Err() == nil {
					errCh <- fmt.Errorf("module %s: %w", id, err)
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
				if err := r.mod.ApplyEvents(ctx, batch); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return &ModuleError{Module: r.id, Batch: len(batch), Err: err}
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

func (n *Node) loop(ctx context.Context, errCh chan error) error {
	reading := true
	for {
		// Flow control.
		b := n.buffered()
		if b > n.maxBuffered.Load() {
			n.maxBuffered.Store(b)
		}
		if reading && b >= int64(n.params.HighWatermark) {
			reading = false
			n.paused.Add(1)
		} else if !reading && b <= int64(n.params.LowWatermark) {
			reading = true
		}

		if n.disp.HasWork() {
			// Take what has arrived without blocking, then run a round.
			if reading {
				if err := n.pollInbound(); err != nil {
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

// pollInbound enqueues at most a few waiting batches without blocking.
func (n *Node) pollInbound() error {
	for i := 0; i < 8; i++ {
		select {
		case batch := <-n.inbound:
			if err := n.disp.Enqueue(batch.Module, batch.Events); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

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
