package membership

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// MaxIDLen is the longest validator ID in bytes.
const MaxIDLen = 256

// Validation and decoding errors. Errors from NewSet and NewSimSet wrap one
// of these or ErrBadWeight; errors from Decode wrap ErrMalformed (bytes that
// are not the canonical encoding of a set) or one of the validation errors.
var (
	ErrEmptySet        = errors.New("membership: empty validator set")
	ErrBadID           = errors.New("membership: bad validator ID")
	ErrDuplicateID     = errors.New("membership: duplicate validator ID")
	ErrBadPeerID       = errors.New("membership: bad peer ID")
	ErrDuplicatePeerID = errors.New("membership: duplicate peer ID")
	ErrBadAddr         = errors.New("membership: bad multiaddr")
	ErrMalformed       = errors.New("membership: malformed encoding")
)

// Validator is one member of a validator set.
type Validator struct {
	ID     mir.NodeID // non-empty, valid UTF-8, at most MaxIDLen bytes
	PeerID string     // libp2p peer ID text (base58 or CID); canonical base58 in a Set; may be empty only in a simulation set
	Addrs  []string   // multiaddrs, canonical text in a Set; any /p2p/ suffix must name PeerID
	Weight Weight     // > 0 and at most MaxWeightBytes bytes
}

func (v Validator) clone() Validator {
	v.Addrs = slices.Clone(v.Addrs)
	return v
}

// Set is an immutable validated validator set. Its methods are safe for
// concurrent use. Build one with NewSet, NewSimSet or Decode.
type Set struct {
	vals   []Validator        // sorted by ID, IDs unique, every entry validated; never modified
	byID   map[mir.NodeID]int // byID[vals[i].ID] == i for every i
	byPeer map[string]int     // byPeer[vals[i].PeerID] == i for every non-empty PeerID
	sim    bool               // built by NewSimSet: empty peer IDs allowed
	total  Weight             // sum of all weights, > 0

	// Quorum thresholds: strong iff sum > strongMin, weak iff sum > weakMin.
	small     bool     // total < 2^128; then w128, strong128, weak128 are used
	w128      []u128   // w128[i] == vals[i].Weight if small, else nil
	strong128 u128     // floor(2*total/3) if small
	weak128   u128     // floor(total/3) if small
	strongBig *big.Int // floor(2*total/3); never modified
	weakBig   *big.Int // floor(total/3); never modified

	enc    []byte   // canonical CBOR encoding of the set; never modified
	digest [32]byte // SHA-256 of enc
}

// NewSet validates vals and returns them as a Set in canonical order. Every
// validator needs a non-empty unique ID, a unique parseable libp2p peer ID,
// parseable multiaddrs (possibly none) and a positive weight of at most
// MaxWeightBytes bytes. Peer IDs and addresses are stored in canonical text
// form. vals is copied.
func NewSet(vals []Validator) (*Set, error) { return newSet(vals, false) }

// NewSimSet is NewSet for the simulator and in-process tests: a validator's
// PeerID may be empty. Peer IDs and addresses that are given are validated
// as in NewSet.
func NewSimSet(vals []Validator) (*Set, error) { return newSet(vals, true) }

func newSet(in []Validator, sim bool) (*Set, error) {
	if len(in) == 0 {
		return nil, ErrEmptySet
	}
	s := &Set{
		vals:   make([]Validator, len(in)),
		byID:   make(map[mir.NodeID]int, len(in)),
		byPeer: make(map[string]int, len(in)),
		sim:    sim,
	}
	for i, v := range in {
		v, err := normalize(v, sim)
		if err != nil {
			return nil, fmt.Errorf("validator %d (%q): %w", i, v.ID, err)
		}
		s.vals[i] = v
	}
	slices.SortFunc(s.vals, func(a, b Validator) int { return strings.Compare(string(a.ID), string(b.ID)) })
	total := new(big.Int)
	for i, v := range s.vals {
		if i > 0 && s.vals[i-1].ID == v.ID {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateID, v.ID)
		}
		s.byID[v.ID] = i
		if v.PeerID != "" {
			if j, dup := s.byPeer[v.PeerID]; dup {
				return nil, fmt.Errorf("%w: %s for %q and %q", ErrDuplicatePeerID, v.PeerID, s.vals[j].ID, v.ID)
			}
			s.byPeer[v.PeerID] = i
		}
		total.Add(total, v.Weight.n)
	}
	s.total = fromOwnedBig(total)
	s.strongBig = new(big.Int).Div(new(big.Int).Lsh(total, 1), big.NewInt(3))
	s.weakBig = new(big.Int).Div(total, big.NewInt(3))
	if total.BitLen() <= 128 {
		s.small = true
		s.strong128, s.weak128 = toU128(s.strongBig), toU128(s.weakBig)
		s.w128 = make([]u128, len(s.vals))
		for i, v := range s.vals {
			s.w128[i] = toU128(v.Weight.n)
		}
	}
	enc, err := encMode.Marshal(s.wire())
	if err != nil {
		// Every field was validated above; failing to encode is a local bug.
		panic(fmt.Sprintf("membership: encoding a validated set: %v", err))
	}
	s.enc = enc
	s.digest = sha256.Sum256(enc)
	return s, nil
}

