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
	kv map[string]kvEntry
	// nonces maps each sender to its next nonce; a sender is in nonces iff its
	// next nonce is at least 1 iff its leaf is in tree.
	nonces map[string]account
	// next is the next sequence number Apply accepts; its leaf is always in tree.
	next ordering.SeqNr
	// tree commits to kv, nonces and next. Its dirty nodes are rehashed
	// lazily, when a reader needs the root (see settled).
	tree tree
	// root is tree's root hash unless stale.
	root Hash
	// stale is set by Apply: tree has dirty nodes and root is out of date.
	stale bool
	// stats counts what Apply did.
	stats Stats
}

// account is a sender's entry: its next nonce and, once Apply set it, its
// nonce leaf's node (so that Apply neither hashes the sender nor walks the
// tree again for each of its transactions; nil after a Restore).
type account struct {
	next uint64
	leaf *node
}

// kvEntry is a key's entry: its value and, once Apply set it, its leaf's
// node (nil after a Restore).
type kvEntry struct {
	value string
	leaf  *node
}

// New returns an empty store that expects sequence number 0 next.
func New() *Store {
	s := &Store{kv: map[string]kvEntry{}, nonces: map[string]account{}}
	s.tree.set(metaLeaf(0))
	s.root = s.tree.rootHash()
	return s
}

// uint64Hash is the value hash of a nonce or sequence number.
func uint64Hash(v uint64) Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return sha256.Sum256(b[:])
}

func uint64Leaf(path Hash, v uint64) leaf { return leaf{path: path, valueHash: uint64Hash(v)} }

func metaLeaf(next ordering.SeqNr) leaf { return uint64Leaf(metaPath, next) }

func nonceLeaf(sender string, next uint64) leaf {
	return uint64Leaf(NoncePath(sender), next)
}

func kvLeaf(key string, value []byte) leaf {
	return leaf{path: KeyPath(key), valueHash: sha256.Sum256(value)}
}

// Apply applies a batch (iss.App).
func (s *Store) Apply(sn ordering.SeqNr, b ordering.Batch) error {
	_, err := s.ApplyBatch(sn, b)
	return err
}

// ApplyBatch applies the batch at sequence number sn, which must be the
// next one; it says what happened to each transaction. It fails, leaving
// the state unchanged, only when sn is out of order. It does not compute the
// state root: the nodes it touches are rehashed once, by the next call that
// needs the root (Root, Prove, Snapshot), however many batches came before.
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
		acc := s.nonces[tx.Sender]
		if tx.Nonce != acc.next || acc.next == math.MaxUint64 {
			res.BadNonce++
			continue
		}
		acc.next++
		if acc.leaf != nil {
			vh := uint64Hash(acc.next)
			s.tree.update(acc.leaf, &vh)
		} else {
			acc.leaf = s.tree.set(nonceLeaf(tx.Sender, acc.next))
		}
		s.nonces[tx.Sender] = acc
		c, err := parseTx(tx.Data) // c.Value points into tx.Data: copied below
		if err != nil {
			res.Invalid++
			continue
		}
		switch c.Op {
		case OpSet:
			e := s.kv[c.Key]
			e.value = string(c.Value)
			if vh := sha256.Sum256(c.Value); e.leaf != nil {
				s.tree.update(e.leaf, &vh)
			} else {
				e.leaf = s.tree.set(leaf{path: KeyPath(c.Key), valueHash: vh})
			}
			s.kv[c.Key] = e
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
	s.stale = true
	s.stats.Batches++
	s.stats.Applied += uint64(res.Applied)
	s.stats.BadNonce += uint64(res.BadNonce)
	s.stats.Invalid += uint64(res.Invalid)
	return res, nil
}

// settled read-locks the store with its root up to date (rehashing what
// Apply left dirty first); the caller must RUnlock.
func (s *Store) settled() {
	for {
		s.mu.RLock()
		if !s.stale {
			return
		}
		s.mu.RUnlock()
		s.mu.Lock()
		if s.stale {
			s.root = s.tree.rootHash()
			s.stale = false
		}
		s.mu.Unlock()
	}
}

// Root returns the current state root.
func (s *Store) Root() []byte {
	s.settled()
	defer s.mu.RUnlock()
	r := s.root
	return r[:]
}

// Get returns a key's value.
func (s *Store) Get(key string) (value []byte, ok bool) {
	s.mu.RLock()
	e, ok := s.kv[key]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return []byte(e.value), true
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
	return s.nonces[sender].next
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
	s.settled()
	defer s.mu.RUnlock()
	p, l := s.tree.prove(&path)
	r := s.root
	if e, found := s.kv[key]; found {
		return []byte(e.value), true, p, r[:]
	}
	if l != nil {
		p.OtherPath = append([]byte(nil), l.path[:]...)
		p.OtherValueHash = append([]byte(nil), l.valueHash[:]...)
	}
	return nil, false, p, r[:]
}
