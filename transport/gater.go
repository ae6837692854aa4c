package transport

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mirsubnet/mirsubnet/consensus/membership"
)

// gater is the host's connmgr.ConnectionGater: only members (and peers
// Config.AllowNonMember admits) may connect. Peer IDs are only known once
// the security handshake authenticated them, so inbound connections are
// refused in InterceptSecured; outbound dials to others are refused before
// they start.
type gater struct {
	self peer.ID
	// members is the current membership; never nil after New.
	members atomic.Pointer[membership.Set]
	// allow is Config.AllowNonMember (may be nil); read-only.
	allow func(peer.ID) bool
	// refused counts refused connections and dials.
	refused *atomic.Uint64
}

var _ connmgr.ConnectionGater = (*gater)(nil)

// allowed reports whether p may be connected to.
func (g *gater) allowed(p peer.ID) bool {
	if p == g.self {
		return true
	}
	if _, ok := g.members.Load().ByPeerID(p.String()); ok {
		return true
	}
	return g.allow != nil && g.allow(p)
}

// InterceptPeerDial refuses dials to peers that may not connect.
func (g *gater) InterceptPeerDial(p peer.ID) bool {
	if !g.allowed(p) {
		g.refused.Add(1)
		return false
	}
	return true
}

// InterceptAddrDial allows every address of an allowed peer.
func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptAccept accepts every connection; its peer is not known yet.
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection, inbound or outbound, once the
// handshake authenticated a peer that may not connect.
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if !g.allowed(p) {
		g.refused.Add(1)
		return false
	}
	return true
}

// InterceptUpgraded allows every connection that passed InterceptSecured.
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
