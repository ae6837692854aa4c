package iss

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// HashChainApp is a minimal deterministic App: its state is a running hash
// over every delivered batch and a count of delivered sequence numbers. The
// simulator and the ordering benchmark use it; a snapshot is 40 bytes.
type HashChainApp struct {
	// root is SHA-256 over (previous root, sequence number, batch digest).
	root [32]byte
	// next is the next sequence number the app expects.
	next ordering.SeqNr
	// Txs counts delivered transactions.
	Txs uint64
}

// ErrOutOfOrder is returned when a batch does not follow the previous one.
var ErrOutOfOrder = errors.New("hashchain: batch out of order")

// Apply implements App.
func (a *HashChainApp) Apply(sn ordering.SeqNr, b ordering.Batch) error {
	if sn != a.next {
		return fmt.Errorf("%w: got %d, want %d", ErrOutOfOrder, sn, a.next)
	}
	d := b.Hash()
	h := sha256.New()
	h.Write(a.root[:])
	var sb [8]byte
	binary.BigEndian.PutUint64(sb[:], sn)
	h.Write(sb[:])
	h.Write(d[:])
	h.Sum(a.root[:0])
	a.next++
	a.Txs += uint64(len(b.Txs))
	return nil
}

// Next returns the next sequence number the app expects.
func (a *HashChainApp) Next() ordering.SeqNr { return a.next }

// Snapshot implements App.
func (a *HashChainApp) Snapshot() ([]byte, []byte, error) {
	return a.Root(), a.data(), nil
}

// data returns the snapshot bytes: the running hash and the next sequence
// number.
func (a *HashChainApp) data() []byte {
	data := make([]byte, 40)
	copy(data, a.root[:])
	binary.BigEndian.PutUint64(data[32:], a.next)
	return data
}

// Root returns the current state root: SHA-256 over the snapshot data.
func (a *HashChainApp) Root() []byte {
	r := sha256.Sum256(a.data())
	return r[:]
}

// Restore implements App.
func (a *HashChainApp) Restore(data []byte) ([]byte, error) {
	if len(data) != 40 {
		return nil, fmt.Errorf("hashchain: snapshot of %d bytes, want 40", len(data))
	}
	copy(a.root[:], data[:32])
	a.next = binary.BigEndian.Uint64(data[32:])
	return a.Root(), nil
}
