package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/events"
)

func noSync(*os.File) error { return nil }

// FuzzRecordReader feeds arbitrary bytes to recovery as the content of a
// segment file. Recovery must never panic; it returns the intact records,
// numbered from the header's first index, or an error, and a recovered
// segment recovers again to the same records without any repair.
func FuzzRecordReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The parser alone.
		if len(data) >= SegmentHeaderSize {
			body := data[SegmentHeaderSize:]
			recs, good, dmg := scanRecords(body, 7)
			if good > len(body) || (dmg == nil) != (good == len(body)) {
				t.Fatalf("good %d of %d bytes, damage %v", good, len(body), dmg)
			}
			for k, r := range recs {
				if r.Index != 7+uint64(k) {
					t.Fatalf("record %d has index %d", k, r.Index)
				}
			}
		}

		// Recovery of a directory holding it as the only segment.
		first := uint64(1)
		if h, err := decodeSegmentHeader(data); err == nil {
			first = h.first
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(first)), data, 0o640); err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions()
		o.syncFile = noSync
		l, recs, rep, err := Open(dir, o)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			return
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for k, r := range recs {
			if r.Index != first+uint64(k) {
				t.Fatalf("record %d has index %d, first %d", k, r.Index, first)
			}
		}
		if rep.NextIndex != first+uint64(len(recs)) {
			t.Fatalf("report %v for %d records from %d", rep, len(recs), first)
		}
		l, again, rep2, err := Open(dir, o)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer l.Close()
		if rep2.TailTruncated || len(again) != len(recs) {
			t.Fatalf("second recovery: %v (first: %v)", rep2, rep)
		}
		for k := range again {
			if again[k].Index != recs[k].Index || again[k].RetentionIndex != recs[k].RetentionIndex || !bytes.Equal(again[k].Data, recs[k].Data) {
				t.Fatalf("record %d differs after the second recovery", k)
			}
		}
	})
}

// FuzzEntry feeds arbitrary record data to the module's entry decoder.
func FuzzEntry(f *testing.F) {
	for _, e := range []any{testEntry{N: 1, S: "x"}, events.WALTruncate{RetentionIndex: 3}} {
		b, err := encodeEntry("iss/pbft/1", e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		owner, entry, err := decodeEntry(data)
		if err != nil {
			return
		}
		b, err := encodeEntry(owner, entry)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if _, e2, err := decodeEntry(b); err != nil || fmt.Sprint(e2) != fmt.Sprint(entry) {
			t.Fatalf("re-decoding: %v, %v", e2, err)
		}
	})
}

// fuzzSeeds returns segment files worth starting from: intact, torn,
// corrupt, empty.
func fuzzSeeds() map[string][]byte {
	seg := encodeSegmentHeader(5)
	for i := uint64(5); i < 10; i++ {
		seg = appendFrame(seg, i, i/2, testData(i))
	}
	flipped := bytes.Clone(seg)
	flipped[len(flipped)-3] ^= 0x10
	midFlip := bytes.Clone(seg)
	midFlip[SegmentHeaderSize+12] ^= 0x01
	return map[string][]byte{
		"intact":         seg,
		"header-only":    encodeSegmentHeader(1),
		"torn-payload":   seg[:len(seg)-4],
		"torn-header":    seg[:SegmentHeaderSize+3],
		"flipped-tail":   flipped,
		"flipped-middle": midFlip,
		"zero-tail":      append(bytes.Clone(seg), make([]byte, 64)...),
		"short-header":   seg[:10],
		"empty":          {},
	}
}

// TestWriteFuzzSeeds rewrites the committed seed corpus of FuzzRecordReader
// when MIRSUBNET_WAL_WRITE_FUZZ_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MIRSUBNET_WAL_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set MIRSUBNET_WAL_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzRecordReader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecordReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range fuzzSeeds() {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
