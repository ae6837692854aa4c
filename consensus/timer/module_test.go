package timer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mark is a test payload naming a timer firing.
type mark struct {
	_    struct{} `cbor:",toarray"`
	Name string
}

func init() { mir.RegisterPayload(mir.TagBaseTest+1, mark{}) }

func ev(name string) mir.Event { return mir.NewEvent("probe", mark{Name: name}) }

func delay(after time.Duration, ret uint64, names ...string) mir.Event {
	return mir.NewEvent("timer", events.TimerDelay{Events: evList(names), After: after, RetentionIndex: ret})
}

func repeat(period time.Duration, ret uint64, names ...string) mir.Event {
	return mir.NewEvent("timer", events.TimerRepeat{Events: evList(names), Period: period, RetentionIndex: ret})
}

func gc(ret uint64) mir.Event {
	return mir.NewEvent("timer", events.TimerGarbageCollect{RetentionIndex: ret})
}

func evList(names []string) mir.EventList {
	var l mir.EventList
	for _, n := range names {
		l = append(l, ev(n))
	}
	return l
}

func names(evs mir.EventList) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Payload.(mark).Name)
	}
	return out
}

// syncSched is a Scheduler on a virtual clock whose emitted events are
// collected synchronously, as a simulator would use it.
type syncSched struct {
	clock *VirtualClock
	s     *Scheduler
	out   mir.EventList
}

func newSyncSched() *syncSched {
	ss := &syncSched{clock: NewVirtualClock(epoch)}
	ss.s = NewScheduler(ss.clock, func(_ uint64, evs mir.EventList) { ss.out = append(ss.out, evs...) })
	return ss
}

func (ss *syncSched) apply(t *testing.T, evs ...mir.Event) {
	t.Helper()
	if err := ss.s.Apply(evs); err != nil {
		t.Fatal(err)
	}
}

func (ss *syncSched) take() string {
	s := fmt.Sprint(names(ss.out))
	ss.out = nil
	return s
}

func TestDelayOrdering(t *testing.T) {
	ss := newSyncSched()
	ss.apply(t,
		delay(30*time.Millisecond, 0, "a"),
		delay(10*time.Millisecond, 0, "b1", "b2"),
		delay(20*time.Millisecond, 0, "c"),
		delay(10*time.Millisecond, 0, "d"),
		delay(0, 0, "now"),
	)
	if got := ss.take(); got != "[now]" {
		t.Fatalf("at once: %s, want [now]", got)
	}
	ss.clock.Advance(9 * time.Millisecond)
	if got := ss.take(); got != "[]" {
		t.Fatalf("after 9ms: %s, want nothing", got)
	}
	ss.clock.Advance(11 * time.Millisecond)
	if got := ss.take(); got != "[b1 b2 d c]" {
		t.Fatalf("after 20ms: %s, want [b1 b2 d c]", got)
	}
	ss.clock.Advance(time.Hour)
	if got := ss.take(); got != "[a]" {
		t.Fatalf("after 1h: %s, want [a]", got)
	}
	if st := ss.s.Stats(); st.Pending != 0 || st.Fired != 4 {
		t.Fatalf("stats %+v, want 0 pending and 4 fired", st)
	}
}

