package eventlog

import (
	"crypto/sha256"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// forwarder is a passive module that turns every testMsg it gets into a new
// one for the next module of a chain (the last one only counts). With work
// > 0 it hashes the message's digest that many times per event, standing in
// for the work of a real protocol module.
type forwarder struct {
	next mir.ModuleID
	work int
	// seen counts the events applied.
	seen int
}

func (f *forwarder) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	f.seen += len(evs)
	if f.next == "" {
		return nil, nil
	}
	out := make(mir.EventList, len(evs))
	for i := range evs {
		m := evs[i].Payload.(testMsg)
		m.SeqNr++
		for w := 0; w < f.work; w++ {
			d := sha256.Sum256(m.Digest)
			m.View += uint64(d[0])
		}
		out[i] = mir.NewEvent(f.next, m)
	}
	return out, nil
}

const (
	benchChain = 4   // modules in the chain
	benchBatch = 256 // events injected per iteration
)

// chainWorkload runs iters iterations of benchBatch events through a chain of
// passive modules on a Dispatcher and returns the events dispatched.
func chainWorkload(tb testing.TB, iters int, ic mir.Interceptor, work int) uint64 {
	mods := map[mir.ModuleID]mir.PassiveModule{}
	ids := []mir.ModuleID{"m0", "m1", "m2", "m3"}
	for i, id := range ids[:benchChain] {
		next := mir.ModuleID("")
		if i+1 < benchChain {
			next = ids[i+1]
		}
		mods[id] = &forwarder{next: next, work: work}
	}
	d, err := mir.NewDispatcher(mods, []mir.ModuleID{"src"}, ic)
	if err != nil {
		tb.Fatal(err)
	}
	digest := make([]byte, 32)
	for n := 0; n < iters; n++ {
		in := make(mir.EventList, benchBatch)
		for j := range in {
			in[j] = mir.NewEvent("m0", testMsg{View: 1, SeqNr: uint64(n*benchBatch + j), Digest: digest, From: "n1"})
		}
		if err := d.Enqueue("src", in); err != nil {
			tb.Fatal(err)
		}
		for d.HasWork() {
			if _, err := d.Round(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return d.Dispatched()
}

// nopInterceptor retains nothing and does nothing: the cost of having an
// interceptor at all (the dispatcher then no longer recycles its queues).
type nopInterceptor struct{}

func (nopInterceptor) Intercept(mir.RecordKind, mir.ModuleID, mir.EventList) error { return nil }

// BenchmarkRecordingOverhead measures events/s through a chain of passive
// modules on a mir.Dispatcher without an interceptor, with one that does
// nothing, and with a Writer recording to a temporary directory (including
// the final flush), and reports the overhead of recording, in wall-clock
// throughput and in CPU time per event. The log goes to a temporary
// directory, or below $EVENTLOG_BENCH_DIR if set (/dev/shm, say, to leave
// the file system's cost out).
//
// The "trivial" modules only forward (the loop itself runs at 7-16M
// events/s); the "target" modules hash a 32-byte digest 7 times per event,
// which puts the node near its 2M events/s target.
func BenchmarkRecordingOverhead(b *testing.B) {
	b.Run("trivial", func(b *testing.B) { benchRecording(b, 0) })
	b.Run("target", func(b *testing.B) { benchRecording(b, 7) })
}

func benchRecording(b *testing.B, work int) {
	b.ReportAllocs()
	// measure returns events/s (wall clock) and CPU nanoseconds per event
	// (all threads of the process: loop, writer, GC).
	measure := func(ic func() (mir.Interceptor, func())) (float64, float64) {
		i, done := ic()
		runtime.GC()
		cpu0 := processCPU(b)
		start := time.Now()
		n := chainWorkload(b, b.N, i, work)
		done()
		elapsed := time.Since(start)
		cpu := processCPU(b) - cpu0
		return float64(n) / elapsed.Seconds(), float64(cpu.Nanoseconds()) / float64(n)
	}
	none := func() (mir.Interceptor, func()) { return nil, func() {} }
	nop := func() (mir.Interceptor, func()) { return nopInterceptor{}, func() {} }
	var w *Writer
	writer := func() (mir.Interceptor, func()) {
		dir := b.TempDir()
		if base := os.Getenv("EVENTLOG_BENCH_DIR"); base != "" {
			var err error
			if dir, err = os.MkdirTemp(base, "eventlog-bench-"); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
		}
		var err error
		w, err = NewWriter(dir, Options{NodeID: "n1"})
		if err != nil {
			b.Fatal(err)
		}
		return w, func() {
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	plain, plainCPU := measure(none)
	withNop, nopCPU := measure(nop)
	recorded, recordedCPU := measure(writer)
	b.StopTimer()
	b.ReportMetric(plain, "plain-events/s")
	b.ReportMetric(withNop, "nop-events/s")
	b.ReportMetric(recorded, "recorded-events/s")
	b.ReportMetric(100*(1-recorded/plain), "overhead-%")
	b.ReportMetric(100*(1-recorded/withNop), "overhead-vs-nop-%")
	b.ReportMetric(plainCPU, "plain-cpu-ns/event")
	b.ReportMetric(nopCPU, "nop-cpu-ns/event")
	b.ReportMetric(recordedCPU, "recorded-cpu-ns/event")
}

// processCPU returns the CPU time (user and system) the process used so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncodeRecord measures the fast encoder on typical events.
func BenchmarkEncodeRecord(b *testing.B) {
	evs := make(mir.EventList, benchBatch)
	for i := range evs {
		evs[i] = msgEvent("m1", uint64(i))
		evs[i].Src = "m0"
	}
	enc := newEncoder()
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _ = enc.appendRecord(buf[:0], uint64(i), "n1", mir.RecordDispatch, "m1", evs)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodeRecordMarshal is the same with mir.Marshal, for comparison.
func BenchmarkEncodeRecordMarshal(b *testing.B) {
	evs := make(mir.EventList, benchBatch)
	for i := range evs {
		evs[i] = msgEvent("m1", uint64(i))
		evs[i].Src = "m0"
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := mir.Marshal(Record{Index: uint64(i), NodeID: "n1", Kind: mir.RecordDispatch, Module: "m1", Events: evs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}
