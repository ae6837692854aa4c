package kvstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// ErrBadSnapshot is returned by Restore for data that is not a snapshot.
var ErrBadSnapshot = errors.New("kvstore: bad snapshot")

const snapshotVersion = 1

var snapshotMagic = []byte("MSKV")

// Snapshot returns the state root and the state's canonical encoding (see
// the package documentation), usable as iss.App.
func (s *Store) Snapshot() (root []byte, data []byte, err error) {
	s.settled()
	defer s.mu.RUnlock()
	keys := make([]string, 0, len(s.kv))
	size := len(snapshotMagic) + 1 + 3*8
	for k, e := range s.kv {
		keys = append(keys, k)
		size += 8 + len(k) + len(e.value)
	}
	senders := make([]string, 0, len(s.nonces))
	for snd := range s.nonces {
		senders = append(senders, snd)
		size += 12 + len(snd)
	}
	slices.Sort(keys)
	slices.Sort(senders)
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, s.next)
	b = binary.BigEndian.AppendUint64(b, uint64(len(keys)))
	for _, k := range keys {
		v := s.kv[k].value
		b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(senders)))
	for _, snd := range senders {
		b = binary.BigEndian.AppendUint32(b, uint32(len(snd)))
		b = append(b, snd...)
		b = binary.BigEndian.AppendUint64(b, s.nonces[snd].next)
	}
	r := s.root
	return r[:], b, nil
}

// Restore replaces the state by a snapshot and returns its root (iss.App).
// It validates data strictly and leaves the state unchanged on failure.
func (s *Store) Restore(data []byte) (root []byte, err error) {
	st, err := decodeSnapshot(data)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kv, s.nonces, s.next, s.tree, s.root, s.stale = st.kv, st.nonces, st.next, st.tree, st.root, false
	r := s.root
	return r[:], nil
}

// state is a decoded snapshot with its tree built.
type state struct {
	kv     map[string]kvEntry
	nonces map[string]account
	next   ordering.SeqNr
	tree   tree
	root   Hash
}

// reader reads a snapshot's fields; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated %s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint64(what string) uint64 {
	if b := r.bytes(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// string reads a length-prefixed string of at most max bytes.
func (r *reader) string(max int, what string) string {
	b := r.bytes(4, what+" length")
	if b == nil {
		return ""
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(max) {
		r.fail("%s of %d bytes exceeds %d", what, n, max)
		return ""
	}
	return string(r.bytes(int(n), what))
}

// count reads an entry count; each entry takes at least minSize bytes.
func (r *reader) count(minSize int, what string) int {
	n := r.uint64(what + " count")
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.fail("%d %s cannot fit in %d bytes", n, what, len(r.b))
		return 0
	}
	return int(n)
}

func decodeSnapshot(data []byte) (*state, error) {
	r := &reader{b: data}
	if m := r.bytes(len(snapshotMagic), "magic"); r.err == nil && !bytes.Equal(m, snapshotMagic) {
		r.fail("bad magic %q", m)
	}
	if v := r.bytes(1, "version"); r.err == nil && v[0] != snapshotVersion {
		r.fail("version %d, want %d", v[0], snapshotVersion)
	}
	st := &state{next: r.uint64("sequence number")}
	nk := r.count(8+1, "keys")
	if r.err != nil {
		return nil, r.err
	}
	st.kv = make(map[string]kvEntry, nk)
	leaves := make([]leaf, 0, nk+1)
	prev := ""
	for i := range nk {
		k := r.string(MaxKeyLen, "key")
		v := r.string(MaxValueLen, "value")
		if r.err != nil {
			return nil, r.err
		}
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrBadSnapshot, i, err)
		}
		if i > 0 && k <= prev {
			return nil, fmt.Errorf("%w: key %d not above the previous one", ErrBadSnapshot, i)
		}
		prev = k
		st.kv[k] = kvEntry{value: v}
		leaves = append(leaves, kvLeaf(k, []byte(v)))
	}
	prev = ""
	ns := r.count(4+1+8, "senders")
	if r.err != nil {
		return nil, r.err
	}
	st.nonces = make(map[string]account, ns)
	for i := range ns {
		snd := r.string(ordering.MaxSenderLen, "sender")
		n := r.uint64("nonce")
		if r.err != nil {
			return nil, r.err
		}
		if snd == "" {
			return nil, fmt.Errorf("%w: sender %d is empty", ErrBadSnapshot, i)
		}
		if i > 0 && snd <= prev {
			return nil, fmt.Errorf("%w: sender %d not above the previous one", ErrBadSnapshot, i)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: sender %d has next nonce 0", ErrBadSnapshot, i)
		}
		prev = snd
		st.nonces[snd] = account{next: n}
		leaves = append(leaves, nonceLeaf(snd, n))
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(r.b))
	}
	leaves = append(leaves, metaLeaf(st.next))
	slices.SortFunc(leaves, func(a, b leaf) int { return bytes.Compare(a.path[:], b.path[:]) })
	st.tree.root = build(leaves)
	st.root = st.tree.rootHash()
	return st, nil
}