func TestRepeatCounts(t *testing.T) {
	ss := newSyncSched()
	ss.apply(t, repeat(10*time.Millisecond, 0, "r"), repeat(25*time.Millisecond, 0, "s"))
	ss.clock.Advance(95 * time.Millisecond)
	count := func() map[string]int {
		m := map[string]int{}
		for _, n := range names(ss.out) {
			m[n]++
		}
		ss.out = nil
		return m
	}
	if got := count(); got["r"] != 9 || got["s"] != 3 {
		t.Fatalf("after 95ms: %v, want r:9 s:3", got)
	}
	ss.clock.Advance(5 * time.Millisecond) // t = 100ms: r fires, s fires
	if got := count(); got["r"] != 1 || got["s"] != 1 {
		t.Fatalf("after 100ms: %v, want r:1 s:1", got)
	}
	// Firings at the same instant come in the creation order of their
	// clock timers: at 150ms, s's timer (armed at 125ms) precedes r's
	// (armed at 140ms).
	ss.clock.Advance(50 * time.Millisecond) // 110..150 r; 125, 150 s
	if got := ss.take(); got != "[r r s r r s r]" {
		t.Fatalf("110..150ms: %s", got)
	}
	if st := ss.s.Stats(); st.SkippedTicks != 0 || st.Pending != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGarbageCollect(t *testing.T) {
	ss := newSyncSched()
	ss.apply(t,
		delay(10*time.Millisecond, 1, "d1"),
		delay(10*time.Millisecond, 2, "d2"),
		delay(10*time.Millisecond, 3, "d3"),
		repeat(5*time.Millisecond, 1, "r1"),
		repeat(5*time.Millisecond, 2, "r2"),
	)
	ss.clock.Advance(5 * time.Millisecond)
	if got := ss.take(); got != "[r1 r2]" {
		t.Fatalf("before GC: %s", got)
	}
	ss.apply(t, gc(2))
	if st := ss.s.Stats(); st.Pending != 3 || st.Cancelled != 2 {
		t.Fatalf("after GC(2): %+v, want 3 pending, 2 cancelled", st)
	}
	// A request below the collected index is stale and dropped; one at it
	// is kept. A lower GC changes nothing.
	ss.apply(t, delay(time.Millisecond, 1, "stale"), repeat(time.Millisecond, 1, "stale"), delay(time.Millisecond, 2, "kept"), gc(1))
	ss.clock.Advance(5 * time.Millisecond)
	// At 10ms d2 and d3 (armed at 0) precede r2 (re-armed at 5ms).
	if got := ss.take(); got != "[kept d2 d3 r2]" {
		t.Fatalf("after GC: %s, want [kept d2 d3 r2]", got)
	}
	if st := ss.s.Stats(); st.Stale != 2 || st.Pending != 1 {
		t.Fatalf("stats %+v, want 2 stale, 1 pending", st)
	}
	ss.apply(t, gc(100))
	ss.clock.Advance(time.Hour)
	if got := ss.take(); got != "[]" {
		t.Fatalf("after GC(100): %s, want nothing", got)
	}
	if ss.clock.Pending() != 0 {
		t.Fatalf("clock still holds %d timers after GC", ss.clock.Pending())
	}
}

func TestFollowUpsReleasedOnAcceptance(t *testing.T) {
	ss := newSyncSched()
	ss.apply(t,
		delay(time.Second, 0, "later").WithNext(ev("next1")),
		delay(0, 0, "now").WithNext(ev("next2")),
		gc(0).WithNext(ev("next3")),
	)
	if got := ss.take(); got != "[next1 now next2 next3]" {
		t.Fatalf("got %s", got)
	}
}

func TestInvalidRequests(t *testing.T) {
	badDest := mir.Event{Dest: "a//b", Payload: mark{Name: "x"}}
	cases := []struct {
		name string
		ev   mir.Event
		want error
	}{
		{"negative delay", delay(-time.Nanosecond, 0, "x"), ErrInvalidDelay},
		{"zero period", repeat(0, 0, "x"), ErrInvalidPeriod},
		{"negative period", repeat(-time.Second, 0, "x"), ErrInvalidPeriod},
		{"bad event", mir.NewEvent("timer", events.TimerDelay{Events: mir.EventList{badDest}, After: time.Second}), ErrInvalidEvents},
		{"unregistered payload", mir.NewEvent("timer", events.TimerRepeat{Events: mir.EventList{{Dest: "p", Payload: 3}}, Period: time.Second}), ErrInvalidEvents},
		{"unknown event", ev("x"), ErrUnknownEvent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ss := newSyncSched()
			err := ss.s.Apply(mir.EventList{tc.ev})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ee *mir.EventError
			if !errors.As(err, &ee) {
				t.Fatalf("err %v does not name the event", err)
			}
			if ss.s.Stats().Pending != 0 || ss.clock.Pending() != 0 {
				t.Fatal("a rejected request was scheduled")
			}
		})
	}
}

// runModule starts m.Run and returns a function that stops it and waits.
func runModule(t *testing.T, m *Module) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

