package wal

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// testEntry is a WAL entry; testNote a follow-up event payload.
type testEntry struct {
	_ struct{} `cbor:",toarray"`
	N uint64
	S string
}

type testNote struct {
	_ struct{} `cbor:",toarray"`
	N uint64
}

type unregistered struct{ N int }

func init() {
	mir.RegisterPayload(mir.TagBaseTest+300, testEntry{})
	mir.RegisterPayload(mir.TagBaseTest+301, testNote{})
}

// appendEvent is a WALAppend of testEntry{N: n} for owner, with a follow-up
// testNote{N: n} to "app".
func appendEvent(owner mir.ModuleID, n, ret uint64) mir.Event {
	return mir.NewEvent("wal", events.WALAppend{Owner: owner, Entry: testEntry{N: n, S: "entry"}, RetentionIndex: ret}).
		WithNext(mir.NewEvent("app", testNote{N: n}))
}

// runModule runs m until the returned stop function is called; stop returns
// Run's error.
func runModule(t *testing.T, m *Module) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- m.Run(ctx) }()
	return func() error {
		cancel()
		return recvOrFail(t, "Run to return", res)
	}
}

// recvEvents receives from m until it has n events.
func recvEvents(t *testing.T, m *Module, n int) mir.EventList {
	t.Helper()
	var got mir.EventList
	for len(got) < n {
		got = append(got, recvOrFail(t, "module output", m.EventsOut())...)
	}
	if len(got) != n {
		t.Fatalf("got %d events, want %d: %v", len(got), n, got)
	}
	return got
}

func assertRecovered(t *testing.T, evs mir.EventList, want map[mir.ModuleID][]events.WALEntry, owners []mir.ModuleID) {
	t.Helper()
	if len(evs) != len(owners) {
		t.Fatalf("%d events, want one WALRecovered per owner", len(evs))
	}
	for i, o := range owners {
		rec, ok := evs[i].Payload.(events.WALRecovered)
		if !ok || evs[i].Dest != o {
			t.Fatalf("event %d: %s for %s, want WALRecovered for %s", i, mir.PayloadName(evs[i].Payload), evs[i].Dest, o)
		}
		if len(rec.Entries) != len(want[o]) || (len(rec.Entries) > 0 && !reflect.DeepEqual(rec.Entries, want[o])) {
			t.Fatalf("WALRecovered for %s: %+v, want %+v", o, rec.Entries, want[o])
		}
	}
}

