package memnet

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ping struct {
	_   struct{} `cbor:",toarray"`
	Seq uint64
	Buf []byte
}

type unregistered struct{ X int }

func init() { mir.RegisterPayload(mir.TagBaseTransport+95, ping{}) }

// running starts a transport's Run and collects what it emits.
type running struct {
	mu   sync.Mutex
	got  []mir.Event
	stop func()
}

func run(t *testing.T, tr *Transport) *running {
	r := &running{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tr.Run(ctx) }()
	go func() {
		defer close(done)
		for evs := range tr.EventsOut() {
			r.mu.Lock()
			r.got = append(r.got, evs...)
			r.mu.Unlock()
		}
	}()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(r.stop)
	return r
}

func (r *running) events() []mir.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mir.Event(nil), r.got...)
}

func waitLen(t *testing.T, r *running, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for len(r.events()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d events, want %d", len(r.events()), n)
		}
		<-tick.C
	}
}

func sendEv(dests []mir.NodeID, msg any) mir.Event {
	return mir.NewEvent("net", events.SendMessage{Destinations: dests, DestModule: "app", Msg: msg})
}

func TestDeliveryAndControls(t *testing.T) {
	nw := NewNetwork()
	a, b, c := nw.Transport("a"), nw.Transport("b"), nw.Transport("c")
	ra, rb, rc := run(t, a), run(t, b), run(t, c)
	ctx := context.Background()
	buf := []byte{1, 2, 3}
	if err := a.ApplyEvents(ctx, mir.EventList{sendEv([]mir.NodeID{"a", "b", "c", "zz"}, ping{Seq: 1, Buf: buf})}); err != nil {
		t.Fatal(err)
	}
	waitLen(t, ra, 1)
	waitLen(t, rb, 1)
	waitLen(t, rc, 1)
	mr := rb.events()[0].Payload.(events.MessageReceived)
	if mr.From != "a" || mr.Msg.(ping).Seq != 1 || rb.events()[0].Dest != "app" {
		t.Fatalf("b got %+v", rb.events()[0])
	}
	if &mr.Msg.(ping).Buf[0] == &buf[0] {
		t.Fatal("the receiver shares the sender's memory")
	}
	if st := a.Stats(); st.Sent != 3 || st.Dropped != 1 {
		t.Fatalf("a stats %+v", st)
	}

	nw.Partition([]mir.NodeID{"a"}, []mir.NodeID{"b", "c"})
	_ = a.ApplyEvents(ctx, mir.EventList{sendEv([]mir.NodeID{"b"}, ping{Seq: 2})})
	_ = b.ApplyEvents(ctx, mir.EventList{sendEv([]mir.NodeID{"c", "a"}, ping{Seq: 3})})
	waitLen(t, rc, 2)
	nw.Heal()
	nw.Drop("b", "a", true)
	_ = b.ApplyEvents(ctx, mir.EventList{sendEv([]mir.NodeID{"a"}, ping{Seq: 4})})
	nw.Drop("b", "a", false)
	_ = b.ApplyEvents(ctx, mir.EventList{sendEv([]mir.NodeID{"a"}, ping{Seq: 5})})
	waitLen(t, ra, 2)
	if got := ra.events()[1].Payload.(events.MessageReceived).Msg.(ping).Seq; got != 5 {
		t.Fatalf("a got seq %d after heal, want 5", got)
	}
	if len(rb.events()) != 1 {
		t.Fatalf("b received across the partition: %v", rb.events())
	}

	// Unregistered payloads are dropped, as on a real network.
	_ = a.ApplyEvents(ctx, mir.EventList{sendEv([]mir.NodeID{"b", "a"}, unregistered{})})
	if st := a.Stats(); st.Dropped != 4 {
		t.Fatalf("a stats %+v", st)
	}
	// Follow-ups are released; unexpected events fail.
	ev := sendEv(nil, ping{}).WithNext(mir.NewEvent("app", ping{Seq: 9}))
	if err := c.ApplyEvents(ctx, mir.EventList{ev}); err != nil {
		t.Fatal(err)
	}
	waitLen(t, rc, 3)
	if err := c.ApplyEvents(ctx, mir.EventList{mir.NewEvent("net", ping{})}); err == nil {
		t.Fatal("unexpected event accepted")
	}
	rc.stop()
	if err := c.ApplyEvents(ctx, mir.EventList{ev}); err != ErrStopped {
		t.Fatalf("after stop: %v", err)
	}
}

func TestInboxBound(t *testing.T) {
	nw := NewNetwork(WithInboxSize(3))
	a, b := nw.Transport("a"), nw.Transport("b")
	for i := range 5 { // b's Run is not running: its inbox fills up
		_ = a.ApplyEvents(context.Background(), mir.EventList{sendEv([]mir.NodeID{"b"}, ping{Seq: uint64(i)})})
	}
	if st := a.Stats(); st.Sent != 3 || st.Dropped != 2 {
		t.Fatalf("a stats %+v", st)
	}
	rb := run(t, b)
	waitLen(t, rb, 3)
}
