package ordering

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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

// Hash returns the digest of the batch: the SHA-256 of its deterministic
// CBOR encoding (mir.Marshal, Core Deterministic Encoding). The encoding is
// streamed into the hash (see hashCBOR) instead of being built first: the
// digest is computed by every node for every batch on the ordering hot path,
// and building the encoding copied every transaction into a buffer as large
// as the batch. TestBatchHashMatchesEncoding checks that both agree.
func (b Batch) Hash() Digest {
	var w cborHasher
	w.h = sha256.New()
	w.batch(b)
	var d Digest
	w.h.Sum(d[:0])
	return d
}

// cborHasher writes the Core Deterministic CBOR encoding of a Batch into a
// hash, item by item. Heads and short strings go through buf, so that each
// transaction costs few writes.
type cborHasher struct {
	h   hash.Hash
	buf []byte
	// scratch backs buf.
	scratch [128]byte
}

// CBOR major types used by the encoding of a Batch.
const (
	cborUint  = 0 << 5
	cborBytes = 2 << 5
	cborText  = 3 << 5
	cborArray = 4 << 5
	cborNull  = 0xf6
)

// head appends the shortest head of major type major with argument v.
func (w *cborHasher) head(major byte, v uint64) {
	switch {
	case v < 24:
		w.buf = append(w.buf, major|byte(v))
	case v <= 0xff:
		w.buf = append(w.buf, major|24, byte(v))
	case v <= 0xffff:
		w.buf = binary.BigEndian.AppendUint16(append(w.buf, major|25), uint16(v))
	case v <= 0xffffffff:
		w.buf = binary.BigEndian.AppendUint32(append(w.buf, major|26), uint32(v))
	default:
		w.buf = binary.BigEndian.AppendUint64(append(w.buf, major|27), v)
	}
}

// data appends p, flushing buf first if p does not fit in the scratch space.
func (w *cborHasher) data(p []byte) {
	if len(w.buf)+len(p) <= len(w.scratch) {
		w.buf = append(w.buf, p...)
		return
	}
	w.flush()
	w.h.Write(p)
}

func (w *cborHasher) flush() {
	w.h.Write(w.buf)
	w.buf = w.scratch[:0]
}

// batch writes the encoding of b: [[[Sender, Nonce, Data], ...]] (a struct
// with toarray encodes as an array of its fields; a nil slice as null).
func (w *cborHasher) batch(b Batch) {
	w.buf = w.scratch[:0]
	w.head(cborArray, 1)
	if b.Txs == nil {
		w.buf = append(w.buf, cborNull)
	} else {
		w.head(cborArray, uint64(len(b.Txs)))
	}
	for i := range b.Txs {
		t := &b.Txs[i]
		w.head(cborArray, 3)
		w.head(cborText, uint64(len(t.Sender)))
		if len(w.buf)+len(t.Sender) <= len(w.scratch) {
			w.buf = append(w.buf, t.Sender...)
		} else {
			w.flush()
			w.h.Write([]byte(t.Sender))
		}
		w.head(cborUint, t.Nonce)
		if t.Data == nil {
			w.buf = append(w.buf, cborNull)
			continue
		}
		w.head(cborBytes, uint64(len(t.Data)))
		w.data(t.Data)
	}
	w.flush()
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
