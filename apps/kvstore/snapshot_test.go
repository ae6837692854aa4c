package kvstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// sampleStore returns a store with a few batches of random history.
func sampleStore(t testing.TB, seed uint64) *Store {
	s := New()
	g := newOpGen(seed, 30, 4)
	for range 8 {
		mustApply(t, s, g.batch(12).Txs...)
	}
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, s := range []*Store{New(), sampleStore(t, 1), sampleStore(t, 2)} {
		root, data, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		r := sampleStore(t, 99) // restoring replaces whatever was there
		got, err := r.Restore(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, root) || !bytes.Equal(r.Root(), root) {
			t.Fatalf("restored root %x, want %x", got, root)
		}
		if _, again, _ := r.Snapshot(); !bytes.Equal(again, data) {
			t.Fatal("snapshot of the restored store differs")
		}
		if r.Len() != s.Len() || r.NextSeqNr() != s.NextSeqNr() {
			t.Fatal("restored store differs")
		}
		for i := range 30 {
			k := fmt.Sprintf("k%d", i)
			v1, ok1 := s.Get(k)
			v2, ok2 := r.Get(k)
			if ok1 != ok2 || !bytes.Equal(v1, v2) {
				t.Fatalf("%s: %q/%v vs %q/%v", k, v1, ok1, v2, ok2)
			}
		}
		for i := range 4 {
			snd := fmt.Sprintf("s%d", i)
			if s.NextNonce(snd) != r.NextNonce(snd) {
				t.Fatalf("nonce of %s differs", snd)
			}
		}
	}
}

// snapshotBuilder writes snapshots by hand, including invalid ones.
type snapshotBuilder struct{ b []byte }

func newSnapshotBuilder(next uint64) *snapshotBuilder {
	b := append([]byte("MSKV"), 1)
	return &snapshotBuilder{b: binary.BigEndian.AppendUint64(b, next)}
}

func (w *snapshotBuilder) u64(v uint64) *snapshotBuilder {
	w.b = binary.BigEndian.AppendUint64(w.b, v)
	return w
}

func (w *snapshotBuilder) str(s string) *snapshotBuilder {
	w.b = append(binary.BigEndian.AppendUint32(w.b, uint32(len(s))), s...)
	return w
}

func TestRestoreRejects(t *testing.T) {
	valid := func() *snapshotBuilder { return newSnapshotBuilder(3).u64(1).str("k").str("v").u64(1).str("s").u64(2) }
	if _, err := New().Restore(valid().b); err != nil {
		t.Fatalf("valid snapshot rejected: %v", err)
	}
	long := string(bytes.Repeat([]byte{'x'}, MaxKeyLen+1))
	cases := map[string][]byte{
		"empty":              nil,
		"bad magic":          append([]byte("MSKX"), valid().b[4:]...),
		"bad version":        append(append([]byte("MSKV"), 2), valid().b[5:]...),
		"trailing byte":      append(valid().b, 0),
		"huge key count":     newSnapshotBuilder(0).u64(1 << 62).b,
		"huge sender count":  newSnapshotBuilder(0).u64(0).u64(1 << 40).b,
		"key count too big":  newSnapshotBuilder(0).u64(2).str("k").str("v").u64(0).b,
		"empty key":          newSnapshotBuilder(0).u64(1).str("").str("v").u64(0).b,
		"key with =":         newSnapshotBuilder(0).u64(1).str("a=b").str("v").u64(0).b,
		"long key":           newSnapshotBuilder(0).u64(1).str(long).str("v").u64(0).b,
		"long value":         newSnapshotBuilder(0).u64(1).str("k").str(string(make([]byte, MaxValueLen+1))).u64(0).b,
		"huge value length":  newSnapshotBuilder(0).u64(1).str("k").u64(0xffffffff_00000000).b,
		"unsorted keys":      newSnapshotBuilder(0).u64(2).str("b").str("").str("a").str("").u64(0).b,
		"duplicate keys":     newSnapshotBuilder(0).u64(2).str("a").str("1").str("a").str("2").u64(0).b,
		"empty sender":       newSnapshotBuilder(0).u64(0).u64(1).str("").u64(1).b,
		"long sender":        newSnapshotBuilder(0).u64(0).u64(1).str(long).u64(1).b,
		"zero nonce":         newSnapshotBuilder(0).u64(0).u64(1).str("s").u64(0).b,
		"unsorted senders":   newSnapshotBuilder(0).u64(0).u64(2).str("t").u64(1).str("s").u64(1).b,
		"duplicate senders":  newSnapshotBuilder(0).u64(0).u64(2).str("s").u64(1).str("s").u64(2).b,
		"missing senders":    newSnapshotBuilder(0).u64(0).b,
		"truncated nonce":    newSnapshotBuilder(0).u64(0).u64(1).str("s").b,
		"truncated sequence": []byte("MSKV\x01\x00\x00"),
	}
	for i := range len(valid().b) {
		cases[fmt.Sprintf("truncated at %d", i)] = valid().b[:i]
	}
	s := sampleStore(t, 5)
	root, before, _ := s.Snapshot()
	for name, data := range cases {
		got, err := s.Restore(data)
		if !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: Restore: %v, want ErrBadSnapshot", name, err)
		}
		if got != nil {
			t.Errorf("%s: Restore returned a root with an error", name)
		}
		if _, after, _ := s.Snapshot(); !bytes.Equal(after, before) || !bytes.Equal(s.Root(), root) {
			t.Fatalf("%s: failed Restore changed the state", name)
		}
	}
}

