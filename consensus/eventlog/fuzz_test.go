package eventlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// FuzzReader checks that reading arbitrary bytes as a log never panics and
// yields records with consecutive indexes. If the first byte is odd, the
// input is split into two files of one log at the offset its second byte
// gives (in percent), to exercise reading across files.
func FuzzReader(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		parts := [][]byte{data}
		if len(data) >= 2 && data[0]&1 == 1 {
			cut := 2 + (len(data)-2)*int(data[1]%101)/100
			parts = [][]byte{data[2:cut], data[cut:]}
		}
		for i, p := range parts {
			if err := os.WriteFile(filepath.Join(dir, fileName(DefaultPrefix, uint64(i+1))), p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Open(Filter{}, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var last uint64
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if last != 0 && rec.Index != last+1 {
				t.Fatalf("record %d after %d", rec.Index, last)
			}
			last = rec.Index
			for _, e := range rec.Events {
				if _, err := EventJSON(e); err != nil {
					t.Fatalf("EventJSON: %v", err)
				}
			}
		}
	})
}

// fuzzSeeds returns logs to start fuzzing from: a valid log, a rotated one
// and a torn one.
func fuzzSeeds(tb testing.TB) [][]byte {
	dir := tb.(interface{ TempDir() string }).TempDir()
	w, err := NewWriter(dir, Options{NodeID: "n1", Meta: map[string]string{"members": "n0,n1"}, MaxFileSize: 150})
	if err != nil {
		tb.Fatal(err)
	}
	batches := []mir.EventList{
		{mir.NewEvent("iss", events.Init{}), mir.NewEvent("net", events.Init{})},
		{msgEvent("iss/pbft/1", 3).WithNext(msgEvent("net", 4))},
		{mir.NewEvent("timer", events.TimerDelay{Events: mir.EventList{msgEvent("iss", 5)}, After: 7, RetentionIndex: 2})},
		{mir.NewEvent("net", events.SendMessage{Destinations: []mir.NodeID{"n0"}, DestModule: "iss", Msg: testMsg{SeqNr: 9}})},
	}
	for i, b := range batches {
		kind := mir.RecordDispatch
		if i%2 == 1 {
			kind = mir.RecordInbound
		}
		if err := w.Intercept(kind, "iss", b); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	var seeds [][]byte
	for seq := uint64(1); ; seq++ {
		b, err := os.ReadFile(filepath.Join(dir, fileName(DefaultPrefix, seq)))
		if err != nil {
			break
		}
		seeds = append(seeds, b)
	}
	if len(seeds) >= 2 {
		// Two files of one log, split as FuzzReader splits its input.
		two := append([]byte{1, byte(100 * len(seeds[0]) / (len(seeds[0]) + len(seeds[1])))}, seeds[0]...)
		seeds = append(seeds, append(two, seeds[1]...))
	}
	seeds = append(seeds, seeds[0][:len(seeds[0])-5], []byte(fileMagic), nil)
	return seeds
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzReader when
// EVENTLOG_WRITE_FUZZ_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("EVENTLOG_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set EVENTLOG_WRITE_FUZZ_CORPUS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
