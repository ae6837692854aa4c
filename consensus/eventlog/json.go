package eventlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// maxJSONDepth bounds how deep EventJSON descends into a value.
const maxJSONDepth = 64

// EventJSON renders an event as a JSON object for people and tools:
//
//	{"src":"net","dest":"rbc","type":"sample.Echo","payload":{...},"next":[...]}
//
// Payload fields keep their Go names and order; []byte values are hex
// strings; payloads nested in fields (any) carry their type name
// ({"type":..., "value":...}); durations are Go duration strings;
// payloads of unregistered types appear as {"tag":N,"content":...}.
func EventJSON(e mir.Event) ([]byte, error) {
	return json.Marshal(eventView(&e, 0))
}

type eventJSON struct {
	Src     mir.ModuleID `json:"src,omitempty"`
	Dest    mir.ModuleID `json:"dest"`
	Type    string       `json:"type"`
	Payload any          `json:"payload"`
	Next    []eventJSON  `json:"next,omitempty"`
}

func eventView(e *mir.Event, depth int) eventJSON {
	v := eventJSON{Src: e.Src, Dest: e.Dest, Type: mir.PayloadName(e.Payload)}
	if t, ok := e.Payload.(cbor.Tag); ok {
		v.Type = fmt.Sprintf("<unregistered tag %d>", t.Number)
	}
	v.Payload = valueView(reflect.ValueOf(e.Payload), depth+1)
	for i := range e.Next {
		v.Next = append(v.Next, eventView(&e.Next[i], depth+1))
	}
	return v
}

// object is a JSON object that keeps its keys in order.
type object []field

type field struct {
	key   string
	value any
}

// MarshalJSON writes the fields in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

var (
	typeDuration = reflect.TypeFor[time.Duration]()
	typeTime     = reflect.TypeFor[time.Time]()
	typeTag      = reflect.TypeFor[cbor.Tag]()
)

func valueView(v reflect.Value, depth int) any {
	if !v.IsValid() {
		return nil
	}
	if depth > maxJSONDepth {
		return "…"
	}
	switch v.Type() {
	case typeDuration:
		return time.Duration(v.Int()).String()
	case typeTime:
		t := v.Interface().(time.Time)
		return t.UTC().Format(time.RFC3339Nano)
	case typeEvent:
		e := v.Interface().(mir.Event)
		return eventView(&e, depth)
	case typeTag:
		t := v.Interface().(cbor.Tag)
		return object{{"tag", t.Number}, {"content", valueView(reflect.ValueOf(t.Content), depth+1)}}
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		inner := v.Elem()
		if inner.Kind() == reflect.Struct {
			if _, ok := mir.PayloadTag(inner.Interface()); ok {
				return object{{"type", mir.PayloadName(inner.Interface())}, {"value", valueView(inner, depth+1)}}
			}
		}
		return valueView(inner, depth+1)
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return valueView(v.Elem(), depth+1)
	case reflect.Struct:
		t := v.Type()
		o := object{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			o = append(o, field{f.Name, valueView(v.Field(i), depth+1)})
		}
		return o
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			return hex.EncodeToString(b)
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = valueView(v.Index(i), depth+1)
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		o := object{}
		for _, k := range v.MapKeys() {
			o = append(o, field{fmt.Sprint(valueView(k, depth+1)), valueView(v.MapIndex(k), depth+1)})
		}
		sort.Slice(o, func(i, j int) bool { return o[i].key < o[j].key })
		return o
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return f
	case reflect.Complex64, reflect.Complex128:
		return fmt.Sprint(v.Complex())
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.String:
		return v.String()
	default:
		return fmt.Sprintf("<%s>", v.Type())
	}
}