// TestRestoreCorrupted flips every byte of a real snapshot in turn: each
// result is rejected, or (when the flip lands in a value or yields another
// valid encoding) restores to a different root. Either way Snapshot
// reproduces the input exactly.
func TestRestoreCorrupted(t *testing.T) {
	src := sampleStore(t, 3)
	root, data, _ := src.Snapshot()
	s := sampleStore(t, 4)
	r0, before, _ := s.Snapshot()
	var rejected, accepted int
	for i := range data {
		c := bytes.Clone(data)
		c[i] ^= 0x41
		got, err := s.Restore(c)
		if err != nil {
			rejected++
			if _, after, _ := s.Snapshot(); !bytes.Equal(after, before) || !bytes.Equal(s.Root(), r0) {
				t.Fatalf("byte %d: failed Restore changed the state", i)
			}
			continue
		}
		accepted++
		if bytes.Equal(got, root) {
			t.Fatalf("byte %d: corrupted snapshot has the original root", i)
		}
		if _, again, _ := s.Snapshot(); !bytes.Equal(again, c) {
			t.Fatalf("byte %d: accepted a non-canonical snapshot", i)
		}
		if _, err := s.Restore(before); err != nil {
			t.Fatal(err)
		}
	}
	if rejected == 0 || accepted == 0 {
		t.Fatalf("rejected %d, accepted %d", rejected, accepted)
	}
}

func FuzzRestore(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := sampleStore(t, 1)
		root0, before, _ := s.Snapshot()
		root, err := s.Restore(data)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			if _, after, _ := s.Snapshot(); !bytes.Equal(after, before) || !bytes.Equal(s.Root(), root0) {
				t.Fatal("failed Restore changed the state")
			}
			return
		}
		if _, again, _ := s.Snapshot(); !bytes.Equal(again, data) {
			t.Fatal("accepted a non-canonical snapshot")
		}
		if Hash(root) != storeRefRoot(s) {
			t.Fatal("restored root differs from the reference root")
		}
	})
}

// fuzzSeeds returns the seed inputs: valid snapshots and near misses.
func fuzzSeeds(tb testing.TB) [][]byte {
	_, empty, _ := New().Snapshot()
	_, small, _ := sampleStore(tb, 2).Snapshot()
	return [][]byte{
		empty,
		small,
		small[:len(small)-3],
		append(bytes.Clone(small), 0),
		newSnapshotBuilder(0).u64(2).str("b").str("").str("a").str("").u64(0).b,
		newSnapshotBuilder(7).u64(1).str("k").str("v=w").u64(1).str("s").u64(1).b,
		newSnapshotBuilder(0).u64(1 << 62).b,
		nil,
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzRestore.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("KVSTORE_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set KVSTORE_WRITE_FUZZ_CORPUS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRestore")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, seed := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
