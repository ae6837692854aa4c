// Package crypto signs, verifies and hashes for mirsubnet.
//
// Keys are libp2p Ed25519 keys (github.com/libp2p/go-libp2p/core/crypto);
// a node's libp2p peer ID is derived from its public key, so the identity a
// transport authenticates and the key its signatures verify under are one.
//
// Framing. Every signed or hashed message is a list of byte strings
// ([][]byte), and both signing and hashing apply to its framed encoding
// (Frame): each part is preceded by its length as an 8-byte big-endian
// unsigned integer. The encoding is injective, so ["ab","c"], ["a","bc"],
// ["abc"] and ["abc",""] all sign and hash differently; a signature over one
// list never verifies for another. Digest is SHA-256 of the framed
// encoding; HashRequest/HashResult use the same rule, so any code that
// recomputes a digest outside the module must use Digest (not SHA-256 of
// the plain concatenation).
//
// The pure API (Signer, Verify, Registry.Verify, Digest) is synchronous and
// safe for concurrent use. Module is the active module that serves
// events.SignRequest, events.VerifyRequest and events.HashRequest from a
// worker pool; see its documentation for ordering and backpressure.
//
// TestKeys derives key pairs from a seed for tests and simulations only:
// anyone who knows the seed knows the private keys.
package crypto
