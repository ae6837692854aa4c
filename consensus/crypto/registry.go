package crypto

import (
	"fmt"
	"sync/atomic"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Registry maps node IDs to their public keys. Readers see one complete key
// set at a time: Replace swaps the whole set atomically (at
// reconfiguration), and a verification uses the set current when it runs.
// It is safe for concurrent use.
type Registry struct {
	// keys points to an immutable map; replaced whole, never modified.
	keys atomic.Pointer[map[mir.NodeID]registered]
}

// registered is one node's key and derived peer ID.
type registered struct {
	pub ic.PubKey
	id  peer.ID
}

// NewRegistry returns a registry holding keys.
func NewRegistry(keys map[mir.NodeID]ic.PubKey) (*Registry, error) {
	r := &Registry{}
	if err := r.Replace(keys); err != nil {
		return nil, err
	}
	return r, nil
}

// Replace replaces the whole key set. Every key must be an Ed25519 key; on
// error the registry is unchanged. The caller may reuse keys afterwards.
func (r *Registry) Replace(keys map[mir.NodeID]ic.PubKey) error {
	m := make(map[mir.NodeID]registered, len(keys))
	for node, pub := range keys {
		if node == "" {
			return fmt.Errorf("crypto: registry: empty node ID")
		}
		if pub == nil || pub.Type() != ic.Ed25519 {
			return fmt.Errorf("crypto: registry: key of %q: %w", node, ErrKeyType)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			return fmt.Errorf("crypto: registry: peer ID of %q: %w", node, err)
		}
		m[node] = registered{pub: pub, id: id}
	}
	r.keys.Store(&m)
	return nil
}

func (r *Registry) lookup(node mir.NodeID) (registered, bool) {
	m := r.keys.Load()
	if m == nil {
		return registered{}, false
	}
	reg, ok := (*m)[node]
	return reg, ok
}

// PubKey returns the public key of node.
func (r *Registry) PubKey(node mir.NodeID) (ic.PubKey, bool) {
	reg, ok := r.lookup(node)
	return reg.pub, ok
}

// PeerID returns the libp2p peer ID derived from node's public key.
func (r *Registry) PeerID(node mir.NodeID) (peer.ID, bool) {
	reg, ok := r.lookup(node)
	return reg.id, ok
}

// Len returns the number of registered nodes.
func (r *Registry) Len() int {
	if m := r.keys.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// Verify checks that sig is signer's signature of Frame(parts). An unknown
// signer gives an error wrapping ErrUnknownSigner; see Verify for the rest.
func (r *Registry) Verify(signer mir.NodeID, parts [][]byte, sig []byte) error {
	reg, ok := r.lookup(signer)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSigner, signer)
	}
	return Verify(reg.pub, parts, sig)
}
