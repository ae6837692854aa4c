package mir_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// seenModule is a passive test module that reports every event it is applied
// to on a channel (test-only: real passive modules do no I/O).
type seenModule struct{ seen chan mir.Event }

func newSeen() *seenModule { return &seenModule{seen: make(chan mir.Event, 1<<12)} }

func (m *seenModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		if f, ok := e.Payload.(Fail); ok {
			if f.Panic {
				panic("boom")
			}
			return nil, errFail
		}
		m.seen <- e
		return nil, nil
	})
}

func (m *seenModule) next(t *testing.T) mir.Event {
	t.Helper()
	select {
	case e := <-m.seen:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("passive module saw nothing within 10s")
		return mir.Event{}
	}
}

func newNode(t *testing.T, mods map[mir.ModuleID]mir.Module, rec mir.Interceptor) *mir.Node {
	t.Helper()
	n, err := mir.NewNode("n0", mir.DefaultNodeParams(), mods, rec)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func inject(t *testing.T, n *mir.Node, evs ...mir.Event) {
	t.Helper()
	if err := n.InjectEvents(context.Background(), evs); err != nil {
		t.Fatalf("InjectEvents: %v", err)
	}
}

// TestNodeFollowUpsPassive: the node releases follow-ups once the passive
// module applied the parent, stamped with that module as source.
func TestNodeFollowUpsPassive(t *testing.T) {
	p, sink := newSeen(), newActive()
	n := newNode(t, map[mir.ModuleID]mir.Module{"p": p, "sink": sink}, nil)
	stop := startNode(t, n)
	inject(t, n, num("p", 1).WithNext(num("sink", 2)))
	got := receive(t, sink.got)
	select {
	case e := <-p.seen:
		if e.Payload != (Num{N: 1}) || e.Src != "" {
			t.Errorf("parent %+v", e)
		}
	default:
		t.Fatal("follow-up released before the passive module applied its parent")
	}
	if len(got) != 1 || got[0].Payload != (Num{N: 2}) || got[0].Src != "p" {
		t.Errorf("follow-up %+v, want Num 2 from p", got)
	}
	if err := stop(); !errors.Is(err, mir.ErrStopped) {
		t.Fatalf("Run = %v, want ErrStopped", err)
	}
}

// TestNodeFollowUpsActive: an event for an active module keeps its
// follow-ups; the node does not release them, the module does.
func TestNodeFollowUpsActive(t *testing.T) {
	p, wal := newSeen(), newActive()
	n := newNode(t, map[mir.ModuleID]mir.Module{"p": p, "wal": wal}, nil)
	stop := startNode(t, n)
	inject(t, n, num("wal", 1).WithNext(num("p", 2)))
	got := receive(t, wal.got)
	if len(got) != 1 || len(got[0].Next) != 1 || got[0].Next[0].Payload != (Num{N: 2}) {
		t.Fatalf("active module got %+v, want the event with its follow-up", got)
	}
	// Had the node released the follow-up, it would have been queued for p
	// before this marker, which is injected only now.
	inject(t, n, num("p", 3))
	if e := p.next(t); e.Payload != (Num{N: 3}) {
		t.Fatalf("p saw %+v before the marker: the node released an active module's follow-up", e)
	}
	wal.out <- got[0].Next // the module releases them itself
	if e := p.next(t); e.Payload != (Num{N: 2}) || e.Src != "wal" {
		t.Errorf("released follow-up %+v, want Num 2 from wal", e)
	}
	if err := stop(); !errors.Is(err, mir.ErrStopped) {
		t.Fatal(err)
	}
}

func TestNodeSrcStamping(t *testing.T) {
	p, act := newSeen(), newActive()
	rec := &recorder{}
	n := newNode(t, map[mir.ModuleID]mir.Module{"p": p, "act": act}, rec)
	stop := startNode(t, n)
	act.out <- mir.EventList{{Src: "forged", Dest: "p", Payload: Num{N: 1}}}
	if e := p.next(t); e.Src != "act" {
		t.Errorf("event from active module has Src %q, want act", e.Src)
	}
	inject(t, n, mir.Event{Src: "forged", Dest: "p", Payload: Num{N: 2}})
	if e := p.next(t); e.Src != "" {
		t.Errorf("injected event has Src %q, want empty", e.Src)
	}
	if err := stop(); !errors.Is(err, mir.ErrStopped) {
		t.Fatal(err)
	}
	var inbound []mir.ModuleID
	for _, r := range rec.records() {
		if r.kind == mir.RecordInbound {
			inbound = append(inbound, r.module)
		}
	}
	if len(inbound) != 2 || inbound[0] != "act" || inbound[1] != "" {
		t.Errorf("inbound records from %q, want [act, \"\"]", inbound)
	}
	if d := n.Stats().Dispatched; d != 2 {
		t.Errorf("Dispatched = %d, want 2", d)
	}
}

func TestNodeInjectRejects(t *testing.T) {
	p := newSeen()
	n := newNode(t, map[mir.ModuleID]mir.Module{"p": p}, nil)
	stop := startNode(t, n)
	ctx := context.Background()
	if err := n.InjectEvents(ctx, mir.EventList{num("nowhere", 1)}); !errors.Is(err, mir.ErrUnknownModule) {
		t.Errorf("inject to unknown module: %v", err)
	}
	if err := n.InjectEvents(ctx, mir.EventList{mir.NewEvent("p", unregistered{})}); !errors.Is(err, mir.ErrUnregisteredPayload) {
		t.Errorf("inject unregistered payload: %v", err)
	}
	// The node survived bad input.
	inject(t, n, num("p", 1))
	if e := p.next(t); e.Payload != (Num{N: 1}) {
		t.Errorf("saw %+v", e)
	}
	if err := stop(); !errors.Is(err, mir.ErrStopped) {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ { // select must not pick the free inbound slot
		if err := n.InjectEvents(ctx, mir.EventList{num("p", 2)}); !errors.Is(err, mir.ErrStopped) {
			t.Fatalf("InjectEvents after stop = %v, want ErrStopped", err)
		}
	}
	if err := n.Err(); !errors.Is(err, mir.ErrStopped) {
		t.Errorf("Err = %v", err)
	}
	if err := n.Run(ctx); err == nil || errors.Is(err, mir.ErrStopped) {
		t.Errorf("second Run = %v, want an error", err)
	}
}

func TestNodeInjectAfterStopBeforeRunReturns(t *testing.T) {
	n := newNode(t, map[mir.ModuleID]mir.Module{"p": newSeen()}, nil)
	n.Stop()
	if err := n.InjectEvents(context.Background(), mir.EventList{num("p", 1)}); !errors.Is(err, mir.ErrStopped) {
		t.Errorf("InjectEvents after Stop = %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, mir.ErrStopped) {
		t.Errorf("Run after Stop = %v", err)
	}
	select {
	case <-n.Done():
	default:
		t.Error("Done not closed after Run returned")
	}
}

func TestNodeContextCancel(t *testing.T) {
	n := newNode(t, map[mir.ModuleID]mir.Module{"p": newSeen()}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	inject(t, n, num("p", 1))
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, mir.ErrStopped) {
			t.Errorf("Run = %v, want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
}

// TestNodeModuleFailure: a failing or panicking module stops the node with a
// *ModuleError naming the module and, for batches, the event (ApplyEach).
func TestNodeModuleFailure(t *testing.T) {
	type failCase struct {
		name      string
		mods      func() map[mir.ModuleID]mir.Module
		trigger   mir.EventList
		module    mir.ModuleID
		eventDest mir.ModuleID // "" if the event cannot be known
		panics    bool
	}
	failing := func(ctx context.Context, evs mir.EventList) error { return errFail }
	panicking := func(ctx context.Context, evs mir.EventList) error { panic("boom") }
	cases := []failCase{
		{"passive error", func() map[mir.ModuleID]mir.Module { return map[mir.ModuleID]mir.Module{"p": newSeen()} },
			mir.EventList{num("p", 1), mir.NewEvent("p/x", Fail{}), num("p", 2)}, "p", "p/x", false},
		{"passive panic", func() map[mir.ModuleID]mir.Module { return map[mir.ModuleID]mir.Module{"p": newSeen()} },
			mir.EventList{num("p", 1), mir.NewEvent("p/y", Fail{Panic: true}), num("p", 2)}, "p", "p/y", true},
		{"active error", func() map[mir.ModuleID]mir.Module {
			a := newActive()
			a.onApply = failing
			return map[mir.ModuleID]mir.Module{"a": a}
		}, mir.EventList{num("a/z", 1)}, "a", "a/z", false},
		{"active panic", func() map[mir.ModuleID]mir.Module {
			a := newActive()
			a.onApply = panicking
			return map[mir.ModuleID]mir.Module{"a": a}
		}, mir.EventList{num("a/z", 1)}, "a", "a/z", true},
		{"runner error", func() map[mir.ModuleID]mir.Module {
			a := newActive()
			a.run = func(ctx context.Context) error { return errFail }
			return map[mir.ModuleID]mir.Module{"r": runnerMod{a}}
		}, nil, "r", "", false},
		{"runner panic", func() map[mir.ModuleID]mir.Module {
			a := newActive()
			a.run = func(ctx context.Context) error { panic("boom") }
			return map[mir.ModuleID]mir.Module{"r": runnerMod{a}}
		}, nil, "r", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.mods(), nil)
			errc := make(chan error, 1)
			go func() { errc <- n.Run(context.Background()) }()
			if tc.trigger != nil {
				inject(t, n, tc.trigger...)
			}
			var err error
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				n.Stop()
				<-errc
				t.Fatal("node did not stop on module failure")
			}
			var me *mir.ModuleError
			if !errors.As(err, &me) {
				t.Fatalf("Run = %v, want *ModuleError", err)
			}
			if me.Module != tc.module {
				t.Errorf("ModuleError names module %q, want %q", me.Module, tc.module)
			}
			if tc.eventDest != "" && (me.Event == nil || me.Event.Dest != tc.eventDest) {
				t.Errorf("ModuleError names event %+v, want the event for %q", me.Event, tc.eventDest)
			}
			if tc.panics != (me.Panic != nil) {
				t.Errorf("Panic = %v, want panic %v", me.Panic, tc.panics)
			}
			if !tc.panics && !errors.Is(err, errFail) {
				t.Errorf("%v does not wrap the module's error", err)
			}
			if err2 := n.Err(); err2 != err {
				t.Errorf("Err() = %v, want %v", err2, err)
			}
		})
	}
}

// TestNodeStopsActiveModules: when Run returns, the Run goroutines of active
// modules have returned (goleak checks the rest in TestMain).
func TestNodeStopsActiveModules(t *testing.T) {
	a := newActive()
	exited := make(chan struct{})
	started := make(chan struct{})
	a.run = func(ctx context.Context) error {
		defer close(exited)
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	// The module's ApplyEvents blocks until cancelled: stopping must not
	// wait for it to return on its own.
	a.onApply = func(ctx context.Context, evs mir.EventList) error {
		<-ctx.Done()
		return ctx.Err()
	}
	n := newNode(t, map[mir.ModuleID]mir.Module{"r": runnerMod{a}, "p": newSeen()}, nil)
	stop := startNode(t, n)
	<-started
	inject(t, n, num("r", 1))
	if err := stop(); !errors.Is(err, mir.ErrStopped) {
		t.Fatalf("Run = %v", err)
	}
	select {
	case <-exited:
	default:
		t.Fatal("Run returned before the active module's Run goroutine")
	}
}

func TestNewNodeRejects(t *testing.T) {
	p := newSeen()
	bad := []mir.NodeParams{
		{HighWatermark: 0, LowWatermark: 0},
		{HighWatermark: 10, LowWatermark: 10},
		{HighWatermark: 10, LowWatermark: -1},
	}
	for _, params := range bad {
		if _, err := mir.NewNode("n", params, map[mir.ModuleID]mir.Module{"p": p}, nil); err == nil {
			t.Errorf("NewNode(%+v) succeeded", params)
		}
	}
	if _, err := mir.NewNode("n", mir.DefaultNodeParams(), map[mir.ModuleID]mir.Module{"p": 42}, nil); err == nil {
		t.Error("NewNode accepted a non-module")
	}
	if _, err := mir.NewNode("n", mir.DefaultNodeParams(), map[mir.ModuleID]mir.Module{"p/q": p}, nil); err == nil {
		t.Error("NewNode accepted a path module ID")
	}
}

// TestNodeFlowControl floods a slow consumer from an active producer and
// checks that the node stops reading above the high watermark.
//
// Bound: the loop reads an inbound batch only while at most HighWatermark
// events are buffered (queued in the dispatcher or handed to active modules'
// feeders and not yet accepted), and re-checks after each batch, so buffered
// events never exceed HighWatermark + one batch. The events waiting in the
// inbound channel (InboundCapacity batches) and in forwarders (one batch each)
// are not buffered events but bounded too.
func TestNodeFlowControl(t *testing.T) {
	const (
		total     = 200_000
		batchSize = 100
		high, low = 1000, 500
	)
	prod := newActive()
	prod.out = make(chan mir.EventList)
	prod.run = func(ctx context.Context) error {
		for i := 0; i < total/batchSize; i++ {
			batch := make(mir.EventList, batchSize)
			for j := range batch {
				batch[j] = num("cons", int64(i*batchSize+j))
			}
			select {
			case prod.out <- batch:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	}
	gate, done := make(chan struct{}), make(chan struct{})
	var received atomic.Int64
	var next int64 // accessed only by the consumer's ApplyEvents
	var outOfOrder atomic.Bool
	cons := newActive()
	cons.onApply = func(ctx context.Context, evs mir.EventList) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, e := range evs {
			if e.Payload.(Num).N != next {
				outOfOrder.Store(true)
			}
			next++
		}
		if received.Add(int64(len(evs))) == total {
			close(done)
		}
		return nil
	}
	params := mir.NodeParams{HighWatermark: high, LowWatermark: low, InboundCapacity: 4}
	n, err := mir.NewNode("n0", params, map[mir.ModuleID]mir.Module{"prod": runnerMod{prod}, "cons": cons}, nil)
	if err != nil {
		t.Fatal(err)
	}
	paused := n.NextPause()
	stop := startNode(t, n)
	// The consumer blocks until the node has paused at least once.
	select {
	case <-paused:
	case <-time.After(20 * time.Second):
		t.Fatal("the node never paused reading")
	}
	if n.Stats().Pauses == 0 {
		t.Fatal("a pause was signalled but not counted")
	}
	close(gate)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("consumer got %d of %d events", received.Load(), total)
	}
	if err := stop(); !errors.Is(err, mir.ErrStopped) {
		t.Fatal(err)
	}
	st := n.Stats()
	t.Logf("stats: %+v", st)
	if st.MaxBuffered > high+batchSize {
		t.Errorf("MaxBuffered = %d, want <= HighWatermark + one batch = %d", st.MaxBuffered, high+batchSize)
	}
	if st.MaxBuffered <= high {
		t.Errorf("MaxBuffered = %d: flow control never engaged", st.MaxBuffered)
	}
	if outOfOrder.Load() {
		t.Error("the consumer received events out of order")
	}
	if st.Dispatched != total {
		t.Errorf("Dispatched = %d, want %d", st.Dispatched, total)
	}
}
