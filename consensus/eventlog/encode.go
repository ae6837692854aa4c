package eventlog

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// encoder produces the Core Deterministic CBOR encoding of records, byte for
// byte what mir.Marshal produces, but several times faster: the record and
// event envelopes are written by hand and payload types get a compiled
// encoding plan (cached per type). Types the plans do not cover (maps,
// floats, times, marshalers, structs that are not toarray, ...) are encoded
// by mir's encoding mode itself. An encoder is not safe for concurrent use.
type encoder struct {
	// plans caches the encoding plan of every type met so far.
	plans map[reflect.Type]*plan
	// lastType and lastPlan short-cut the lookup of the most recent payload type.
	lastType reflect.Type
	lastPlan *plan
	em       cbor.UserBufferEncMode
	// fallback is scratch space for values encoded by mir's encoding mode.
	fallback bytes.Buffer
}

type encFunc func(e *encoder, b []byte, v reflect.Value) ([]byte, error)

// plan is allocated before it is built so that recursive types can refer to
// it.
type plan struct {
	fn encFunc
}

const (
	majorUint   = 0
	majorNeg    = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorTag    = 6
	cborNull    = 0xf6
	cborFalse   = 0xf4
	cborTrue    = 0xf5
	maxEncDepth = 256
)

func newEncoder() *encoder {
	em, ok := mir.EncMode().(cbor.UserBufferEncMode)
	if !ok {
		panic("eventlog: mir.EncMode does not support MarshalToBuffer")
	}
	return &encoder{plans: map[reflect.Type]*plan{}, em: em}
}

func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendText(b []byte, s string) []byte {
	b = appendHead(b, majorText, uint64(len(s)))
	return append(b, s...)
}

// appendRecord appends the encoding of a record.
func (e *encoder) appendRecord(b []byte, index uint64, node mir.NodeID, kind mir.RecordKind, module mir.ModuleID, events mir.EventList) ([]byte, error) {
	b = append(b, majorArray<<5|5)
	b = appendHead(b, majorUint, index)
	b = appendText(b, string(node))
	b = appendHead(b, majorUint, uint64(kind))
	b = appendText(b, string(module))
	return e.appendEvents(b, events, 0)
}

func (e *encoder) appendEvents(b []byte, events mir.EventList, depth int) ([]byte, error) {
	if events == nil {
		return append(b, cborNull), nil
	}
	b = appendHead(b, majorArray, uint64(len(events)))
	var err error
	for i := range events {
		if b, err = e.appendEvent(b, &events[i], depth); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (e *encoder) appendEvent(b []byte, ev *mir.Event, depth int) ([]byte, error) {
	if depth > maxEncDepth {
		return b, fmt.Errorf("eventlog: events nested deeper than %d", maxEncDepth)
	}
	b = append(b, majorArray<<5|4)
	b = appendText(b, string(ev.Src))
	b = appendText(b, string(ev.Dest))
	var err error
	if ev.Payload == nil {
		b = append(b, cborNull)
	} else {
		t := reflect.TypeOf(ev.Payload)
		p := e.lastPlan
		if t != e.lastType {
			p = e.planFor(t)
			e.lastType, e.lastPlan = t, p
		}
		if b, err = p.fn(e, b, reflect.ValueOf(ev.Payload)); err != nil {
			return b, err
		}
	}
	return e.appendEvents(b, ev.Next, depth+1)
}

// encodeEvent returns the canonical encoding of one event (what mir.Marshal
// returns).
func (e *encoder) encodeEvent(ev *mir.Event) ([]byte, error) {
	return e.appendEvent(nil, ev, 0)
}

func (e *encoder) planFor(t reflect.Type) *plan {
	if p, ok := e.plans[t]; ok {
		return p
	}
	p := &plan{}
	e.plans[t] = p
	p.fn = e.build(t)
	return p
}

var (
	typeCBORMarshaler   = reflect.TypeFor[cbor.Marshaler]()
	typeBinaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()
	typeTextMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	typeJSONMarshaler   = reflect.TypeFor[json.Marshaler]()
	typeByte            = reflect.TypeFor[byte]()
	typeEvent           = reflect.TypeFor[mir.Event]()
	typeEventList       = reflect.TypeFor[[]mir.Event]()
)

func hasCustomEncoding(t reflect.Type) bool {
	for _, m := range []reflect.Type{typeCBORMarshaler, typeBinaryMarshaler, typeTextMarshaler, typeJSONMarshaler} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

// fallback encodes v with mir's encoding mode.
func fallback(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
	e.fallback.Reset()
	if err := e.em.MarshalToBuffer(v.Interface(), &e.fallback); err != nil {
		return b, fmt.Errorf("eventlog: encode %v: %w", v.Type(), err)
	}
	return append(b, e.fallback.Bytes()...), nil
}

func (e *encoder) build(t reflect.Type) encFunc {
	if hasCustomEncoding(t) {
		return fallback
	}
	var fn encFunc
	switch t.Kind() {
	case reflect.Bool:
		fn = func(_ *encoder, b []byte, v reflect.Value) ([]byte, error) {
			if v.Bool() {
				return append(b, cborTrue), nil
			}
			return append(b, cborFalse), nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		fn = func(_ *encoder, b []byte, v reflect.Value) ([]byte, error) {
			if i := v.Int(); i >= 0 {
				return appendHead(b, majorUint, uint64(i)), nil
			} else {
				return appendHead(b, majorNeg, uint64(-1-i)), nil
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		fn = func(_ *encoder, b []byte, v reflect.Value) ([]byte, error) {
			return appendHead(b, majorUint, v.Uint()), nil
		}
	case reflect.String:
		fn = func(_ *encoder, b []byte, v reflect.Value) ([]byte, error) {
			return appendText(b, v.String()), nil
		}
	case reflect.Slice:
		fn = e.buildSlice(t)
	case reflect.Pointer:
		elem := e.planFor(t.Elem())
		fn = func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, cborNull), nil
			}
			return elem.fn(e, b, v.Elem())
		}
	case reflect.Interface:
		fn = func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, cborNull), nil
			}
			inner := v.Elem()
			return e.planFor(inner.Type()).fn(e, b, inner)
		}
	case reflect.Struct:
		fn = e.buildStruct(t)
	default:
		fn = fallback
	}
	if t.Kind() == reflect.Struct && fn != nil {
		if tag, ok := mir.PayloadTag(reflect.Zero(t).Interface()); ok {
			inner := fn
			fn = func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
				return inner(e, appendHead(b, majorTag, tag), v)
			}
		}
	}
	if fn == nil {
		return fallback
	}
	return fn
}

