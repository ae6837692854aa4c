package client

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/transport"
)

// ProtocolID is the libp2p protocol of the client API.
const ProtocolID = "/mirsubnet/client/1.0.0"

// MaxMessage bounds one client protocol message.
const MaxMessage = 8 << 20

// ErrTooLarge is returned for a message above MaxMessage.
var ErrTooLarge = errors.New("client: message too large")

// Request is one client request; exactly one field is set. The first request
// on a stream decides what the stream is for: a Submit stream carries any
// number of Submit requests answered in order; a Follow stream carries
// Commit notices until closed; a Status stream one StatusReply.
type Request struct {
	_      struct{} `cbor:",toarray"`
	Submit *ordering.Tx
	Follow *Follow
	Status bool
}

// Follow asks for commit notices from sequence number From on (the server
// starts at its current height if From is older than it keeps).
type Follow struct {
	_    struct{} `cbor:",toarray"`
	From ordering.SeqNr
}

// SubmitReply answers a Submit: Admitted, or the rejection Reason (full,
// duplicate, nonce too low, nonce too high, nonce taken, too large, invalid,
// unavailable) with a Detail for humans.
type SubmitReply struct {
	_        struct{} `cbor:",toarray"`
	Admitted bool
	Reason   string
	Detail   string
}

// Commit notifies a delivered batch: its sequence number and the IDs of its
// transactions.
type Commit struct {
	_     struct{} `cbor:",toarray"`
	SeqNr ordering.SeqNr
	Epoch ordering.Epoch
	TxIDs []ordering.TxID
}

// StatusReply describes the node.
type StatusReply struct {
	_           struct{} `cbor:",toarray"`
	Node        string
	Height      uint64
	Epoch       uint64
	StableEpoch uint64
	Delivered   uint64
	Peers       int
	PoolTxs     int
	StateRoot   []byte
}

// WriteMsg writes one length-prefixed CBOR message.
func WriteMsg(w io.Writer, v any) error {
	b, err := mir.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return ErrTooLarge
	}
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadMsg reads one length-prefixed CBOR message into v, rejecting
// oversized messages before allocating them (the framing is the consensus
// stream's: transport.ReadFrame).
func ReadMsg(r *bufio.Reader, v any) error {
	body, err := transport.ReadFrame(r, MaxMessage, nil)
	if err != nil {
		if errors.Is(err, transport.ErrFrameTooLarge) {
			return fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return err
	}
	return mir.Unmarshal(body, v)
}
