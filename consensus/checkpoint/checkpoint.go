package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"

	"github.com/mirsubnet/mirsubnet/consensus/internal/bugs"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// Errors of certificate verification.
var (
	ErrInvalid       = errors.New("checkpoint: invalid")
	ErrNoQuorum      = errors.New("checkpoint: signatures do not reach a strong quorum")
	ErrBadSignature  = errors.New("checkpoint: bad signature")
	ErrBrokenChain   = errors.New("checkpoint: certificate chain broken")
	ErrNoMembership  = errors.New("checkpoint: membership of the signing epoch unknown")
	ErrSignerUnknown = errors.New("checkpoint: signer not a validator of the signing epoch")
)

// Hash is a checkpoint's SHA-256 digest.
type Hash [32]byte

// Checkpoint is the agreed state at the start of Epoch.
type Checkpoint struct {
	_ struct{} `cbor:",toarray"`
	// Epoch is the epoch that starts at this checkpoint.
	Epoch ordering.Epoch
	// SeqNr is the first sequence number of Epoch.
	SeqNr ordering.SeqNr
	// StateRoot is the application's digest of its state after SeqNr-1.
	StateRoot []byte
	// Height and BlockCID identify the chain's last block (0 and nil for
	// applications without blocks).
	Height   uint64
	BlockCID []byte
	// Leaders of Epoch, in order (derived from the delivered log).
	Leaders []mir.NodeID
	// Bans are the leader bans in force at the start of Epoch, sorted by
	// node (derived from the delivered log, see iss.NextBans).
	Bans []Ban
	// Memberships[i] is the validator set of epoch Epoch+i.
	Memberships []*membership.Set
	// PrevHash is the hash of the checkpoint of the previous epoch (zero for
	// genesis).
	PrevHash Hash
}

// Hash returns the checkpoint's digest (over its deterministic encoding).
func (c Checkpoint) Hash() Hash {
	enc, err := mir.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("checkpoint: encode: %v", err))
	}
	return sha256.Sum256(enc)
}

// SignedData returns the byte strings a checkpoint signature covers.
func (c Checkpoint) SignedData() [][]byte {
	h := c.Hash()
	return [][]byte{[]byte("mirsubnet/checkpoint"), h[:]}
}

// Check validates the checkpoint's shape.
func (c Checkpoint) Check() error {
	if len(c.Memberships) == 0 {
		return fmt.Errorf("%w: no memberships", ErrInvalid)
	}
	for i, m := range c.Memberships {
		if m == nil || m.Len() == 0 {
			return fmt.Errorf("%w: membership %d empty", ErrInvalid, i)
		}
	}
	if len(c.Leaders) == 0 {
		return fmt.Errorf("%w: no leaders", ErrInvalid)
	}
	seen := map[mir.NodeID]bool{}
	for _, l := range c.Leaders {
		if seen[l] || !c.Memberships[0].Contains(l) {
			return fmt.Errorf("%w: leader %q duplicated or not a validator", ErrInvalid, l)
		}
		seen[l] = true
	}
	for i, b := range c.Bans {
		if i > 0 && c.Bans[i-1].Node >= b.Node {
			return fmt.Errorf("%w: bans not sorted", ErrInvalid)
		}
	}
	if len(c.StateRoot) > 64 || len(c.BlockCID) > 128 {
		return fmt.Errorf("%w: oversized state root or block CID", ErrInvalid)
	}
	return nil
}

// Ban excludes Node from the leader set of every epoch before Until.
// Strikes counts its recent offences (segments that needed a view change);
// each one doubles the next ban.
type Ban struct {
	_       struct{} `cbor:",toarray"`
	Node    mir.NodeID
	Until   ordering.Epoch
	Strikes uint32
}

// Membership returns the validator set of epoch e if the checkpoint knows it.
func (c Checkpoint) Membership(e ordering.Epoch) (*membership.Set, bool) {
	if e < c.Epoch || e-c.Epoch >= uint64(len(c.Memberships)) {
		return nil, false
	}
	return c.Memberships[e-c.Epoch], true
}

// Signature is one validator's signature over a checkpoint.
type Signature struct {
	_      struct{} `cbor:",toarray"`
	Signer mir.NodeID
	Sig    []byte
}

// Certificate is a checkpoint with a strong quorum of signatures, sorted by
// signer.
type Certificate struct {
	_          struct{} `cbor:",toarray"`
	Checkpoint Checkpoint
	Sigs       []Signature
}

