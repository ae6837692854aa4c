package crypto

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

// reqCtx is a test Context payload.
type reqCtx struct {
	_ struct{} `cbor:",toarray"`
	N int
}

// marker is a test follow-up payload.
type marker struct {
	_ struct{} `cbor:",toarray"`
	N int
}

func init() {
	mir.RegisterPayload(mir.TagBaseTest+1, reqCtx{})
	mir.RegisterPayload(mir.TagBaseTest+2, marker{})
}

// startModule runs m and returns a function that stops it and waits.
func startModule(t testing.TB, m *Module) (stop func()) {
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

func newTestModule(t testing.TB, params Params) (*Module, []KeyPair) {
	t.Helper()
	kps := TestKeys(5, 4)
	m, err := NewModule(kps[0].Priv, testRegistry(t, kps[:3]), params)
	if err != nil {
		t.Fatal(err)
	}
	return m, kps
}

// collect reads n batches from m with a deadline.
func collect(t testing.TB, m *Module, n int) []mir.EventList {
	t.Helper()
	var out []mir.EventList
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case evs, ok := <-m.EventsOut():
			if !ok {
				t.Fatal("EventsOut closed")
			}
			out = append(out, evs)
		case <-deadline:
			t.Fatalf("got %d of %d answers in 10s", len(out), n)
		}
	}
	return out
}

