package iss_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed seed corpus in testdata/fuzz")

// fuzzEnv holds the keys of a 4-node system, derived once.
var fuzzEnv = sync.OnceValue(func() (env struct {
	ids     []mir.NodeID
	set     *membership.Set
	signers []*crypto.Signer
	reg     *crypto.Registry
	genesis checkpoint.Checkpoint
}) {
	env.ids = []mir.NodeID{"n0", "n1", "n2", "n3"}
	env.set = membership.TestSet(env.ids, nil)
	keys := crypto.TestKeys(1, 4)
	pubs := map[mir.NodeID]ic.PubKey{}
	for i, id := range env.ids {
		s, err := crypto.NewSigner(keys[i].Priv)
		if err != nil {
			panic(err)
		}
		env.signers = append(env.signers, s)
		pubs[id] = keys[i].Pub
	}
	reg, err := crypto.NewRegistry(pubs)
	if err != nil {
		panic(err)
	}
	env.reg = reg
	env.genesis = checkpoint.Genesis(env.set, new(iss.HashChainApp).Root(), 2)
	return env
})

func fuzzParams() iss.Params {
	p := iss.DefaultParams()
	p.SegmentLength, p.NumBuckets, p.MaxInFlight = 2, 8, 2
	p.EmptyProposalPeriod, p.ViewChangeTimeout = 100*time.Millisecond, 800*time.Millisecond
	return p
}

// startedNode returns n0's ISS module after Init and an empty WAL recovery.
func startedNode(t testing.TB) *iss.ISS {
	env := fuzzEnv()
	s, err := iss.New(iss.Config{Self: "n0", Genesis: env.genesis, Params: fuzzParams(), Signer: env.signers[0], Verifier: env.reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []any{events.Init{}, events.WALRecovered{}} {
		if _, err := s.ApplyEvents(mir.EventList{mir.NewEvent("iss", p)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// FuzzISSMessages: whatever bytes a peer sends, if they decode to a payload,
// delivering it to a started node as a message from a member neither panics
// nor returns an error (malformed messages are dropped).
func FuzzISSMessages(f *testing.F) {
	for _, m := range fuzzSamples(f) {
		data, err := mir.EncodePayload(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := mir.DecodePayload(data)
		if err != nil {
			return
		}
		s := startedNode(t)
		for _, from := range []mir.NodeID{"n1", "n1", "n2", "n3"} {
			if _, err := s.ApplyEvents(mir.EventList{mir.NewEvent("iss", events.MessageReceived{From: from, Msg: msg})}); err != nil {
				t.Fatalf("message %T from %s: %v", msg, from, err)
			}
		}
	})
}

// fuzzSamples returns a valid message of every type ISS receives.
func fuzzSamples(t testing.TB) []any {
	env := fuzzEnv()
	batch := ordering.Batch{Txs: []ordering.Tx{{Sender: "client-01", Nonce: 1, Data: []byte("x")}}}
	prop := pbft.Proposal{Batch: batch}
	d := prop.Digest()
	h0 := pbft.Header{Epoch: 0, Seg: 1, View: 0}
	h1 := pbft.Header{Epoch: 0, Seg: 1, View: 1}
	var svcs []pbft.SignedViewChange
	for i, id := range env.ids[1:] {
		vc := pbft.ViewChange{H: h1, QSet: []pbft.QEntry{{SeqNr: 1, View: 0, Digest: d}}}
		if i == 0 {
			vc.PSet = []pbft.PEntry{{SeqNr: 1, View: 0, Digest: d}}
		}
		data, err := vc.SignedData()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := env.signers[i+1].Sign(data)
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, pbft.SignedViewChange{VC: vc, Signer: id, Signature: sig})
	}
	nv := pbft.NewView{H: h1, ViewChanges: svcs, Choices: []pbft.Choice{
		{SeqNr: 1, Digest: d}, {SeqNr: 5, Digest: pbft.Proposal{Aborted: true}.Digest(), Aborted: true}}}
	ck := checkpoint.Checkpoint{Epoch: 1, SeqNr: 8, StateRoot: []byte{1}, Leaders: env.ids,
		Memberships: []*membership.Set{env.set, env.set}, PrevHash: env.genesis.Hash()}
	sig, err := env.signers[1].Sign(ck.SignedData())
	if err != nil {
		t.Fatal(err)
	}
	sigs := map[mir.NodeID][]byte{}
	for i := 1; i < 4; i++ {
		s, err := env.signers[i].Sign(ck.SignedData())
		if err != nil {
			t.Fatal(err)
		}
		sigs[env.ids[i]] = s
	}
	cert := checkpoint.NewCertificate(ck, sigs)
	return []any{
		pbft.Preprepare{H: h0, SeqNr: 1, Proposal: prop},
		pbft.Prepare{H: h0, SeqNr: 1, Digest: d},
		pbft.Commit{H: h0, SeqNr: 1, Digest: d},
		svcs[0],
		nv,
		iss.CheckpointMsg{Checkpoint: ck, Signature: sig},
		iss.Status{Epoch: 0, NextDeliver: 0},
		iss.CommittedSlots{Epoch: 0, Slots: []iss.SlotValue{{SeqNr: 0, Proposal: prop}, {SeqNr: 1, Proposal: pbft.Proposal{Aborted: true}}}},
		iss.StableCert{Cert: cert},
		iss.SnapshotFetch{Epoch: 1},
		iss.SnapshotData{Cert: cert, Data: make([]byte, 40)},
		iss.GossipTx{Txs: batch.Txs},
		pbft.Preprepare{H: pbft.Header{Epoch: 1, Seg: 0}, SeqNr: 8, Proposal: prop}, // next epoch: buffered
	}
}

// TestFuzzSamplesAccepted feeds every sample once (the seed corpus must
// exercise real code paths, not only decoding).
func TestFuzzSamplesAccepted(t *testing.T) {
	for _, m := range fuzzSamples(t) {
		s := startedNode(t)
		if _, err := s.ApplyEvents(mir.EventList{mir.NewEvent("iss", events.MessageReceived{From: "n1", Msg: m})}); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
	}
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzISSMessages with valid
// encodings of every message type (and truncated copies) when run with
// -update-corpus:
//
//	go test ./consensus/iss -run TestWriteFuzzCorpus -update-corpus
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzISSMessages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range fuzzSamples(t) {
		data, err := mir.EncodePayload(m)
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("valid-%02d", i), data)
		write(fmt.Sprintf("truncated-%02d", i), data[:len(data)/2])
	}
}
