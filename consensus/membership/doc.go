// Package membership holds validator sets and the weighted quorum arithmetic
// that every ordering protocol (ISS, PBFT, checkpoints) counts votes with.
//
// A Validator has a node ID (mir.NodeID), a libp2p peer ID, multiaddrs and a
// Weight (an arbitrary-precision non-negative integer: stakes are counted in
// attoFIL and exceed uint64). A Set is an immutable, validated set of
// validators in canonical order (sorted by ID, bytewise). A strong quorum is
// a set of distinct members holding more than 2/3 of the total weight, a weak
// quorum one holding more than 1/3; heads are never counted where weight is
// meant. Any two strong quorums intersect in a weak quorum.
//
// Set.IsStrongQuorum and Set.IsWeakQuorum answer for a list of voters; a
// Tally counts votes one at a time on the protocol hot path with O(1)
// Strong and Weak checks (thresholds are precomputed; when the total weight
// is below 2^128, which covers any stake distribution in attoFIL, votes are
// summed in fixed-width 128-bit arithmetic; no path allocates per vote).
//
// Two constructors:
//
//   - NewSet is strict: every validator needs a parseable libp2p peer ID
//     (stored in its canonical base58 text form). This is the set that
//     production nodes and the libp2p transport use.
//   - NewSimSet is for the simulator and in-process tests: peer IDs may be
//     empty. IDs, weights, and any peer IDs or addresses that are given are
//     validated exactly as in NewSet. Set.Sim reports the mode, and the mode
//     is part of the encoding and thus of the Digest.
//
// Encoding: a Set encodes to CBOR (Core Deterministic Encoding) as
// [sim, [[id, peerID, [addr...], weight]...]] with validators in canonical
// order; a Weight encodes as a CBOR byte string holding its big-endian
// magnitude with no leading zero bytes (zero is the empty string) and at most
// MaxWeightBytes bytes. Decode accepts exactly the canonical encoding of a
// valid set (it re-encodes and compares), so Decode(b) succeeds only if
// Encode of the result returns b, and the Digest (SHA-256 of the encoding)
// of a decoded set is the digest of the bytes received.
package membership
