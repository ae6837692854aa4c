package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	ic "github.com/libp2p/go-libp2p/core/crypto"
)

// Reasons a signature is invalid. Verify returns them wrapped; their text
// is what VerifyResult.Errors carries.
var (
	// ErrUnknownSigner: the signer is not in the registry.
	ErrUnknownSigner = errors.New("crypto: unknown signer")
	// ErrSignatureLength: the signature is not 64 bytes long.
	ErrSignatureLength = errors.New("crypto: bad signature length")
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = errors.New("crypto: signature does not verify")
)

// SignatureSize is the length of an Ed25519 signature.
const SignatureSize = ed25519.SignatureSize

// lenPrefix is the size of the length prefix of each framed part.
const lenPrefix = 8

// FramedLen returns the length of Frame(parts).
func FramedLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += lenPrefix + len(p)
	}
	return n
}

// Frame returns the framed encoding of parts that is signed and hashed:
// for each part, its length as an 8-byte big-endian integer, then its bytes.
// It is injective: distinct lists have distinct encodings.
func Frame(parts [][]byte) []byte {
	return AppendFrame(make([]byte, 0, FramedLen(parts)), parts)
}

// AppendFrame appends Frame(parts) to dst.
func AppendFrame(dst []byte, parts [][]byte) []byte {
	for _, p := range parts {
		dst = binary.BigEndian.AppendUint64(dst, uint64(len(p)))
		dst = append(dst, p...)
	}
	return dst
}

// Digest returns SHA-256 of Frame(parts) (32 bytes).
func Digest(parts [][]byte) []byte {
	h := sha256.New()
	var l [lenPrefix]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(l[:], uint64(len(p)))
		h.Write(l[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

// Signer signs framed messages with an Ed25519 private key. It is safe for
// concurrent use.
type Signer struct {
	key ic.PrivKey
}

// NewSigner returns a signer for an Ed25519 private key.
func NewSigner(key ic.PrivKey) (*Signer, error) {
	if key == nil || key.Type() != ic.Ed25519 {
		return nil, ErrKeyType
	}
	return &Signer{key: key}, nil
}

// Sign returns the signature of Frame(parts). Ed25519 signatures are
// deterministic: the same key and parts always give the same signature.
func (s *Signer) Sign(parts [][]byte) ([]byte, error) {
	sig, err := s.key.Sign(Frame(parts))
	if err != nil {
		return nil, fmt.Errorf("crypto: sign: %w", err)
	}
	return sig, nil
}

// PubKey returns the signer's public key.
func (s *Signer) PubKey() ic.PubKey { return s.key.GetPublic() }

// Verify checks that sig is pub's signature of Frame(parts). It returns nil
// if it is, else an error wrapping ErrKeyType, ErrSignatureLength or
// ErrBadSignature. It never panics, whatever the bytes.
func Verify(pub ic.PubKey, parts [][]byte, sig []byte) error {
	if pub == nil || pub.Type() != ic.Ed25519 {
		return ErrKeyType
	}
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrSignatureLength, len(sig), SignatureSize)
	}
	ok, err := pub.Verify(Frame(parts), sig)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
