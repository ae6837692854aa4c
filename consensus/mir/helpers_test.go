package mir_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test payloads, registered with tags mir.TagBaseTest+0 .. +99 (the range
// reserved for the mir package's tests).
type (
	// Num is a numbered test event.
	Num struct {
		_ struct{} `cbor:",toarray"`
		N int64
	}
	// Text carries strings and bytes.
	Text struct {
		_ struct{} `cbor:",toarray"`
		S string
		B []byte
	}
	// Nested carries a payload and events inside a payload.
	Nested struct {
		_      struct{} `cbor:",toarray"`
		Inner  any
		Events []mir.Event
		Tags   map[string]uint64
	}
	// Fail makes the test modules return an error (Panic false) or panic.
	Fail struct {
		_     struct{} `cbor:",toarray"`
		Panic bool
	}
)

func init() {
	mir.RegisterPayload(mir.TagBaseTest+0, Num{})
	mir.RegisterPayload(mir.TagBaseTest+1, Text{})
	mir.RegisterPayload(mir.TagBaseTest+2, Nested{})
	mir.RegisterPayload(mir.TagBaseTest+3, Fail{})
}

var errFail = errors.New("test module failure")

// funcModule is a passive module whose behaviour is a function of one event,
// applied through mir.ApplyEach. A Fail payload makes it fail or panic.
type funcModule struct {
	apply func(mir.Event) mir.EventList
	// batches records the sizes of the batches it was given.
	batches []int
}

func (m *funcModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	m.batches = append(m.batches, len(evs))
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		if f, ok := e.Payload.(Fail); ok {
			if f.Panic {
				panic("boom")
			}
			return nil, errFail
		}
		if m.apply == nil {
			return nil, nil
		}
		return m.apply(e), nil
	})
}

// recorder is an Interceptor that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

type record struct {
	kind   mir.RecordKind
	module mir.ModuleID
	events mir.EventList
}

func (r *recorder) Intercept(kind mir.RecordKind, module mir.ModuleID, evs mir.EventList) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, record{kind, module, evs})
	return nil
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// activeMod is an active module for tests: what the node hands it goes to
// onApply (or to the got channel), and the test emits events on out.
type activeMod struct {
	out     chan mir.EventList
	got     chan mir.EventList
	onApply func(ctx context.Context, evs mir.EventList) error
	// run, if set, is the module's Run.
	run func(ctx context.Context) error
}

func newActive() *activeMod {
	return &activeMod{out: make(chan mir.EventList, 16), got: make(chan mir.EventList, 1024)}
}

func (a *activeMod) ApplyEvents(ctx context.Context, evs mir.EventList) error {
	if a.onApply != nil {
		return a.onApply(ctx, evs)
	}
	select {
	case a.got <- evs:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *activeMod) EventsOut() <-chan mir.EventList { return a.out }

// runnerMod is an activeMod that also implements mir.Runner.
type runnerMod struct{ *activeMod }

func (r runnerMod) Run(ctx context.Context) error { return r.run(ctx) }

// startNode runs n on a goroutine and returns a function that stops it and
// returns Run's result.
func startNode(t *testing.T, n *mir.Node) (stop func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- n.Run(context.Background()) }()
	return func() error {
		n.Stop()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("node did not stop within 10s")
			return nil
		}
	}
}

// receive waits for the next batch on ch, failing the test after a deadline.
func receive(t *testing.T, ch <-chan mir.EventList) mir.EventList {
	t.Helper()
	select {
	case evs := <-ch:
		return evs
	case <-time.After(10 * time.Second):
		t.Fatal("no events within 10s")
		return nil
	}
}

func num(dest mir.ModuleID, n int64) mir.Event { return mir.NewEvent(dest, Num{N: n}) }
