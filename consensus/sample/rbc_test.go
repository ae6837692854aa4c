package sample_test

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sample"
)

var members4 = []mir.NodeID{"n0", "n1", "n2", "n3"}

func newRBC(t *testing.T) *sample.RBC {
	t.Helper()
	return sample.NewRBC("n0", members4).(*sample.RBC)
}

func msgFrom(from mir.NodeID, msg any) mir.Event {
	return mir.NewEvent(sample.ModRBC, events.MessageReceived{From: from, Msg: msg})
}

func apply(t *testing.T, r *sample.RBC, evs ...mir.Event) mir.EventList {
	t.Helper()
	out, err := r.ApplyEvents(evs)
	if err != nil {
		t.Fatalf("ApplyEvents: %v", err)
	}
	return out
}

// sent returns the messages of SendMessage outputs, checking that each goes
// to every member's RBC module.
func sent(t *testing.T, out mir.EventList) []any {
	t.Helper()
	var msgs []any
	for _, e := range out {
		sm, ok := e.Payload.(events.SendMessage)
		if !ok {
			continue
		}
		if e.Dest != sample.ModNet || sm.DestModule != sample.ModRBC || !reflect.DeepEqual(sm.Destinations, members4) {
			t.Errorf("bad send %+v to %s", sm, e.Dest)
		}
		msgs = append(msgs, sm.Msg)
	}
	return msgs
}

func delivered(out mir.EventList) []sample.Delivered {
	var ds []sample.Delivered
	for _, e := range out {
		if d, ok := e.Payload.(sample.Delivered); ok && e.Dest == sample.ModApp {
			ds = append(ds, d)
		}
	}
	return ds
}

