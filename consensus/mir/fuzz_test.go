package mir_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed seed corpus in testdata/fuzz")

// FuzzDecodeEvent: Decode never panics; what it accepts re-encodes, and the
// re-encoding is a fixed point (decodes and encodes to the same bytes).
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range codecSamples() {
		data, err := mir.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := mir.Decode(data)
		if err != nil {
			return
		}
		enc, err := mir.Encode(e)
		if err != nil {
			t.Fatalf("Decode accepted %x but Encode fails: %v", data, err)
		}
		e2, err := mir.Decode(enc)
		if err != nil {
			t.Fatalf("re-decoding %x: %v", enc, err)
		}
		enc2, err := mir.Encode(e2)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point:\n%x\n%x", enc, enc2)
		}
	})
}

// FuzzDecodePayload: DecodePayload never panics; what it accepts is a
// registered payload that re-encodes to a fixed point.
func FuzzDecodePayload(f *testing.F) {
	for _, p := range []any{Num{N: -1}, Text{S: "x", B: []byte{1}}, events.Init{}, events.MessageReceived{From: "a", Msg: Num{N: 2}}} {
		data, err := mir.EncodePayload(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := mir.DecodePayload(data)
		if err != nil {
			return
		}
		if _, ok := mir.PayloadTag(p); !ok {
			t.Fatalf("DecodePayload returned unregistered %T", p)
		}
		enc, err := mir.EncodePayload(p)
		if err != nil {
			t.Fatalf("DecodePayload accepted %x but EncodePayload fails: %v", data, err)
		}
		p2, err := mir.DecodePayload(enc)
		if err != nil {
			t.Fatalf("re-decoding %x: %v", enc, err)
		}
		enc2, err := mir.EncodePayload(p2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point (%v):\n%x\n%x", err, enc, enc2)
		}
	})
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzDecodeEvent with valid
// encodings of the codec samples when run with -update-corpus:
//
//	go test ./consensus/mir -run TestWriteFuzzCorpus -update-corpus
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeEvent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range codecSamples() {
		data, err := mir.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		write(fmt.Sprintf("valid-%02d", i), data)
		write(fmt.Sprintf("truncated-%02d", i), data[:len(data)/2])
	}
	write("empty-array", []byte{0x80})
	write("nested-arrays", bytes.Repeat([]byte{0x81}, 200))
	write("huge-length", []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
}
