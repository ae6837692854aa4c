package iss

import (
	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// --- The mempool contract (ISS -> mempool unless noted). ---

// RequestBatch asks the mempool for a batch of transactions from Buckets
// (of NumBuckets) within the limits. The mempool answers with NewBatch as
// soon as it can fill the batch, or after its batch timeout once it holds at
// least one matching transaction, or at once on CutBatch. Transactions it
// returns are not returned again until ResetProposals.
type RequestBatch struct {
	_          struct{} `cbor:",toarray"`
	ReqID      uint64
	Buckets    []int
	NumBuckets int
	MaxTxs     int
	MaxBytes   int
	ReplyTo    mir.ModuleID
}

// CutBatch asks the mempool to answer request ReqID now, even if empty.
type CutBatch struct {
	_     struct{} `cbor:",toarray"`
	ReqID uint64
}

// NewBatch answers a RequestBatch (mempool -> ISS).
type NewBatch struct {
	_     struct{} `cbor:",toarray"`
	ReqID uint64
	Txs   []ordering.Tx
}

// TxsDelivered tells the mempool that these transactions were delivered.
type TxsDelivered struct {
	_   struct{} `cbor:",toarray"`
	Txs []ordering.Tx
}

// ResetProposals makes every transaction the mempool handed out and did not
// see delivered available again, and forgets pending requests.
type ResetProposals struct {
	_ struct{} `cbor:",toarray"`
}

// SubmitTx submits a client transaction to the mempool.
type SubmitTx struct {
	_  struct{} `cbor:",toarray"`
	Tx ordering.Tx
}

// --- The application contract (ISS -> app unless noted). ---

// Deliver hands the application the batch decided at SeqNr. Aborted slots
// are delivered too (with no transactions) so the application sees every
// sequence number.
type Deliver struct {
	_        struct{} `cbor:",toarray"`
	SeqNr    ordering.SeqNr
	Epoch    ordering.Epoch
	Proposal pbft.Proposal
}

// SnapshotRequest asks the application for its state at the start of Epoch
// (after every batch delivered before it).
type SnapshotRequest struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
	SeqNr ordering.SeqNr
}

// StateSnapshot answers a SnapshotRequest (app -> ISS).
type StateSnapshot struct {
	_        struct{} `cbor:",toarray"`
	Epoch    ordering.Epoch
	Root     []byte
	Height   uint64
	BlockCID []byte
	Data     []byte
}

// RestoreState asks the application to replace its state by Data, taken at
// the start of the certificate's epoch.
type RestoreState struct {
	_    struct{} `cbor:",toarray"`
	Cert checkpoint.Certificate
	Data []byte
}

// StateRestored answers RestoreState (app -> ISS); Root is the restored
// state's root (checked against the certificate) or Err says why not.
type StateRestored struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
	Root  []byte
	Err   string
}

// StableCheckpoint tells the application a checkpoint became stable.
type StableCheckpoint struct {
	_    struct{} `cbor:",toarray"`
	Cert checkpoint.Certificate
}

// --- Timer events (timer -> ISS). ---

// ViewTimeout fires a PBFT instance's view timer.
type ViewTimeout struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
	Seg   uint32
	View  uint64
}

// ResendTick drives retransmission and status exchange.
type ResendTick struct {
	_ struct{} `cbor:",toarray"`
}

// CutTimeout fires when a leader waited EmptyProposalPeriod for a batch.
type CutTimeout struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
	ReqID uint64
}

// Durable reports (WAL -> ISS, as a follow-up of the append) that the
// message persisted with sequence number Seq is durable: from then on it may
// be retransmitted.
type Durable struct {
	_   struct{} `cbor:",toarray"`
	Seq uint64
}

// --- Network messages between ISS modules. ---

// CheckpointMsg carries a validator's signature over its checkpoint.
type CheckpointMsg struct {
	_          struct{} `cbor:",toarray"`
	Checkpoint checkpoint.Checkpoint
	Signature  []byte
}

// Status announces how far the sender got (sent every ResendPeriod).
type Status struct {
	_           struct{} `cbor:",toarray"`
	Epoch       ordering.Epoch
	NextDeliver ordering.SeqNr
}

// SlotValue is a decided slot.
type SlotValue struct {
	_        struct{} `cbor:",toarray"`
	SeqNr    ordering.SeqNr
	Proposal pbft.Proposal
}

// CommittedSlots answers a Status with decided slots the sender lacks.
type CommittedSlots struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
	Slots []SlotValue
}

// StableCert offers the sender's latest stable checkpoint certificate.
type StableCert struct {
	_    struct{} `cbor:",toarray"`
	Cert checkpoint.Certificate
}

// SnapshotFetch asks a peer for the state at a stable checkpoint (or newer).
type SnapshotFetch struct {
	_     struct{} `cbor:",toarray"`
	Epoch ordering.Epoch
}

// SnapshotData answers SnapshotFetch.
type SnapshotData struct {
	_    struct{} `cbor:",toarray"`
	Cert checkpoint.Certificate
	Data []byte
}

// --- WAL entries. ---

// WALStable records a stable checkpoint and the state at it; recovery
// restarts from the latest one.
type WALStable struct {
	_    struct{} `cbor:",toarray"`
	Cert checkpoint.Certificate
	Data []byte
}

// WALCheckpointSig records this node's checkpoint signature before sending.
type WALCheckpointSig struct {
	_   struct{} `cbor:",toarray"`
	Msg CheckpointMsg
}

func init() {
	b := mir.TagBaseISS
	for i, p := range []any{
		RequestBatch{}, CutBatch{}, NewBatch{}, TxsDelivered{}, ResetProposals{}, SubmitTx{},
		Deliver{}, SnapshotRequest{}, StateSnapshot{}, RestoreState{}, StateRestored{}, StableCheckpoint{},
		ViewTimeout{}, ResendTick{}, CutTimeout{},
		CheckpointMsg{}, Status{}, CommittedSlots{}, StableCert{}, SnapshotFetch{}, SnapshotData{},
		WALStable{}, WALCheckpointSig{}, Durable{},
	} {
		mir.RegisterPayload(b+uint64(i), p)
	}
}
