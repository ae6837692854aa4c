package eventlog

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// TestEncoderMatchesMarshal checks that the fast encoder produces exactly
// the bytes of mir.Marshal, for random events and records.
func TestEncoderMatchesMarshal(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	enc := newEncoder()
	for i := 0; i < 3000; i++ {
		ev := randomEvent(rng, 0)
		want, err := mir.Marshal(ev)
		if err != nil {
			t.Fatalf("seed %d: Marshal: %v", seed, err)
		}
		got, err := enc.encodeEvent(&ev)
		if err != nil {
			t.Fatalf("seed %d: encodeEvent: %v", seed, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: event %d (%s): encodings differ\n got  %x\n want %x", seed, i, mir.PayloadName(ev.Payload), got, want)
		}
	}
	for i := 0; i < 300; i++ {
		evs := make(mir.EventList, rng.IntN(5)+1)
		for j := range evs {
			evs[j] = randomEvent(rng, 0)
		}
		rec := Record{Index: rng.Uint64() >> uint(rng.IntN(64)), NodeID: "node-7", Kind: mir.RecordDispatch, Module: "iss", Events: evs}
		want, err := mir.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := enc.appendRecord(nil, rec.Index, rec.NodeID, rec.Kind, rec.Module, rec.Events)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: record %d: encodings differ\n got  %x\n want %x", seed, i, got, want)
		}
		var back Record
		if err := mir.Unmarshal(got, &back); err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		again, err := mir.Marshal(back)
		if err != nil || !bytes.Equal(again, want) {
			t.Fatalf("seed %d: record %d does not survive a round trip (%v)", seed, i, err)
		}
	}
}

// TestEncoderError checks that values CBOR cannot encode give an error, not a
// panic.
func TestEncoderError(t *testing.T) {
	enc := newEncoder()
	ev := mir.NewEvent("a", testRich{Any: make(chan int)})
	if _, err := enc.encodeEvent(&ev); err == nil {
		t.Fatal("encoding a channel succeeded")
	}
}
