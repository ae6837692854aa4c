package ordering_test

import (
	"crypto/sha256"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// encodedHash is the definition Batch.Hash must match: SHA-256 of the
// batch's deterministic CBOR encoding.
func encodedHash(t testing.TB, b ordering.Batch) ordering.Digest {
	enc, err := mir.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(enc)
}

// TestBatchHashMatchesEncoding checks that the streamed digest equals the
// digest of the encoding on the boundaries of every CBOR head size.
func TestBatchHashMatchesEncoding(t *testing.T) {
	lens := []int{0, 1, 23, 24, 100, 127, 128, 255, 256, 1000, 65535, 65536, 70000}
	nonces := []uint64{0, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, ^uint64(0)}
	batches := []ordering.Batch{{}, {Txs: []ordering.Tx{}}, {Txs: []ordering.Tx{{Sender: "a"}}},
		{Txs: []ordering.Tx{{Sender: "a", Data: []byte{}}}}, {Txs: []ordering.Tx{{Sender: "\xff\xfe", Data: []byte("x")}}}}
	for _, l := range lens {
		data := make([]byte, l)
		for i := range data {
			data[i] = byte(i)
		}
		batches = append(batches, ordering.Batch{Txs: []ordering.Tx{
			{Sender: strings.Repeat("s", l), Nonce: uint64(l), Data: data},
			{Sender: "b", Nonce: nonces[l%len(nonces)], Data: data[:l/2]},
		}})
	}
	for _, n := range nonces {
		batches = append(batches, ordering.Batch{Txs: []ordering.Tx{{Sender: "c", Nonce: n, Data: []byte{1}}}})
	}
	for _, n := range []int{23, 24, 255, 256, 300} {
		txs := make([]ordering.Tx, n)
		for i := range txs {
			txs[i] = ordering.Tx{Sender: "d", Nonce: uint64(i)}
		}
		batches = append(batches, ordering.Batch{Txs: txs})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		txs := make([]ordering.Tx, rng.IntN(20))
		for i := range txs {
			s := make([]byte, rng.IntN(300))
			for j := range s {
				s[j] = byte(rng.Uint32())
			}
			var d []byte
			if rng.IntN(4) > 0 {
				d = make([]byte, rng.IntN(1500))
				for j := range d {
					d[j] = byte(rng.Uint32())
				}
			}
			txs[i] = ordering.Tx{Sender: string(s), Nonce: rng.Uint64() >> rng.UintN(64), Data: d}
		}
		batches = append(batches, ordering.Batch{Txs: txs})
	}
	for i, b := range batches {
		if got, want := b.Hash(), encodedHash(t, b); got != want {
			t.Fatalf("batch %d (%d txs): Hash %x, hash of encoding %x", i, len(b.Txs), got, want)
		}
	}
}

// FuzzBatchHash checks Hash against the encoding for arbitrary fields.
func FuzzBatchHash(f *testing.F) {
	f.Add("sender", uint64(7), []byte("data"), 2, false)
	f.Fuzz(func(t *testing.T, sender string, nonce uint64, data []byte, n int, nilData bool) {
		if nilData {
			data = nil
		}
		txs := make([]ordering.Tx, n&31)
		for i := range txs {
			txs[i] = ordering.Tx{Sender: sender, Nonce: nonce + uint64(i), Data: data}
		}
		b := ordering.Batch{Txs: txs}
		if got, want := b.Hash(), encodedHash(t, b); got != want {
			t.Fatalf("Hash %x, hash of encoding %x", got, want)
		}
	})
}

// BenchmarkBatchHash hashes a batch of 2048 transactions of 512 bytes.
func BenchmarkBatchHash(b *testing.B) {
	txs := make([]ordering.Tx, 2048)
	for i := range txs {
		txs[i] = ordering.Tx{Sender: "client-0001", Nonce: uint64(i), Data: make([]byte, 512)}
	}
	batch := ordering.Batch{Txs: txs}
	b.SetBytes(int64(batch.Size()))
	b.ReportAllocs()
	for b.Loop() {
		batch.Hash()
	}
}
