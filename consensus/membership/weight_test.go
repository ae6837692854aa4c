package membership

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) Weight {
	t.Helper()
	w, err := ParseWeight(s)
	if err != nil {
		t.Fatalf("ParseWeight(%q): %v", s, err)
	}
	return w
}

func TestParseWeight(t *testing.T) {
	for _, s := range []string{"0", "1", "18446744073709551615", "18446744073709551616", "1000000000000000000000000000"} {
		w := mustParse(t, s)
		if w.String() != s {
			t.Errorf("ParseWeight(%q).String() = %q", s, w.String())
		}
	}
	for _, s := range []string{"", "-1", "+1", "01", "00", "1_000", " 1", "1 ", "0x10", "1e18", "١"} {
		if _, err := ParseWeight(s); !errors.Is(err, ErrBadWeight) {
			t.Errorf("ParseWeight(%q): err = %v, want ErrBadWeight", s, err)
		}
	}
}

func TestWeightArithmetic(t *testing.T) {
	max64 := NewWeight(^uint64(0))
	sum := max64.Add(NewWeight(1))
	if sum.String() != "18446744073709551616" {
		t.Fatalf("2^64-1 + 1 = %s", sum)
	}
	if _, ok := sum.Uint64(); ok {
		t.Error("2^64 fits in uint64")
	}
	if v, ok := max64.Uint64(); !ok || v != ^uint64(0) {
		t.Errorf("Uint64(2^64-1) = %d, %v", v, ok)
	}
	if max64.String() != "18446744073709551615" {
		t.Errorf("max64 = %s", max64)
	}
	// Immutability: Add and Big do not alias.
	b := sum.Big()
	b.SetInt64(7)
	if sum.String() != "18446744073709551616" {
		t.Error("modifying Big() changed the Weight")
	}
	if !max64.Equal(NewWeight(^uint64(0))) {
		t.Error("Add modified its receiver")
	}
	var zero Weight
	if !zero.IsZero() || zero.String() != "0" || !zero.Equal(NewWeight(0)) || zero.Add(zero).Cmp(zero) != 0 {
		t.Error("zero value is not 0")
	}
	if zero.Cmp(NewWeight(1)) != -1 || NewWeight(1).Cmp(zero) != 1 || sum.Cmp(max64) != 1 || max64.Cmp(sum) != -1 {
		t.Error("Cmp order wrong")
	}
	if _, err := WeightFromBig(big.NewInt(-1)); !errors.Is(err, ErrBadWeight) {
		t.Errorf("WeightFromBig(-1): %v", err)
	}
	in := big.NewInt(5)
	w, err := WeightFromBig(in)
	if err != nil {
		t.Fatal(err)
	}
	in.SetInt64(6)
	if w.String() != "5" {
		t.Error("WeightFromBig aliases its argument")
	}
}

func TestWeightCBOR(t *testing.T) {
	max256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	w256, _ := WeightFromBig(max256)
	w23, _ := WeightFromBig(new(big.Int).Lsh(big.NewInt(1), 23*8-1)) // 23 bytes
	w24, _ := WeightFromBig(new(big.Int).Lsh(big.NewInt(1), 24*8-1)) // 24 bytes
	for _, tc := range []struct {
		w   Weight
		hex string
	}{
		{Weight{}, "40"},
		{NewWeight(1), "4101"},
		{NewWeight(256), "420100"},
		{NewWeight(^uint64(0)), "48ffffffffffffffff"},
		{NewWeight(1).Add(NewWeight(^uint64(0))), "49010000000000000000"},
		{w23, "57" + "80" + strings.Repeat("00", 22)},
		{w24, "5818" + "80" + strings.Repeat("00", 23)},
		{w256, "5820" + strings.Repeat("ff", 32)},
	} {
		got, err := tc.w.MarshalCBOR()
		if err != nil {
			t.Fatalf("MarshalCBOR(%s): %v", tc.w, err)
		}
		if hex.EncodeToString(got) != tc.hex {
			t.Errorf("MarshalCBOR(%s) = %x, want %s", tc.w, got, tc.hex)
		}
		var back Weight
		if err := back.UnmarshalCBOR(got); err != nil || !back.Equal(tc.w) {
			t.Errorf("UnmarshalCBOR(%x) = %s, %v", got, back, err)
		}
	}
	tooBig := Weight{}.Add(w256).Add(NewWeight(1))
	if _, err := tooBig.MarshalCBOR(); !errors.Is(err, ErrBadWeight) {
		t.Errorf("MarshalCBOR(2^256): %v", err)
	}
	for _, bad := range []string{
		"",                                // empty
		"00",                              // unsigned integer
		"c24101",                          // bignum tag
		"6101",                            // text string
		"4100",                            // leading zero
		"420001",                          // leading zero
		"580105",                          // non-shortest length header
		"59000105",                        // 2-byte length header
		"5f4101ff",                        // indefinite length
		"41",                              // truncated
		"410102",                          // trailing byte
		"58",                              // truncated header
		"5821" + strings.Repeat("ff", 33), // 33 bytes
	} {
		data, _ := hex.DecodeString(bad)
		var w Weight
		if err := w.UnmarshalCBOR(data); !errors.Is(err, ErrBadWeight) {
			t.Errorf("UnmarshalCBOR(%s): err = %v, want ErrBadWeight", bad, err)
		}
	}
}

func TestWeightJSON(t *testing.T) {
	in := map[string]Weight{"w": mustParse(t, "1000000000000000000000")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"w":"1000000000000000000000"}` {
		t.Errorf("json = %s", b)
	}
	var out map[string]Weight
	if err := json.Unmarshal(b, &out); err != nil || !out["w"].Equal(in["w"]) {
		t.Errorf("json roundtrip: %v %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"w":"-3"}`), &out); err == nil {
		t.Error("negative weight accepted from JSON")
	}
}
