package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// testData is the deterministic content of the record with index i.
func testData(i uint64) []byte {
	b := make([]byte, int(i*7%97))
	for j := range b {
		b[j] = byte(i*31 + uint64(j))
	}
	return b
}

func smallOpts() Options {
	o := DefaultOptions()
	o.SegmentSize = 512
	o.MaxRecordSize = 1 << 10
	return o
}

func mustOpen(t testing.TB, dir string, o Options) (*Log, []Record, RecoveryReport) {
	t.Helper()
	l, recs, rep, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, recs, rep
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendRange appends records first..last with data testData(i) and
// retention ret(i), checking the indexes.
func appendRange(t testing.TB, l *Log, first, last uint64, ret func(uint64) uint64) {
	t.Helper()
	for i := first; i <= last; i++ {
		idx, err := l.Append(testData(i), ret(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if idx != i {
			t.Fatalf("Append returned index %d, want %d", idx, i)
		}
	}
}

// checkRecords asserts that recs are exactly the records with the given
// indexes, with testData contents and retention ret(i).
func checkRecords(t testing.TB, recs []Record, want []uint64, ret func(uint64) uint64) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for k, r := range recs {
		i := want[k]
		if r.Index != i || r.RetentionIndex != ret(i) || !bytes.Equal(r.Data, testData(i)) {
			t.Fatalf("record %d: got index %d retention %d data %x, want index %d retention %d data %x",
				k, r.Index, r.RetentionIndex, r.Data, i, ret(i), testData(i))
		}
	}
}

func span(first, last uint64) []uint64 {
	var s []uint64
	for i := first; i <= last; i++ {
		s = append(s, i)
	}
	return s
}

func retZero(uint64) uint64     { return 0 }
func retTenths(i uint64) uint64 { return i / 10 }

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestAppendReopen(t *testing.T) {
	dir := t.TempDir()
	l, recs, rep := mustOpen(t, dir, smallOpts())
	if len(recs) != 0 || rep.NextIndex != 1 || rep.TailTruncated {
		t.Fatalf("fresh log: %d records, report %v", len(recs), rep)
	}
	appendRange(t, l, 1, 200, retTenths)
	mustClose(t, l)
	if n := len(segmentFiles(t, dir)); n < 10 {
		t.Fatalf("%d segments with 512-byte segments, want many", n)
	}

	l, recs, rep = mustOpen(t, dir, smallOpts())
	checkRecords(t, recs, span(1, 200), retTenths)
	if rep.TailTruncated || rep.Records != 200 || rep.FirstIndex != 1 || rep.LastIndex != 200 || rep.NextIndex != 201 {
		t.Fatalf("report %v", rep)
	}
	appendRange(t, l, 201, 250, retTenths)
	mustClose(t, l)

	l, recs, _ = mustOpen(t, dir, smallOpts())
	defer mustClose(t, l)
	checkRecords(t, recs, span(1, 250), retTenths)
}

func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := mustOpen(t, dir, smallOpts())
	const writers, each = 8, 50
	var mu sync.Mutex
	got := map[uint64][]byte{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; k++ {
				data := []byte(fmt.Sprintf("writer %d record %d", w, k))
				idx, err := l.Append(data, uint64(w))
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				got[idx] = data
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	mustClose(t, l)
	l, recs, _ := mustOpen(t, dir, smallOpts())
	defer mustClose(t, l)
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
	for k, r := range recs {
		if r.Index != uint64(k+1) || !bytes.Equal(r.Data, got[r.Index]) {
			t.Fatalf("record %d: index %d data %q, acknowledged %q", k, r.Index, r.Data, got[r.Index])
		}
	}
}

// gate is a syncFile hook that, once armed, blocks every sync until released
// and counts the syncs entered.
type gate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
	err     error
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (g *gate) sync(f *os.File) error {
	g.mu.Lock()
	armed, err := g.armed, g.err
	g.mu.Unlock()
	if err != nil {
		return err
	}
	if armed {
		g.entered <- struct{}{}
		<-g.release
	}
	return f.Sync()
}

func (g *gate) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gate) failWith(err error) {
	g.mu.Lock()
	g.err = err
	g.mu.Unlock()
}

func recvOrFail[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestGroupCommit(t *testing.T) {
	g := newGate()
	o := DefaultOptions()
	o.syncFile = g.sync
	l, _, _ := mustOpen(t, t.TempDir(), o)
	defer mustClose(t, l)
	g.arm()

	// The first append's fsync blocks; everything submitted meanwhile queues.
	first := make(chan error, 1)
	l.AppendAsync([]byte("first"), 0, func(_ uint64, err error) { first <- err })
	recvOrFail(t, "the first fsync", g.entered)

	const n = 100
	var mu sync.Mutex
	var order []uint64
	all := make(chan struct{})
	for i := 0; i < n; i++ {
		l.AppendAsync(testData(uint64(i)), 0, func(idx uint64, err error) {
			if err != nil {
				t.Errorf("append: %v", err)
			}
			mu.Lock()
			order = append(order, idx)
			if len(order) == n {
				close(all)
			}
			mu.Unlock()
		})
	}
	if got := l.queued(); got != n {
		t.Fatalf("%d requests queued, want %d", got, n)
	}
	before := l.Stats()
	close(g.release) // from now on syncs pass
	if err := recvOrFail(t, "first append", first); err != nil {
		t.Fatal(err)
	}
	recvOrFail(t, "the batch", all)

	st := l.Stats()
	if before.Syncs != 0 || st.Syncs != 2 || st.Batches != 2 || st.Appends != n+1 {
		t.Fatalf("stats %+v (before release %+v): want 2 syncs and batches for %d appends", st, before, n+1)
	}
	for k, idx := range order {
		if idx != uint64(k+2) {
			t.Fatalf("acknowledgement %d has index %d, want %d (submission order)", k, idx, k+2)
		}
	}
}

func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := mustOpen(t, dir, smallOpts())
	appendRange(t, l, 1, 100, retTenths) // retention 0..10
	segsBefore := len(segmentFiles(t, dir))
	if err := l.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Truncations != 1 || st.SegmentsRemoved == 0 {
		t.Fatalf("stats %+v: want one truncation removing segments", st)
	}
	if n := len(segmentFiles(t, dir)); n >= segsBefore {
		t.Fatalf("%d segments after truncation, %d before", n, segsBefore)
	}
	// Appended after the truncation: survives although its retention is low.
	if idx, err := l.Append(testData(101), 1); err != nil || idx != 101 {
		t.Fatalf("Append: %d, %v", idx, err)
	}
	// Not above the last truncation: no effect.
	if err := l.Truncate(3); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)

	ret := func(i uint64) uint64 {
		if i == 101 {
			return 1
		}
		return retTenths(i)
	}
	l, recs, rep := mustOpen(t, dir, smallOpts())
	checkRecords(t, recs, span(50, 101), ret)
	if rep.TailTruncated || rep.NextIndex != 102 || rep.Discarded == 0 || rep.FirstIndex > 50 {
		t.Fatalf("report %v", rep)
	}
	appendRange(t, l, 102, 110, retTenths)
	// Discard everything: the log keeps one empty segment and its indexes.
	if err := l.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after discarding everything, want 1", n)
	}
	mustClose(t, l)

	l, recs, rep = mustOpen(t, dir, smallOpts())
	if len(recs) != 0 || rep.NextIndex != 111 || rep.Discarded != 0 {
		t.Fatalf("%d records, report %v; want none and next index 111", len(recs), rep)
	}
	appendRange(t, l, 111, 120, func(uint64) uint64 { return 100 })
	mustClose(t, l)
	l, recs, _ = mustOpen(t, dir, smallOpts())
	defer mustClose(t, l)
	checkRecords(t, recs, span(111, 120), func(uint64) uint64 { return 100 })
}

