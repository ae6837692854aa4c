package ordering

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// SeqNr is the position of a batch in the totally ordered log.
type SeqNr = uint64

// Epoch numbers ISS epochs, starting at 0.
type Epoch = uint64

// Limits on transactions accepted from the network.
const (
	MaxSenderLen = 256
	MaxTxData    = 1 << 20
)

// ErrInvalidTx is returned for a malformed transaction.
var ErrInvalidTx = errors.New("ordering: invalid transaction")

// Tx is a client transaction. Sender decides the transaction's bucket;
// (Sender, Nonce) identifies it for the application.
type Tx struct {
	_      struct{} `cbor:",toarray"`
	Sender string
	Nonce  uint64
	Data   []byte
}

// Size returns the number of bytes the transaction counts for in batch
// limits.
func (t Tx) Size() int { return len(t.Sender) + 8 + len(t.Data) }

// Check validates the transaction's shape.
func (t Tx) Check() error {
	if len(t.Sender) == 0 || len(t.Sender) > MaxSenderLen {
		return fmt.Errorf("%w: sender length %d", ErrInvalidTx, len(t.Sender))
	}
	if len(t.Data) > MaxTxData {
		return fmt.Errorf("%w: %d data bytes exceed %d", ErrInvalidTx, len(t.Data), MaxTxData)
	}
	return nil
}

// TxID identifies a transaction by content.
type TxID [32]byte

// String returns the ID in hex.
func (id TxID) String() string { return hex.EncodeToString(id[:]) }

// ID returns the SHA-256 digest of the transaction's fields.
func (t Tx) ID() TxID {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(t.Sender)))
	h.Write(b[:])
	h.Write([]byte(t.Sender))
	binary.BigEndian.PutUint64(b[:], t.Nonce)
	h.Write(b[:])
	h.Write(t.Data)
	var id TxID
	h.Sum(id[:0])
	return id
}

// Batch is an ordered list of transactions proposed by one leader for one
// sequence number.
type Batch struct {
	_   struct{} `cbor:",toarray"`
	Txs []Tx
}

// Digest is the SHA-256 of a batch's deterministic encoding.
type Digest [32]byte

// String returns the first bytes of the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:6]) }

// Bytes returns the digest as a slice.
func (d Digest) Bytes() []byte { return append([]byte(nil), d[:]...) }

// Hash returns the digest of the batch.
func (b Batch) Hash() Digest {
	enc, err := mir.Marshal(b)
	if err != nil {
		// Batches contain only plain fields; encoding cannot fail.
		panic(fmt.Sprintf("ordering: encode batch: %v", err))
	}
	return sha256.Sum256(enc)
}

// Size returns the number of bytes the batch counts for.
func (b Batch) Size() int {
	n := 0
	for _, t := range b.Txs {
		n += t.Size()
	}
	return n
}

// Check validates every transaction in the batch.
func (b Batch) Check() error {
	for i, t := range b.Txs {
		if err := t.Check(); err != nil {
			return fmt.Errorf("tx %d: %w", i, err)
		}
	}
	return nil
}

// BucketOf returns the bucket (0..numBuckets-1) of a sender.
func BucketOf(sender string, numBuckets int) int {
	h := sha256.Sum256([]byte(sender))
	return int(binary.BigEndian.Uint64(h[:8]) % uint64(numBuckets))
}
