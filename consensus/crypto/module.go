package crypto

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Errors for requests the module cannot serve. Requests come from local
// modules, so these are bugs in the requester: ApplyEvents returns them
// (annotated with the event as a mir.EventError) and the node stops.
var (
	// ErrUnknownEvent: an event that is not a sign, verify or hash request.
	ErrUnknownEvent = errors.New("crypto: unknown event")
	// ErrInvalidRequest: a request with an invalid ReplyTo or an
	// unregistered Context.
	ErrInvalidRequest = errors.New("crypto: invalid request")
	// ErrNoKey: a SignRequest or VerifyRequest to a hash-only module.
	ErrNoKey = errors.New("crypto: module has no key or registry")
	// ErrStopped: ApplyEvents after Run returned.
	ErrStopped = errors.New("crypto: module stopped")
)

// Params are the module's tunables.
type Params struct {
	// Workers is the size of the worker pool; 0 means runtime.NumCPU().
	Workers int
	// QueueSize is the number of tasks waiting for a worker before
	// ApplyEvents blocks; 0 means 4 * Workers.
	QueueSize int
}

// DefaultParams returns a pool of runtime.NumCPU() workers.
func DefaultParams() Params {
	return Params{Workers: runtime.NumCPU(), QueueSize: 4 * runtime.NumCPU()}
}

// Chunk sizes: a request with many items is split into tasks of at least
// this many items so that several workers share it.
const (
	minVerifyChunk = 4
	minHashChunk   = 64
)

// Module is the crypto active module (mir.ActiveModule and mir.Runner). It
// serves events.SignRequest (with the node's key), events.VerifyRequest
// (against a Registry) and events.HashRequest (Digest of each entry) on a
// pool of worker goroutines, and sends each answer to the request's ReplyTo
// with its Context echoed, followed by the request event's follow-ups
// (Next), in one batch on EventsOut.
//
// Ordering: answers come back in any order relative to other requests (a
// later request may be answered first), but each answer is complete: a
// VerifyResult has one entry per item in item order and a HashResult one
// digest per entry in order, even when workers shared the work.
//
// Invalid signatures (malformed, wrong length, unknown signer, not
// verifying) are reported per item in VerifyResult with a reason; they never
// fail the module. Bad requests (see the Err variables) do.
//
// Backpressure: ApplyEvents blocks while QueueSize tasks wait for a worker,
// and returns ctx.Err() if ctx is cancelled meanwhile. Tasks still queued
// when Run returns are dropped (the node is stopping).
type Module struct {
	signer   *Signer   // nil for a hash-only module
	registry *Registry // nil for a hash-only module
	params   Params

	// tasks holds work waiting for a worker; never closed.
	tasks chan task
	out   chan mir.EventList
	// done is closed when Run returns.
	done chan struct{}
	// running is set once Run started.
	running atomic.Bool

	// Counters, only ever incremented (see ModuleStats).
	signed, verified, invalid, hashed atomic.Uint64
}

// task is one unit of work; it returns the events to emit (nil if another
// task of the same request will emit them).
type task func() (mir.EventList, error)

// NewModule returns a module that signs with self, verifies against
// registry and hashes.
func NewModule(self ic.PrivKey, registry *Registry, params Params) (*Module, error) {
	signer, err := NewSigner(self)
	if err != nil {
		return nil, err
	}
	if registry == nil {
		return nil, errors.New("crypto: nil registry")
	}
	return newModule(signer, registry, params)
}

// NewHashModule returns a module that only hashes (sign and verify requests
// fail with ErrNoKey), for a node that mounts the hasher separately.
func NewHashModule(params Params) (*Module, error) {
	return newModule(nil, nil, params)
}

func newModule(signer *Signer, registry *Registry, params Params) (*Module, error) {
	if params.Workers < 0 || params.QueueSize < 0 {
		return nil, fmt.Errorf("crypto: negative Workers (%d) or QueueSize (%d)", params.Workers, params.QueueSize)
	}
	if params.Workers == 0 {
		params.Workers = runtime.NumCPU()
	}
	if params.QueueSize == 0 {
		params.QueueSize = 4 * params.Workers
	}
	return &Module{
		signer:   signer,
		registry: registry,
		params:   params,
		tasks:    make(chan task, params.QueueSize),
		out:      make(chan mir.EventList, params.Workers),
		done:     make(chan struct{}),
	}, nil
}

// Params returns the module's effective parameters.
func (m *Module) Params() Params { return m.params }

// EventsOut returns the channel answers are emitted on. It is closed when
// Run returns.
func (m *Module) EventsOut() <-chan mir.EventList { return m.out }