// TestTruncateInterrupted simulates a crash between persisting the
// truncation point and deleting the segments: Open finishes the job.
func TestTruncateInterrupted(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := mustOpen(t, dir, smallOpts())
	appendRange(t, l, 1, 100, retTenths)
	saved := map[string][]byte{}
	for _, p := range segmentFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		saved[p] = b
	}
	if err := l.Truncate(5); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	restored := 0
	for p, b := range saved {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(p, b, 0o640); err != nil {
				t.Fatal(err)
			}
			restored++
		}
	}
	if restored == 0 {
		t.Fatal("truncation removed no segment")
	}
	l, recs, rep := mustOpen(t, dir, smallOpts())
	defer mustClose(t, l)
	checkRecords(t, recs, span(50, 100), retTenths)
	if len(rep.RemovedSegments) != restored {
		t.Fatalf("report %v: want %d removed segments", rep, restored)
	}
}

func lastSegment(t testing.TB, dir string) string {
	segs := segmentFiles(t, dir)
	return segs[len(segs)-1]
}

func TestTornTail(t *testing.T) {
	const n = 20
	frame := func(i uint64) int64 { return int64(FrameHeaderSize + RecordHeaderSize + len(testData(i))) }
	// Layout of the single segment holding records 1..n.
	end := int64(SegmentHeaderSize)
	for i := uint64(1); i < n; i++ {
		end += frame(i)
	}
	lastStart := end // offset of record n
	full := lastStart + frame(n)

	cases := []struct {
		name        string
		damage      func(b []byte) []byte
		wantRecords uint64
		reason      string
		dropped     int64
		droppedRecs int
	}{
		{"cut in payload", func(b []byte) []byte { return b[:lastStart+FrameHeaderSize+5] }, n - 1, ReasonTornRecord, FrameHeaderSize + 5, 1},
		{"cut in frame header", func(b []byte) []byte { return b[:lastStart+3] }, n - 1, ReasonTornHeader, 3, 1},
		{"flipped payload byte", func(b []byte) []byte { b[full-1] ^= 0x40; return b }, n - 1, ReasonChecksum, frame(n), 1},
		{"flipped length", func(b []byte) []byte { b[lastStart+3] ^= 0x80; return b }, n - 1, ReasonBadLength, frame(n), 1},
		{"zeros after the end", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, n, ReasonZeroTail, 4096, 0},
		{"zeroed last record", func(b []byte) []byte { clear(b[lastStart:]); return b }, n - 1, ReasonZeroTail, frame(n), 0},
		{"flipped byte before an intact record", func(b []byte) []byte {
			b[lastStart-1] ^= 1 // last byte of record n-1
			return b
		}, n - 2, ReasonChecksum, frame(n-1) + frame(n), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _, _ := mustOpen(t, dir, DefaultOptions())
			appendRange(t, l, 1, n, retZero)
			mustClose(t, l)
			path := lastSegment(t, dir)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(b)) != full {
				t.Fatalf("segment has %d bytes, want %d", len(b), full)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o640); err != nil {
				t.Fatal(err)
			}

			l, recs, rep := mustOpen(t, dir, DefaultOptions())
			checkRecords(t, recs, span(1, tc.wantRecords), retZero)
			wantOffset := full
			if tc.wantRecords < n {
				wantOffset = full - tc.dropped
				if tc.reason == ReasonTornRecord || tc.reason == ReasonTornHeader {
					wantOffset = lastStart
				}
			}
			if !rep.TailTruncated || rep.Reason != tc.reason || rep.DroppedBytes != tc.dropped ||
				rep.DroppedRecords != tc.droppedRecs || rep.TailOffset != wantOffset ||
				rep.TailSegment != filepath.Base(path) || rep.NextIndex != tc.wantRecords+1 {
				t.Fatalf("report %+v: want reason %q, %d bytes and %d records dropped at offset %d",
					rep, tc.reason, tc.dropped, tc.droppedRecs, wantOffset)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != rep.TailOffset {
				t.Fatalf("segment not cut at %d: %v, %v", rep.TailOffset, fi.Size(), err)
			}
			// The log continues after the last intact record.
			appendRange(t, l, tc.wantRecords+1, n+5, retZero)
			mustClose(t, l)
			l, recs, rep = mustOpen(t, dir, DefaultOptions())
			defer mustClose(t, l)
			checkRecords(t, recs, span(1, n+5), retZero)
			if rep.TailTruncated {
				t.Fatalf("second recovery cut again: %v", rep)
			}
		})
	}
}

