package eventlog

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// writeSimple writes n single-event records and returns the file path and
// the offsets of the frames (plus the file size at the end).
func writeSimple(t *testing.T, dir string, n int) (string, []int64) {
	t.Helper()
	w, err := NewWriter(dir, Options{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := w.Intercept(mir.RecordDispatch, "iss", mir.EventList{msgEvent("iss", uint64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events-000001.mirlog")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(magicSize)
	off += frameHeaderSize + int64(binary.LittleEndian.Uint32(data[off:]))
	var offs []int64
	for off < int64(len(data)) {
		offs = append(offs, off)
		off += frameHeaderSize + int64(binary.LittleEndian.Uint32(data[off:]))
	}
	return path, append(offs, int64(len(data)))
}

func checkPrefix(t *testing.T, recs []Record, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("read %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Index != uint64(i+1) || r.Events[0].Payload.(testMsg).SeqNr != uint64(i+1) {
			t.Fatalf("record %d is %+v", i, r)
		}
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	path, offs := writeSimple(t, dir, 5)
	data, _ := os.ReadFile(path)
	// Cut the file at every length: the reader returns the complete frames
	// and reports a torn frame where one is cut.
	for cut := 0; cut < len(data); cut++ {
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		complete := 0
		for complete < len(offs)-1 && offs[complete+1] <= int64(cut) {
			complete++
		}
		recs, r := openAll(t, path)
		checkPrefix(t, recs, complete)
		tail := r.Tail()
		atBoundary := cut >= int(offs[0]) && offs[complete] == int64(cut)
		if atBoundary {
			if tail != nil {
				t.Fatalf("cut %d at a frame boundary reported %v", cut, tail)
			}
			continue
		}
		if tail == nil || !tail.Torn || !errors.Is(tail, ErrCorrupt) {
			t.Fatalf("cut %d: tail %v", cut, tail)
		}
		if cut >= int(offs[0]) && tail.Offset != offs[complete] {
			t.Fatalf("cut %d: torn frame reported at %d, want %d", cut, tail.Offset, offs[complete])
		}
	}
}

func TestCorruptMiddleFrame(t *testing.T) {
	dir := t.TempDir()
	path, offs := writeSimple(t, dir, 6)
	data, _ := os.ReadFile(path)
	for frame := 0; frame < 6; frame++ {
		for _, pos := range []int64{offs[frame] + 2, offs[frame] + 5, offs[frame] + frameHeaderSize + 3, offs[frame+1] - 1} {
			bad := append([]byte(nil), data...)
			bad[pos] ^= 0x40
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			recs, r := openAll(t, path)
			checkPrefix(t, recs, frame)
			tail := r.Tail()
			if tail == nil || tail.Offset != offs[frame] {
				t.Fatalf("frame %d byte %d flipped: tail %v", frame, pos, tail)
			}
		}
	}
	// A zeroed tail (preallocated space) is not a run of empty records.
	zero := append(append([]byte(nil), data...), make([]byte, 64)...)
	if err := os.WriteFile(path, zero, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, r := openAll(t, path)
	checkPrefix(t, recs, 6)
	if tail := r.Tail(); tail == nil || !strings.Contains(tail.Reason, "zero-length") {
		t.Fatalf("zeroed tail: %v", tail)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "junk-000001.mirlog")
	if err := os.WriteFile(bad, []byte("this is not an event log at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, r := openAll(t, bad)
	if len(recs) != 0 || r.Tail() == nil || !strings.Contains(r.Tail().Reason, "magic") {
		t.Fatalf("junk file: %d records, tail %v", len(recs), r.Tail())
	}
	if _, err := Open(Filter{}, filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing path: %v", err)
	}
	if _, err := Open(Filter{}, t.TempDir()); !errors.Is(err, ErrNoLog) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := Open(Filter{}); !errors.Is(err, ErrNoLog) {
		t.Fatalf("no path: %v", err)
	}
}

// TestCorruptionInRotatedLog checks that a bad frame in a file that is not
// the last stops the log (the next file does not continue it).
func TestCorruptionInRotatedLog(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{NodeID: "n1", MaxFileSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		if err := w.Intercept(mir.RecordDispatch, "iss", mir.EventList{msgEvent("iss", uint64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(dir, "events-000002.mirlog")
	data, _ := os.ReadFile(second)
	data[len(data)-3] ^= 1
	if err := os.WriteFile(second, data, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, r := openAll(t, dir)
	if len(recs) == 0 || len(recs) >= 100 || r.Tail() == nil || r.Tail().Path != second {
		t.Fatalf("%d records, tail %v", len(recs), r.Tail())
	}
	checkPrefix(t, recs, len(recs))
}

func TestFilters(t *testing.T) {
	dir := t.TempDir()
	for _, node := range []mir.NodeID{"n0", "n1"} {
		w, err := NewWriter(filepath.Join(dir, string(node)), Options{NodeID: node})
		if err != nil {
			t.Fatal(err)
		}
		send := mir.NewEvent("net", events.SendMessage{Destinations: []mir.NodeID{"n1"}, DestModule: "iss/pbft/1", Msg: testMsg{SeqNr: 1}})
		send.Src = "iss"
		batches := []batch{
			{mir.RecordInbound, "", mir.EventList{mir.NewEvent("iss", events.Init{}), mir.NewEvent("net", events.Init{})}},
			{mir.RecordDispatch, "iss", mir.EventList{mir.NewEvent("iss", events.Init{}), msgEvent("iss/pbft/1", 7)}},
			{mir.RecordDispatch, "net", mir.EventList{mir.NewEvent("net", events.Init{}), send}},
		}
		for _, b := range batches {
			if err := w.Intercept(b.kind, b.module, b.events); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	count := func(f Filter) (recs, evs int) {
		r, err := Open(f, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range readAll(t, r) {
			recs++
			evs += len(rec.Events)
		}
		return recs, evs
	}
	cases := []struct {
		name       string
		f          Filter
		recs, evts int
	}{
		{"all", Filter{}, 6, 12},
		{"node", Filter{Node: "n1"}, 3, 6},
		{"kind", Filter{Kind: mir.RecordInbound}, 2, 4},
		{"module whole record", Filter{Node: "n0", Module: "net"}, 2, 3},
		{"module path", Filter{Node: "n0", Module: "iss/pbft"}, 1, 1},
		{"module top", Filter{Node: "n0", Module: "iss"}, 3, 4},
		{"type short", Filter{Type: "Init"}, 6, 8},
		{"type full", Filter{Type: "events.SendMessage"}, 2, 2},
		{"type nested", Filter{Type: "testMsg"}, 4, 4},
		{"type none", Filter{Type: "Nope"}, 0, 0},
		{"range", Filter{From: 2, To: 2}, 2, 4},
	}
	for _, c := range cases {
		recs, evs := count(c.f)
		if recs != c.recs || evs != c.evts {
			t.Errorf("%s: %d records / %d events, want %d / %d", c.name, recs, evs, c.recs, c.evts)
		}
	}
}

// TestRandomCorruption flips random bytes in a rotated log: whatever the
// reader returns is a prefix of the written records.
func TestRandomCorruption(t *testing.T) {
	seed := uint64(rand.Int64())
	rng := rand.New(rand.NewPCG(seed, 9))
	dir := t.TempDir()
	bs := randomBatches(rng, 60)
	writeBatches(t, dir, Options{NodeID: "n1", MaxFileSize: 2 << 10}, bs)
	files, _ := filepath.Glob(filepath.Join(dir, "*.mirlog"))
	orig := map[string][]byte{}
	for _, f := range files {
		orig[f], _ = os.ReadFile(f)
	}
	for round := 0; round < 100; round++ {
		f := files[rng.IntN(len(files))]
		data := append([]byte(nil), orig[f]...)
		data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		recs, _ := openAll(t, dir)
		if len(recs) > len(bs) {
			t.Fatalf("seed %d: %d records from %d", seed, len(recs), len(bs))
		}
		checkRecords(t, "n1", recs, bs[:len(recs)], 1)
		if err := os.WriteFile(f, orig[f], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
