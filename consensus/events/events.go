package events

import (
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Init is delivered once to every module when a node starts.
type Init struct {
	_ struct{} `cbor:",toarray"`
}

// SendMessage asks the transport to send Msg (a registered payload) to the
// module DestModule on each of Destinations. Delivery is best effort: the
// transport may drop (and counts what it drops); protocols retransmit.
type SendMessage struct {
	_            struct{} `cbor:",toarray"`
	Destinations []mir.NodeID
	DestModule   mir.ModuleID
	Msg          any
}

// MessageReceived is emitted by the transport to the message's DestModule.
// From is the authenticated sender, never a field taken from the message.
type MessageReceived struct {
	_    struct{} `cbor:",toarray"`
	From mir.NodeID
	Msg  any
}

// TimerDelay asks the timer to emit Events once After has passed.
type TimerDelay struct {
	_      struct{} `cbor:",toarray"`
	Events []mir.Event
	After  time.Duration
	// RetentionIndex: a TimerGarbageCollect with a higher index cancels it.
	RetentionIndex uint64
}

// TimerRepeat asks the timer to emit Events every Period until cancelled.
type TimerRepeat struct {
	_              struct{} `cbor:",toarray"`
	Events         []mir.Event
	Period         time.Duration
	RetentionIndex uint64
}

// TimerGarbageCollect cancels every pending delay and repeat whose retention
// index is below RetentionIndex.
type TimerGarbageCollect struct {
	_              struct{} `cbor:",toarray"`
	RetentionIndex uint64
}

// SignRequest asks the crypto module to sign the concatenation of Data with
// the node's key. The answer is a SignResult to ReplyTo.
type SignRequest struct {
	_       struct{} `cbor:",toarray"`
	Data    [][]byte
	ReplyTo mir.ModuleID
	Context any
}

// SignResult carries the signature for a SignRequest.
type SignResult struct {
	_         struct{} `cbor:",toarray"`
	Signature []byte
	Context   any
}

// SigItem is one signature to verify: Signer's signature over the
// concatenation of Data.
type SigItem struct {
	_         struct{} `cbor:",toarray"`
	Data      [][]byte
	Signature []byte
	Signer    mir.NodeID
}

// VerifyRequest asks the crypto module to verify signatures. The answer is
// a VerifyResult to ReplyTo with one entry per item, in order.
type VerifyRequest struct {
	_       struct{} `cbor:",toarray"`
	Items   []SigItem
	ReplyTo mir.ModuleID
	Context any
}

// VerifyResult carries the outcome of a VerifyRequest. Errors[i] is empty
// when item i is valid, else it says why not.
type VerifyResult struct {
	_       struct{} `cbor:",toarray"`
	Valid   []bool
	Errors  []string
	AllOK   bool
	Context any
}

// HashRequest asks the hasher for one SHA-256 digest per entry of Data, each
// over the concatenation of that entry's byte strings.
type HashRequest struct {
	_       struct{} `cbor:",toarray"`
	Data    [][][]byte
	ReplyTo mir.ModuleID
	Context any
}

// HashResult carries the digests for a HashRequest, in order.
type HashResult struct {
	_       struct{} `cbor:",toarray"`
	Digests [][]byte
	Context any
}

// WALAppend asks the WAL to make Entry durable. Follow-ups of the event
// carrying it are released only once it is. On restart the WAL returns the
// entry to Owner in a WALRecovered event.
type WALAppend struct {
	_              struct{} `cbor:",toarray"`
	Owner          mir.ModuleID
	Entry          any
	RetentionIndex uint64
}

// WALTruncate discards every entry whose retention index is below
// RetentionIndex (after a stable checkpoint made them unnecessary).
type WALTruncate struct {
	_              struct{} `cbor:",toarray"`
	RetentionIndex uint64
}

// WALEntry is one recovered entry.
type WALEntry struct {
	_              struct{} `cbor:",toarray"`
	RetentionIndex uint64
	Entry          any
}

// WALRecovered is emitted by the WAL at start to every owner it was told
// about, exactly once, before any other event of the WAL: the owner's
// surviving entries in append order (possibly none). Owners wait for it
// before acting.
type WALRecovered struct {
	_       struct{} `cbor:",toarray"`
	Entries []WALEntry
}

func init() {
	b := mir.TagBaseEvents
	mir.RegisterPayload(b+0, Init{})
	mir.RegisterPayload(b+1, SendMessage{})
	mir.RegisterPayload(b+2, MessageReceived{})
	mir.RegisterPayload(b+3, TimerDelay{})
	mir.RegisterPayload(b+4, TimerRepeat{})
	mir.RegisterPayload(b+5, TimerGarbageCollect{})
	mir.RegisterPayload(b+6, SignRequest{})
	mir.RegisterPayload(b+7, SignResult{})
	mir.RegisterPayload(b+8, VerifyRequest{})
	mir.RegisterPayload(b+9, VerifyResult{})
	mir.RegisterPayload(b+10, HashRequest{})
	mir.RegisterPayload(b+11, HashResult{})
	mir.RegisterPayload(b+12, WALAppend{})
	mir.RegisterPayload(b+13, WALTruncate{})
	mir.RegisterPayload(b+14, WALRecovered{})
}