func TestModuleReleasesFollowUpsOnlyWhenDurable(t *testing.T) {
	g := newGate()
	p := DefaultParams()
	p.Log.syncFile = g.sync
	queued := make(chan int, 16)
	p.Log.queued = func(n int) { queued <- n }
	m, err := NewModule(t.TempDir(), p, []mir.ModuleID{"iss"})
	if err != nil {
		t.Fatal(err)
	}
	stop := runModule(t, m)
	assertRecovered(t, recvEvents(t, m, 1), nil, []mir.ModuleID{"iss"})
	g.arm()

	if err := m.ApplyEvents(context.Background(), mir.EventList{appendEvent("iss", 1, 0)}); err != nil {
		t.Fatal(err)
	}
	recvOrFail(t, "fsync of the first append", g.entered)
	// Queue more while the fsync is blocked; they form the next group.
	if err := m.ApplyEvents(context.Background(), mir.EventList{appendEvent("iss", 2, 0), appendEvent("iss", 3, 0)}); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 2; {
		n = recvOrFail(t, "the appends to queue", queued)
	}
	select {
	case evs := <-m.EventsOut():
		t.Fatalf("emitted %v before the entry was durable", evs)
	default:
	}
	g.release <- struct{}{}
	evs := recvEvents(t, m, 1)
	if n, ok := evs[0].Payload.(testNote); !ok || n.N != 1 || evs[0].Dest != "app" {
		t.Fatalf("got %v, want the follow-up of entry 1", evs)
	}
	recvOrFail(t, "fsync of the second group", g.entered)
	select {
	case evs := <-m.EventsOut():
		t.Fatalf("emitted %v before the entries were durable", evs)
	default:
	}
	close(g.release)
	evs = recvEvents(t, m, 2)
	for i, e := range evs {
		if n, ok := e.Payload.(testNote); !ok || n.N != uint64(i+2) {
			t.Fatalf("event %d: %v, want follow-up %d", i, e, i+2)
		}
	}
	if st := m.Stats(); st.Appends != 3 || st.Batches != 2 {
		t.Fatalf("stats %+v: want 3 appends in 2 groups", st)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestModuleOrderAndRecovery(t *testing.T) {
	dir := t.TempDir()
	owners := []mir.ModuleID{"iss", "checkpoint", "idle"}
	m, err := NewModule(dir, DefaultParams(), owners)
	if err != nil {
		t.Fatal(err)
	}
	stop := runModule(t, m)
	assertRecovered(t, recvEvents(t, m, 3), nil, owners)

	// One batch mixing appends for two owners, an Init and a truncation:
	// follow-ups come out in arrival order.
	batch := mir.EventList{
		appendEvent("iss", 1, 1),
		appendEvent("checkpoint", 2, 1),
		appendEvent("iss", 3, 2),
		mir.NewEvent("wal", events.Init{}).WithNext(mir.NewEvent("app", testNote{N: 4})),
		mir.NewEvent("wal", events.WALTruncate{RetentionIndex: 2}).WithNext(mir.NewEvent("app", testNote{N: 5})),
		appendEvent("checkpoint", 6, 1), // below the truncation, appended after it: kept
		appendEvent("iss", 7, 3),
		appendEvent("iss", 8, 3).WithNext(mir.NewEvent("app", testNote{N: 9})),
	}
	if err := m.ApplyEvents(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	evs := recvEvents(t, m, 9)
	for i, e := range evs {
		if n, ok := e.Payload.(testNote); !ok || n.N != uint64(i+1) {
			t.Fatalf("follow-up %d: %v, want note %d", i, e, i+1)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	entry := func(n, ret uint64) events.WALEntry {
		return events.WALEntry{RetentionIndex: ret, Entry: testEntry{N: n, S: "entry"}}
	}
	want := map[mir.ModuleID][]events.WALEntry{
		"iss":        {entry(3, 2), entry(7, 3), entry(8, 3)},
		"checkpoint": {entry(6, 1)},
	}
	m, err = NewModule(dir, DefaultParams(), owners)
	if err != nil {
		t.Fatal(err)
	}
	// The assembler can look at what each owner will get.
	for _, o := range owners {
		if got := m.Recovered(o); !reflect.DeepEqual(got, want[o]) {
			t.Fatalf("Recovered(%s) = %v, want %v", o, got, want[o])
		}
	}
	stop = runModule(t, m)
	assertRecovered(t, recvEvents(t, m, 3), want, owners)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// An entry whose owner is no longer configured is not dropped silently.
	if _, err := NewModule(dir, DefaultParams(), []mir.ModuleID{"iss"}); err == nil {
		t.Fatal("NewModule accepted a log with entries of an unknown owner")
	}
}

func TestModuleRejects(t *testing.T) {
	m, err := NewModule(t.TempDir(), DefaultParams(), []mir.ModuleID{"iss"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	ctx := context.Background()
	bad := []mir.Event{
		mir.NewEvent("wal", events.WALAppend{Owner: "stranger", Entry: testEntry{}}),
		mir.NewEvent("wal", events.WALAppend{Owner: "iss", Entry: unregistered{N: 1}}),
		mir.NewEvent("wal", events.WALAppend{Owner: "iss", Entry: nil}),
		mir.NewEvent("wal", testNote{}),
	}
	for _, e := range bad {
		if err := m.ApplyEvents(ctx, mir.EventList{e}); err == nil {
			t.Errorf("ApplyEvents accepted %#v", e.Payload)
		}
	}
	if _, err := NewModule(t.TempDir(), DefaultParams(), []mir.ModuleID{"iss", "iss"}); err == nil {
		t.Error("NewModule accepted a duplicate owner")
	}
}

func TestModuleWriteErrorStopsRun(t *testing.T) {
	g := newGate()
	p := DefaultParams()
	p.Log.syncFile = g.sync
	m, err := NewModule(t.TempDir(), p, []mir.ModuleID{"iss"})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	g.failWith(boom)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- m.Run(ctx) }()
	if err := m.ApplyEvents(ctx, mir.EventList{appendEvent("iss", 1, 0)}); err != nil {
		t.Fatal(err)
	}
	// Run may emit WALRecovered first; then it must fail, never emitting the
	// follow-up.
	for {
		select {
		case evs := <-m.EventsOut():
			for _, e := range evs {
				if _, ok := e.Payload.(events.WALRecovered); !ok {
					t.Fatalf("emitted %v although the append failed", e)
				}
			}
			continue
		case err := <-res:
			if !errors.Is(err, boom) {
				t.Fatalf("Run: %v, want the fsync error", err)
			}
		}
		break
	}
	if err := m.ApplyEvents(ctx, mir.EventList{appendEvent("iss", 2, 0)}); !errors.Is(err, boom) {
		t.Fatalf("ApplyEvents after the failure: %v", err)
	}
}

// app is a passive module for the node test: it counts the notes it gets and
// records their order.
type app struct {
	mu    sync.Mutex
	notes []uint64
	count atomic.Int64
	// recovered holds the WALRecovered it got.
	recovered []events.WALRecovered
	// changed is signalled (non-blocking) after every batch it applies.
	changed chan struct{}
}

// waitUntil waits, with a deadline, for cond to hold, re-checking it each
// time the app applied a batch.
func (a *app) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-a.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (a *app) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case testNote:
			a.notes = append(a.notes, p.N)
			a.count.Add(1)
		case events.WALRecovered:
			a.recovered = append(a.recovered, p)
		}
	}
	select {
	case a.changed <- struct{}{}:
	default:
	}
	return nil, nil
}

// TestModuleInNode runs the module in a mir.Node twice: entries appended in
// the first run come back in WALRecovered in the second.
func TestModuleInNode(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	run := func(inject bool) *app {
		m, err := NewModule(dir, DefaultParams(), []mir.ModuleID{"app"})
		if err != nil {
			t.Fatal(err)
		}
		a := &app{changed: make(chan struct{}, 1)}
		node, err := mir.NewNode("n0", mir.DefaultNodeParams(), map[mir.ModuleID]mir.Module{"wal": m, "app": a}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := make(chan error, 1)
		go func() { res <- node.Run(context.Background()) }()
		if inject {
			for i := uint64(1); i <= n; i++ {
				if err := node.InjectEvents(context.Background(), mir.EventList{appendEvent("app", i, i)}); err != nil {
					t.Fatal(err)
				}
			}
			a.waitUntil(t, "all follow-ups", func() bool { return a.count.Load() == n })
		} else {
			a.waitUntil(t, "WALRecovered", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return len(a.recovered) == 1 })
		}
		node.Stop()
		if err := recvOrFail(t, "node to stop", res); !errors.Is(err, mir.ErrStopped) {
			t.Fatalf("node: %v", err)
		}
		return a
	}
	a := run(true)
	if len(a.recovered) != 1 || len(a.recovered[0].Entries) != 0 {
		t.Fatalf("first run recovered %+v", a.recovered)
	}
	for i, got := range a.notes {
		if got != uint64(i+1) {
			t.Fatalf("note %d is %d: follow-ups out of order", i, got)
		}
	}
	a = run(false)
	if len(a.recovered) != 1 || len(a.recovered[0].Entries) != n {
		t.Fatalf("second run recovered %d WALRecovered events", len(a.recovered))
	}
	for i, e := range a.recovered[0].Entries {
		if te, ok := e.Entry.(testEntry); !ok || te.N != uint64(i+1) || e.RetentionIndex != uint64(i+1) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
}
