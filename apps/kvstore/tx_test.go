package kvstore

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

func TestParseTx(t *testing.T) {
	for _, tc := range []struct {
		data string
		want Command
		ok   bool
	}{
		{"set a=b", Command{Op: OpSet, Key: "a", Value: []byte("b")}, true},
		{"set a=", Command{Op: OpSet, Key: "a", Value: []byte{}}, true},
		{"set a=b=c", Command{Op: OpSet, Key: "a", Value: []byte("b=c")}, true},
		{"set a b=c d", Command{Op: OpSet, Key: "a b", Value: []byte("c d")}, true},
		{"set a=\x00\xff", Command{Op: OpSet, Key: "a", Value: []byte("\x00\xff")}, true},
		{"del a", Command{Op: OpDelete, Key: "a"}, true},
		{"set " + strings.Repeat("k", MaxKeyLen) + "=v", Command{Op: OpSet, Key: strings.Repeat("k", MaxKeyLen), Value: []byte("v")}, true},
		{"set =b", Command{}, false},
		{"set ab", Command{}, false},
		{"set", Command{}, false},
		{"del ", Command{}, false},
		{"del a=b", Command{}, false},
		{"SET a=b", Command{}, false},
		{"a=b", Command{}, false},
		{"", Command{}, false},
		{"set " + strings.Repeat("k", MaxKeyLen+1) + "=v", Command{}, false},
		{"set k=" + strings.Repeat("v", MaxValueLen+1), Command{}, false},
	} {
		got, err := ParseTx([]byte(tc.data))
		if (err == nil) != tc.ok {
			t.Errorf("ParseTx(%.40q): err %v, want ok=%v", tc.data, err, tc.ok)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, ErrInvalidTx) {
				t.Errorf("ParseTx(%.40q): %v does not wrap ErrInvalidTx", tc.data, err)
			}
			continue
		}
		if got.Op != tc.want.Op || got.Key != tc.want.Key || !bytes.Equal(got.Value, tc.want.Value) {
			t.Errorf("ParseTx(%.40q) = %+v, want %+v", tc.data, got, tc.want)
		}
		if enc := got.Encode(); string(enc) != tc.data {
			t.Errorf("Encode(ParseTx(%.40q)) = %.40q", tc.data, enc)
		}
	}
}

func TestCheckTx(t *testing.T) {
	ok := setTx("alice", 0, "k", "v")
	if err := CheckTx(ok); err != nil {
		t.Fatal(err)
	}
	for name, tx := range map[string]ordering.Tx{
		"no sender":     {Nonce: 0, Data: []byte("set k=v")},
		"long sender":   {Sender: strings.Repeat("s", ordering.MaxSenderLen+1), Data: []byte("set k=v")},
		"bad command":   {Sender: "alice", Data: []byte("put k=v")},
		"max nonce":     {Sender: "alice", Nonce: math.MaxUint64, Data: []byte("set k=v")},
		"key with '='?": {Sender: "alice", Data: []byte("del k=")},
	} {
		if err := CheckTx(tx); err == nil {
			t.Errorf("%s: CheckTx accepted %+v", name, tx)
		}
	}
}

func FuzzParseTx(f *testing.F) {
	for _, s := range []string{"set a=b", "del a", "set =", "set a==", "", "del "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseTx(data)
		if err != nil {
			return
		}
		if c.Check() != nil {
			t.Fatalf("ParseTx returned an invalid command %+v", c)
		}
		if enc := c.Encode(); !bytes.Equal(enc, data) {
			t.Fatalf("Encode(ParseTx(%q)) = %q", data, enc)
		}
	})
}
