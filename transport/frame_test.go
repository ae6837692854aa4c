package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestFrameRoundTrip(t *testing.T) {
	msgs := []testMsg{{Seq: 0}, {Seq: 1, Data: []byte("x")}, {Seq: 1 << 60, Data: make([]byte, 300)}}
	var stream bytes.Buffer
	for _, m := range msgs {
		f, err := EncodeFrame("app/sub", m, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(f)
	}
	r := bufio.NewReader(&stream)
	var buf []byte
	for i, want := range msgs {
		body, err := ReadFrame(r, 1<<20, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		dest, msg, err := DecodeFrame(body)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want.Data == nil {
			want.Data = nil
		}
		got := msg.(testMsg)
		if dest != "app/sub" || got.Seq != want.Seq || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("frame %d: got %q %+v, want %+v", i, dest, got, want)
		}
		buf = body[:0]
	}
	if _, err := ReadFrame(r, 1<<20, buf); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

func TestEncodeFrameErrors(t *testing.T) {
	if _, err := EncodeFrame("app", unregisteredMsg{}, 1<<20); !errors.Is(err, mir.ErrUnregisteredPayload) {
		t.Errorf("unregistered: %v", err)
	}
	if _, err := EncodeFrame("", testMsg{}, 1<<20); !errors.Is(err, ErrFrameMalformed) {
		t.Errorf("bad module: %v", err)
	}
	if _, err := EncodeFrame("app", testMsg{Data: make([]byte, 100)}, 50); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("too large: %v", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<40)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"cut prefix", []byte{0x80}, io.ErrUnexpectedEOF},
		{"cut body", []byte{5, 1, 2}, io.ErrUnexpectedEOF},
		{"zero length", []byte{0}, ErrFrameMalformed},
		{"overflow", bytes.Repeat([]byte{0xff}, 11), ErrFrameMalformed},
		{"overflow in 10th byte", append(bytes.Repeat([]byte{0xff}, 9), 0x02), ErrFrameMalformed},
		{"too large", huge, ErrFrameTooLarge},
		{"just too large", []byte{101}, ErrFrameTooLarge},
	}
	for _, c := range cases {
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(c.in)), 100, nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

// TestReadFrameTooLargeNoAlloc: an oversized length is rejected before
// anything is allocated for the body (only the error value is).
func TestReadFrameTooLargeNoAlloc(t *testing.T) {
	in := binary.AppendUvarint(nil, 1<<30)
	rd := bytes.NewReader(in)
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		rd.Reset(in)
		if _, err := ReadFrame(rd, 16<<20, nil); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1024 {
		t.Fatalf("%d bytes allocated per oversized frame", per)
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good, _ := mir.EncodePayload(testMsg{Seq: 1})
	enc := func(v any) []byte {
		b, err := mir.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"not cbor":        {0xff, 0x00},
		"bad module":      enc(Frame{DestModule: "a//b", Msg: good}),
		"empty msg":       enc(Frame{DestModule: "app"}),
		"untagged msg":    enc(Frame{DestModule: "app", Msg: enc(uint64(7))}),
		"unknown tag":     enc(Frame{DestModule: "app", Msg: []byte{0xda, 0x00, 0x98, 0x96, 0x7f, 0x80}}),
		"trailing bytes":  append(enc(Frame{DestModule: "app", Msg: good}), 0),
		"wrong shape":     enc([]any{"app", good, 3}),
		"map, not array":  enc(map[string]any{"DestModule": "app"}),
		"msg not a bytes": enc([]any{"app", "text"}),
	}
	for name, body := range cases {
		if _, _, err := DecodeFrame(body); !errors.Is(err, ErrFrameMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	dest, msg, err := DecodeFrame(enc(Frame{DestModule: "app", Msg: good}))
	if err != nil || dest != "app" || !reflect.DeepEqual(msg, testMsg{Seq: 1}) {
		t.Fatalf("good frame: %q %v %v", dest, msg, err)
	}
}

func TestBackoff(t *testing.T) {
	const min, max = 10 * time.Millisecond, time.Second
	for attempt := 1; attempt <= 100; attempt++ {
		upper := max
		if attempt <= 7 { // 10ms << 6 = 640ms < 1s
			upper = min << (attempt - 1)
		}
		if d := backoff(min, max, attempt); d < upper/2 || d > upper {
			t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, upper/2, upper)
		}
	}
}