func (e *encoder) buildSlice(t reflect.Type) encFunc {
	if t.Elem() == typeByte {
		return func(_ *encoder, b []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(b, cborNull), nil
			}
			bs := v.Bytes()
			b = appendHead(b, majorBytes, uint64(len(bs)))
			return append(b, bs...), nil
		}
	}
	if t.Elem().Kind() == reflect.Uint8 {
		return fallback
	}
	if t == typeEventList {
		return func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
			return e.appendEvents(b, v.Interface().([]mir.Event), 0)
		}
	}
	elem := e.planFor(t.Elem())
	return func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
		if v.IsNil() {
			return append(b, cborNull), nil
		}
		n := v.Len()
		b = appendHead(b, majorArray, uint64(n))
		var err error
		for i := 0; i < n; i++ {
			if b, err = elem.fn(e, b, v.Index(i)); err != nil {
				return b, err
			}
		}
		return b, nil
	}
}

// buildStruct covers structs encoded as arrays (a blank field tagged
// `cbor:",toarray"`) whose other fields carry no tags and embed nothing. It
// returns nil for any other struct.
func (e *encoder) buildStruct(t reflect.Type) encFunc {
	if t == typeEvent {
		return func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
			ev := v.Interface().(mir.Event)
			return e.appendEvent(b, &ev, 0)
		}
	}
	toArray := false
	var fields []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			return nil
		}
		if f.Name == "_" {
			tag, ok := f.Tag.Lookup("cbor")
			if ok && hasOption(tag, "toarray") {
				toArray = true
			}
			continue
		}
		if _, ok := f.Tag.Lookup("cbor"); ok {
			return nil
		}
		if _, ok := f.Tag.Lookup("json"); ok {
			return nil
		}
		if !f.IsExported() {
			continue
		}
		fields = append(fields, i)
	}
	if !toArray {
		return nil
	}
	plans := make([]*plan, len(fields))
	for i, fi := range fields {
		plans[i] = e.planFor(t.Field(fi).Type)
	}
	head := appendHead(nil, majorArray, uint64(len(fields)))
	return func(e *encoder, b []byte, v reflect.Value) ([]byte, error) {
		b = append(b, head...)
		var err error
		for i, fi := range fields {
			if b, err = plans[i].fn(e, b, v.Field(fi)); err != nil {
				return b, err
			}
		}
		return b, nil
	}
}

func hasOption(tag, opt string) bool {
	parts := strings.Split(tag, ",")
	for _, p := range parts[1:] {
		if p == opt {
			return true
		}
	}
	return false
}
