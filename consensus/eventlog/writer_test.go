package eventlog

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// batch is one Intercept call.
type batch struct {
	kind   mir.RecordKind
	module mir.ModuleID
	events mir.EventList
}

func randomBatches(rng *rand.Rand, n int) []batch {
	mods := []mir.ModuleID{"iss", "net", "rbc", "timer"}
	out := make([]batch, n)
	for i := range out {
		b := batch{kind: mir.RecordDispatch, module: mods[rng.IntN(len(mods))]}
		if rng.IntN(3) == 0 {
			b.kind = mir.RecordInbound
			if rng.IntN(4) == 0 {
				b.module = ""
			}
		}
		for j := rng.IntN(6) + 1; j > 0; j-- {
			b.events = append(b.events, randomEvent(rng, 0))
		}
		out[i] = b
	}
	return out
}

func writeBatches(t *testing.T, dir string, opts Options, bs []batch) *Writer {
	t.Helper()
	w, err := NewWriter(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Intercept(b.kind, b.module, b.events); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

// sameEncoding compares records by their canonical encodings.
func checkRecords(t *testing.T, node mir.NodeID, got []Record, want []batch, firstIndex uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, wrote %d", len(got), len(want))
	}
	for i, rec := range got {
		w := want[i]
		exp := Record{Index: firstIndex + uint64(i), NodeID: node, Kind: w.kind, Module: w.module, Events: w.events}
		a, err1 := mir.Marshal(rec)
		b, err2 := mir.Marshal(exp)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("record %d differs (%v, %v):\n got  %+v\n want %+v", i, err1, err2, rec, exp)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	bs := randomBatches(rng, 500)
	meta := map[string]string{"members": "n0,n1,n2,n3", "protocol": "test"}
	writeBatches(t, dir, Options{NodeID: "n2", Meta: meta}, bs)

	recs, r := openAll(t, dir)
	checkRecords(t, "n2", recs, bs, 1)
	if r.Tail() != nil || len(r.Recovered()) != 0 {
		t.Fatalf("clean log reported corruption %v / recovered %v", r.Tail(), r.Recovered())
	}
	hdr := r.Header()
	if hdr.NodeID != "n2" || hdr.Seq != 1 || hdr.FirstIndex != 1 || hdr.Resumed || !reflect.DeepEqual(hdr.Meta, meta) {
		t.Fatalf("header %+v", hdr)
	}
	// The file can also be opened by name.
	recs2, _ := openAll(t, filepath.Join(dir, "events-000001.mirlog"))
	checkRecords(t, "n2", recs2, bs, 1)
}

func TestRotation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	dir := t.TempDir()
	bs := randomBatches(rng, 400)
	writeBatches(t, dir, Options{NodeID: "n1", MaxFileSize: 4 << 10, WriteSize: 1 << 10}, bs)
	files, err := filepath.Glob(filepath.Join(dir, "events-*.mirlog"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("expected rotation into several files, got %d", len(files))
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		// A file exceeds the limit only when its single record does.
		if st.Size() > 4<<10 {
			recs, _ := openAll(t, f)
			if len(recs) != 1 {
				t.Fatalf("%s has %d bytes and %d records", f, st.Size(), len(recs))
			}
		}
	}
	recs, r := openAll(t, dir)
	checkRecords(t, "n1", recs, bs, 1)
	if r.Tail() != nil {
		t.Fatal(r.Tail())
	}
	// Files given out of order are sorted; a file in the middle starts at
	// its own first index.
	mid, _ := openAll(t, files[2])
	if len(mid) == 0 || mid[0].Index == 1 {
		t.Fatalf("middle file starts at %v", mid)
	}
	rev := append([]string(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	recs3, _ := openAll(t, rev...)
	checkRecords(t, "n1", recs3, bs, 1)

	// Index range filter skips whole files.
	r2, err := Open(Filter{From: 200, To: 250}, dir)
	if err != nil {
		t.Fatal(err)
	}
	sel := readAll(t, r2)
	if len(sel) != 51 || sel[0].Index != 200 || sel[50].Index != 250 {
		t.Fatalf("range 200..250 gave %d records", len(sel))
	}
}

func TestResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	dir := t.TempDir()
	first, second := randomBatches(rng, 50), randomBatches(rng, 30)
	writeBatches(t, dir, Options{NodeID: "n1"}, first)
	w := writeBatches(t, dir, Options{NodeID: "n1"}, second)
	if w.Records() != 80 {
		t.Fatalf("resumed writer numbered %d records", w.Records())
	}
	recs, r := openAll(t, dir)
	checkRecords(t, "n1", recs, append(first, second...), 1)
	if r.Header().Seq != 2 || !r.Header().Resumed || r.Header().FirstIndex != 51 {
		t.Fatalf("second header %+v", r.Header())
	}
	if _, err := NewWriter(dir, Options{NodeID: "other"}); err == nil {
		t.Fatal("a writer for another node continued the log")
	}
}

func TestHashAgreement(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	dir := t.TempDir()
	bs := randomBatches(rng, 200)
	h := NewHasher("n1")
	w, err := NewWriter(dir, Options{NodeID: "n1", Hash: true, MaxFileSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	tee := Tee(h, nil, w)
	for _, b := range bs {
		if err := tee.Intercept(b.kind, b.module, b.events); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum, n, err := HashLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 200 || h.Records() != 200 || !bytes.Equal(sum, h.Sum()) || !bytes.Equal(w.Sum(), h.Sum()) {
		t.Fatalf("hashes disagree: log %x (%d), hasher %x (%d), writer %x", sum, n, h.Sum(), h.Records(), w.Sum())
	}
	// A different run has a different hash.
	h2 := NewHasher("n1")
	for _, b := range bs[:199] {
		if err := h2.Intercept(b.kind, b.module, b.events); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.Equal(h2.Sum(), h.Sum()) {
		t.Fatal("hash ignores a record")
	}
}

func TestFlushMakesRecordsVisible(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{NodeID: "n1", Linger: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := uint64(1); i <= 10; i++ {
		if err := w.Intercept(mir.RecordInbound, "net", mir.EventList{msgEvent("iss", i)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		recs, r := openAll(t, dir)
		if uint64(len(recs)) != i || r.Tail() != nil {
			t.Fatalf("after Flush %d: %d records visible, tail %v", i, len(recs), r.Tail())
		}
	}
}

func TestWriterErrorSurfaces(t *testing.T) {
	w, err := NewWriter(t.TempDir(), Options{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	good := mir.EventList{msgEvent("iss", 1)}
	if err := w.Intercept(mir.RecordInbound, "net", good); err != nil {
		t.Fatal(err)
	}
	// A channel cannot be encoded: the background goroutine fails.
	if err := w.Intercept(mir.RecordInbound, "net", mir.EventList{mir.NewEvent("iss", testRich{Any: make(chan int)})}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush after a failed record returned nil")
	}
	if err := w.Intercept(mir.RecordInbound, "net", good); err == nil {
		t.Fatal("Intercept after a failure returned nil")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failure returned nil")
	}
	w2, err := NewWriter(t.TempDir(), Options{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Intercept(mir.RecordInbound, "net", good); !errors.Is(err, ErrClosed) {
		t.Fatalf("Intercept after Close: %v", err)
	}
	if err := w2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestBackpressure checks that a full queue blocks Intercept rather than
// dropping: with a one-event queue every record still arrives.
func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{NodeID: "n1", QueueEvents: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 2000; i++ {
		if err := w.Intercept(mir.RecordInbound, "net", mir.EventList{msgEvent("iss", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _ := openAll(t, dir)
	if len(recs) != 2000 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if r.Events[0].Payload.(testMsg).SeqNr != uint64(i+1) {
			t.Fatalf("record %d out of order", i)
		}
	}
}

// TestLingerWritesIdleRecords checks that a few records reach the file
// within the linger time without Flush, also after the writer slept idle.
func TestLingerWritesIdleRecords(t *testing.T) {
	dir := t.TempDir()
	written := make(chan struct{}, 1)
	w, err := NewWriter(dir, Options{NodeID: "n1", Linger: time.Millisecond, written: func() {
		select {
		case written <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := uint64(1); i <= 3; i++ {
		if err := w.Intercept(mir.RecordInbound, "net", mir.EventList{msgEvent("iss", i)}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			recs, _ := openAll(t, dir)
			if uint64(len(recs)) == i {
				break
			}
			select {
			case <-written: // the writer wrote something: look again
			case <-time.After(time.Until(deadline)):
				t.Fatalf("record %d not written %v after Intercept", i, 10*time.Second)
			}
		}
	}
}