func TestRBCBroadcastNumbersValues(t *testing.T) {
	r := newRBC(t)
	out := apply(t, r, mir.NewEvent(sample.ModRBC, sample.Broadcast{Data: []byte("a")}),
		mir.NewEvent(sample.ModRBC, sample.Broadcast{Data: []byte("b")}))
	want := []any{sample.Send{Seq: 0, Data: []byte("a")}, sample.Send{Seq: 1, Data: []byte("b")}}
	if got := sent(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
}

func TestRBCEchoOnceAndDeliverOnce(t *testing.T) {
	r := newRBC(t)
	v := []byte("v")
	// n = 4, f = 1: echo quorum 3, ready amplification 2, delivery 3.
	steps := []struct {
		in       mir.Event
		wantSent []any
		wantDeli int
	}{
		{msgFrom("n2", sample.Send{Seq: 7, Data: v}), []any{sample.Echo{Origin: "n2", Seq: 7, Data: v}}, 0},
		{msgFrom("n2", sample.Send{Seq: 7, Data: []byte("other")}), nil, 0}, // second SEND: dropped
		{msgFrom("n1", sample.Echo{Origin: "n2", Seq: 7, Data: v}), nil, 0},
		{msgFrom("n2", sample.Echo{Origin: "n2", Seq: 7, Data: v}), nil, 0},
		{msgFrom("n2", sample.Echo{Origin: "n2", Seq: 7, Data: []byte("x")}), nil, 0}, // conflicting vote: dropped
		{msgFrom("n3", sample.Echo{Origin: "n2", Seq: 7, Data: v}), []any{sample.Ready{Origin: "n2", Seq: 7, Data: v}}, 0},
		{msgFrom("n0", sample.Echo{Origin: "n2", Seq: 7, Data: v}), nil, 0}, // already ready
		{msgFrom("n1", sample.Ready{Origin: "n2", Seq: 7, Data: v}), nil, 0},
		{msgFrom("n1", sample.Ready{Origin: "n2", Seq: 7, Data: v}), nil, 0}, // duplicate vote
		{msgFrom("n3", sample.Ready{Origin: "n2", Seq: 7, Data: v}), nil, 0},
		{msgFrom("n0", sample.Ready{Origin: "n2", Seq: 7, Data: v}), nil, 1},
		{msgFrom("n2", sample.Ready{Origin: "n2", Seq: 7, Data: v}), nil, 0}, // delivered once
	}
	for i, s := range steps {
		out := apply(t, r, s.in)
		if got := sent(t, out); !reflect.DeepEqual(got, s.wantSent) {
			t.Errorf("step %d: sent %v, want %v", i, got, s.wantSent)
		}
		ds := delivered(out)
		if len(ds) != s.wantDeli {
			t.Fatalf("step %d: delivered %v, want %d", i, ds, s.wantDeli)
		}
		if len(ds) == 1 && !reflect.DeepEqual(ds[0], sample.Delivered{Origin: "n2", Seq: 7, Data: v}) {
			t.Errorf("step %d: delivered %+v", i, ds[0])
		}
	}
	st := r.Stats()
	if st.DroppedDuplicate != 3 || st.Delivered != 1 {
		t.Errorf("stats %+v, want 3 duplicates dropped and 1 delivery", st)
	}
}

func TestRBCReadyAmplification(t *testing.T) {
	r := newRBC(t)
	v := []byte("v")
	if out := apply(t, r, msgFrom("n1", sample.Ready{Origin: "n3", Seq: 0, Data: v})); len(out) != 0 {
		t.Fatalf("one ready triggered %v", out)
	}
	// f+1 = 2 readies make a node ready without having seen echoes.
	out := apply(t, r, msgFrom("n2", sample.Ready{Origin: "n3", Seq: 0, Data: v}))
	if got := sent(t, out); !reflect.DeepEqual(got, []any{sample.Ready{Origin: "n3", Seq: 0, Data: v}}) {
		t.Errorf("sent %v, want READY", got)
	}
	// Readies for a different value do not count for v.
	out = apply(t, r, msgFrom("n3", sample.Ready{Origin: "n3", Seq: 0, Data: []byte("w")}))
	if len(delivered(out)) != 0 {
		t.Error("delivered on mixed values")
	}
	out = apply(t, r, msgFrom("n0", sample.Ready{Origin: "n3", Seq: 0, Data: v}))
	if ds := delivered(out); len(ds) != 1 || string(ds[0].Data) != "v" {
		t.Errorf("delivered %v, want v", ds)
	}
}

func TestRBCDropsInvalidMessages(t *testing.T) {
	r := newRBC(t)
	out := apply(t, r,
		msgFrom("stranger", sample.Send{Seq: 0, Data: []byte("x")}),
		msgFrom("stranger", sample.Echo{Origin: "n1", Seq: 0}),
		msgFrom("n1", sample.Echo{Origin: "stranger", Seq: 0}),
		msgFrom("n1", sample.Ready{Origin: "", Seq: 0}),
		msgFrom("n1", sample.Delivered{Origin: "n1"}),
		msgFrom("n1", sample.Broadcast{Data: []byte("x")}),
		msgFrom("n1", nil),
		msgFrom("n1", events.Init{}),
	)
	if len(out) != 0 {
		t.Errorf("invalid messages produced %v", out)
	}
	want := sample.RBCStats{DroppedUnknownSender: 2, DroppedUnknownOrigin: 2, DroppedBadMessage: 4}
	if st := r.Stats(); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestRBCRejectsUnexpectedLocalEvent(t *testing.T) {
	r := newRBC(t)
	if _, err := r.ApplyEvents(mir.EventList{mir.NewEvent(sample.ModRBC, sample.Delivered{})}); err == nil {
		t.Error("a local Delivered event was accepted")
	}
	if _, err := r.ApplyEvents(mir.EventList{mir.NewEvent(sample.ModRBC, events.Init{})}); err != nil {
		t.Errorf("Init: %v", err)
	}
}

// TestRBCRandomMessages feeds random (mostly invalid) messages: the module
// never fails, and never delivers two values for one broadcast.
func TestRBCRandomMessages(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		r := newRBC(t)
		senders := append([]mir.NodeID{"x", ""}, members4...)
		pick := func() mir.NodeID { return senders[rng.Intn(len(senders))] }
		value := func() []byte { return []byte{byte(rng.Intn(2))} }
		got := map[[2]any][]byte{}
		for i := 0; i < 2000; i++ {
			var msg any
			seq := uint64(rng.Intn(3))
			switch rng.Intn(5) {
			case 0:
				msg = sample.Send{Seq: seq, Data: value()}
			case 1:
				msg = sample.Echo{Origin: pick(), Seq: seq, Data: value()}
			case 2:
				msg = sample.Ready{Origin: pick(), Seq: seq, Data: value()}
			case 3:
				msg = sample.Delivered{Origin: pick()}
			default:
				msg = nil
			}
			out, err := r.ApplyEvents(mir.EventList{msgFrom(pick(), msg)})
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			for _, d := range delivered(out) {
				k := [2]any{d.Origin, d.Seq}
				if prev, ok := got[k]; ok {
					t.Fatalf("seed %d: delivered %v twice (%x, %x)", seed, k, prev, d.Data)
				}
				got[k] = d.Data
			}
		}
	}
}

func TestCollector(t *testing.T) {
	c := sample.NewCollector()
	d := sample.Delivered{Origin: "n1", Seq: 2, Data: []byte("x")}
	if _, err := c.ApplyEvents(mir.EventList{mir.NewEvent(sample.ModApp, d), mir.NewEvent(sample.ModApp, events.Init{})}); err != nil {
		t.Fatal(err)
	}
	if got := c.Deliveries(); !reflect.DeepEqual(got, []sample.Delivered{d}) {
		t.Errorf("Deliveries = %v", got)
	}
	if _, err := c.ApplyEvents(mir.EventList{mir.NewEvent(sample.ModApp, sample.Broadcast{})}); err == nil {
		t.Error("collector accepted a Broadcast")
	}
}
