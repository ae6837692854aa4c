package transport

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

var benchSizes = []int{256, 16 << 10}

func BenchmarkEncodeFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			m := testMsg{Seq: 1, Data: make([]byte, size)}
			b.ReportAllocs()
			var n int
			for b.Loop() {
				f, err := EncodeFrame("iss/pbft/3", m, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				n = len(f)
			}
			b.SetBytes(int64(n))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f, err := EncodeFrame("iss/pbft/3", testMsg{Seq: 1, Data: make([]byte, size)}, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			rd := bytes.NewReader(f)
			br := bufio.NewReader(rd)
			var buf []byte
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(f)
				br.Reset(rd)
				body, err := ReadFrame(br, 1<<20, buf)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := DecodeFrame(body); err != nil {
					b.Fatal(err)
				}
				buf = body[:0]
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkLoopback measures one-way throughput between two transports on
// 127.0.0.1, from SendMessage at one to MessageReceived at the other, with
// at most a window of frames in flight (so that nothing is dropped).
func BenchmarkLoopback(b *testing.B) {
	for _, kind := range []string{"tcp", "quic-v1"} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%dB", kind, size), func(b *testing.B) { benchLoopback(b, kind, size) })
		}
	}
}

func benchLoopback(b *testing.B, kind string, size int) {
	ids := nodeIDs(2)
	keys := crypto.TestKeys(21, 2)
	bare := setOf(b, ids, keys, nil)
	src := startNode(b, "n0", keys[0], bare, nil)
	dst, err := New(Config{Self: "n1", PrivKey: keys[1].Priv, ListenAddrs: loopback, Members: bare,
		AllowedModules: []mir.ModuleID{"app"}, Params: testParams()})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := contextWithCancel()
	go func() { done <- dst.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		dst.Close()
	}()
	full := setOf(b, ids, keys, map[mir.NodeID][]string{"n0": addrsOf(src.tr, kind), "n1": addrsOf(dst, kind)})
	if err := src.tr.UpdateMembership(full); err != nil {
		b.Fatal(err)
	}
	if err := dst.UpdateMembership(full); err != nil {
		b.Fatal(err)
	}
	msg := testMsg{Seq: 1, Data: make([]byte, size)}
	sendBatch := func(n int) {
		evs := make(mir.EventList, n)
		for i := range evs {
			evs[i] = mir.NewEvent(ModuleID, events.SendMessage{Destinations: []mir.NodeID{"n1"}, DestModule: "app", Msg: msg})
		}
		if err := src.tr.ApplyEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	received := 0
	recv := func(until int) {
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for received < until {
			select {
			case evs := <-dst.EventsOut():
				received += len(evs)
			case <-timeout.C:
				b.Fatalf("received %d of %d; sender stats %+v", received, until, src.tr.Stats().Peers["n1"])
			}
		}
	}
	// Warm up: the first frame waits for the connection.
	sendBatch(1)
	recv(1)
	received = 0
	frameLen, _ := EncodeFrame("app", msg, 1<<20)
	const window, chunk = 2048, 256 // in flight: below SendQueue and SendQueueBytes
	b.SetBytes(int64(len(frameLen)))
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(chunk, b.N-sent)
		sendBatch(n)
		sent += n
		recv(sent - window)
	}
	recv(b.N)
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "frames/s")
	b.ReportMetric(float64(b.N*len(frameLen))/secs/1e6, "MB/s")
	if d := src.tr.Stats().Peers["n1"].Dropped(); d != 0 {
		b.Fatalf("%d frames dropped", d)
	}
}
