package kvstore

import (
	"bytes"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// TestAppModule drives the store through iss.AppModule as ISS would:
// deliveries (one aborted), a snapshot request, and a restore on another
// node, including a rejected restore.
func TestAppModule(t *testing.T) {
	a, b := New(), New()
	ma, mb := iss.NewAppModule(a, "iss", nil), iss.NewAppModule(b, "iss", nil)
	deliver := func(sn ordering.SeqNr, p pbft.Proposal) mir.Event {
		return mir.NewEvent("app", iss.Deliver{SeqNr: sn, Proposal: p})
	}
	evs := mir.EventList{
		deliver(0, pbft.Proposal{Batch: ordering.Batch{Txs: []ordering.Tx{setTx("alice", 0, "k", "v")}}}),
		deliver(1, pbft.Proposal{Aborted: true}),
		deliver(2, pbft.Proposal{Batch: ordering.Batch{Txs: []ordering.Tx{setTx("alice", 1, "k", "w"), setTx("alice", 1, "k", "dup")}}}),
		mir.NewEvent("app", iss.SnapshotRequest{Epoch: 1, SeqNr: 3}),
	}
	out, err := ma.ApplyEvents(evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d output events, want 1", len(out))
	}
	snap, ok := out[0].Payload.(iss.StateSnapshot)
	if !ok || !bytes.Equal(snap.Root, a.Root()) {
		t.Fatalf("unexpected %#v", out[0].Payload)
	}
	if v, _ := a.Get("k"); string(v) != "w" || a.NextSeqNr() != 3 {
		t.Fatalf("k = %q, next sequence number %d", v, a.NextSeqNr())
	}
	cert := checkpoint.Certificate{Checkpoint: checkpoint.Checkpoint{Epoch: 1, SeqNr: 3, StateRoot: snap.Root}}
	out, err = mb.ApplyEvents(mir.EventList{
		mir.NewEvent("app", iss.RestoreState{Cert: cert, Data: snap.Data[:len(snap.Data)-1]}),
		mir.NewEvent("app", iss.RestoreState{Cert: cert, Data: snap.Data}),
		deliver(3, pbft.Proposal{Batch: ordering.Batch{Txs: []ordering.Tx{setTx("alice", 2, "k", "x")}}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if bad := out[0].Payload.(iss.StateRestored); bad.Err == "" {
		t.Fatal("truncated snapshot restored")
	}
	if good := out[1].Payload.(iss.StateRestored); good.Err != "" || !bytes.Equal(good.Root, snap.Root) {
		t.Fatalf("restore: %+v", good)
	}
	if _, err := ma.ApplyEvents(mir.EventList{deliver(3, pbft.Proposal{Batch: ordering.Batch{Txs: []ordering.Tx{setTx("alice", 2, "k", "x")}}})}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Root(), b.Root()) {
		t.Fatal("restored node diverged")
	}
	if _, err := ma.ApplyEvents(mir.EventList{deliver(7, pbft.Proposal{})}); err == nil {
		t.Fatal("out-of-order delivery accepted")
	}
}