// Run runs the worker pool until ctx is cancelled (it returns nil) or a
// worker fails (it returns the error). It may be called once.
func (m *Module) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("crypto: Run called twice")
	}
	defer close(m.out)
	defer close(m.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errCh := make(chan error, 1)
	var wg sync.WaitGroup
	for i := 0; i < m.params.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.work(ctx); err != nil {
				select {
				case errCh <- err:
				default:
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errCh:
		return err
	default:
		return nil
	}
}

func (m *Module) work(ctx context.Context) error {
	for {
		select {
		case t := <-m.tasks:
			evs, err := t()
			if err != nil {
				return err
			}
			if evs == nil {
				continue
			}
			select {
			case m.out <- evs:
			case <-ctx.Done():
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// ApplyEvents validates the requests and queues their work, blocking while
// the queue is full (see Module).
func (m *Module) ApplyEvents(ctx context.Context, evs mir.EventList) error {
	for i := range evs {
		ts, err := m.tasksFor(evs[i])
		if err != nil {
			return &mir.EventError{Event: evs[i], Err: err}
		}
		for _, t := range ts {
			select {
			case m.tasks <- t:
			case <-ctx.Done():
				return ctx.Err()
			case <-m.done:
				return ErrStopped
			}
		}
	}
	return nil
}

func checkReply(replyTo mir.ModuleID, reqCtx any) error {
	if !replyTo.Valid() {
		return fmt.Errorf("%w: ReplyTo %q", ErrInvalidRequest, replyTo)
	}
	if reqCtx != nil {
		if err := mir.CheckPayload(reqCtx); err != nil {
			return fmt.Errorf("%w: Context: %v", ErrInvalidRequest, err)
		}
	}
	return nil
}

// answer returns the result event followed by the request's follow-ups.
func answer(req mir.Event, dest mir.ModuleID, payload any) mir.EventList {
	evs := make(mir.EventList, 0, 1+len(req.Next))
	evs = append(evs, mir.NewEvent(dest, payload))
	return append(evs, req.Next...)
}

// chunks splits n items into ranges of at least least items, at most one
// per worker. It returns one empty range for n == 0.
func (m *Module) chunks(n, least int) [][2]int {
	size := max((n+m.params.Workers-1)/m.params.Workers, least)
	var rs [][2]int
	for lo := 0; lo < n; lo += size {
		rs = append(rs, [2]int{lo, min(lo+size, n)})
	}
	if len(rs) == 0 {
		rs = append(rs, [2]int{0, 0})
	}
	return rs
}

func (m *Module) tasksFor(ev mir.Event) ([]task, error) {
	switch req := ev.Payload.(type) {
	case events.SignRequest:
		if m.signer == nil {
			return nil, ErrNoKey
		}
		if err := checkReply(req.ReplyTo, req.Context); err != nil {
			return nil, err
		}
		return []task{func() (mir.EventList, error) {
			sig, err := m.signer.Sign(req.Data)
			if err != nil {
				return nil, err
			}
			m.signed.Add(1)
			return answer(ev, req.ReplyTo, events.SignResult{Signature: sig, Context: req.Context}), nil
		}}, nil

	case events.VerifyRequest:
		if m.registry == nil {
			return nil, ErrNoKey
		}
		if err := checkReply(req.ReplyTo, req.Context); err != nil {
			return nil, err
		}
		n := len(req.Items)
		valid := make([]bool, n)
		errs := make([]string, n)
		var remaining atomic.Int64
		remaining.Store(int64(n))
		var ts []task
		for _, r := range m.chunks(n, minVerifyChunk) {
			lo, hi := r[0], r[1]
			ts = append(ts, func() (mir.EventList, error) {
				bad := 0
				for i := lo; i < hi; i++ {
					it := req.Items[i]
					if err := m.registry.Verify(it.Signer, it.Data, it.Signature); err != nil {
						errs[i] = err.Error()
						bad++
					} else {
						valid[i] = true
					}
				}
				m.verified.Add(uint64(hi - lo))
				m.invalid.Add(uint64(bad))
				// The atomic decrement orders every chunk's writes before
				// the last chunk's reads.
				if remaining.Add(-int64(hi-lo)) != 0 {
					return nil, nil
				}
				allOK := true
				for _, v := range valid {
					allOK = allOK && v
				}
				return answer(ev, req.ReplyTo, events.VerifyResult{Valid: valid, Errors: errs, AllOK: allOK, Context: req.Context}), nil
			})
		}
		return ts, nil

	case events.HashRequest:
		if err := checkReply(req.ReplyTo, req.Context); err != nil {
			return nil, err
		}
		n := len(req.Data)
		digests := make([][]byte, n)
		var remaining atomic.Int64
		remaining.Store(int64(n))
		var ts []task
		for _, r := range m.chunks(n, minHashChunk) {
			lo, hi := r[0], r[1]
			ts = append(ts, func() (mir.EventList, error) {
				for i := lo; i < hi; i++ {
					digests[i] = Digest(req.Data[i])
				}
				m.hashed.Add(uint64(hi - lo))
				if remaining.Add(-int64(hi-lo)) != 0 {
					return nil, nil
				}
				return answer(ev, req.ReplyTo, events.HashResult{Digests: digests, Context: req.Context}), nil
			})
		}
		return ts, nil

	default:
		return nil, fmt.Errorf("%w: %s", ErrUnknownEvent, mir.PayloadName(ev.Payload))
	}
}

// ModuleStats are the module's counters.
type ModuleStats struct {
	Signed uint64
	// Verified counts verified items, valid or not; Invalid the invalid ones.
	Verified, Invalid uint64
	// Hashed counts digests computed.
	Hashed uint64
}

// Stats returns the module's counters.
func (m *Module) Stats() ModuleStats {
	return ModuleStats{Signed: m.signed.Load(), Verified: m.verified.Load(), Invalid: m.invalid.Load(), Hashed: m.hashed.Load()}
}
