package wal

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// BenchmarkAppend measures durable appends with group commit: G goroutines
// each append and wait for durability, b.N appends in all. It reports
// appends/s, fsyncs/s and appends per fsync (the group size).
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{128, 1024} {
		for _, g := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("size=%d/goroutines=%d", size, g), func(b *testing.B) {
				l, _, _, err := Open(b.TempDir(), DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				data := make([]byte, size)
				var left atomic.Int64
				left.Store(int64(b.N))
				var wg sync.WaitGroup
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				for w := 0; w < g; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for left.Add(-1) >= 0 {
							if _, err := l.Append(data, 0); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start).Seconds()
				b.StopTimer()
				st := l.Stats()
				b.ReportMetric(float64(st.Appends)/elapsed, "appends/s")
				b.ReportMetric(float64(st.Syncs)/elapsed, "fsyncs/s")
				b.ReportMetric(float64(st.Appends)/float64(max(st.Syncs, 1)), "appends/fsync")
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkModuleAppend measures the module: batches of WALAppend events
// with a follow-up each, the follow-ups read from EventsOut.
func BenchmarkModuleAppend(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			m, err := NewModule(b.TempDir(), DefaultParams(), []mir.ModuleID{"iss"})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			res := make(chan error, 1)
			go func() { res <- m.Run(ctx) }()
			<-m.EventsOut() // WALRecovered
			evs := make(mir.EventList, batch)
			for i := range evs {
				evs[i] = mir.NewEvent("wal", events.WALAppend{Owner: "iss", Entry: testEntry{N: uint64(i), S: string(make([]byte, 100))}}).
					WithNext(mir.NewEvent("app", testNote{N: uint64(i)}))
			}
			b.ResetTimer()
			start := time.Now()
			sent, got := 0, 0
			for sent < b.N {
				n := min(batch, b.N-sent)
				if err := m.ApplyEvents(ctx, evs[:n]); err != nil {
					b.Fatal(err)
				}
				sent += n
				// Keep a few batches in flight.
				for got < sent-4*batch {
					got += len(<-m.EventsOut())
				}
			}
			for got < sent {
				got += len(<-m.EventsOut())
			}
			elapsed := time.Since(start).Seconds()
			b.StopTimer()
			st := m.Stats()
			b.ReportMetric(float64(st.Appends)/elapsed, "appends/s")
			b.ReportMetric(float64(st.Syncs)/elapsed, "fsyncs/s")
			cancel()
			if err := <-res; err != nil {
				b.Fatal(err)
			}
		})
	}
}
