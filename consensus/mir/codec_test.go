package mir_test

import (
	"bytes"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// codecSamples are valid events covering the shapes the codec must handle:
// nested payloads, events inside payloads, follow-ups, empty and nil slices.
func codecSamples() []mir.Event {
	return []mir.Event{
		num("a", 0),
		num("a/b/c", -42),
		{Src: "net", Dest: "iss/pbft/3", Payload: Text{S: "héllo", B: []byte{0, 1, 2, 255}}},
		mir.NewEvent("x", Nested{
			Inner:  Num{N: 7},
			Events: []mir.Event{num("y", 1), num("z", 2).WithNext(num("w", 3))},
			Tags:   map[string]uint64{"b": 2, "a": 1},
		}),
		num("wal", 1).WithNext(num("net", 2), num("iss", 3).WithNext(num("app", 4))),
		mir.NewEvent("net", events.SendMessage{Destinations: []mir.NodeID{"n1", "n2"}, DestModule: "rbc", Msg: Text{S: "m"}}),
		mir.NewEvent("rbc", events.MessageReceived{From: "n1", Msg: Num{N: 9}}),
		mir.NewEvent("timer", events.TimerDelay{Events: []mir.Event{num("iss", 5)}, After: 1500, RetentionIndex: 3}),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for i, e := range codecSamples() {
		data, err := mir.Encode(e)
		if err != nil {
			t.Fatalf("sample %d: Encode: %v", i, err)
		}
		got, err := mir.Decode(data)
		if err != nil {
			t.Fatalf("sample %d: Decode: %v", i, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(e)) {
			t.Errorf("sample %d: round trip\n got %#v\nwant %#v", i, got, e)
		}
		again, err := mir.Encode(got)
		if err != nil {
			t.Fatalf("sample %d: re-Encode: %v", i, err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("sample %d: encoding is not deterministic:\n%x\n%x", i, data, again)
		}
	}
}

// normalize maps empty slices to nil (CBOR does not tell them apart).
func normalize(e mir.Event) mir.Event {
	if len(e.Next) == 0 {
		e.Next = nil
	}
	for i := range e.Next {
		e.Next[i] = normalize(e.Next[i])
	}
	if n, ok := e.Payload.(Nested); ok {
		if len(n.Events) == 0 {
			n.Events = nil
		}
		for i := range n.Events {
			n.Events[i] = normalize(n.Events[i])
		}
		e.Payload = n
	}
	if td, ok := e.Payload.(events.TimerDelay); ok {
		for i := range td.Events {
			td.Events[i] = normalize(td.Events[i])
		}
		e.Payload = td
	}
	return e
}

func TestEncodeDeterministicMapOrder(t *testing.T) {
	tags := map[string]uint64{}
	for i := 0; i < 50; i++ {
		tags[string(rune('a'+i%26))+string(rune('a'+i/26))] = uint64(i)
	}
	first, err := mir.Encode(mir.NewEvent("m", Nested{Inner: Num{}, Tags: tags}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		data, err := mir.Encode(mir.NewEvent("m", Nested{Inner: Num{}, Tags: tags}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, first) {
			t.Fatal("map encoding depends on iteration order")
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, p := range []any{Num{N: 1}, Text{S: "s", B: []byte("b")}, events.Init{}, events.WALTruncate{RetentionIndex: 9}} {
		data, err := mir.EncodePayload(p)
		if err != nil {
			t.Fatalf("EncodePayload(%T): %v", p, err)
		}
		got, err := mir.DecodePayload(data)
		if err != nil {
			t.Fatalf("DecodePayload(%T): %v", p, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("payload round trip: got %#v, want %#v", got, p)
		}
		if tag, ok := mir.PayloadTag(p); !ok || tag == 0 {
			t.Errorf("PayloadTag(%T) = %d, %v", p, tag, ok)
		}
	}
}

type unregistered struct{ X int }

func TestCodecRejects(t *testing.T) {
	if _, err := mir.Encode(mir.NewEvent("a", unregistered{})); !errors.Is(err, mir.ErrUnregisteredPayload) {
		t.Errorf("Encode(unregistered payload) = %v, want ErrUnregisteredPayload", err)
	}
	if _, err := mir.Encode(mir.NewEvent("a", nil)); !errors.Is(err, mir.ErrInvalidEvent) {
		t.Errorf("Encode(nil payload) = %v, want ErrInvalidEvent", err)
	}
	for _, dest := range []mir.ModuleID{"", "a//b", "/a"} {
		if _, err := mir.Encode(mir.NewEvent(dest, Num{})); !errors.Is(err, mir.ErrInvalidEvent) {
			t.Errorf("Encode(dest %q) = %v, want ErrInvalidEvent", dest, err)
		}
	}
	if _, err := mir.Encode(mir.Event{Src: "a//", Dest: "b", Payload: Num{}}); !errors.Is(err, mir.ErrInvalidEvent) {
		t.Errorf("Encode(bad src) = %v, want ErrInvalidEvent", err)
	}
	if _, err := mir.EncodePayload(unregistered{}); !errors.Is(err, mir.ErrUnregisteredPayload) {
		t.Errorf("EncodePayload(unregistered) = %v", err)
	}

	valid, err := mir.Encode(num("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	untagged, _ := cbor.Marshal(map[string]int{"a": 1})
	unknownTag, _ := cbor.Marshal(cbor.Tag{Number: mir.TagBaseTest + 99, Content: []any{int64(1)}})
	badEvent := func(payload []byte) []byte {
		// [src, dest, payload, next] with a raw payload item.
		b, _ := cbor.Marshal([]any{"", "a", cbor.RawMessage(payload), nil})
		return b
	}
	wrongFields, _ := cbor.Marshal(cbor.Tag{Number: mir.TagBaseTest + 0, Content: []any{"not a number"}})
	extraField, _ := cbor.Marshal(cbor.Tag{Number: mir.TagBaseTest + 0, Content: []any{int64(1), int64(2)}})
	deep := mir.NewEvent("a", Num{})
	for i := 0; i < mir.MaxNestedLevels+2; i++ {
		deep = num("a", int64(i)).WithNext(deep)
	}
	deepBytes, _ := cbor.Marshal(deep) // bypasses Encode's check on purpose
	cases := map[string][]byte{
		"empty":            nil,
		"truncated":        valid[:len(valid)-1],
		"trailing":         append(append([]byte{}, valid...), 0),
		"not an array":     untagged,
		"untagged payload": badEvent(untagged),
		"unknown tag":      badEvent(unknownTag),
		"wrong field type": badEvent(wrongFields),
		"extra field":      badEvent(extraField),
		"too deep":         deepBytes,
		"indefinite":       {0x9f, 0x60, 0x61, 'a', 0xff},
	}
	for name, data := range cases {
		if _, err := mir.Decode(data); err == nil {
			t.Errorf("Decode(%s) succeeded", name)
		}
	}
	if _, err := mir.DecodePayload(untagged); !errors.Is(err, mir.ErrUnregisteredPayload) {
		t.Errorf("DecodePayload(untagged) = %v", err)
	}
	if _, err := mir.DecodePayload(unknownTag); !errors.Is(err, mir.ErrUnregisteredPayload) {
		t.Errorf("DecodePayload(unknown tag) = %v", err)
	}
}

func TestRegisterPayloadTwicePanics(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	type other struct{}
	mustPanic("same tag", func() { mir.RegisterPayload(mir.TagBaseTest+0, other{}) })
	mustPanic("same type", func() { mir.RegisterPayload(mir.TagBaseTest+98, Num{}) })
	mustPanic("not a struct", func() { mir.RegisterPayload(mir.TagBaseTest+97, 5) })
	if _, ok := mir.RegisteredPayloads()[mir.TagBaseTest+98]; ok {
		t.Error("failed registration left an entry")
	}
}

// lateRegistered is registered by TestRegisterAfterUse, after the codec has
// been used.
type lateRegistered struct{ V string }

// lateOnce keeps the registration to one per process (-count > 1).
var lateOnce sync.Once

// TestRegisterAfterUse: the codec's modes copy the registry; a registration
// after they were built must still be seen by the next encode and decode.
func TestRegisterAfterUse(t *testing.T) {
	if _, err := mir.EncodePayload(Num{N: 1}); err != nil {
		t.Fatal(err)
	}
	lateOnce.Do(func() {
		if _, err := mir.EncodePayload(lateRegistered{V: "x"}); err == nil {
			t.Fatal("an unregistered payload encoded")
		}
		mir.RegisterPayload(mir.TagBaseTest+90, lateRegistered{})
	})
	data, err := mir.EncodePayload(lateRegistered{V: "x"})
	if err != nil {
		t.Fatalf("encode after registration: %v", err)
	}
	got, err := mir.DecodePayload(data)
	if err != nil || !reflect.DeepEqual(got, lateRegistered{V: "x"}) {
		t.Fatalf("decode after registration: %#v, %v", got, err)
	}
}
