package mempool

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/timer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for the module's goroutine; tests never sleep.
const waitLimit = 10 * time.Second

const batchTimeout = 50 * time.Millisecond

type modHarness struct {
	t      *testing.T
	pool   *FIFO
	clock  *timer.VirtualClock
	mod    *Module
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T) *modHarness {
	h := &modHarness{t: t, pool: newPool(t, Params{NumBuckets: 1}), clock: timer.NewVirtualClock(time.Unix(0, 0))}
	h.mod = NewModule(h.pool, ModuleParams{BatchTimeout: batchTimeout}, WithClock(h.clock))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.mod.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *modHarness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		h.t.Error("Run did not return")
	}
}

func (h *modHarness) apply(evs ...mir.Event) {
	h.t.Helper()
	if err := h.mod.ApplyEvents(context.Background(), evs); err != nil {
		h.t.Fatal(err)
	}
}

// recv returns the next batch the module emits.
func (h *modHarness) recv() mir.EventList {
	h.t.Helper()
	select {
	case evs := <-h.mod.EventsOut():
		return evs
	case <-time.After(waitLimit):
		h.t.Fatalf("nothing emitted; stats %+v", h.mod.Stats())
		return nil
	}
}

// batch receives one NewBatch and checks its request and contents.
func (h *modHarness) batch(reqID uint64, want ...string) {
	h.t.Helper()
	evs := h.recv()
	if len(evs) != 1 {
		h.t.Fatalf("emitted %d events, want 1", len(evs))
	}
	nb, ok := evs[0].Payload.(iss.NewBatch)
	if !ok || evs[0].Dest != "iss" || nb.ReqID != reqID || !eqStrings(names(nb.Txs), want) {
		h.t.Fatalf("emitted %s %+v to %q, want NewBatch %d %v", mir.PayloadName(evs[0].Payload), evs[0].Payload, evs[0].Dest, reqID, want)
	}
}

// waitFor waits until cond holds.
func (h *modHarness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; stats %+v", what, h.mod.Stats())
		}
		runtimeYield()
	}
}

func requestEv(id uint64, maxTxs, maxBytes int) mir.Event {
	return mir.NewEvent("mempool", iss.RequestBatch{ReqID: id, Buckets: []int{0}, NumBuckets: 1, MaxTxs: maxTxs, MaxBytes: maxBytes, ReplyTo: "iss"})
}

func TestModuleAnswersAtOnceWhenFillable(t *testing.T) {
	h := newHarness(t)
	add(t, h.pool, mkTx("a", 0), mkTx("a", 1), mkTx("b", 0))
	h.apply(requestEv(1, 2, big))
	h.batch(1, "a/0", "a/1")
	// Full by bytes: b/0 fits, c/0 would not.
	add(t, h.pool, mkTx("c", 0))
	h.apply(requestEv(2, 10, mkTx("b", 0).Size()+1))
	h.batch(2, "b/0")
	if st := h.mod.Stats(); st.AnsweredFull != 2 || st.Parked != 0 || h.clock.Pending() != 0 {
		t.Fatalf("stats %+v, %d timers", st, h.clock.Pending())
	}
}

func TestModuleOversizedTxDoesNotAnswerEmpty(t *testing.T) {
	h := newHarness(t)
	add(t, h.pool, ordering.Tx{Sender: "a", Data: make([]byte, 100)})
	h.apply(requestEv(1, 10, 50))
	if st := h.mod.Stats(); st.Parked != 1 || h.clock.Pending() != 0 {
		t.Fatalf("stats %+v, %d timers", st, h.clock.Pending())
	}
	h.apply(mir.NewEvent("mempool", iss.CutBatch{ReqID: 1}))
	h.batch(1)
}

func TestModuleAnswersWhenNotifiedAndFillable(t *testing.T) {
	h := newHarness(t)
	h.apply(requestEv(1, 3, big))
	if st := h.mod.Stats(); st.Parked != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Transactions arrive from clients concurrently, not through events.
	add(t, h.pool, mkTx("a", 0), mkTx("b", 0), mkTx("a", 1))
	h.batch(1, "a/0", "b/0", "a/1")
}