// normalize validates v and returns a copy with peer ID and addresses in
// canonical text form.
func normalize(v Validator, sim bool) (Validator, error) {
	if v.ID == "" || len(v.ID) > MaxIDLen || !utf8.ValidString(string(v.ID)) {
		return v, fmt.Errorf("%w: must be 1 to %d bytes of UTF-8", ErrBadID, MaxIDLen)
	}
	if v.Weight.IsZero() {
		return v, fmt.Errorf("%w: must be positive", ErrBadWeight)
	}
	if n := (v.Weight.n.BitLen() + 7) / 8; n > MaxWeightBytes {
		return v, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadWeight, n, MaxWeightBytes)
	}
	var pid peer.ID
	if v.PeerID == "" {
		if !sim {
			return v, fmt.Errorf("%w: missing", ErrBadPeerID)
		}
	} else {
		var err error
		if pid, err = peer.Decode(v.PeerID); err != nil {
			return v, fmt.Errorf("%w: %v", ErrBadPeerID, err)
		}
		if pid == "" {
			return v, fmt.Errorf("%w: empty", ErrBadPeerID)
		}
	}
	out := Validator{ID: v.ID, PeerID: pid.String(), Weight: v.Weight}
	if pid == "" {
		out.PeerID = ""
	}
	if len(v.Addrs) > 0 {
		out.Addrs = make([]string, len(v.Addrs))
	}
	for i, a := range v.Addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return v, fmt.Errorf("%w: %q: %v", ErrBadAddr, a, err)
		}
		if len(m) == 0 {
			return v, fmt.Errorf("%w: %q: empty", ErrBadAddr, a)
		}
		if _, id := peer.SplitAddr(m); id != "" && id != pid {
			return v, fmt.Errorf("%w: %q names peer %s, validator has %q", ErrBadAddr, a, id, v.PeerID)
		}
		out.Addrs[i] = m.String()
	}
	return out, nil
}

// Len returns the number of validators.
func (s *Set) Len() int { return len(s.vals) }

// Sim reports whether s was built by NewSimSet (or decoded from such a set):
// its validators' peer IDs may be empty.
func (s *Set) Sim() bool { return s.sim }

// IDs returns the validator IDs in canonical (sorted) order.
func (s *Set) IDs() []mir.NodeID {
	ids := make([]mir.NodeID, len(s.vals))
	for i, v := range s.vals {
		ids[i] = v.ID
	}
	return ids
}

// Validators returns a copy of the validators in canonical order.
func (s *Set) Validators() []Validator {
	out := make([]Validator, len(s.vals))
	for i, v := range s.vals {
		out[i] = v.clone()
	}
	return out
}

// Validator returns a copy of the validator with the given ID.
func (s *Set) Validator(id mir.NodeID) (Validator, bool) {
	i, ok := s.byID[id]
	if !ok {
		return Validator{}, false
	}
	return s.vals[i].clone(), true
}

// ByPeerID returns a copy of the validator whose peer ID is pid in canonical
// base58 text (peer.ID.String()).
func (s *Set) ByPeerID(pid string) (Validator, bool) {
	i, ok := s.byPeer[pid]
	if !ok || pid == "" {
		return Validator{}, false
	}
	return s.vals[i].clone(), true
}

// Contains reports whether id is a member.
func (s *Set) Contains(id mir.NodeID) bool {
	_, ok := s.byID[id]
	return ok
}

// Weight returns the weight of member id, or 0 for a non-member.
func (s *Set) Weight(id mir.NodeID) Weight {
	i, ok := s.byID[id]
	if !ok {
		return Weight{}
	}
	return s.vals[i].Weight
}

