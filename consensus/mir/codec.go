package mir

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/fxamacker/cbor/v2"
)

// Tag ranges. Every payload type (event or network message) has one CBOR tag
// number, registered with RegisterPayload from its package's init function.
// Each package owns a range of 100 tags starting at its base; see
// docs/adr/0001-event-representation.md for the table.
const (
	TagBase             uint64 = 1_650_000 // first tag of the mirsubnet range
	TagBaseMir                 = TagBase + 0
	TagBaseEvents              = TagBase + 100
	TagBaseSample              = TagBase + 200
	TagBaseWAL                 = TagBase + 300
	TagBaseTimer               = TagBase + 400
	TagBaseCrypto              = TagBase + 500
	TagBaseEventLog            = TagBase + 600
	TagBaseMembership          = TagBase + 700
	TagBaseISS                 = TagBase + 1000
	TagBasePBFT                = TagBase + 1100
	TagBaseCheckpoint          = TagBase + 1200
	TagBaseSim                 = TagBase + 1300
	TagBaseTransport           = TagBase + 2000
	TagBaseMempool             = TagBase + 2100
	TagBaseApp                 = TagBase + 2200
	TagBaseStateManager        = TagBase + 2300
	TagBaseTest                = TagBase + 9000 // tests of any package
)

// Decoding limits applied to every untrusted byte string.
const (
	MaxNestedLevels  = 48
	MaxArrayElements = 1 << 20
	MaxMapPairs      = 1 << 16
)

// ErrUnregisteredPayload is returned when encoding or decoding meets a payload
// whose type has no registered tag.
var ErrUnregisteredPayload = errors.New("mir: unregistered payload type")

// ErrInvalidEvent is returned when a decoded event fails validation.
var ErrInvalidEvent = errors.New("mir: invalid event")

var (
	regMu  sync.RWMutex
	tagSet = cbor.NewTagSet()
	byType = map[reflect.Type]uint64{}
	byTag  = map[uint64]reflect.Type{}

	// current holds the modes built from the registry as it was when they
	// were built; RegisterPayload clears it. The modes copy the tags (no
	// lock on every encoded or decoded item, as shared tags would take).
	current atomic.Pointer[modes]
)

type modes struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// getModes returns the modes for the current registry, building them after
// a registration.
func getModes() *modes {
	if m := current.Load(); m != nil {
		return m
	}
	regMu.Lock()
	defer regMu.Unlock()
	if m := current.Load(); m != nil {
		return m
	}
	m := buildModes()
	current.Store(m)
	return m
}

// buildModes builds the modes; the caller holds regMu.
func buildModes() *modes {
	encOpts := cbor.CoreDetEncOptions()
	encOpts.Time = cbor.TimeUnix
	enc, err := encOpts.EncModeWithTags(tagSet)
	if err != nil {
		panic(err)
	}
	decOpts := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsAllowed,
		MaxNestedLevels:   MaxNestedLevels,
		MaxArrayElements:  MaxArrayElements,
		MaxMapPairs:       MaxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertNone,
	}
	dec, err := decOpts.DecModeWithTags(tagSet)
	if err != nil {
		panic(err)
	}
	return &modes{enc: enc, dec: dec}
}

// RegisterPayload registers the struct type of prototype under tag. It is
// meant for init functions and panics if the type or the tag is registered
// twice (a broken local invariant, never input-dependent).
func RegisterPayload(tag uint64, prototype any) {
	t := reflect.TypeOf(prototype)
	if t == nil || t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("mir: RegisterPayload(%d): payload must be a struct value, got %v", tag, t))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if old, ok := byTag[tag]; ok {
		panic(fmt.Sprintf("mir: tag %d registered for both %v and %v", tag, old, t))
	}
	if old, ok := byType[t]; ok {
		panic(fmt.Sprintf("mir: type %v registered with both tags %d and %d", t, old, tag))
	}
	opts := cbor.TagOptions{EncTag: cbor.EncTagRequired, DecTag: cbor.DecTagRequired}
	if err := tagSet.Add(opts, t, tag); err != nil {
		panic(fmt.Sprintf("mir: register %v as tag %d: %v", t, tag, err))
	}
	byTag[tag] = t
	byType[t] = tag
	current.Store(nil)
}