func TestModuleAnswersPartialAfterTimeout(t *testing.T) {
	h := newHarness(t)
	h.apply(requestEv(1, 10, big))
	if h.clock.Pending() != 0 {
		t.Fatal("timer armed for an empty request")
	}
	add(t, h.pool, mkTx("a", 0))
	h.waitFor("batch timer", func() bool { return h.clock.Pending() == 1 })
	add(t, h.pool, mkTx("b", 0))
	h.waitFor("second tx taken", func() bool { return h.pool.Stats().Proposed == 2 })
	h.clock.Advance(batchTimeout - time.Nanosecond)
	if st := h.mod.Stats(); st.Parked != 1 || st.AnsweredTimeout != 0 {
		t.Fatalf("answered before the timeout: %+v", st)
	}
	h.clock.Advance(time.Nanosecond)
	h.batch(1, "a/0", "b/0")
	if st := h.mod.Stats(); st.AnsweredTimeout != 1 || st.Parked != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestModuleCutBatch(t *testing.T) {
	h := newHarness(t)
	h.apply(requestEv(1, 10, big))
	h.apply(mir.NewEvent("mempool", iss.CutBatch{ReqID: 1}))
	h.batch(1) // empty
	// A cut for an answered request is ignored; a cut answers what a
	// request holds without waiting for the timer.
	h.apply(mir.NewEvent("mempool", iss.CutBatch{ReqID: 1}))
	h.apply(requestEv(2, 10, big))
	add(t, h.pool, mkTx("a", 0))
	h.waitFor("batch timer", func() bool { return h.clock.Pending() == 1 })
	h.apply(mir.NewEvent("mempool", iss.CutBatch{ReqID: 2}))
	h.batch(2, "a/0")
	if st := h.mod.Stats(); st.AnsweredCut != 2 || st.StaleCuts != 1 || h.clock.Pending() != 0 {
		t.Fatalf("stats %+v, %d timers", st, h.clock.Pending())
	}
}

func TestModuleResetProposalsReoffers(t *testing.T) {
	h := newHarness(t)
	add(t, h.pool, mkTx("a", 0), mkTx("a", 1), mkTx("b", 0))
	h.apply(requestEv(1, 2, big))
	h.batch(1, "a/0", "a/1")
	h.apply(requestEv(2, 5, big)) // takes b/0, waits for more
	h.waitFor("batch timer", func() bool { return h.clock.Pending() == 1 })
	h.apply(mir.NewEvent("mempool", iss.ResetProposals{}))
	if st := h.mod.Stats(); st.Parked != 0 || st.Reset != 1 || h.clock.Pending() != 0 {
		t.Fatalf("stats %+v, %d timers", st, h.clock.Pending())
	}
	h.apply(requestEv(3, 3, big))
	h.batch(3, "a/0", "a/1", "b/0")
}

func TestModuleDeliveredAndSubmit(t *testing.T) {
	h := newHarness(t)
	h.apply(mir.NewEvent("mempool", iss.SubmitTx{Tx: mkTx("a", 0)}),
		mir.NewEvent("mempool", iss.SubmitTx{Tx: mkTx("a", 0)})) // duplicate: counted
	if st := h.mod.Stats(); st.Submitted != 2 || st.SubmitRejected != 1 {
		t.Fatalf("stats %+v", st)
	}
	h.apply(requestEv(1, 10, big))
	h.waitFor("batch timer", func() bool { return h.clock.Pending() == 1 })
	// a/0 is committed through another path while request 1 holds it: it
	// must not be proposed again.
	h.apply(mir.NewEvent("mempool", iss.TxsDelivered{Txs: []ordering.Tx{mkTx("a", 0)}}))
	if st := h.pool.Stats(); st.Txs != 0 || st.Committed != 1 || h.clock.Pending() != 0 {
		t.Fatalf("pool stats %+v, %d timers", st, h.clock.Pending())
	}
	h.apply(mir.NewEvent("mempool", iss.SubmitTx{Tx: mkTx("a", 1)}))
	h.waitFor("batch timer", func() bool { return h.clock.Pending() == 1 })
	h.clock.Advance(batchTimeout)
	h.batch(1, "a/1")
}

func TestModuleReleasesFollowUps(t *testing.T) {
	h := newHarness(t)
	h.apply(mir.NewEvent("mempool", iss.TxsDelivered{}).WithNext(mir.NewEvent("probe", events.Init{})))
	evs := h.recv()
	if len(evs) != 1 || evs[0].Dest != "probe" {
		t.Fatalf("emitted %+v, want the follow-up", evs)
	}
}

func TestModuleRejectsBadEvents(t *testing.T) {
	h := newHarness(t)
	if err := h.mod.ApplyEvents(context.Background(), mir.EventList{requestEv(1, 0, big)}); err == nil {
		t.Fatal("request with MaxTxs 0 accepted")
	}
	if err := h.mod.ApplyEvents(context.Background(), mir.EventList{mir.NewEvent("mempool", events.TimerDelay{})}); err == nil {
		t.Fatal("unexpected event accepted")
	}
	h.apply(requestEv(1, 1, big), requestEv(1, 1, big))
	if st := h.mod.Stats(); st.DuplicateRequests != 1 || st.Parked != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestModuleStops(t *testing.T) {
	h := newHarness(t)
	h.apply(requestEv(1, 10, big))
	add(t, h.pool, mkTx("a", 0))
	h.waitFor("batch timer", func() bool { return h.clock.Pending() == 1 })
	h.stop()
	if h.clock.Pending() != 0 {
		t.Fatal("timer left running")
	}
	if _, ok := <-h.mod.EventsOut(); ok {
		t.Fatal("EventsOut not closed")
	}
	if err := h.mod.ApplyEvents(context.Background(), mir.EventList{requestEv(2, 1, big)}); !errors.Is(err, ErrStopped) {
		t.Fatalf("ApplyEvents after stop: %v", err)
	}
	if err := h.mod.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// TestModuleInNode runs the module inside a mir.Node with the real clock and
// a passive probe that requests a batch.
func TestModuleInNode(t *testing.T) {
	pool := newPool(t, Params{NumBuckets: 1})
	add(t, pool, mkTx("a", 0))
	got := make(chan iss.NewBatch, 1)
	probe := probeModule{got: got}
	node, err := mir.NewNode("n0", mir.DefaultNodeParams(), map[mir.ModuleID]mir.Module{
		"mempool": NewModule(pool, ModuleParams{BatchTimeout: time.Millisecond}),
		"iss":     probe,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := node.InjectEvents(ctx, mir.EventList{requestEv(7, 10, big)}); err != nil {
		t.Fatal(err)
	}
	select {
	case nb := <-got:
		if !eqStrings(names(nb.Txs), []string{"a/0"}) {
			t.Fatalf("batch %v", names(nb.Txs))
		}
	case <-time.After(waitLimit):
		t.Fatal("no batch")
	}
}

// probeModule reports the batches it receives.
type probeModule struct{ got chan<- iss.NewBatch }

func (p probeModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	for _, e := range evs {
		if ev, ok := e.Payload.(iss.NewBatch); ok {
			p.got <- ev
		}
	}
	return nil, nil
}
