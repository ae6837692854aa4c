package kvstore

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// benchSnapshot encodes a state of n keys ("key%08d", 16-byte values) and
// no senders.
func benchSnapshot(n int) []byte {
	w := newSnapshotBuilder(0).u64(uint64(n))
	w.b = append(make([]byte, 0, n*36+64), w.b...)
	for i := range n {
		w.str(fmt.Sprintf("key%08d", i)).str(fmt.Sprintf("value-%010d", i))
	}
	return w.u64(0).b
}

func benchStore(b *testing.B, n int) *Store {
	s := New()
	if _, err := s.Restore(benchSnapshot(n)); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkApply applies blocks of 1000 set transactions from 1000 senders,
// half of them overwriting existing keys and half adding keys, to states of
// different sizes, and computes the root after every block: tx/s should not
// fall with the state size.
func BenchmarkApply(b *testing.B) {
	const block = 1000
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := benchStore(b, n)
			rng := rand.New(rand.NewPCG(1, 2))
			txs := make([]ordering.Tx, block)
			var elapsed time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := range txs {
					txs[j] = setTx(fmt.Sprintf("sender%04d", j), uint64(i), fmt.Sprintf("key%08d", rng.IntN(2*n)), fmt.Sprintf("v%015d", i))
				}
				sn := s.NextSeqNr()
				b.StartTimer()
				start := time.Now()
				res, err := s.ApplyBatch(sn, ordering.Batch{Txs: txs})
				s.Root()
				elapsed += time.Since(start)
				if err != nil || res.Applied != block {
					b.Fatalf("%+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*block)/elapsed.Seconds(), "tx/s")
		})
	}
}

// BenchmarkApplyBench applies what `mirsubnet bench` sends: 4,096
// senders, each setting its own key to a 512-byte value, in blocks of 500
// transactions, with the root computed every rootEvery blocks (1: after
// every block; 32: about once per checkpoint).
func BenchmarkApplyBench(b *testing.B) {
	const senders, block = 4096, 500
	value := strings.Repeat("v", 512)
	for _, rootEvery := range []int{1, 32} {
		b.Run(fmt.Sprintf("rootEvery=%d", rootEvery), func(b *testing.B) {
			s := New()
			proto := make([]ordering.Tx, senders)
			for i := range proto {
				snd := fmt.Sprintf("sender-%04d", i)
				proto[i] = setTx(snd, 0, snd, value)
			}
			txs := make([]ordering.Tx, block)
			next := 0
			for b.Loop() {
				for j := range txs {
					txs[j] = proto[next]
					proto[next].Nonce++
					next = (next + 1) % senders
				}
				sn := s.NextSeqNr()
				res, err := s.ApplyBatch(sn, ordering.Batch{Txs: txs})
				if err != nil || res.Applied != block {
					b.Fatalf("%+v %v", res, err)
				}
				if (sn+1)%uint64(rootEvery) == 0 {
					s.Root()
				}
			}
			b.ReportMetric(float64(b.N*block)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}

// BenchmarkSnapshot encodes a state of n keys.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := benchStore(b, n)
			var size int
			b.ResetTimer()
			for b.Loop() {
				_, data, err := s.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.SetBytes(int64(size))
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// BenchmarkRestore decodes, validates and rebuilds the tree of a state of n
// keys.
func BenchmarkRestore(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			data := benchSnapshot(n)
			s := New()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Restore(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// BenchmarkProve proves and verifies one key in a state of 1M keys.
func BenchmarkProve(b *testing.B) {
	s := benchStore(b, 1_000_000)
	i := 0
	for b.Loop() {
		k := fmt.Sprintf("key%08d", i%1_000_000)
		v, ok, p, root := s.Prove(k)
		if !ok {
			b.Fatal("missing key")
		}
		if err := VerifyProof(root, k, v, p); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}