// barrier applies a zero delay emitting a marker, and returns everything
// emitted before the marker. The output is FIFO, so once the marker arrives
// every earlier emission has been read.
func barrier(t *testing.T, m *Module) []string {
	t.Helper()
	if err := m.ApplyEvents(context.Background(), mir.EventList{delay(0, ^uint64(0), "barrier")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case evs, ok := <-m.EventsOut():
			if !ok {
				t.Fatal("EventsOut closed")
			}
			for _, n := range names(evs) {
				if n == "barrier" {
					return got
				}
				got = append(got, n)
			}
		case <-deadline:
			t.Fatalf("no barrier after 10s; got %v", got)
		}
	}
}

func TestModuleEmitsInOrder(t *testing.T) {
	clock := NewVirtualClock(epoch)
	m := New(clock)
	stop := runModule(t, m)
	defer stop()
	ctx := context.Background()
	if err := m.ApplyEvents(ctx, mir.EventList{
		delay(20*time.Millisecond, 0, "c"), delay(10*time.Millisecond, 0, "a", "b"), repeat(15*time.Millisecond, 0, "r"),
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Millisecond)
	if got := fmt.Sprint(barrier(t, m)); got != "[a b r c]" {
		t.Fatalf("got %s, want [a b r c]", got)
	}
	for i := 0; i < 5; i++ {
		clock.Advance(15 * time.Millisecond)
		if got := fmt.Sprint(barrier(t, m)); got != "[r]" {
			t.Fatalf("period %d: got %s, want [r]", i, got)
		}
	}
	if err := m.ApplyEvents(ctx, mir.EventList{repeat(0, 0, "bad")}); !errors.Is(err, ErrInvalidPeriod) {
		t.Fatalf("zero period: err = %v", err)
	}
}

func TestModuleCoalescesUndeliveredRepeats(t *testing.T) {
	clock := NewVirtualClock(epoch)
	m := New(clock)
	// Run is not running yet: nothing leaves the module.
	if err := m.ApplyEvents(context.Background(), mir.EventList{repeat(time.Millisecond, 0, "r"), delay(5*time.Millisecond, 0, "d")}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(100 * time.Millisecond)
	if st := m.Stats(); st.Fired != 101 || st.Coalesced != 99 {
		t.Fatalf("stats %+v, want 101 fired, 99 coalesced", st)
	}
	stop := runModule(t, m)
	defer stop()
	if got := fmt.Sprint(barrier(t, m)); got != "[r d]" {
		t.Fatalf("got %s, want [r d]", got)
	}
}

func TestModuleStop(t *testing.T) {
	clock := NewVirtualClock(epoch)
	m := New(clock)
	stop := runModule(t, m)
	if err := m.ApplyEvents(context.Background(), mir.EventList{delay(time.Second, 0, "d"), repeat(time.Second, 0, "r")}); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, ok := <-m.EventsOut(); ok {
		t.Fatal("EventsOut not closed after Run returned")
	}
	if clock.Pending() != 0 {
		t.Fatalf("%d clock timers left after stop", clock.Pending())
	}
	if n := clock.Advance(time.Hour); n != 0 {
		t.Fatalf("%d timers fired after stop", n)
	}
	if err := m.ApplyEvents(context.Background(), mir.EventList{delay(0, 0, "x")}); !errors.Is(err, ErrStopped) {
		t.Fatalf("ApplyEvents after stop: %v, want ErrStopped", err)
	}
	if err := m.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestModuleRealClock(t *testing.T) {
	m := New(RealClock{})
	stop := runModule(t, m)
	defer stop()
	if err := m.ApplyEvents(context.Background(), mir.EventList{
		repeat(time.Millisecond, 0, "r"), delay(2*time.Millisecond, 0, "d"),
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	for seen["d"] < 1 || seen["r"] < 3 {
		select {
		case evs := <-m.EventsOut():
			for _, n := range names(evs) {
				seen[n]++
			}
		case <-deadline:
			t.Fatalf("after 10s saw %v, want d once and r at least 3 times", seen)
		}
	}
	if seen["d"] != 1 {
		t.Fatalf("delay fired %d times", seen["d"])
	}
}
