package mempool

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// benchTxs returns n transactions over senders senders, nonces in order,
// each with 100 data bytes.
func benchTxs(n, senders int, prefix string) []ordering.Tx {
	txs := make([]ordering.Tx, n)
	data := make([]byte, 100)
	for i := range txs {
		txs[i] = ordering.Tx{Sender: fmt.Sprintf("%s%d", prefix, i%senders), Nonce: uint64(i / senders), Data: data}
	}
	return txs
}

func BenchmarkAdd(b *testing.B) {
	txs := benchTxs(b.N, 10_000, "s")
	p := newPool(b, Params{MaxTxs: b.N + 1, MaxPerSender: b.N + 1, MaxNonceGap: uint64(b.N + 1)})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range txs {
		if err := p.Add(ctx, txs[i], OriginLocal); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

func BenchmarkAddParallel(b *testing.B) {
	p := newPool(b, Params{MaxTxs: 1 << 30, MaxBytes: 1 << 40, MaxPerSender: 1 << 30, MaxNonceGap: 1 << 40})
	ctx := context.Background()
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		data := make([]byte, 100)
		const senders = 1000
		for i := 0; pb.Next(); i++ {
			tx := ordering.Tx{Sender: fmt.Sprintf("w%d-%d", w, i%senders), Nonce: uint64(i / senders), Data: data}
			if err := p.Add(ctx, tx, OriginLocal); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkSelectCommit measures the consensus side: a leader selects a
// batch of up to 2048 transactions from its 16 of 64 buckets and commits it,
// over a pool kept at 100k transactions from 10k senders (refilled outside
// the timer).
func BenchmarkSelectCommit(b *testing.B) {
	const (
		pending = 100_000
		senders = 10_000
		nb      = 64
	)
	p := newPool(b, Params{NumBuckets: nb, MaxTxs: 2 * pending})
	ctx := context.Background()
	for _, tx := range benchTxs(pending, senders, "s") {
		if err := p.Add(ctx, tx, OriginLocal); err != nil {
			b.Fatal(err)
		}
	}
	nextNonce := make(map[string]uint64, senders)
	for i := range senders {
		nextNonce[fmt.Sprintf("s%d", i)] = pending / senders
	}
	selected := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		leader := i % 4
		buckets := make([]int, 0, nb/4)
		for bk := leader; bk < nb; bk += 4 {
			buckets = append(buckets, bk)
		}
		txs, _ := p.Select(buckets, nb, 2048, 4<<20)
		p.Committed(txs)
		selected += len(txs)
		b.StopTimer()
		for _, tx := range txs {
			n := nextNonce[tx.Sender]
			nextNonce[tx.Sender] = n + 1
			if err := p.Add(ctx, ordering.Tx{Sender: tx.Sender, Nonce: n, Data: tx.Data}, OriginLocal); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(selected)/b.Elapsed().Seconds(), "tx/s")
	b.ReportMetric(float64(selected)/float64(b.N), "tx/batch")
}
