package ordering

import "github.com/mirsubnet/mirsubnet/consensus/mir"

// Signer signs byte strings with the local node's key. Implementations must
// be deterministic (Ed25519 is) and free of I/O so that protocol cores that
// call them stay replayable. The parts are framed unambiguously by the
// implementation.
type Signer interface {
	Sign(data [][]byte) ([]byte, error)
}

// Verifier verifies a node's signature over byte strings. It must be
// deterministic and free of I/O.
type Verifier interface {
	Verify(signer mir.NodeID, data [][]byte, sig []byte) error
}
