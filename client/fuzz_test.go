package client

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// FuzzReadRequest feeds untrusted bytes to the reader a validator runs on
// every client stream: it never panics, and a request it accepts survives
// a round trip through WriteMsg unchanged.
func FuzzReadRequest(f *testing.F) {
	for _, req := range []Request{
		{Submit: &ordering.Tx{Sender: "alice", Nonce: 3, Data: []byte("set k=v")}},
		{Follow: &Follow{From: 7}},
		{Status: true},
	} {
		var b bytes.Buffer
		if err := WriteMsg(&b, req); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Request
		if err := ReadMsg(bufio.NewReader(bytes.NewReader(data)), &req); err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteMsg(&b, req); err != nil {
			t.Fatalf("an accepted request does not encode: %v", err)
		}
		var again Request
		if err := ReadMsg(bufio.NewReader(&b), &again); err != nil {
			t.Fatalf("a re-encoded request does not decode: %v", err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request: %+v -> %+v", req, again)
		}
	})
}
