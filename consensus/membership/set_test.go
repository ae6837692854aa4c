package membership

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// testPeerID returns the libp2p peer ID (base58) of a deterministic Ed25519
// key derived from seed.
func testPeerID(t testing.TB, seed uint64) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 1}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// strictVals returns n valid validators n0..n{n-1} with weights 1..n.
func strictVals(t testing.TB, n int) []Validator {
	vals := make([]Validator, n)
	for i := range vals {
		vals[i] = Validator{
			ID:     mir.NodeID(fmt.Sprintf("n%d", i)),
			PeerID: testPeerID(t, uint64(i)),
			Addrs:  []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4000+i)},
			Weight: NewWeight(uint64(i + 1)),
		}
	}
	return vals
}

func TestNewSetValidation(t *testing.T) {
	good := strictVals(t, 3)
	with := func(f func(v []Validator)) []Validator {
		v := slices.Clone(good)
		for i := range v {
			v[i].Addrs = slices.Clone(v[i].Addrs)
		}
		f(v)
		return v
	}
	pid0, _ := peer.Decode(good[0].PeerID)
	pid1 := good[1].PeerID
	tooHeavy := NewWeight(1)
	for range 256 {
		tooHeavy = tooHeavy.Add(tooHeavy) // 2^256
	}
	for _, tc := range []struct {
		name    string
		vals    []Validator
		sim     bool // also checked with NewSimSet
		wantErr error
	}{
		{"ok", good, true, nil},
		{"nil", nil, true, ErrEmptySet},
		{"empty", []Validator{}, true, ErrEmptySet},
		{"empty ID", with(func(v []Validator) { v[1].ID = "" }), true, ErrBadID},
		{"invalid UTF-8 ID", with(func(v []Validator) { v[1].ID = "\xff" }), true, ErrBadID},
		{"ID too long", with(func(v []Validator) { v[1].ID = mir.NodeID(make([]byte, MaxIDLen+1)) }), true, ErrBadID},
		{"duplicate ID", with(func(v []Validator) { v[2].ID = v[0].ID }), true, ErrDuplicateID},
		{"zero weight", with(func(v []Validator) { v[1].Weight = Weight{} }), true, ErrBadWeight},
		{"weight over 2^256-1", with(func(v []Validator) { v[1].Weight = tooHeavy }), true, ErrBadWeight},
		{"missing peer ID", with(func(v []Validator) { v[1].PeerID = "" }), false, ErrBadPeerID},
		{"garbage peer ID", with(func(v []Validator) { v[1].PeerID = "not-a-peer" }), true, ErrBadPeerID},
		{"truncated peer ID", with(func(v []Validator) { v[1].PeerID = pid1[:len(pid1)-3] }), true, ErrBadPeerID},
		{"duplicate peer ID", with(func(v []Validator) { v[2].PeerID = v[0].PeerID }), true, ErrDuplicatePeerID},
		{"duplicate peer ID in CID form", with(func(v []Validator) { v[2].PeerID = peer.ToCid(pid0).String() }), true, ErrDuplicatePeerID},
		{"bad multiaddr", with(func(v []Validator) { v[0].Addrs = []string{"not a multiaddr"} }), true, ErrBadAddr},
		{"empty multiaddr", with(func(v []Validator) { v[0].Addrs = []string{""} }), true, ErrBadAddr},
		{"unknown protocol", with(func(v []Validator) { v[0].Addrs = []string{"/ip4/127.0.0.1/bogus/1"} }), true, ErrBadAddr},
		{"bad port", with(func(v []Validator) { v[0].Addrs = []string{"/ip4/127.0.0.1/tcp/70000"} }), true, ErrBadAddr},
		{"addr names another peer", with(func(v []Validator) { v[0].Addrs = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + pid1} }), true, ErrBadAddr},
		{"addr names own peer", with(func(v []Validator) { v[0].Addrs = []string{"/ip4/127.0.0.1/tcp/1/p2p/" + v[0].PeerID} }), true, nil},
		{"no addrs", with(func(v []Validator) { v[0].Addrs = nil }), true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSet(tc.vals)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("NewSet: err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (s.Len() != len(tc.vals) || s.Sim()) {
				t.Fatalf("NewSet: Len = %d, Sim = %v", s.Len(), s.Sim())
			}
			if !tc.sim {
				return
			}
			if _, err := NewSimSet(tc.vals); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("NewSimSet: err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSimSet(t *testing.T) {
	s, err := NewSimSet([]Validator{{ID: "b", Weight: NewWeight(1)}, {ID: "a", Weight: NewWeight(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Sim() || !slices.Equal(s.IDs(), []mir.NodeID{"a", "b"}) {
		t.Fatalf("Sim = %v, IDs = %v", s.Sim(), s.IDs())
	}
	if _, ok := s.ByPeerID(""); ok {
		t.Error("ByPeerID(\"\") found a validator")
	}
	d, err := Decode(s.Encode())
	if err != nil || !d.Sim() || !d.Equal(s) {
		t.Fatalf("Decode(sim set) = %v, %v", d, err)
	}
	// The mode is part of the encoding: a strict and a simulation set with
	// the same validators differ.
	vals := strictVals(t, 2)
	strict, _ := NewSet(vals)
	sim, _ := NewSimSet(vals)
	if strict.Equal(sim) || slices.Equal(strict.Digest(), sim.Digest()) {
		t.Error("strict and simulation sets compare equal")
	}
	if !TestSet([]mir.NodeID{"x", "y"}, nil).TotalWeight().Equal(NewWeight(2)) {
		t.Error("TestSet default weights")
	}
}

func TestSetAccessors(t *testing.T) {
	vals := strictVals(t, 4)
	rev := make([]Validator, len(vals))
	for i, v := range vals {
		rev[len(vals)-1-i] = v.clone()
	}
	// Peer IDs in CID form are normalised to base58.
	pid3, _ := peer.Decode(rev[0].PeerID)
	rev[0].PeerID = peer.ToCid(pid3).String()
	s, err := NewSet(rev)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.IDs(), []mir.NodeID{"n0", "n1", "n2", "n3"}) {
		t.Fatalf("IDs = %v", s.IDs())
	}
	if !s.TotalWeight().Equal(NewWeight(10)) {
		t.Errorf("TotalWeight = %s", s.TotalWeight())
	}
	v, ok := s.Validator("n3")
	if !ok || v.PeerID != pid3.String() || !v.Weight.Equal(NewWeight(4)) || !slices.Equal(v.Addrs, []string{"/ip4/127.0.0.1/tcp/4003"}) {
		t.Errorf("Validator(n3) = %+v, %v", v, ok)
	}
	v.Addrs[0] = "changed"
	if again, _ := s.Validator("n3"); again.Addrs[0] == "changed" {
		t.Error("Validator returns an alias of the set's addrs")
	}
	rev[1].Addrs[0] = "changed"
	if again, _ := s.Validator("n2"); again.Addrs[0] == "changed" {
		t.Error("NewSet keeps an alias of the caller's addrs")
	}
	if bp, ok := s.ByPeerID(pid3.String()); !ok || bp.ID != "n3" {
		t.Errorf("ByPeerID = %+v, %v", bp, ok)
	}
	if _, ok := s.Validator("zz"); ok || s.Contains("zz") || !s.Contains("n0") || !s.Weight("zz").IsZero() || !s.Weight("n1").Equal(NewWeight(2)) {
		t.Error("membership lookups wrong")
	}
	all := s.Validators()
	if len(all) != 4 || all[0].ID != "n0" {
		t.Errorf("Validators = %+v", all)
	}
	// Any input order gives the same set.
	s2, err := NewSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Equal(s2) || !slices.Equal(s.Digest(), s2.Digest()) || !slices.Equal(s.Encode(), s2.Encode()) {
		t.Error("input order changes the set")
	}
	var nilSet *Set
	if s.Equal(nil) || !nilSet.Equal(nil) {
		t.Error("Equal with nil")
	}
	d := s.Digest()
	d[0] ^= 1
	if slices.Equal(d, s.Digest()) {
		t.Error("Digest returns an alias")
	}
}

// TestEncodingGolden pins the encoding: a change to it changes every digest
// in every checkpoint.
func TestEncodingGolden(t *testing.T) {
	s := TestSet([]mir.NodeID{"b", "a"}, []uint64{1, 300})
	const want = "82" + "f5" + "82" +
		"84" + "6161" + "60" + "80" + "42012c" +
		"84" + "6162" + "60" + "80" + "4101"
	if got := hex.EncodeToString(s.Encode()); got != want {
		t.Errorf("Encode = %s\nwant     %s", got, want)
	}
	if got := hex.EncodeToString(s.Digest()); got != "f1bdabc01524ede2b0bb7753d5a5ebf7085ca686f42fc7050ada04b061806e3e" {
		t.Errorf("Digest = %s", got)
	}
}

func TestDecode(t *testing.T) {
	s, err := NewSet(strictVals(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Equal(s) || d.Sim() || !slices.Equal(d.Digest(), s.Digest()) || !d.TotalWeight().Equal(s.TotalWeight()) {
		t.Fatal("roundtrip changed the set")
	}

	// Struct field.
	type holder struct {
		Epoch uint64
		Set   *Set
	}
	b, err := mir.Marshal(holder{Epoch: 3, Set: s})
	if err != nil {
		t.Fatal(err)
	}
	var h holder
	if err := mir.Unmarshal(b, &h); err != nil || h.Epoch != 3 || !h.Set.Equal(s) {
		t.Fatalf("set as a struct field: %v %v", h, err)
	}

	enc := func(w setWire) []byte {
		b, err := encMode.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	canon := s.wire()
	mod := func(f func(w *setWire)) []byte {
		w := setWire{Sim: canon.Sim, Validators: slices.Clone(canon.Validators)}
		f(&w)
		return enc(w)
	}
	pid0, _ := peer.Decode(canon.Validators[0].PeerID)
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"canonical", enc(canon), nil},
		{"empty input", nil, ErrMalformed},
		{"trailing byte", append(enc(canon), 0), ErrMalformed},
		{"not an array", []byte{0xa0}, ErrMalformed},
		{"short array", []byte{0x81, 0xf5}, ErrMalformed},
		{"no validators", mod(func(w *setWire) { w.Validators = nil }), ErrEmptySet},
		{"unsorted", mod(func(w *setWire) { w.Validators[0], w.Validators[1] = w.Validators[1], w.Validators[0] }), ErrMalformed},
		{"CID-form peer ID", mod(func(w *setWire) { w.Validators[0].PeerID = peer.ToCid(pid0).String() }), ErrMalformed},
		{"non-canonical addr", mod(func(w *setWire) { w.Validators[0].Addrs = []string{"/ip4/127.0.0.1/tcp/04000"} }), ErrMalformed},
		{"missing peer ID in strict set", mod(func(w *setWire) { w.Validators[0].PeerID = "" }), ErrBadPeerID},
		{"zero weight", mod(func(w *setWire) { w.Validators[0].Weight = Weight{} }), ErrBadWeight},
		{"duplicate", mod(func(w *setWire) { w.Validators[1] = w.Validators[0] }), ErrDuplicateID},
		{"indefinite array", append([]byte{0x82, 0xf4, 0x9f}, append(enc(canon)[2:], 0xff)...), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Decode: err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	// Null instead of an empty addrs array is not canonical.
	nullAddrs := []byte{0x82, 0xf5, 0x81, 0x84, 0x61, 'a', 0x60, 0xf6, 0x41, 0x01}
	if _, err := Decode(nullAddrs); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decode(null addrs): %v", err)
	}
	nullAddrs[7] = 0x80
	if _, err := Decode(nullAddrs); err != nil {
		t.Errorf("Decode(canonical minimal set): %v", err)
	}
}
