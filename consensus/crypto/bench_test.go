package crypto

import (
	ic "github.com/libp2p/go-libp2p/core/crypto"

	"context"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// benchMsg is a checkpoint-sized message: a few fields and a 32-byte hash.
var benchMsg = parts("checkpoint", "epoch 17", "seq 4096", "0123456789abcdef0123456789abcdef")

func BenchmarkSign(b *testing.B) {
	s := mustSigner(b, TestKeys(1, 1)[0])
	for b.Loop() {
		if _, err := s.Sign(benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	kp := TestKeys(1, 1)[0]
	sig, _ := mustSigner(b, kp).Sign(benchMsg)
	for b.Loop() {
		if err := Verify(kp.Pub, benchMsg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// pump pushes b.N requests (batches of batch events) through a running
// module from one goroutine, drains the answers from another, and reports
// perItem*b.N/elapsed as unit.
func pump(b *testing.B, m *Module, req mir.Event, batch, perItem int, unit string) {
	stop := startModule(b, m)
	defer stop()
	evs := make(mir.EventList, batch)
	for i := range evs {
		evs[i] = req
	}
	ctx := context.Background()
	errCh := make(chan error, 1)
	b.ResetTimer()
	go func() {
		for left := b.N; left > 0; left -= batch {
			if err := m.ApplyEvents(ctx, evs[:min(batch, left)]); err != nil {
				errCh <- err
				return
			}
		}
		errCh <- nil
	}()
	for got := 0; got < b.N; got++ {
		evs := <-m.EventsOut()
		if vr, ok := evs[0].Payload.(events.VerifyResult); ok && !vr.AllOK {
			b.Fatalf("verification failed: %v", vr.Errors)
		}
	}
	b.StopTimer()
	if err := <-errCh; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(perItem*b.N)/b.Elapsed().Seconds(), unit)
}

func BenchmarkModuleSign(b *testing.B) {
	m, _ := newTestModule(b, DefaultParams())
	req := mir.NewEvent("crypto", events.SignRequest{Data: benchMsg, ReplyTo: "r"})
	pump(b, m, req, 64, 1, "signatures/s")
}

func BenchmarkModuleVerify(b *testing.B) {
	m, kps := newTestModule(b, DefaultParams())
	sig, _ := mustSigner(b, kps[1]).Sign(benchMsg)
	req := mir.NewEvent("crypto", events.VerifyRequest{Items: []events.SigItem{{Data: benchMsg, Signature: sig, Signer: "1"}}, ReplyTo: "r"})
	pump(b, m, req, 64, 1, "verifications/s")
}

// BenchmarkModuleVerifyCertificate verifies 100-signature requests (a
// checkpoint certificate of a 100-validator subnet) split across workers.
func BenchmarkModuleVerifyCertificate(b *testing.B) {
	kps := TestKeys(11, 100)
	reg := testRegistry(b, nil)
	keys := map[mir.NodeID]ic.PubKey{}
	items := make([]events.SigItem, len(kps))
	for i, kp := range kps {
		id := mir.NodeID(kp.ID.String())
		keys[id] = kp.Pub
		sig, _ := mustSigner(b, kp).Sign(benchMsg)
		items[i] = events.SigItem{Data: benchMsg, Signature: sig, Signer: id}
	}
	if err := reg.Replace(keys); err != nil {
		b.Fatal(err)
	}
	m, err := NewModule(kps[0].Priv, reg, DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	req := mir.NewEvent("crypto", events.VerifyRequest{Items: items, ReplyTo: "r"})
	pump(b, m, req, 1, len(items), "verifications/s")
}

func BenchmarkModuleHash(b *testing.B) {
	m, err := NewHashModule(DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	data := make([][][]byte, 64)
	for i := range data {
		data[i] = [][]byte{make([]byte, 1024)}
	}
	req := mir.NewEvent("crypto", events.HashRequest{Data: data, ReplyTo: "r"})
	pump(b, m, req, 8, len(data), "digests/s")
}
