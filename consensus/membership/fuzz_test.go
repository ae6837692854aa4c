package membership

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzDecodeSet from fuzzSeeds")

// fuzzSeeds returns named encodings: valid sets of each kind and near
// misses.
func fuzzSeeds(t testing.TB) map[string][]byte {
	strict, err := NewSet(strictVals(t, 4))
	if err != nil {
		t.Fatal(err)
	}
	huge := TestSet(ids("a", "b", "c"), []uint64{^uint64(0), ^uint64(0), 1})
	single := TestSet(ids("solo"), nil)
	seeds := map[string][]byte{
		"strict4":   strict.Encode(),
		"sim_huge":  huge.Encode(),
		"sim_one":   single.Encode(),
		"empty":     {},
		"null":      {0xf6},
		"no_vals":   {0x82, 0xf5, 0x80},
		"null_addr": {0x82, 0xf5, 0x81, 0x84, 0x61, 'a', 0x60, 0xf6, 0x41, 0x01},
		"zero_w":    {0x82, 0xf5, 0x81, 0x84, 0x61, 'a', 0x60, 0x80, 0x40},
		"lead_zero": {0x82, 0xf5, 0x81, 0x84, 0x61, 'a', 0x60, 0x80, 0x42, 0x00, 0x01},
		"truncated": strict.Encode()[:len(strict.Encode())/2],
	}
	unsorted := huge.wire()
	unsorted.Validators[0], unsorted.Validators[1] = unsorted.Validators[1], unsorted.Validators[0]
	if seeds["unsorted"], err = encMode.Marshal(unsorted); err != nil {
		t.Fatal(err)
	}
	return seeds
}

// TestUpdateFuzzCorpus rewrites the committed seed corpus when run with
// -update-fuzz-corpus, and otherwise checks that it is present.
func TestUpdateFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeSet")
	seeds := fuzzSeeds(t)
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("seed corpus missing (run go test -run TestUpdateFuzzCorpus -update-fuzz-corpus): %v", err)
	}
	if len(entries) < len(seeds) {
		t.Fatalf("seed corpus has %d files, want %d", len(entries), len(seeds))
	}
}

// FuzzDecodeSet checks that Decode never panics on untrusted bytes and that
// whatever it accepts is canonical, valid and self-consistent.
func FuzzDecodeSet(f *testing.F) {
	for _, data := range fuzzSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			if s != nil {
				t.Fatal("Decode returned a set and an error")
			}
			return
		}
		if !bytes.Equal(s.Encode(), data) {
			t.Fatalf("accepted non-canonical input %x (canonical %x)", data, s.Encode())
		}
		vals := s.Validators()
		var again *Set
		if s.Sim() {
			again, err = NewSimSet(vals)
		} else {
			again, err = NewSet(vals)
		}
		if err != nil || !again.Equal(s) || !bytes.Equal(again.Digest(), s.Digest()) {
			t.Fatalf("rebuilding the decoded set: %v", err)
		}
		if s.Len() == 0 || !slices.IsSorted(s.IDs()) {
			t.Fatalf("decoded set: Len %d, IDs %v", s.Len(), s.IDs())
		}
		total := Weight{}
		for _, v := range vals {
			if v.Weight.IsZero() || !s.Contains(v.ID) || (!s.Sim() && v.PeerID == "") {
				t.Fatalf("decoded invalid validator %+v", v)
			}
			total = total.Add(v.Weight)
		}
		if !total.Equal(s.TotalWeight()) {
			t.Fatalf("TotalWeight %s, sum %s", s.TotalWeight(), total)
		}
		tl := s.NewTally()
		for _, id := range s.IDs() {
			tl.Add(id)
		}
		if !tl.Strong() || !tl.Weak() || !s.IsStrongQuorum(s.IDs()) || s.IsWeakQuorum([]mir.NodeID{"\x00not a member"}) {
			t.Fatal("quorum of all members wrong")
		}
	})
}