// PayloadTag returns the tag registered for the payload's type.
func PayloadTag(p any) (uint64, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	tag, ok := byType[reflect.TypeOf(p)]
	return tag, ok
}

// RegisteredPayloads returns a copy of the tag registry.
func RegisteredPayloads() map[uint64]reflect.Type {
	regMu.RLock()
	defer regMu.RUnlock()
	m := make(map[uint64]reflect.Type, len(byTag))
	for k, v := range byTag {
		m[k] = v
	}
	return m
}

// PayloadName returns a short printable name of the payload's type, such as
// "pbft.Prepare".
func PayloadName(p any) string {
	if p == nil {
		return "<nil>"
	}
	return reflect.TypeOf(p).String()
}

// EncMode returns the Core Deterministic Encoding mode. It knows the
// payloads registered so far: do not keep it across registrations (init).
func EncMode() cbor.EncMode { return getModes().enc }

// DecMode returns the decoding mode with limits for untrusted input. It
// knows the payloads registered so far: do not keep it across registrations.
func DecMode() cbor.DecMode { return getModes().dec }

// Marshal encodes v with Core Deterministic Encoding.
func Marshal(v any) ([]byte, error) { return getModes().enc.Marshal(v) }

// Unmarshal decodes untrusted bytes into v. It never panics.
func Unmarshal(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("mir: decode: %v", r)
		}
	}()
	return getModes().dec.Unmarshal(data, v)
}

// Encode encodes an event (with its follow-ups) to CBOR.
func Encode(e Event) ([]byte, error) {
	if err := CheckEvent(e); err != nil {
		return nil, err
	}
	return getModes().enc.Marshal(e)
}

// Decode decodes an event from untrusted bytes and validates it. It returns
// a value or an error and never panics.
func Decode(data []byte) (Event, error) {
	var e Event
	if err := Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if err := CheckEvent(e); err != nil {
		return Event{}, err
	}
	return e, nil
}

// EncodePayload encodes a registered payload value (a network message, say)
// as a tagged CBOR item.
func EncodePayload(p any) ([]byte, error) {
	if err := CheckPayload(p); err != nil {
		return nil, err
	}
	return getModes().enc.Marshal(p)
}

// DecodePayload decodes a tagged CBOR item into the registered payload type
// its tag names. Untagged or unknown-tag input is an error.
func DecodePayload(data []byte) (any, error) {
	var p any
	if err := Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if err := CheckPayload(p); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckPayload returns an error unless p is a value of a registered type.
func CheckPayload(p any) error {
	if p == nil {
		return fmt.Errorf("%w: nil payload", ErrInvalidEvent)
	}
	if _, ok := PayloadTag(p); !ok {
		if tag, isTag := p.(cbor.Tag); isTag {
			return fmt.Errorf("%w: tag %d", ErrUnregisteredPayload, tag.Number)
		}
		return fmt.Errorf("%w: %T", ErrUnregisteredPayload, p)
	}
	return nil
}

// CheckEvent validates an event tree: every destination is a valid module
// path and every payload is registered. Payload contents are validated by the
// module that receives them.
func CheckEvent(e Event) error {
	return checkEvent(e, 0)
}

func checkEvent(e Event, depth int) error {
	if depth > MaxNestedLevels {
		return fmt.Errorf("%w: follow-ups nested deeper than %d", ErrInvalidEvent, MaxNestedLevels)
	}
	if !e.Dest.Valid() {
		return fmt.Errorf("%w: bad destination %q", ErrInvalidEvent, e.Dest)
	}
	if e.Src != "" && !e.Src.Valid() {
		return fmt.Errorf("%w: bad source %q", ErrInvalidEvent, e.Src)
	}
	if err := CheckPayload(e.Payload); err != nil {
		return fmt.Errorf("event for %s: %w", e.Dest, err)
	}
	for i := range e.Next {
		if err := checkEvent(e.Next[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}