func TestModuleSignVerifyHash(t *testing.T) {
	m, kps := newTestModule(t, Params{Workers: 3, QueueSize: 2})
	stop := startModule(t, m)
	defer stop()
	ctx := context.Background()
	msg := parts("a", "b")
	if err := m.ApplyEvents(ctx, mir.EventList{
		mir.NewEvent("crypto", events.SignRequest{Data: msg, ReplyTo: "iss/pbft/1", Context: reqCtx{N: 1}}).WithNext(mir.NewEvent("x", marker{N: 1})),
	}); err != nil {
		t.Fatal(err)
	}
	b := collect(t, m, 1)[0]
	if len(b) != 2 || b[0].Dest != "iss/pbft/1" || b[1].Payload != (marker{N: 1}) {
		t.Fatalf("answer batch %+v: want SignResult to iss/pbft/1 then the follow-up", b)
	}
	res := b[0].Payload.(events.SignResult)
	if res.Context != (reqCtx{N: 1}) {
		t.Fatalf("Context %v not echoed", res.Context)
	}
	if err := Verify(kps[0].Pub, msg, res.Signature); err != nil {
		t.Fatalf("module signature: %v", err)
	}

	// Verify: 40 items spread over workers, with every kind of failure.
	sig1, _ := mustSigner(t, kps[1]).Sign(msg)
	sig3, _ := mustSigner(t, kps[3]).Sign(msg)
	var items []events.SigItem
	wantErr := map[int]error{}
	for i := 0; i < 40; i++ {
		it := events.SigItem{Data: msg, Signature: res.Signature, Signer: "0"}
		switch i % 8 {
		case 1:
			it = events.SigItem{Data: msg, Signature: sig1, Signer: "1"}
		case 2:
			it.Signature = sig1 // node 1's signature claimed by node 0
			wantErr[i] = ErrBadSignature
		case 3:
			it = events.SigItem{Data: msg, Signature: sig3, Signer: "3"} // not registered
			wantErr[i] = ErrUnknownSigner
		case 4:
			it.Signature = res.Signature[:10]
			wantErr[i] = ErrSignatureLength
		case 5:
			it.Data = parts("ab") // framing: not the signed list
			wantErr[i] = ErrBadSignature
		case 6:
			it.Signature = nil
			it.Signer = ""
			wantErr[i] = ErrUnknownSigner
		}
		items = append(items, it)
	}
	if err := m.ApplyEvents(ctx, mir.EventList{
		mir.NewEvent("crypto", events.VerifyRequest{Items: items, ReplyTo: "checkpoint", Context: reqCtx{N: 2}}),
		mir.NewEvent("crypto", events.VerifyRequest{Items: items[:2], ReplyTo: "checkpoint", Context: reqCtx{N: 3}}),
		mir.NewEvent("crypto", events.VerifyRequest{ReplyTo: "checkpoint", Context: reqCtx{N: 4}}),
		mir.NewEvent("crypto", events.HashRequest{Data: [][][]byte{parts("a", "b"), nil, parts("ab")}, ReplyTo: "sm"}),
	}); err != nil {
		t.Fatal(err)
	}
	got := map[int]events.VerifyResult{}
	var hres *events.HashResult
	for _, b := range collect(t, m, 4) {
		switch p := b[0].Payload.(type) {
		case events.VerifyResult:
			got[p.Context.(reqCtx).N] = p
		case events.HashResult:
			hres = &p
		default:
			t.Fatalf("unexpected %T", p)
		}
	}
	vr := got[2]
	if len(vr.Valid) != len(items) || len(vr.Errors) != len(items) || vr.AllOK {
		t.Fatalf("result for 40 items: %d valid flags, %d errors, AllOK %v", len(vr.Valid), len(vr.Errors), vr.AllOK)
	}
	for i := range items {
		want := wantErr[i]
		if vr.Valid[i] != (want == nil) {
			t.Fatalf("item %d: valid %v, want error %v (reason %q)", i, vr.Valid[i], want, vr.Errors[i])
		}
		if want != nil && vr.Errors[i] == "" || want == nil && vr.Errors[i] != "" {
			t.Fatalf("item %d: reason %q", i, vr.Errors[i])
		}
	}
	if r := got[3]; !r.AllOK || len(r.Valid) != 2 {
		t.Fatalf("two valid items: %+v", r)
	}
	if r := got[4]; !r.AllOK || len(r.Valid) != 0 {
		t.Fatalf("no items: %+v", r)
	}
	if hres == nil || len(hres.Digests) != 3 || hres.Context != nil {
		t.Fatalf("hash result %+v", hres)
	}
	for i, d := range [][][]byte{parts("a", "b"), nil, parts("ab")} {
		if fmt.Sprint(hres.Digests[i]) != fmt.Sprint(Digest(d)) {
			t.Fatalf("digest %d differs from Digest", i)
		}
	}
	if st := m.Stats(); st.Signed != 1 || st.Verified != 42 || st.Invalid != 25 || st.Hashed != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestModuleRejectsBadRequests(t *testing.T) {
	m, _ := newTestModule(t, Params{Workers: 1})
	hm, err := NewHashModule(Params{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		m    *Module
		ev   mir.Event
		want error
	}{
		{m, mir.NewEvent("crypto", events.SignRequest{ReplyTo: ""}), ErrInvalidRequest},
		{m, mir.NewEvent("crypto", events.VerifyRequest{ReplyTo: "a//b"}), ErrInvalidRequest},
		{m, mir.NewEvent("crypto", events.HashRequest{ReplyTo: "sm", Context: 42}), ErrInvalidRequest},
		{m, mir.NewEvent("crypto", events.TimerGarbageCollect{}), ErrUnknownEvent},
		{hm, mir.NewEvent("crypto", events.SignRequest{ReplyTo: "x"}), ErrNoKey},
		{hm, mir.NewEvent("crypto", events.VerifyRequest{ReplyTo: "x"}), ErrNoKey},
	}
	for i, tc := range cases {
		err := tc.m.ApplyEvents(context.Background(), mir.EventList{tc.ev})
		var ee *mir.EventError
		if !errors.Is(err, tc.want) || !errors.As(err, &ee) {
			t.Fatalf("case %d: err %v, want %v naming the event", i, err, tc.want)
		}
	}
	if _, err := NewModule(nil, &Registry{}, Params{}); !errors.Is(err, ErrKeyType) {
		t.Fatalf("nil key: %v", err)
	}
	if _, err := NewModule(TestKeys(1, 1)[0].Priv, &Registry{}, Params{Workers: -1}); err == nil {
		t.Fatal("negative Workers accepted")
	}
	if p := hm.Params(); p.Workers != 1 || p.QueueSize != 4 {
		t.Fatalf("defaults: %+v", p)
	}
}

func TestModuleBackpressureHonoursContext(t *testing.T) {
	// No Run: nothing drains the queue of 2 tasks.
	m, _ := newTestModule(t, Params{Workers: 1, QueueSize: 2})
	req := mir.NewEvent("crypto", events.SignRequest{Data: parts("x"), ReplyTo: "r"})
	if err := m.ApplyEvents(context.Background(), mir.EventList{req, req}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errCh := make(chan error, 1)
	go func() { errCh <- m.ApplyEvents(ctx, mir.EventList{req}) }()
	select {
	case err := <-errCh:
		t.Fatalf("ApplyEvents on a full queue returned %v without blocking", err)
	default:
	}
	cancel()
	select {
	case err := <-errCh:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ApplyEvents ignored ctx cancellation")
	}
	// Once running, the queued work is answered and ApplyEvents proceeds.
	stop := startModule(t, m)
	collect(t, m, 2)
	stop()
	if _, ok := <-m.EventsOut(); ok {
		t.Fatal("EventsOut open after Run returned")
	}
	if err := m.ApplyEvents(context.Background(), mir.EventList{req, req, req}); !errors.Is(err, ErrStopped) {
		t.Fatalf("ApplyEvents after stop: %v, want ErrStopped", err)
	}
}

// probe is an active test module that forwards what it receives.
type probe struct {
	got chan mir.EventList
	out chan mir.EventList
}

func (p *probe) ApplyEvents(ctx context.Context, evs mir.EventList) error {
	select {
	case p.got <- evs:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *probe) EventsOut() <-chan mir.EventList { return p.out }

func TestModuleInNode(t *testing.T) {
	kps := TestKeys(8, 2)
	reg := testRegistry(t, kps)
	cm, err := NewModule(kps[0].Priv, reg, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{got: make(chan mir.EventList, 16), out: make(chan mir.EventList)}
	node, err := mir.NewNode("0", mir.DefaultNodeParams(), map[mir.ModuleID]mir.Module{"crypto": cm, "probe": p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = node.Run(ctx) }()
	defer func() {
		node.Stop()
		if err := node.Err(); !errors.Is(err, mir.ErrStopped) {
			t.Errorf("node: %v", err)
		}
	}()
	next := func() mir.Event {
		t.Helper()
		select {
		case evs := <-p.got:
			return evs[0]
		case <-time.After(10 * time.Second):
			t.Fatal("no answer in 10s")
			return mir.Event{}
		}
	}
	msg := parts("block", "cid")
	if err := node.InjectEvents(ctx, mir.EventList{mir.NewEvent("crypto", events.SignRequest{Data: msg, ReplyTo: "probe", Context: reqCtx{N: 7}})}); err != nil {
		t.Fatal(err)
	}
	e := next()
	sr := e.Payload.(events.SignResult)
	if e.Src != "crypto" || sr.Context != (reqCtx{N: 7}) {
		t.Fatalf("answer %+v", e)
	}
	if err := node.InjectEvents(ctx, mir.EventList{mir.NewEvent("crypto", events.VerifyRequest{
		Items:   []events.SigItem{{Data: msg, Signature: sr.Signature, Signer: "0"}, {Data: msg, Signature: sr.Signature, Signer: "1"}},
		ReplyTo: "probe",
	})}); err != nil {
		t.Fatal(err)
	}
	vr := next().Payload.(events.VerifyResult)
	if vr.AllOK || !vr.Valid[0] || vr.Valid[1] || vr.Errors[1] == "" {
		t.Fatalf("verify result %+v", vr)
	}
}
