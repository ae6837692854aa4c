package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// fuzzMaxFrame is the frame limit of the fuzz target: small, so that
// oversized lengths are easy to reach.
const fuzzMaxFrame = 1 << 12

// FuzzReadFrame feeds arbitrary bytes to the stream decoder (ReadFrame then
// DecodeFrame, frame after frame, as the stream reader does): it never
// panics, never returns a body above the limit, and rejects an oversized
// length before reading (or allocating for) the body.
func FuzzReadFrame(f *testing.F) {
	for _, m := range []testMsg{{}, {Seq: 7, Data: []byte("hello")}} {
		fr, err := EncodeFrame("app", m, fuzzMaxFrame)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fr)
		f.Add(append(fr, fr...))
		f.Add(fr[:len(fr)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(binary.AppendUvarint(nil, fuzzMaxFrame+1))
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for range len(data) + 1 { // each iteration consumes a byte or stops
			start := r.Len()
			body, err := ReadFrame(r, fuzzMaxFrame, buf)
			if err != nil {
				if errors.Is(err, ErrFrameTooLarge) {
					// Only the length prefix was read: nothing of the body
					// was read or allocated.
					n, k := binary.Uvarint(data[len(data)-start:])
					if k <= 0 || n <= fuzzMaxFrame || start-r.Len() != k || body != nil {
						t.Fatalf("oversized frame: prefix %d (%d bytes), consumed %d", n, k, start-r.Len())
					}
				}
				return
			}
			if len(body) == 0 || len(body) > fuzzMaxFrame {
				t.Fatalf("body of %d bytes", len(body))
			}
			dest, msg, err := DecodeFrame(body)
			if err == nil && (!dest.Valid() || msg == nil) {
				t.Fatalf("accepted frame with module %q, message %v", dest, msg)
			}
			buf = body[:0]
		}
	})
}
