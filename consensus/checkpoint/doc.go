// Package checkpoint defines ISS checkpoints and stable checkpoint
// certificates, and verifies chains of certificates from a genesis
// checkpoint without trusting whoever supplied them.
//
// A Checkpoint describes the agreed state at the start of an epoch: the
// first sequence number of the epoch, the application's digest of its state
// (state root, block height and CID for a chain), the epoch's leaders, the
// validator sets of the next epochs and the hash of the previous checkpoint.
// Every validator of the previous epoch signs it at the end of that epoch; a
// strong quorum (by weight) of matching signatures forms a Certificate.
package checkpoint
