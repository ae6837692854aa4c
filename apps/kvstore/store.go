package kvstore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// ErrOutOfOrder is returned when a batch does not carry the next sequence
// number.
var ErrOutOfOrder = errors.New("kvstore: batch out of order")

// metaPath is the path of the leaf holding the next sequence number.
var metaPath = taggedPath(tagMeta, "next-seqnr")

// Result counts what Apply did with a batch's transactions; Applied +
// BadNonce + Invalid is the number of transactions in the batch.
type Result struct {
	// Root is the state root after the batch.
	Root []byte
	// Applied counts executed commands.
	Applied int
	// BadNonce counts transactions skipped because their nonce was not the
	// sender's next nonce (replays, duplicates, gaps).
	BadNonce int
	// Invalid counts transactions that failed ordering.Tx.Check (no nonce
	// consumed) or whose Data is not a valid command (nonce consumed).
	Invalid int
}

// Stats are totals over every batch this Store applied since it was created;
// they are local counters, not part of the replicated state.
type Stats struct {
	Batches, Applied, BadNonce, Invalid uint64
}

// Store is the key-value application. See the package documentation for
// its transactions, state root, snapshot format and concurrency. The zero
// Store is not usable; call New.
type Store struct {
	// mu guards every field below: Apply and Restore hold it for writing.
	mu sync.RWMutex
	// kv maps each key to its value; a key is in kv iff its leaf is in tree.
	kv map[string]string
	// nonces maps each sender to its next nonce; a sender is in nonces iff its
	// next nonce is at least 1 iff its leaf is in tree.
	nonces map[string]uint64
	// next is the next sequence number Apply accepts; its leaf is always in tree.
	next ordering.SeqNr
	// tree commits to kv, nonces and next; no node is dirty outside Apply.
	tree tree
	// root is tree's root hash.
	root Hash
	// stats counts what Apply did.
	stats Stats
}

// New returns an empty store that expects sequence number 0 next.
func New() *Store {
	s := &Store{kv: map[string]string{}, nonces: map[string]uint64{}}
	s.tree.set(metaLeaf(0))
	s.root = s.tree.rootHash()
	return s
}

func uint64Leaf(path Hash, v uint64) leaf {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return leaf{path: path, valueHash: sha256.Sum256(b[:])}
}

func metaLeaf(next ordering.SeqNr) leaf { return uint64Leaf(metaPath, next) }

func nonceLeaf(sender string, next uint64) leaf {
	return uint64Leaf(taggedPath(tagNonce, sender), next)
}

func kvLeaf(key, value string) leaf {
	return leaf{path: KeyPath(key), valueHash: sha256.Sum256([]byte(value))}
}

// Apply applies a batch and returns the new state root (iss.App).
func (s *Store) Apply(sn ordering.SeqNr, b ordering.Batch) ([]byte, error) {
	res, err := s.ApplyBatch(sn, b)
	return res.Root, err
}

// ApplyBatch applies the batch at sequence number sn, which must be the
// next one; it says what happened to each transaction. It fails, leaving
// the state unchanged, only when sn is out of order.
func (s *Store) ApplyBatch(sn ordering.SeqNr, b ordering.Batch) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn != s.next {
		return Result{}, fmt.Errorf("%w: got %d, want %d", ErrOutOfOrder, sn, s.next)
	}
	var res Result
	for _, tx := range b.Txs {
		if tx.Check() != nil {
			res.Invalid++
			continue
		}
		next := s.nonces[tx.Sender]
		if tx.Nonce != next || next == math.MaxUint64 {
			res.BadNonce++
			continue
		}
		s.nonces[tx.Sender] = next + 1
		s.tree.set(nonceLeaf(tx.Sender, next+1))
		c, err := ParseTx(tx.Data)
		if err != nil {
			res.Invalid++
			continue
		}
		switch c.Op {
		case OpSet:
			v := string(c.Value)
			s.kv[c.Key] = v
			s.tree.set(kvLeaf(c.Key, v))
		case OpDelete:
			if _, ok := s.kv[c.Key]; ok {
				delete(s.kv, c.Key)
				p := KeyPath(c.Key)
				s.tree.remove(&p)
			}
		}
		res.Applied++
	}
	s.next++
	s.tree.set(metaLeaf(s.next))
	s.root = s.tree.rootHash()
	res.Root = s.root[:]
	s.stats.Batches++
	s.stats.Applied += uint64(res.Applied)
	s.stats.BadNonce += uint64(res.BadNonce)
	s.stats.Invalid += uint64(res.Invalid)
	return res, nil
}

// Root returns the current state root.
func (s *Store) Root() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.root
	return r[:]
}

// Get returns a key's value.
func (s *Store) Get(key string) (value []byte, ok bool) {
	s.mu.RLock()
	v, ok := s.kv[key]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return []byte(v), true
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.kv)
}

// NextNonce returns the nonce the sender's next transaction must carry. It
// is safe to call while a batch is being applied (it waits for the batch).
func (s *Store) NextNonce(sender string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nonces[sender]
}

// NextSeqNr returns the next sequence number Apply accepts.
func (s *Store) NextSeqNr() ordering.SeqNr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.next
}

// Stats returns the totals of what Apply did.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats
}

// Prove returns the key's value (if any), a proof of it (VerifyProof) or of
// its absence (VerifyAbsence), and the root the proof is for.
func (s *Store) Prove(key string) (value []byte, ok bool, p Proof, root []byte) {
	path := KeyPath(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, l := s.tree.prove(&path)
	r := s.root
	if v, found := s.kv[key]; found {
		return []byte(v), true, p, r[:]
	}
	if l != nil {
		p.OtherPath = append([]byte(nil), l.path[:]...)
		p.OtherValueHash = append([]byte(nil), l.valueHash[:]...)
	}
	return nil, false, p, r[:]
}
