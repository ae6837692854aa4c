package pbft

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// ErrInvalidMessage is returned for a malformed or misaddressed message.
var ErrInvalidMessage = errors.New("pbft: invalid message")

// MaxSlots bounds the number of slots a message may describe.
const MaxSlots = 1 << 12

// Proposal is the value agreed on for one slot: a batch, or the aborted
// marker a new view puts where no batch can have been decided.
type Proposal struct {
	_       struct{} `cbor:",toarray"`
	Aborted bool
	Batch   ordering.Batch
}

var abortedDigest = sha256.Sum256([]byte("mirsubnet/pbft/aborted"))

// Digest returns the digest the protocol votes on.
func (p Proposal) Digest() ordering.Digest {
	if p.Aborted {
		return abortedDigest
	}
	return p.Batch.Hash()
}

// Check validates the proposal's shape.
func (p Proposal) Check() error {
	if p.Aborted && len(p.Batch.Txs) > 0 {
		return fmt.Errorf("%w: aborted proposal with transactions", ErrInvalidMessage)
	}
	return p.Batch.Check()
}

// SlotID names a slot: the segment's epoch and index and the sequence number.
type Header struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
	Seg   uint32
	View  uint64
}

// Preprepare is the leader's proposal for a slot in a view.
type Preprepare struct {
	_        struct{} `cbor:",toarray"`
	H        Header
	SeqNr    ordering.SeqNr
	Proposal Proposal
}

// Prepare is a replica's vote that it accepted the view's pre-prepare.
type Prepare struct {
	_      struct{} `cbor:",toarray"`
	H      Header
	SeqNr  ordering.SeqNr
	Digest ordering.Digest
}

// Commit is a replica's vote that the value is prepared.
type Commit struct {
	_      struct{} `cbor:",toarray"`
	H      Header
	SeqNr  ordering.SeqNr
	Digest ordering.Digest
}

// PEntry records that the sender prepared the proposal with Digest for
// SeqNr in View. Bodies do not travel in view changes (they would make them
// as large as a whole segment): nodes fetch the bodies they lack (FetchBody).
type PEntry struct {
	_      struct{} `cbor:",toarray"`
	SeqNr  ordering.SeqNr
	View   uint64
	Digest ordering.Digest
}

// QEntry records that the sender pre-prepared Digest for SeqNr, last in View.
type QEntry struct {
	_      struct{} `cbor:",toarray"`
	SeqNr  ordering.SeqNr
	View   uint64
	Digest ordering.Digest
}

// ViewChange announces that the sender moves to view H.View, with its
// prepared (PSet) and pre-prepared (QSet) slots.
type ViewChange struct {
	_    struct{} `cbor:",toarray"`
	H    Header
	PSet []PEntry
	QSet []QEntry
}

// SignedViewChange is a view change with its sender's signature, so that a
// new leader can forward it.
type SignedViewChange struct {
	_         struct{} `cbor:",toarray"`
	VC        ViewChange
	Signer    mir.NodeID
	Signature []byte
}

// Choice is a new view's value for one slot: the digest of a prepared
// proposal, or the aborted marker.
type Choice struct {
	_       struct{} `cbor:",toarray"`
	SeqNr   ordering.SeqNr
	Digest  ordering.Digest
	Aborted bool
}

// NewView is the new leader's proof (a strong quorum of signed view changes)
// and its choice for every slot of the segment (the pre-prepares of the new
// view, by digest).
type NewView struct {
	_           struct{} `cbor:",toarray"`
	H           Header
	ViewChanges []SignedViewChange
	Choices     []Choice
}

// FetchBody asks peers for the body of a proposal known only by digest.
type FetchBody struct {
	_      struct{} `cbor:",toarray"`
	H      Header
	SeqNr  ordering.SeqNr
	Digest ordering.Digest
}

// Body answers FetchBody; the receiver checks it against the digest.
type Body struct {
	_        struct{} `cbor:",toarray"`
	H        Header
	SeqNr    ordering.SeqNr
	Proposal Proposal
}

func init() {
	b := mir.TagBasePBFT
	mir.RegisterPayload(b+0, Preprepare{})
	mir.RegisterPayload(b+1, Prepare{})
	mir.RegisterPayload(b+2, Commit{})
	mir.RegisterPayload(b+3, SignedViewChange{})
	mir.RegisterPayload(b+4, NewView{})
	mir.RegisterPayload(b+5, WALPreprepare{})
	mir.RegisterPayload(b+6, WALCommit{})
	mir.RegisterPayload(b+7, WALViewChange{})
	mir.RegisterPayload(b+8, WALNewView{})
	mir.RegisterPayload(b+9, FetchBody{})
	mir.RegisterPayload(b+10, Body{})
}

// SignedData returns the byte strings a view change signature covers.
func (vc ViewChange) SignedData() ([][]byte, error) {
	enc, err := mir.Marshal(vc)
	if err != nil {
		return nil, err
	}
	return [][]byte{[]byte("mirsubnet/pbft/viewchange"), enc}, nil
}

// HeaderOf returns the header of a PBFT message and whether msg is one.
func HeaderOf(msg any) (Header, bool) {
	switch m := msg.(type) {
	case Preprepare:
		return m.H, true
	case Prepare:
		return m.H, true
	case Commit:
		return m.H, true
	case SignedViewChange:
		return m.VC.H, true
	case NewView:
		return m.H, true
	case FetchBody:
		return m.H, true
	case Body:
		return m.H, true
	}
	return Header{}, false
}

// WALPreprepare is persisted before a node sends its Prepare (replica) or
// Preprepare (leader) for a pre-prepare it accepted or made. Digest is
// authoritative; PP.Proposal holds the body unless NoBody (a new view's
// choice whose body the node did not have).
type WALPreprepare struct {
	_      struct{} `cbor:",toarray"`
	PP     Preprepare
	Digest ordering.Digest
	NoBody bool
}

// WALCommit is persisted before a node sends its Commit.
type WALCommit struct {
	_ struct{} `cbor:",toarray"`
	C Commit
}

// WALViewChange is persisted before a node sends its view change.
type WALViewChange struct {
	_   struct{} `cbor:",toarray"`
	SVC SignedViewChange
}

// WALNewView is persisted before a new leader sends its new view.
type WALNewView struct {
	_  struct{} `cbor:",toarray"`
	NV NewView
}