// Verify checks that the certificate's signatures are valid signatures by
// distinct members of signers whose weight forms a strong quorum.
func (cert Certificate) Verify(signers *membership.Set, v ordering.Verifier) error {
	if err := cert.Checkpoint.Check(); err != nil {
		return err
	}
	data := cert.Checkpoint.SignedData()
	t := signers.NewTally()
	for _, s := range cert.Sigs {
		if !signers.Contains(s.Signer) {
			return fmt.Errorf("%w: %q", ErrSignerUnknown, s.Signer)
		}
		if !bugs.On(bugs.SkipSignatureCheck) {
			if err := v.Verify(s.Signer, data, s.Sig); err != nil {
				return fmt.Errorf("%w by %s: %v", ErrBadSignature, s.Signer, err)
			}
		}
		t.Add(s.Signer)
	}
	if !Stable(t) {
		return fmt.Errorf("%w: %d signers of epoch %d", ErrNoQuorum, t.Count(), cert.Checkpoint.Epoch)
	}
	return nil
}

// Stable reports whether a tally of matching signatures makes a checkpoint
// stable: a strong quorum.
func Stable(t *membership.Tally) bool {
	if bugs.On(bugs.CheckpointWeakQuorum) {
		return t.Weak()
	}
	return t.Strong()
}

// NewCertificate assembles a certificate, sorting signatures by signer.
func NewCertificate(c Checkpoint, sigs map[mir.NodeID][]byte) Certificate {
	cert := Certificate{Checkpoint: c}
	for id, s := range sigs {
		cert.Sigs = append(cert.Sigs, Signature{Signer: id, Sig: s})
	}
	sort.Slice(cert.Sigs, func(i, j int) bool { return cert.Sigs[i].Signer < cert.Sigs[j].Signer })
	return cert
}

// Genesis returns the genesis checkpoint: epoch 0, sequence number 0, the
// initial state root, every validator a leader, and the same validator set
// for the first `offset` epochs.
func Genesis(set *membership.Set, stateRoot []byte, offset int) Checkpoint {
	if offset < 1 {
		offset = 1
	}
	ms := make([]*membership.Set, offset)
	for i := range ms {
		ms[i] = set
	}
	return Checkpoint{Epoch: 0, SeqNr: 0, StateRoot: append([]byte(nil), stateRoot...), Leaders: set.IDs(), Memberships: ms}
}

// VerifyChain verifies certs, in ascending epoch order, starting from the
// trusted checkpoint genesis: each certificate is signed by a strong quorum of
// the validators of the epoch before its own (as the previous checkpoint in
// the chain defines them) and links to its predecessor by PrevHash, which
// requires consecutive epochs. It returns the last verified checkpoint.
func VerifyChain(genesis Checkpoint, certs []Certificate, v ordering.Verifier) (Checkpoint, error) {
	prev := genesis
	for i, cert := range certs {
		c := cert.Checkpoint
		if c.Epoch != prev.Epoch+1 {
			return prev, fmt.Errorf("%w: certificate %d is for epoch %d after epoch %d", ErrBrokenChain, i, c.Epoch, prev.Epoch)
		}
		if c.PrevHash != prev.Hash() {
			return prev, fmt.Errorf("%w: certificate %d (epoch %d) does not link to epoch %d", ErrBrokenChain, i, c.Epoch, prev.Epoch)
		}
		if c.SeqNr < prev.SeqNr {
			return prev, fmt.Errorf("%w: certificate %d goes back in sequence numbers", ErrBrokenChain, i)
		}
		signers, ok := prev.Membership(c.Epoch - 1)
		if !ok {
			return prev, fmt.Errorf("%w: epoch %d", ErrNoMembership, c.Epoch-1)
		}
		// The validator sets the checkpoint repeats must agree with what the
		// previous checkpoint already fixed.
		for e := c.Epoch; e < prev.Epoch+uint64(len(prev.Memberships)); e++ {
			old, _ := prev.Membership(e)
			cur, ok := c.Membership(e)
			if !ok || !old.Equal(cur) {
				return prev, fmt.Errorf("%w: certificate %d changes the fixed validator set of epoch %d", ErrBrokenChain, i, e)
			}
		}
		if err := cert.Verify(signers, v); err != nil {
			return prev, fmt.Errorf("certificate %d (epoch %d): %w", i, c.Epoch, err)
		}
		prev = c
	}
	return prev, nil
}

// Equal reports whether two checkpoints are identical.
func (c Checkpoint) Equal(o Checkpoint) bool {
	a, b := c.Hash(), o.Hash()
	return bytes.Equal(a[:], b[:])
}

func init() {
	mir.RegisterPayload(mir.TagBaseCheckpoint+0, Certificate{})
}
