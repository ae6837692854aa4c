package checkpoint_test

import (
	"errors"
	"fmt"
	"testing"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// world holds keys for n0..n5 and a registry that knows all of them (so a
// signature by a non-member verifies cryptographically and only the
// membership check can reject it).
type world struct {
	signers map[mir.NodeID]*crypto.Signer
	reg     *crypto.Registry
}

func newWorld(t *testing.T) *world {
	t.Helper()
	keys := crypto.TestKeys(7, 6)
	w := &world{signers: map[mir.NodeID]*crypto.Signer{}}
	pubs := map[mir.NodeID]ic.PubKey{}
	for i, k := range keys {
		id := mir.NodeID(fmt.Sprintf("n%d", i))
		s, err := crypto.NewSigner(k.Priv)
		if err != nil {
			t.Fatal(err)
		}
		w.signers[id], pubs[id] = s, k.Pub
	}
	var err error
	if w.reg, err = crypto.NewRegistry(pubs); err != nil {
		t.Fatal(err)
	}
	return w
}

func ids(names ...string) []mir.NodeID {
	out := make([]mir.NodeID, len(names))
	for i, n := range names {
		out[i] = mir.NodeID(n)
	}
	return out
}

// certify signs c by each of by.
func (w *world) certify(t *testing.T, c checkpoint.Checkpoint, by ...mir.NodeID) checkpoint.Certificate {
	t.Helper()
	sigs := map[mir.NodeID][]byte{}
	for _, id := range by {
		sig, err := w.signers[id].Sign(c.SignedData())
		if err != nil {
			t.Fatal(err)
		}
		sigs[id] = sig
	}
	return checkpoint.NewCertificate(c, sigs)
}

var (
	setA = membership.TestSet(ids("n0", "n1", "n2", "n3"), nil)
	// setB adds n4 (a reconfiguration announced by the checkpoint of epoch 1
	// for epoch 3, with offset 2).
	setB = membership.TestSet(ids("n0", "n1", "n2", "n3", "n4"), nil)
)

// next returns the checkpoint of the epoch after prev with the given set for
// the newly fixed epoch (offset 2: Memberships = [epoch, epoch+1]).
func next(prev checkpoint.Checkpoint, newSet *membership.Set) checkpoint.Checkpoint {
	e := prev.Epoch + 1
	cur, _ := prev.Membership(e)
	return checkpoint.Checkpoint{
		Epoch: e, SeqNr: prev.SeqNr + 8, StateRoot: []byte{byte(e)}, Leaders: cur.IDs(),
		Memberships: []*membership.Set{cur, newSet}, PrevHash: prev.Hash(),
	}
}

// chain returns genesis and certificates for epochs 1..4. With offset 2,
// checkpoint e fixes the validator sets of epochs e and e+1: epoch 1 fixes
// [A, A], epoch 2 fixes [A, B] (n4 joins in epoch 3), epochs 3 and 4 fix
// [B, B]. Each certificate is signed by the validators of the epoch before
// it, so the certificate of epoch 4 is the first one B signs.
func chain(t *testing.T, w *world) (checkpoint.Checkpoint, []checkpoint.Certificate) {
	g := checkpoint.Genesis(setA, []byte("root"), 2)
	c1 := next(g, setA)
	c2 := next(c1, setB)
	c3 := next(c2, setB)
	c4 := next(c3, setB)
	return g, []checkpoint.Certificate{
		w.certify(t, c1, ids("n0", "n1", "n2")...),
		w.certify(t, c2, ids("n1", "n2", "n3")...),
		w.certify(t, c3, ids("n0", "n2", "n3", "n1")...),
		// signed by setB (the validators of epoch 3): 4 of 5 > 2/3.
		w.certify(t, c4, ids("n1", "n2", "n3", "n4")...),
	}
}

func TestVerifyChainValid(t *testing.T) {
	w := newWorld(t)
	g, certs := chain(t, w)
	last, err := checkpoint.VerifyChain(g, certs, w.reg)
	if err != nil {
		t.Fatal(err)
	}
	if last.Epoch != 4 || !last.Equal(certs[3].Checkpoint) {
		t.Fatalf("VerifyChain returned epoch %d, want the checkpoint of epoch 4", last.Epoch)
	}
	if last, err := checkpoint.VerifyChain(g, nil, w.reg); err != nil || !last.Equal(g) {
		t.Fatalf("empty chain: %v", err)
	}
}

func TestVerifyChainRejects(t *testing.T) {
	w := newWorld(t)
	g, good := chain(t, w)
	clone := func() []checkpoint.Certificate { return append([]checkpoint.Certificate(nil), good...) }
	cases := []struct {
		name string
		edit func([]checkpoint.Certificate) []checkpoint.Certificate
		want error
		// lastGood is the epoch VerifyChain reports as verified.
		lastGood uint64
	}{
		{"missing link", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			c := cs[1].Checkpoint
			c.PrevHash[0] ^= 1
			cs[1] = w.certify(t, c, ids("n1", "n2", "n3")...) // validly signed, but links nowhere
			return cs
		}, checkpoint.ErrBrokenChain, 1},
		{"skipped epoch", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			return append(cs[:1], cs[2:]...)
		}, checkpoint.ErrBrokenChain, 1},
		{"skipped epoch with relinked hash", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			c := cs[2].Checkpoint
			c.PrevHash = cs[0].Checkpoint.Hash()
			cs[2] = w.certify(t, c, ids("n0", "n1", "n2")...)
			return append(cs[:1], cs[2:]...)
		}, checkpoint.ErrBrokenChain, 1},
		{"weak quorum weight", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			cs[1] = w.certify(t, cs[1].Checkpoint, ids("n1", "n2")...) // 2 of 4: > 1/3, not > 2/3
			return cs
		}, checkpoint.ErrNoQuorum, 1},
		{"duplicate signer counted once", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			cert := w.certify(t, cs[1].Checkpoint, ids("n1", "n2")...)
			cert.Sigs = append(cert.Sigs, cert.Sigs[0])
			cs[1] = cert
			return cs
		}, checkpoint.ErrNoQuorum, 1},
		{"forged signature", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			cert := cs[2]
			cert.Sigs = append([]checkpoint.Signature(nil), cert.Sigs...)
			sig := append([]byte(nil), cert.Sigs[1].Sig...)
			sig[3] ^= 0x40
			cert.Sigs[1].Sig = sig
			cs[2] = cert
			return cs
		}, checkpoint.ErrBadSignature, 2},
		{"signature of another checkpoint", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			cert := cs[2]
			cert.Sigs = append([]checkpoint.Signature(nil), cert.Sigs...)
			cert.Sigs[0].Sig = cs[1].Sigs[0].Sig
			cs[2] = cert
			return cs
		}, checkpoint.ErrBadSignature, 2},
		{"signer not in the set", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			// n4 joins only in epoch 3: it may not sign the checkpoint of
			// epoch 3 (signed by the validators of epoch 2).
			cs[2] = w.certify(t, cs[2].Checkpoint, ids("n0", "n1", "n2", "n4")...)
			return cs
		}, checkpoint.ErrSignerUnknown, 2},
		{"changes a fixed validator set", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			// The checkpoint of epoch 2 fixed setB for epoch 3; epoch 3's
			// checkpoint claims setA for epoch 3.
			c := cs[2].Checkpoint
			c.Memberships = []*membership.Set{setA, setA}
			c.Leaders = setA.IDs()
			cs[2] = w.certify(t, c, ids("n0", "n1", "n2", "n3")...)
			return cs[:3]
		}, checkpoint.ErrBrokenChain, 2},
		{"drops a fixed validator set", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			c := cs[0].Checkpoint
			c.Memberships = nil
			cs[0] = w.certify(t, c, ids("n0", "n1", "n2")...)
			return cs
		}, checkpoint.ErrBrokenChain, 0},
		{"goes back in sequence numbers", func(cs []checkpoint.Certificate) []checkpoint.Certificate {
			c := cs[2].Checkpoint
			c.SeqNr = cs[1].Checkpoint.SeqNr - 1
			cs[2] = w.certify(t, c, ids("n0", "n1", "n2")...)
			return cs[:3]
		}, checkpoint.ErrBrokenChain, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			last, err := checkpoint.VerifyChain(g, tc.edit(clone()), w.reg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyChain: %v, want %v", err, tc.want)
			}
			if last.Epoch != tc.lastGood {
				t.Fatalf("VerifyChain reports epoch %d verified, want %d", last.Epoch, tc.lastGood)
			}
		})
	}
}

