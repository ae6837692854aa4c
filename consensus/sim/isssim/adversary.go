package isssim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

// EquivocationCheck returns a sim.Scenario.SentCheck that flags a correct
// node sending two different votes (pre-prepare, prepare or commit digests)
// for one slot in one view, across all its incarnations: what a node that
// sends before its vote is durable does after a crash.
func EquivocationCheck() func(ep sim.Endpoint, msg any) string {
	type key struct {
		node  mir.NodeID
		kind  uint8
		epoch ordering.Epoch
		seg   uint32
		view  uint64
		sn    ordering.SeqNr
	}
	votes := map[key]ordering.Digest{}
	return func(ep sim.Endpoint, msg any) string {
		var k key
		var d ordering.Digest
		switch m := msg.(type) {
		case pbft.Preprepare:
			k = key{ep.ID, 1, m.H.Epoch, m.H.Seg, m.H.View, m.SeqNr}
			d = m.Proposal.Digest()
		case pbft.Prepare:
			k = key{ep.ID, 2, m.H.Epoch, m.H.Seg, m.H.View, m.SeqNr}
			d = m.Digest
		case pbft.Commit:
			k = key{ep.ID, 3, m.H.Epoch, m.H.Seg, m.H.View, m.SeqNr}
			d = m.Digest
		default:
			return ""
		}
		if old, ok := votes[k]; ok && old != d {
			return fmt.Sprintf("node %s sent %T for epoch %d segment %d view %d seqNr %d with digest %s after sending %s",
				ep.ID, msg, k.epoch, k.seg, k.view, k.sn, d, old)
		}
		votes[k] = d
		return ""
	}
}

// Forger wraps the ISS module of a Byzantine node: besides running the
// protocol it offers every peer, at every retransmission tick, a stable
// checkpoint certificate for a far-future epoch with made-up signatures of
// every validator, and answers snapshot requests with matching state. A node
// that skips signature checks jumps to that state.
type Forger struct {
	inner mir.PassiveModule
	self  mir.NodeID
	peers []mir.NodeID
	cert  checkpoint.Certificate
	data  []byte
}

// NewForger wraps inner for node self of the membership set.
func NewForger(inner mir.PassiveModule, self mir.NodeID, set *membership.Set, offset int) *Forger {
	data := make([]byte, 40)
	copy(data, []byte("forged state"))
	binary.BigEndian.PutUint64(data[32:], 1_000_000)
	root := sha256.Sum256(data)
	ms := make([]*membership.Set, offset)
	for i := range ms {
		ms[i] = set
	}
	ck := checkpoint.Checkpoint{Epoch: 10_000, SeqNr: 1_000_000, StateRoot: root[:], Leaders: set.IDs(), Memberships: ms}
	sigs := map[mir.NodeID][]byte{}
	for _, id := range set.IDs() {
		sigs[id] = make([]byte, 64)
	}
	var peers []mir.NodeID
	for _, id := range set.IDs() {
		if id != self {
			peers = append(peers, id)
		}
	}
	return &Forger{inner: inner, self: self, peers: peers, cert: checkpoint.NewCertificate(ck, sigs), data: data}
}

// ApplyEvents implements mir.PassiveModule.
func (f *Forger) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	out, err := f.inner.ApplyEvents(evs)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		switch ev := e.Payload.(type) {
		case iss.ResendTick:
			out = append(out, mir.NewEvent(sim.NetModule, events.SendMessage{Destinations: f.peers, DestModule: "iss", Msg: iss.StableCert{Cert: f.cert}}))
		case events.MessageReceived:
			if _, ok := ev.Msg.(iss.SnapshotFetch); ok {
				out = append(out, mir.NewEvent(sim.NetModule, events.SendMessage{Destinations: []mir.NodeID{ev.From}, DestModule: "iss",
					Msg: iss.SnapshotData{Cert: f.cert, Data: f.data}}))
			}
		}
	}
	return out, nil
}
