package eventlog

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// testMsg looks like a protocol message.
type testMsg struct {
	_      struct{} `cbor:",toarray"`
	View   uint64
	SeqNr  uint64
	Digest []byte
	From   mir.NodeID
}

// testInner is an unregistered struct nested in payloads.
type testInner struct {
	_ struct{} `cbor:",toarray"`
	A uint32
	B string
}

type namedBytes []byte

type namedInt int16

// testRich covers every kind the fast encoder handles and some it leaves to
// the fallback.
type testRich struct {
	_      struct{} `cbor:",toarray"`
	I      int64
	I8     int8
	N      namedInt
	U16    uint16
	B      bool
	S      string
	Bs     []byte
	Strs   []string
	Nested []testInner
	Ptr    *testInner
	Any    any
	Dur    time.Duration
	M      map[string]uint64
	F      float64
	Arr    [4]byte
	Evs    []mir.Event
	Bytes2 [][]byte
	Named  namedBytes
	T      time.Time
	hidden int
}

// testMapped is encoded as a CBOR map (no toarray): always the fallback.
type testMapped struct {
	X int
	Y string `cbor:"y"`
}

func init() {
	mir.RegisterPayload(mir.TagBaseTest+1, testMsg{})
	mir.RegisterPayload(mir.TagBaseTest+2, testRich{})
	mir.RegisterPayload(mir.TagBaseTest+3, testMapped{})
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// msgEvent returns a typical event.
func msgEvent(dest mir.ModuleID, seq uint64) mir.Event {
	d := make([]byte, 32)
	for i := range d {
		d[i] = byte(seq) + byte(i)
	}
	return mir.NewEvent(dest, testMsg{View: seq % 7, SeqNr: seq, Digest: d, From: "n1"})
}

// randomEvent returns a random event tree.
func randomEvent(rng *rand.Rand, depth int) mir.Event {
	dests := []mir.ModuleID{"a", "iss", "iss/pbft/3", "net", "rbc"}
	e := mir.Event{Src: dests[rng.IntN(len(dests))], Dest: dests[rng.IntN(len(dests))]}
	if rng.IntN(5) == 0 {
		e.Src = ""
	}
	e.Payload = randomPayload(rng, depth)
	if depth < 3 {
		switch rng.IntN(4) {
		case 0:
			e.Next = []mir.Event{}
		case 1:
			for i := rng.IntN(3) + 1; i > 0; i-- {
				e.Next = append(e.Next, randomEvent(rng, depth+1))
			}
		}
	}
	return e
}

func randBytes(rng *rand.Rand) []byte {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, rng.IntN(70))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randInt(rng *rand.Rand) int64 {
	switch rng.IntN(4) {
	case 0:
		return rng.Int64N(30) - 15
	case 1:
		return rng.Int64N(1<<17) - 1<<16
	case 2:
		return int64(rng.Uint64())
	}
	return rng.Int64N(1<<40) - 1<<39
}

func randomPayload(rng *rand.Rand, depth int) any {
	switch rng.IntN(9) {
	case 0:
		return msgEvent("x", rng.Uint64()>>uint(rng.IntN(64))).Payload
	case 1:
		return testMapped{X: int(randInt(rng)), Y: fmt.Sprint(rng.IntN(100))}
	case 2:
		evs := []mir.Event{}
		if depth < 3 {
			evs = append(evs, randomEvent(rng, depth+1))
		}
		return events.TimerDelay{Events: evs, After: time.Duration(randInt(rng)), RetentionIndex: rng.Uint64()}
	case 3:
		return events.SendMessage{Destinations: []mir.NodeID{"n0", "n1"}, DestModule: "rbc", Msg: msgEvent("x", 3).Payload}
	case 4:
		return events.VerifyRequest{Items: []events.SigItem{{Data: [][]byte{randBytes(rng), nil}, Signature: randBytes(rng), Signer: "n3"}}, ReplyTo: "iss", Context: testMapped{X: 1}}
	case 5:
		return events.WALRecovered{Entries: []events.WALEntry{{RetentionIndex: 4, Entry: msgEvent("x", 9).Payload}}}
	case 6:
		return events.Init{}
	}
	r := testRich{
		I: randInt(rng), I8: int8(randInt(rng)), N: namedInt(randInt(rng)), U16: uint16(rng.Uint32()),
		B: rng.IntN(2) == 0, S: fmt.Sprintf("s%d", rng.IntN(1000)), Bs: randBytes(rng),
		Dur: time.Duration(randInt(rng)), F: rng.Float64() * 1e6, Arr: [4]byte{1, 2, 3, byte(rng.IntN(256))},
		Named: randBytes(rng), hidden: 7,
	}
	if rng.IntN(2) == 0 {
		r.Strs = []string{"a", "", "ccc"}
		r.Nested = []testInner{{A: rng.Uint32(), B: "x"}, {}}
		r.Ptr = &testInner{A: 5}
		r.M = map[string]uint64{"b": 2, "a": 1, "ccc": 3}
		r.Bytes2 = [][]byte{nil, {1}, randBytes(rng)}
		r.T = time.Unix(int64(rng.Uint32()), 0)
	}
	if depth < 3 {
		switch rng.IntN(4) {
		case 0:
			r.Any = randomPayload(rng, depth+1)
		case 1:
			r.Any = testInner{A: 1, B: "inner"}
		case 2:
			r.Evs = []mir.Event{randomEvent(rng, depth+1)}
		}
	}
	return r
}

// readAll returns every record the reader yields.
func readAll(t testing.TB, r *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec)
	}
}

// openAll opens paths unfiltered and returns all records and the reader.
func openAll(t testing.TB, paths ...string) ([]Record, *Reader) {
	t.Helper()
	r, err := Open(Filter{}, paths...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	return readAll(t, r), r
}