func TestCorruption(t *testing.T) {
	// Each case builds a log of several segments, damages it, and expects
	// Open to fail with ErrCorrupt.
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, segs []string)
	}{
		{"record in a middle segment", func(t *testing.T, dir string, segs []string) {
			flipByte(t, segs[1], SegmentHeaderSize+10)
		}},
		{"torn middle segment", func(t *testing.T, dir string, segs []string) {
			fi, _ := os.Stat(segs[1])
			if err := os.Truncate(segs[1], fi.Size()-1); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing middle segment", func(t *testing.T, dir string, segs []string) {
			if err := os.Remove(segs[1]); err != nil {
				t.Fatal(err)
			}
		}},
		{"segment header", func(t *testing.T, dir string, segs []string) { flipByte(t, segs[0], 17) }},
		{"final segment header", func(t *testing.T, dir string, segs []string) { flipByte(t, segs[len(segs)-1], 2) }},
		{"segment named wrongly", func(t *testing.T, dir string, segs []string) {
			if err := os.Rename(segs[0], filepath.Join(dir, segmentName(0xabc))); err != nil {
				t.Fatal(err)
			}
		}},
		{"metadata", func(t *testing.T, dir string, segs []string) { flipByte(t, filepath.Join(dir, metaName), 20) }},
		{"first segment after truncation missing", func(t *testing.T, dir string, segs []string) {
			if err := os.Remove(segs[0]); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _, _ := mustOpen(t, dir, smallOpts())
			appendRange(t, l, 1, 100, retTenths)
			if err := l.Truncate(2); err != nil { // writes the metadata file
				t.Fatal(err)
			}
			mustClose(t, l)
			segs := segmentFiles(t, dir)
			if len(segs) < 3 {
				t.Fatalf("only %d segments", len(segs))
			}
			tc.damage(t, dir, segs)
			l, _, rep, err := Open(dir, smallOpts())
			if err == nil {
				_ = l.Close()
				t.Fatalf("Open succeeded on a corrupt log: %v", rep)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := mustOpen(t, dir, DefaultOptions())
	appendRange(t, l, 1, 3, retZero)
	mustClose(t, l)
	// A crash while creating a segment or replacing the metadata leaves a
	// temporary file; it is removed and not taken for data.
	for _, name := range []string{segmentName(4) + tmpSuffix, metaName + tmpSuffix} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	l, recs, _ := mustOpen(t, dir, DefaultOptions())
	defer mustClose(t, l)
	checkRecords(t, recs, span(1, 3), retZero)
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix)); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestLimitsAndErrors(t *testing.T) {
	if _, _, _, err := Open(t.TempDir(), Options{SegmentSize: 1 << 20, MaxRecordSize: MaxRecordSizeLimit + 1}); err == nil {
		t.Fatal("Open accepted MaxRecordSize above the format limit")
	}
	g := newGate()
	o := smallOpts()
	o.syncFile = g.sync
	dir := t.TempDir()
	l, _, _ := mustOpen(t, dir, o)
	if _, err := l.Append(make([]byte, o.MaxRecordSize+1), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized append: %v, want ErrTooLarge", err)
	}
	if idx, err := l.Append(make([]byte, o.MaxRecordSize), 0); err != nil || idx != 1 {
		t.Fatalf("append at the limit: %d, %v", idx, err)
	}
	// A sync error is sticky: the log refuses everything afterwards.
	boom := errors.New("disk on fire")
	g.failWith(boom)
	if _, err := l.Append([]byte("x"), 0); !errors.Is(err, boom) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	g.failWith(nil)
	if _, err := l.Append([]byte("y"), 0); !errors.Is(err, boom) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	if err := l.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v, want the write error", err)
	}
	if _, err := l.Append([]byte("z"), 0); !errors.Is(err, boom) {
		t.Fatalf("append after Close: %v", err)
	}

	l, recs, _ := mustOpen(t, dir, smallOpts())
	if len(recs) < 1 || recs[0].Index != 1 {
		t.Fatalf("acknowledged record lost: %v", recs)
	}
	mustClose(t, l)
	if _, err := l.Append([]byte("z"), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v, want ErrClosed", err)
	}
}

// queued returns the number of requests waiting for the writer.
func (l *Log) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// TestSyncEvery: with SyncEvery, group commits are spaced at least that far
// apart however fast appends arrive (so the number of fsyncs is bounded by
// the elapsed time), and every append is still acknowledged.
func TestSyncEvery(t *testing.T) {
	var syncs []time.Time
	var mu sync.Mutex
	o := DefaultOptions()
	o.SyncEvery = 20 * time.Millisecond
	o.syncFile = func(f *os.File) error {
		mu.Lock()
		syncs = append(syncs, time.Now())
		mu.Unlock()
		return nil
	}
	l, _, _ := mustOpen(t, t.TempDir(), o)
	defer mustClose(t, l)
	mu.Lock()
	syncs = nil // Open's own (segment creation)
	mu.Unlock()
	// Appenders that keep the log busy: each waits for its ack, then
	// appends again.
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := l.Append(testData(uint64(w*100+i)), 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	mu.Lock()
	n := len(syncs)
	for i := 1; i < n; i++ {
		if gap := syncs[i].Sub(syncs[i-1]); gap < o.SyncEvery {
			t.Errorf("commits %d and %d only %v apart", i-1, i, gap)
		}
	}
	mu.Unlock()
	if st := l.Stats(); st.Appends != 80 {
		t.Fatalf("stats %+v, want 80 appends", st)
	}
	if max := int(elapsed/o.SyncEvery) + 1; n > max {
		t.Fatalf("%d fsyncs in %v, at most %d expected", n, elapsed, max)
	}
	if n >= 80 {
		t.Fatalf("%d fsyncs for 80 appends: nothing was grouped", n)
	}
	if bad := (Options{SegmentSize: 1 << 20, MaxRecordSize: 1 << 10, SyncEvery: -time.Millisecond}).validate(); bad == nil {
		t.Fatal("a negative SyncEvery was accepted")
	}
}