// TotalWeight returns the sum of all members' weights.
func (s *Set) TotalWeight() Weight { return s.total }

// IsStrongQuorum reports whether the distinct members among ids hold more
// than 2/3 of the total weight. Non-members and repeats are ignored.
func (s *Set) IsStrongQuorum(ids []mir.NodeID) bool {
	t := s.NewTally()
	for _, id := range ids {
		t.Add(id)
	}
	return t.Strong()
}

// IsWeakQuorum reports whether the distinct members among ids hold more than
// 1/3 of the total weight. Non-members and repeats are ignored.
func (s *Set) IsWeakQuorum(ids []mir.NodeID) bool {
	t := s.NewTally()
	for _, id := range ids {
		t.Add(id)
	}
	return t.Weak()
}

// Digest returns the SHA-256 hash of the canonical encoding (a new slice).
func (s *Set) Digest() []byte { return slices.Clone(s.digest[:]) }

// Encode returns the canonical CBOR encoding of s (a new slice).
func (s *Set) Encode() []byte { return slices.Clone(s.enc) }

// Equal reports whether s and o hold the same validators in the same mode.
// Two nil sets are equal.
func (s *Set) Equal(o *Set) bool {
	if s == nil || o == nil {
		return s == o
	}
	return bytes.Equal(s.enc, o.enc)
}

// Decode decodes and validates a set from untrusted bytes. It accepts only
// the canonical encoding of a valid set (as produced by Encode); the set is
// validated by NewSet, or by NewSimSet if the encoding marks it a simulation
// set. Errors wrap ErrMalformed or a validation error. It never panics.
func Decode(data []byte) (*Set, error) {
	var w setWire
	if err := decMode.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	vals := make([]Validator, len(w.Validators))
	for i, vw := range w.Validators {
		vals[i] = Validator{ID: vw.ID, PeerID: vw.PeerID, Addrs: vw.Addrs, Weight: vw.Weight}
	}
	s, err := newSet(vals, w.Sim)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(s.enc, data) {
		return nil, fmt.Errorf("%w: not the canonical encoding", ErrMalformed)
	}
	return s, nil
}

// MarshalCBOR returns Encode(), so that a *Set can be a field of an encoded
// struct (a checkpoint, say).
func (s *Set) MarshalCBOR() ([]byte, error) {
	if s == nil {
		return []byte{0xf6}, nil // null
	}
	return s.Encode(), nil
}

// UnmarshalCBOR decodes into a zero Set as Decode does. It is meant only for
// decoding into a newly allocated Set (a field of a struct being decoded);
// Sets are otherwise immutable.
func (s *Set) UnmarshalCBOR(data []byte) error {
	d, err := Decode(data)
	if err != nil {
		return err
	}
	*s = *d
	return nil
}

type setWire struct {
	_          struct{} `cbor:",toarray"`
	Sim        bool
	Validators []validatorWire
}

type validatorWire struct {
	_      struct{} `cbor:",toarray"`
	ID     mir.NodeID
	PeerID string
	Addrs  []string
	Weight Weight
}

func (s *Set) wire() setWire {
	w := setWire{Sim: s.sim, Validators: make([]validatorWire, len(s.vals))}
	for i, v := range s.vals {
		w.Validators[i] = validatorWire{ID: v.ID, PeerID: v.PeerID, Addrs: v.Addrs, Weight: v.Weight}
	}
	return w
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	var err error
	if encMode, err = eo.EncMode(); err != nil {
		panic(err)
	}
	do := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   8,
		MaxArrayElements:  mir.MaxArrayElements,
		MaxMapPairs:       mir.MaxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertNone,
	}
	if decMode, err = do.DecMode(); err != nil {
		panic(err)
	}
}

// u128 is an unsigned 128-bit integer: the Tally fast path. Total stakes in
// attoFIL exceed 2^64 (18.4 FIL) but stay far below 2^128.
type u128 struct{ hi, lo uint64 }

// toU128 converts b, which must be in [0, 2^128).
func toU128(b *big.Int) u128 {
	lo := new(big.Int).And(b, new(big.Int).SetUint64(^uint64(0)))
	return u128{hi: new(big.Int).Rsh(b, 64).Uint64(), lo: lo.Uint64()}
}

// add returns a+b; the caller guarantees no overflow.
func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	return u128{hi: a.hi + b.hi + c, lo: lo}
}

// greater reports whether a > b.
func (a u128) greater(b u128) bool { return a.hi > b.hi || (a.hi == b.hi && a.lo > b.lo) }
