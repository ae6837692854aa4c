package membership

import (
	"errors"
	"fmt"
	"math/big"
)

// MaxWeightBytes is the largest size of an encoded Weight's magnitude: a
// weight in a Set is at most 2^256-1.
const MaxWeightBytes = 32

// ErrBadWeight is returned for a weight that is malformed, too large, or
// zero where a positive weight is required.
var ErrBadWeight = errors.New("membership: bad weight")

// Weight is an arbitrary-precision non-negative integer (a validator's
// stake). The zero value is 0. A Weight is an immutable value: copies share
// nothing that is ever modified. Compare Weights with Cmp or Equal, not ==.
type Weight struct {
	n *big.Int // nil means zero; otherwise > 0 and never modified after construction
}

// NewWeight returns the Weight v.
func NewWeight(v uint64) Weight {
	if v == 0 {
		return Weight{}
	}
	return Weight{n: new(big.Int).SetUint64(v)}
}

// ParseWeight parses a decimal string of digits (no sign, no leading zeros
// except in "0", no separators). The result may exceed MaxWeightBytes; NewSet
// rejects such weights.
func ParseWeight(s string) (Weight, error) {
	if s == "" {
		return Weight{}, fmt.Errorf("%w: empty string", ErrBadWeight)
	}
	if len(s) > 1 && s[0] == '0' {
		return Weight{}, fmt.Errorf("%w: leading zero in %q", ErrBadWeight, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return Weight{}, fmt.Errorf("%w: not a decimal number: %q", ErrBadWeight, s)
		}
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return Weight{}, fmt.Errorf("%w: not a decimal number: %q", ErrBadWeight, s)
	}
	return fromOwnedBig(n), nil
}

// WeightFromBig returns a Weight with the value of b (which it copies). A
// nil b is zero; a negative b is an error.
func WeightFromBig(b *big.Int) (Weight, error) {
	if b == nil {
		return Weight{}, nil
	}
	if b.Sign() < 0 {
		return Weight{}, fmt.Errorf("%w: negative: %s", ErrBadWeight, b)
	}
	return fromOwnedBig(new(big.Int).Set(b)), nil
}

// fromOwnedBig wraps n, which the caller must not use afterwards.
func fromOwnedBig(n *big.Int) Weight {
	if n.Sign() == 0 {
		return Weight{}
	}
	return Weight{n: n}
}

// Big returns the value of w as a new big.Int the caller may modify.
func (w Weight) Big() *big.Int {
	if w.n == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(w.n)
}

// Uint64 returns w as a uint64 and whether it fits.
func (w Weight) Uint64() (uint64, bool) {
	if w.n == nil {
		return 0, true
	}
	if !w.n.IsUint64() {
		return 0, false
	}
	return w.n.Uint64(), true
}

// IsZero reports whether w is 0.
func (w Weight) IsZero() bool { return w.n == nil }

// Cmp compares w and o and returns -1, 0 or +1.
func (w Weight) Cmp(o Weight) int {
	switch {
	case w.n == nil && o.n == nil:
		return 0
	case w.n == nil:
		return -1
	case o.n == nil:
		return 1
	}
	return w.n.Cmp(o.n)
}

// Equal reports whether w and o have the same value.
func (w Weight) Equal(o Weight) bool { return w.Cmp(o) == 0 }

// Add returns w + o.
func (w Weight) Add(o Weight) Weight {
	switch {
	case w.n == nil:
		return o
	case o.n == nil:
		return w
	}
	return Weight{n: new(big.Int).Add(w.n, o.n)}
}

// String returns w in decimal.
func (w Weight) String() string {
	if w.n == nil {
		return "0"
	}
	return w.n.String()
}

// MarshalText encodes w in decimal (for JSON and TOML membership files).
func (w Weight) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText decodes a decimal string as ParseWeight does.
func (w *Weight) UnmarshalText(text []byte) error {
	v, err := ParseWeight(string(text))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// MarshalCBOR encodes w as a CBOR byte string holding its big-endian
// magnitude without leading zero bytes (0 is the empty byte string). It
// fails if the magnitude exceeds MaxWeightBytes.
func (w Weight) MarshalCBOR() ([]byte, error) {
	var mag []byte
	if w.n != nil {
		mag = w.n.Bytes()
	}
	n := len(mag)
	if n > MaxWeightBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadWeight, n, MaxWeightBytes)
	}
	var out []byte
	if n < 24 {
		out = make([]byte, 1+n)
		out[0] = 0x40 | byte(n)
		copy(out[1:], mag)
	} else {
		out = make([]byte, 2+n)
		out[0], out[1] = 0x58, byte(n)
		copy(out[2:], mag)
	}
	return out, nil
}

// UnmarshalCBOR decodes exactly one CBOR byte string in the canonical form
// MarshalCBOR produces: shortest length header, at most MaxWeightBytes
// bytes, no leading zero byte. Anything else is an error wrapping
// ErrBadWeight.
func (w *Weight) UnmarshalCBOR(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: empty CBOR item", ErrBadWeight)
	}
	var hdr, n int
	switch b := data[0]; {
	case b >= 0x40 && b < 0x58:
		hdr, n = 1, int(b-0x40)
	case b == 0x58:
		if len(data) < 2 {
			return fmt.Errorf("%w: truncated byte string", ErrBadWeight)
		}
		hdr, n = 2, int(data[1])
		if n < 24 {
			return fmt.Errorf("%w: non-canonical byte string length", ErrBadWeight)
		}
	default:
		return fmt.Errorf("%w: want a definite-length CBOR byte string of at most %d bytes, got initial byte 0x%02x", ErrBadWeight, MaxWeightBytes, b)
	}
	if n > MaxWeightBytes {
		return fmt.Errorf("%w: %d bytes exceeds %d", ErrBadWeight, n, MaxWeightBytes)
	}
	if len(data) != hdr+n {
		return fmt.Errorf("%w: byte string length %d, item length %d", ErrBadWeight, n, len(data)-hdr)
	}
	mag := data[hdr:]
	if n > 0 && mag[0] == 0 {
		return fmt.Errorf("%w: leading zero byte", ErrBadWeight)
	}
	*w = fromOwnedBig(new(big.Int).SetBytes(mag))
	return nil
}