// TestCertificateVerifyWeights: quorums are weighted, never head counts.
func TestCertificateVerifyWeights(t *testing.T) {
	w := newWorld(t)
	// Total 8: a strong quorum needs more than 16/3, so 6.
	set := membership.TestSet(ids("n0", "n1", "n2", "n3"), []uint64{5, 1, 1, 1})
	c := checkpoint.Genesis(set, []byte("r"), 1)
	c.Epoch, c.SeqNr = 1, 4
	for _, tc := range []struct {
		by   []mir.NodeID
		want error
	}{
		{ids("n0", "n1"), nil},                          // weight 6 of 8, two heads of four
		{ids("n1", "n2", "n3"), checkpoint.ErrNoQuorum}, // three heads of four, weight 3
		{ids("n0"), checkpoint.ErrNoQuorum},             // weight 5: weak, not strong
		{ids("n0", "n1", "n2", "n3"), nil},
	} {
		err := w.certify(t, c, tc.by...).Verify(set, w.reg)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("signed by %v: Verify = %v, want %v", tc.by, err, tc.want)
		}
	}
	// A signer outside the set is rejected even if its signature is valid.
	if err := w.certify(t, c, ids("n0", "n1", "n5")...).Verify(set, w.reg); !errors.Is(err, checkpoint.ErrSignerUnknown) {
		t.Errorf("outsider signature: %v", err)
	}
	// A malformed checkpoint is rejected before any signature is checked.
	bad := c
	bad.Leaders = nil
	if err := w.certify(t, bad, ids("n0", "n1")...).Verify(set, w.reg); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Errorf("checkpoint without leaders: %v", err)
	}
}
