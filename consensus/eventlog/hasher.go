package eventlog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Hasher is an Interceptor that computes a running SHA-256 over the
// canonical encodings of the records a Writer for the same node would write
// (the record payloads, numbered from 1, without framing). Two runs that
// dispatch the same events in the same order have the same sum; HashLog
// computes it from a stored log. It does no I/O and works on the calling
// goroutine; it is not safe for concurrent use.
type Hasher struct {
	node mir.NodeID
	// records is the number of records hashed (the index of the last one).
	records uint64
	enc     *encoder
	// buf is scratch space for one record's encoding.
	buf []byte
	h   hash.Hash
}

// NewHasher returns a Hasher for the records of node.
func NewHasher(node mir.NodeID) *Hasher {
	return &Hasher{node: node, enc: newEncoder(), h: sha256.New()}
}

// Intercept hashes a batch as the next record.
func (h *Hasher) Intercept(kind mir.RecordKind, module mir.ModuleID, events mir.EventList) error {
	if len(events) == 0 {
		return nil
	}
	buf, err := h.enc.appendRecord(h.buf[:0], h.records+1, h.node, kind, module, events)
	h.buf = buf
	if err != nil {
		return fmt.Errorf("eventlog: hash record %d: %w", h.records+1, err)
	}
	h.records++
	h.h.Write(buf)
	return nil
}

// Sum returns the hash of the records so far.
func (h *Hasher) Sum() []byte { return h.h.Sum(nil) }

// Records returns the number of records hashed.
func (h *Hasher) Records() uint64 { return h.records }

// HashLog returns the hash Hasher computes for the records of the log at
// paths (one node's log), and the number of records. It hashes the stored
// encodings and fails if the log holds several nodes' records or is not
// complete from its first record.
func HashLog(paths ...string) (sum []byte, records uint64, err error) {
	r, err := Open(Filter{}, paths...)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	h := sha256.New()
	r.onRaw = func(p []byte) { h.Write(p) }
	var node mir.NodeID
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, records, err
		}
		if records == 0 && rec.Index != 1 {
			return nil, 0, fmt.Errorf("eventlog: log starts at record %d, not 1", rec.Index)
		}
		if node != "" && rec.NodeID != node {
			return nil, records, fmt.Errorf("eventlog: log holds records of nodes %q and %q", node, rec.NodeID)
		}
		node = rec.NodeID
		records++
	}
	return h.Sum(nil), records, nil
}

// Tee returns an Interceptor that hands every batch to each of the given
// interceptors in turn (nil ones are skipped) and returns the first error.
func Tee(interceptors ...mir.Interceptor) mir.Interceptor {
	var t tee
	for _, i := range interceptors {
		if i != nil {
			t = append(t, i)
		}
	}
	return t
}

type tee []mir.Interceptor

// Intercept hands the batch to every interceptor in turn.
func (t tee) Intercept(kind mir.RecordKind, module mir.ModuleID, events mir.EventList) error {
	for _, i := range t {
		if err := i.Intercept(kind, module, events); err != nil {
			return err
		}
	}
	return nil
}
