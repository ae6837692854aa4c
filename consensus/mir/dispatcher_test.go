package mir_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// traceModule records, in a log shared by all modules of a test, every event
// it is applied to, and forwards Num events with N > 0 to next with N-1.
type traceModule struct {
	id   mir.ModuleID
	next mir.ModuleID
	log  *[]string
	// batches records every batch this module was given.
	batches []mir.EventList
}

func (m *traceModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	m.batches = append(m.batches, append(mir.EventList(nil), evs...))
	var out mir.EventList
	for _, e := range evs {
		n := e.Payload.(Num).N
		*m.log = append(*m.log, fmt.Sprintf("%s:%d<%s", m.id, n, e.Src))
		if n > 0 && m.next != "" {
			out = append(out, num(m.next, n-1))
		}
	}
	return out, nil
}

func newTraceDispatcher(t *testing.T, log *[]string, rec mir.Interceptor) (*mir.Dispatcher, map[mir.ModuleID]*traceModule) {
	t.Helper()
	mods := map[mir.ModuleID]*traceModule{
		"c": {id: "c", next: "a", log: log},
		"a": {id: "a", next: "b", log: log},
		"b": {id: "b", next: "c", log: log},
	}
	passive := map[mir.ModuleID]mir.PassiveModule{}
	for id, m := range mods {
		passive[id] = m
	}
	d, err := mir.NewDispatcher(passive, []mir.ModuleID{"z"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	return d, mods
}

func drain(t *testing.T, d *mir.Dispatcher) []mir.ActiveBatch {
	t.Helper()
	var active []mir.ActiveBatch
	for rounds := 0; d.HasWork(); rounds++ {
		if rounds > 1000 {
			t.Fatal("dispatcher does not converge")
		}
		ab, err := d.Round()
		if err != nil {
			t.Fatal(err)
		}
		active = append(active, ab...)
	}
	return active
}

func TestDispatchOrderSortedByModuleID(t *testing.T) {
	var log []string
	d, mods := newTraceDispatcher(t, &log, nil)
	// Arrival order c, b, a; dispatch order must be a, b, c within a round,
	// each module receiving its events in arrival order as one batch.
	if err := d.Enqueue("z", mir.EventList{num("c", 0), num("b", 0), num("a", 0), num("c", 0)}); err != nil {
		t.Fatal(err)
	}
	if d.Pending() != 4 {
		t.Fatalf("Pending = %d, want 4", d.Pending())
	}
	if _, err := d.Round(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:0<z", "b:0<z", "c:0<z", "c:0<z"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("dispatch order %v, want %v", log, want)
	}
	if got := len(mods["c"].batches); got != 1 || len(mods["c"].batches[0]) != 2 {
		t.Errorf("module c got batches %v, want one batch of 2", mods["c"].batches)
	}
	if d.HasWork() || d.Pending() != 0 || d.Dispatched() != 4 {
		t.Errorf("after round: HasWork %v Pending %d Dispatched %d", d.HasWork(), d.Pending(), d.Dispatched())
	}
}

func TestDispatchOutputsWithinRound(t *testing.T) {
	var log []string
	d, _ := newTraceDispatcher(t, &log, nil)
	// a -> b -> c -> a: an output for a later module in the order is
	// dispatched in the same round, one for an earlier module in the next.
	if err := d.Enqueue("z", mir.EventList{num("a", 3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Round(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a:3<z", "b:2<a", "c:1<b"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("round 1: %v, want %v", log, want)
	}
	if _, err := d.Round(); err != nil {
		t.Fatal(err)
	}
	want = append(want, "a:0<c")
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("round 2: %v, want %v", log, want)
	}
}

// TestDispatchDeterministic runs the same input many times (each run builds
// its modules from a map, whose iteration order Go randomizes) and compares
// the intercepted records.
func TestDispatchDeterministic(t *testing.T) {
	run := func() (string, []string) {
		var log []string
		rec := &recorder{}
		d, _ := newTraceDispatcher(t, &log, rec)
		for i := int64(0); i < 5; i++ {
			if err := d.Enqueue("z", mir.EventList{num("c", i), num("a", 2*i), num("b", i+1).WithNext(num("a", 1))}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Round(); err != nil {
				t.Fatal(err)
			}
		}
		drain(t, d)
		return fmt.Sprint(rec.records()), log
	}
	firstRecs, firstLog := run()
	for i := 0; i < 20; i++ {
		recs, log := run()
		if recs != firstRecs || !reflect.DeepEqual(log, firstLog) {
			t.Fatalf("run %d differs:\n%v\n%v", i, log, firstLog)
		}
	}
}

// TestFollowUpsAfterParent: follow-ups are queued only after their parent was
// applied, after the module's outputs, stamped with the module as source.
func TestFollowUpsAfterParent(t *testing.T) {
	var log []string
	d, _ := newTraceDispatcher(t, &log, nil)
	// The parent goes to b; its follow-up to a, which comes before b in
	// dispatch order: it must not be dispatched before b applied the parent.
	parent := num("b", 1).WithNext(num("a", 0), num("z", 7))
	if err := d.Enqueue("z", mir.EventList{parent}); err != nil {
		t.Fatal(err)
	}
	active := drain(t, d)
	want := []string{"b:1<z", "c:0<b", "a:0<b"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("log %v, want %v", log, want)
	}
	if len(active) != 1 || active[0].Module != "z" || len(active[0].Events) != 1 {
		t.Fatalf("active batches %v", active)
	}
	if got := active[0].Events[0]; got.Src != "b" || got.Payload != (Num{N: 7}) {
		t.Errorf("follow-up for active module: %+v", got)
	}
}

// TestExpectedOutputs compares what the dispatcher queues after applying a
// batch with ExpectedOutputs, which replay relies on.
func TestExpectedOutputs(t *testing.T) {
	echo := &funcModule{apply: func(e mir.Event) mir.EventList {
		return mir.EventList{num("sink", e.Payload.(Num).N*10), num("sink", e.Payload.(Num).N*10+1)}
	}}
	d, err := mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{"echo": echo}, []mir.ModuleID{"sink"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := mir.EventList{
		num("echo", 1).WithNext(num("sink", 100)),
		num("echo", 2),
		num("echo", 3).WithNext(num("sink", 300), num("sink", 301)),
	}
	if err := d.Enqueue("sink", batch); err != nil {
		t.Fatal(err)
	}
	active, err := d.Round()
	if err != nil {
		t.Fatal(err)
	}
	out := mir.EventList{num("sink", 10), num("sink", 11), num("sink", 20), num("sink", 21), num("sink", 30), num("sink", 31)}
	want := mir.ExpectedOutputs("echo", batch, out)
	if len(active) != 1 || !reflect.DeepEqual(active[0].Events, want) {
		t.Fatalf("queued %v, want %v", active, want)
	}
	for i, e := range want {
		if e.Src != "echo" {
			t.Errorf("expected output %d has Src %q", i, e.Src)
		}
	}
	if got := len(want); got != 9 {
		t.Errorf("len = %d, want 6 outputs + 3 follow-ups", got)
	}
	if n := want[6].Payload.(Num).N; n != 100 {
		t.Errorf("first follow-up %d, want 100 (outputs first, then follow-ups in batch order)", n)
	}
}

func TestSrcStamping(t *testing.T) {
	var log []string
	rec := &recorder{}
	d, _ := newTraceDispatcher(t, &log, rec)
	in := mir.EventList{{Src: "forged", Dest: "a", Payload: Num{N: 1}}}
	if err := d.Enqueue("z", in); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue("", mir.EventList{{Src: "forged", Dest: "c", Payload: Num{N: 0}}}); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	want := []string{"a:1<z", "b:0<a", "c:0<"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("log %v, want %v", log, want)
	}
	recs := rec.records()
	if recs[0].kind != mir.RecordInbound || recs[0].module != "z" || recs[0].events[0].Src != "z" {
		t.Errorf("first record %+v, want inbound from z stamped z", recs[0])
	}
	if recs[1].kind != mir.RecordInbound || recs[1].module != "" || recs[1].events[0].Src != "" {
		t.Errorf("second record %+v, want inbound from outside with empty Src", recs[1])
	}
	if recs[2].kind != mir.RecordDispatch || recs[2].module != "a" {
		t.Errorf("third record %+v, want dispatch to a", recs[2])
	}
}

func TestUnknownModule(t *testing.T) {
	bad := &funcModule{apply: func(mir.Event) mir.EventList { return mir.EventList{num("nowhere", 0)} }}
	d, err := mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{"bad": bad}, []mir.ModuleID{"act"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// From an active module: nothing is queued, the error names the source.
	err = d.Enqueue("act", mir.EventList{num("bad", 0), num("nowhere/x", 1)})
	var me *mir.ModuleError
	if !errors.Is(err, mir.ErrUnknownModule) || !errors.As(err, &me) || me.Module != "act" || me.Event == nil || me.Event.Dest != "nowhere/x" {
		t.Fatalf("Enqueue to unknown module: %v", err)
	}
	if d.HasWork() {
		t.Error("a rejected inbound batch was partly queued")
	}
	// From outside.
	if err := d.Enqueue("", mir.EventList{num("nowhere", 1)}); !errors.Is(err, mir.ErrUnknownModule) {
		t.Fatalf("Enqueue from outside to unknown module: %v", err)
	}
	// Output of a passive module.
	if err := d.Enqueue("", mir.EventList{num("bad", 0)}); err != nil {
		t.Fatal(err)
	}
	_, err = d.Round()
	if !errors.Is(err, mir.ErrUnknownModule) || !errors.As(err, &me) || me.Module != "bad" {
		t.Fatalf("passive output to unknown module: %v", err)
	}
}

func TestNewDispatcherRejects(t *testing.T) {
	m := &funcModule{}
	cases := map[string]struct {
		passive map[mir.ModuleID]mir.PassiveModule
		active  []mir.ModuleID
	}{
		"path ID":        {map[mir.ModuleID]mir.PassiveModule{"a/b": m}, nil},
		"empty ID":       {map[mir.ModuleID]mir.PassiveModule{"": m}, nil},
		"nil module":     {map[mir.ModuleID]mir.PassiveModule{"a": nil}, nil},
		"duplicate":      {map[mir.ModuleID]mir.PassiveModule{"a": m}, []mir.ModuleID{"a"}},
		"dup active":     {nil, []mir.ModuleID{"x", "x"}},
		"bad active ID":  {nil, []mir.ModuleID{"x/"}},
		"empty activeID": {nil, []mir.ModuleID{""}},
	}
	for name, tc := range cases {
		if _, err := mir.NewDispatcher(tc.passive, tc.active, nil); err == nil {
			t.Errorf("%s: NewDispatcher succeeded", name)
		}
	}
}

// TestModuleErrorNamesEvent: an error or a panic while applying one event of
// a batch (through ApplyEach) yields a *ModuleError naming the module and
// that event.
func TestModuleErrorNamesEvent(t *testing.T) {
	for _, panics := range []bool{false, true} {
		m := &funcModule{}
		d, err := mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{"m": m}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		batch := mir.EventList{num("m", 1), mir.NewEvent("m/sub", Fail{Panic: panics}), num("m", 2)}
		if err := d.Enqueue("", batch); err != nil {
			t.Fatal(err)
		}
		_, err = d.Round()
		var me *mir.ModuleError
		if !errors.As(err, &me) {
			t.Fatalf("panics=%v: Round error %v, want *ModuleError", panics, err)
		}
		if me.Module != "m" || me.Event == nil || me.Event.Dest != "m/sub" || me.Batch != 3 {
			t.Errorf("panics=%v: ModuleError %+v does not name module m and event for m/sub", panics, me)
		}
		if panics {
			if me.Panic != "boom" {
				t.Errorf("Panic = %v", me.Panic)
			}
		} else if !errors.Is(err, errFail) {
			t.Errorf("error %v does not wrap the module's error", err)
		}
	}
}

// outerModule dispatches the events inside Nested payloads to an inner
// module through ApplyEach, as a module with submodules does.
type outerModule struct{ inner *funcModule }

func (m *outerModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		return m.inner.ApplyEvents(e.Payload.(Nested).Events)
	})
}

// TestApplyEachNested: nested ApplyEach (a module dispatching to submodules)
// names the innermost event, for errors and panics alike.
func TestApplyEachNested(t *testing.T) {
	for _, panics := range []bool{false, true} {
		d, err := mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{"m": &outerModule{inner: &funcModule{}}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		inner := mir.EventList{num("m/inner", 1), mir.NewEvent("m/inner", Fail{Panic: panics})}
		batch := mir.EventList{num("m/other", 0), mir.NewEvent("m/outer", Nested{Events: inner})}
		batch[0].Payload = Nested{}
		if err := d.Enqueue("", batch); err != nil {
			t.Fatal(err)
		}
		_, err = d.Round()
		var me *mir.ModuleError
		if !errors.As(err, &me) || me.Module != "m" || me.Event == nil {
			t.Fatalf("panics=%v: error %v", panics, err)
		}
		if me.Event.Dest != "m/inner" {
			t.Errorf("panics=%v: named event for %q, want m/inner", panics, me.Event.Dest)
		}
	}
}

func TestSliceReuseDoesNotLeakIntoInterceptor(t *testing.T) {
	// With an interceptor the dispatcher must not reuse batches: the records
	// keep their contents after later rounds.
	rec := &recorder{}
	m := &funcModule{}
	d, err := mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{"m": m}, nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 10; i++ {
		if err := d.Enqueue("", mir.EventList{num("m", i), num("m", i+100)}); err != nil {
			t.Fatal(err)
		}
		drain(t, d)
	}
	var n int64
	for _, r := range rec.records() {
		if r.kind != mir.RecordDispatch {
			continue
		}
		if r.events[0].Payload != (Num{N: n}) || r.events[1].Payload != (Num{N: n + 100}) {
			t.Fatalf("record %d was overwritten: %v", n, r.events)
		}
		n++
	}
	if n != 10 {
		t.Fatalf("%d dispatch records, want 10", n)
	}
}
