package crypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrKeyType is returned for a key that is not an Ed25519 key.
var ErrKeyType = errors.New("crypto: not an Ed25519 key")

// KeyPair is a node's Ed25519 key pair and the libp2p peer ID derived from
// its public key.
type KeyPair struct {
	Priv ic.PrivKey
	Pub  ic.PubKey
	ID   peer.ID
}

// NewKeyPair returns the key pair of an Ed25519 private key.
func NewKeyPair(priv ic.PrivKey) (KeyPair, error) {
	if priv == nil || priv.Type() != ic.Ed25519 {
		return KeyPair{}, ErrKeyType
	}
	pub := priv.GetPublic()
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return KeyPair{}, fmt.Errorf("crypto: peer ID: %w", err)
	}
	return KeyPair{Priv: priv, Pub: pub, ID: id}, nil
}

// GenerateKey generates an Ed25519 key pair from the randomness of r
// (crypto/rand.Reader in production).
func GenerateKey(r io.Reader) (KeyPair, error) {
	priv, _, err := ic.GenerateEd25519Key(r)
	if err != nil {
		return KeyPair{}, fmt.Errorf("crypto: generate key: %w", err)
	}
	return NewKeyPair(priv)
}

// testKeysDomain separates TestKeys seeds from any other use of SHA-256.
const testKeysDomain = "mirsubnet/crypto.TestKeys/v1"

// TestKeys returns n deterministic key pairs derived from seed: the i-th
// private key's Ed25519 seed is SHA-256(domain || seed || i) with seed and i
// as 8-byte big-endian integers. The same seed always gives the same keys,
// and TestKeys(seed, m) is a prefix of TestKeys(seed, n) for m <= n.
//
// TestKeys is for tests and simulations only: the keys are as secret as the
// seed. It returns nil for n <= 0.
func TestKeys(seed int64, n int) []KeyPair {
	if n <= 0 {
		return nil
	}
	kps := make([]KeyPair, n)
	var buf [len(testKeysDomain) + 16]byte
	copy(buf[:], testKeysDomain)
	binary.BigEndian.PutUint64(buf[len(testKeysDomain):], uint64(seed))
	for i := range kps {
		binary.BigEndian.PutUint64(buf[len(testKeysDomain)+8:], uint64(i))
		s := sha256.Sum256(buf[:])
		priv, err := ic.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s[:]))
		if err != nil {
			panic(fmt.Sprintf("crypto: TestKeys: %v", err)) // a 64-byte key always unmarshals
		}
		kp, err := NewKeyPair(priv)
		if err != nil {
			panic(fmt.Sprintf("crypto: TestKeys: %v", err))
		}
		kps[i] = kp
	}
	return kps
}
