package mir_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// chainModule forwards every event to next (or drops it at the end of the
// chain, counting it).
type chainModule struct {
	next mir.ModuleID
	// count is the number of events that reached the end of the chain.
	count int
	// target, when count reaches it, closes done (node benchmark only).
	target int
	done   chan struct{}
}

func (m *chainModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	if m.next == "" {
		m.count += len(evs)
		if m.done != nil && m.count >= m.target {
			close(m.done)
			m.done = nil
		}
		return nil, nil
	}
	out := make(mir.EventList, len(evs))
	for i := range evs {
		out[i] = mir.Event{Dest: m.next, Payload: evs[i].Payload}
	}
	return out, nil
}

const chainLen = 4

func chainModules() (map[mir.ModuleID]mir.PassiveModule, *chainModule) {
	mods := map[mir.ModuleID]mir.PassiveModule{}
	var last *chainModule
	for i := 0; i < chainLen; i++ {
		m := &chainModule{}
		if i < chainLen-1 {
			m.next = mir.ModuleID(fmt.Sprintf("m%d", i+1))
		} else {
			last = m
		}
		mods[mir.ModuleID(fmt.Sprintf("m%d", i))] = m
	}
	return mods, last
}

func reportChain(b *testing.B, n int, elapsed time.Duration) {
	b.ReportMetric(float64(n*chainLen)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "chains/s")
}

// BenchmarkChain measures dispatch throughput: b.N events each pass through
// a chain of 4 passive modules (4 dispatched events per chain). events/s
// counts dispatched events, chains/s events that went through the whole
// chain.
func BenchmarkChain(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("dispatcher/batch=%d", batch), func(b *testing.B) {
			mods, last := chainModules()
			d, err := mir.NewDispatcher(mods, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			in := make(mir.EventList, batch)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < b.N; sent += batch {
				k := min(batch, b.N-sent)
				for i := 0; i < k; i++ {
					in[i] = mir.Event{Dest: "m0", Payload: Num{N: int64(sent + i)}}
				}
				if err := d.Enqueue("", in[:k]); err != nil {
					b.Fatal(err)
				}
				for d.HasWork() {
					if _, err := d.Round(); err != nil {
						b.Fatal(err)
					}
				}
			}
			elapsed := time.Since(start)
			if last.count != b.N {
				b.Fatalf("%d events reached the end, want %d", last.count, b.N)
			}
			reportChain(b, b.N, elapsed)
		})
	}
	b.Run("node/batch=256", func(b *testing.B) {
		const batch = 256
		mods, last := chainModules()
		last.target, last.done = b.N, make(chan struct{})
		src := newActive()
		src.run = func(ctx context.Context) error {
			for sent := 0; sent < b.N; sent += batch {
				evs := make(mir.EventList, min(batch, b.N-sent))
				for i := range evs {
					evs[i] = mir.Event{Dest: "m0", Payload: Num{N: int64(sent + i)}}
				}
				select {
				case src.out <- evs:
				case <-ctx.Done():
					return nil
				}
			}
			return nil
		}
		all := map[mir.ModuleID]mir.Module{"src": runnerMod{src}}
		for id, m := range mods {
			all[id] = m
		}
		n, err := mir.NewNode("bench", mir.DefaultNodeParams(), all, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- n.Run(context.Background()) }()
		select {
		case <-last.done:
		case err := <-errc:
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		n.Stop()
		<-errc
		reportChain(b, b.N, elapsed)
	})
}
