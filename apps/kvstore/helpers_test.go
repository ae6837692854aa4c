package kvstore

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// setTx returns a transaction setting key to value.
func setTx(sender string, nonce uint64, key, value string) ordering.Tx {
	return ordering.Tx{Sender: sender, Nonce: nonce, Data: Command{Op: OpSet, Key: key, Value: []byte(value)}.Encode()}
}

// delTx returns a transaction deleting key.
func delTx(sender string, nonce uint64, key string) ordering.Tx {
	return ordering.Tx{Sender: sender, Nonce: nonce, Data: Command{Op: OpDelete, Key: key}.Encode()}
}

// mustApply applies the batch at the store's next sequence number.
func mustApply(t testing.TB, s *Store, txs ...ordering.Tx) Result {
	t.Helper()
	res, err := s.ApplyBatch(s.NextSeqNr(), ordering.Batch{Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// opGen generates random batches over a small key space, with replays,
// nonce gaps, deletes and malformed transactions mixed in. nonces is its own
// guess of each sender's next nonce (right most of the time).
type opGen struct {
	rng     *rand.Rand
	keys    int
	senders int
	nonces  map[string]uint64
}

func newOpGen(seed uint64, keys, senders int) *opGen {
	return &opGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), keys: keys, senders: senders, nonces: map[string]uint64{}}
}

func (g *opGen) batch(n int) ordering.Batch {
	txs := make([]ordering.Tx, 0, n)
	for range n {
		sender := fmt.Sprintf("s%d", g.rng.IntN(g.senders))
		nonce := g.nonces[sender]
		switch r := g.rng.IntN(20); {
		case r == 0 && nonce > 0:
			nonce -= 1 + g.rng.Uint64N(nonce) // replay
		case r == 1:
			nonce += 1 + g.rng.Uint64N(3) // gap
		default:
			g.nonces[sender]++
		}
		key := fmt.Sprintf("k%d", g.rng.IntN(g.keys))
		var tx ordering.Tx
		switch r := g.rng.IntN(10); {
		case r < 6:
			tx = setTx(sender, nonce, key, fmt.Sprintf("v%d", g.rng.IntN(1000)))
		case r < 8:
			tx = delTx(sender, nonce, key)
		case r < 9:
			tx = setTx(sender, nonce, key, "") // empty value is a value
		default:
			tx = ordering.Tx{Sender: sender, Nonce: nonce, Data: []byte("get " + key)} // not a command
		}
		txs = append(txs, tx)
	}
	return ordering.Batch{Txs: txs}
}

// refRoot computes the state root from scratch from its definition in the
// package documentation, independently of the tree code.
func refRoot(kv map[string]string, nonces map[string]uint64, next uint64) Hash {
	type refLeaf struct{ path, hash Hash }
	mk := func(tag byte, k string, v []byte) refLeaf {
		path := sha256.Sum256(append([]byte{tag}, k...))
		vh := sha256.Sum256(v)
		return refLeaf{path, sha256.Sum256(append(append([]byte{0}, path[:]...), vh[:]...))}
	}
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	var leaves []refLeaf
	for k, v := range kv {
		leaves = append(leaves, mk(0x10, k, []byte(v)))
	}
	for s, n := range nonces {
		leaves = append(leaves, mk(0x11, s, u64(n)))
	}
	leaves = append(leaves, mk(0x12, "next-seqnr", u64(next)))
	var empty func(h int) Hash
	empty = func(h int) Hash {
		if h == 0 {
			return Hash{}
		}
		e := empty(h - 1)
		return sha256.Sum256(append(append([]byte{1}, e[:]...), e[:]...))
	}
	var sub func(ls []refLeaf, depth int) Hash
	sub = func(ls []refLeaf, depth int) Hash {
		switch len(ls) {
		case 0:
			return empty(PathBits - depth)
		case 1:
			return ls[0].hash
		}
		var l, r []refLeaf
		for _, x := range ls {
			if x.path[depth/8]&(0x80>>(depth%8)) == 0 {
				l = append(l, x)
			} else {
				r = append(r, x)
			}
		}
		lh, rh := sub(l, depth+1), sub(r, depth+1)
		return sha256.Sum256(append(append([]byte{1}, lh[:]...), rh[:]...))
	}
	return sub(leaves, 0)
}

// storeRefRoot returns refRoot of the store's current state.
func storeRefRoot(s *Store) Hash {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return refRoot(values(s.kv), nextNonces(s.nonces), s.next)
}

// values returns each key's value; it panics if an entry's cached leaf
// does not hold the key's path and value.
func values(kv map[string]kvEntry) map[string]string {
	m := make(map[string]string, len(kv))
	for k, e := range kv {
		if e.leaf != nil && (e.leaf.leaf.path != KeyPath(k) || e.leaf.leaf.valueHash != sha256.Sum256([]byte(e.value))) {
			panic("kvstore: cached leaf of key " + k + " differs")
		}
		m[k] = e.value
	}
	return m
}

// nextNonces returns each sender's next nonce; it panics if an account's
// cached leaf does not hold the sender's nonce path and next nonce.
func nextNonces(accs map[string]account) map[string]uint64 {
	nonces := make(map[string]uint64, len(accs))
	for snd, acc := range accs {
		if acc.leaf != nil && (acc.leaf.leaf.path != NoncePath(snd) || acc.leaf.leaf.valueHash != uint64Hash(acc.next)) {
			panic("kvstore: cached nonce leaf of " + snd + " differs")
		}
		nonces[snd] = acc.next
	}
	return nonces
}
