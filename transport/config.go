package transport

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ErrConfig is wrapped by every error New and UpdateMembership return for a
// bad configuration.
var ErrConfig = errors.New("transport: bad config")

// Config is what New needs: the node's identity and wiring. Tunables are in
// Params.
type Config struct {
	// Self is this node's ID; it must be a member of Members, with the peer ID
	// of PrivKey.
	Self mir.NodeID
	// PrivKey is the node's libp2p identity key.
	PrivKey ic.PrivKey
	// ListenAddrs are the multiaddrs to listen on, such as
	// "/ip4/0.0.0.0/tcp/4001" and "/ip4/0.0.0.0/udp/4001/quic-v1".
	ListenAddrs []string
	// Members is the current validator set. It must be a strict set
	// (membership.NewSet): every member has a peer ID, and the addresses the
	// senders dial.
	Members *membership.Set
	// AllowedModules are the destination modules a remote may address. A
	// frame is accepted if the first element of its DestModule is one of
	// them (a module dispatches the rest of a path to its submodules);
	// others are dropped and counted (DropUnknownModule).
	AllowedModules []mir.ModuleID
	// AllowNonMember, if set, lets the gater accept connections from peers
	// outside the membership for which it returns true (clients of other
	// protocols on Host). Such peers can never use the consensus stream.
	AllowNonMember func(peer.ID) bool
	// OnTx, if set, is called for every transaction received over gossip
	// from another node, on one goroutine, in arrival order. It must not
	// block for long: gossipsub drops messages for a slow subscriber.
	OnTx func(Tx)
	// Metrics, if set, receives the transport's Prometheus metrics and the
	// host's (go-libp2p's own) metrics.
	Metrics prometheus.Registerer
	// HostOptions are appended to the go-libp2p options New uses (tests use
	// them, for example, to put the host on a simulated network).
	HostOptions []libp2p.Option
	// Params are the tunables; zero fields take their defaults.
	Params Params
}

// Params are the transport's tunables. A zero field means its default
// (DefaultParams).
type Params struct {
	// MaxFrameSize is the largest frame body, in bytes, sent or accepted.
	MaxFrameSize int
	// SendQueue is the capacity of each peer's send queue in frames.
	SendQueue int
	// SendQueueBytes is the capacity of each peer's send queue in bytes.
	SendQueueBytes int
	// ReconnectMin and ReconnectMax bound the backoff between dials of a
	// peer; the delay doubles after each failure and carries jitter.
	ReconnectMin, ReconnectMax time.Duration
	// DialTimeout bounds one attempt to connect and open a stream.
	DialTimeout time.Duration
	// WriteTimeout bounds one write to a stream; a remote that does not read
	// for this long has its stream reset.
	WriteTimeout time.Duration
	// MaxTxSize is the largest transaction accepted over gossip.
	MaxTxSize int
	// TxQueue is the capacity, in messages, of the gossip subscription: a
	// message that finds it full is dropped (it stays in its origin's
	// pool). A message is a batch of up to 256 transactions, so this bounds
	// the memory gossip can take when the pool falls behind.
	TxQueue int
}

// DefaultParams returns the default tunables.
func DefaultParams() Params {
	return Params{
		MaxFrameSize:   16 << 20,
		SendQueue:      4096,
		SendQueueBytes: 64 << 20,
		ReconnectMin:   100 * time.Millisecond,
		ReconnectMax:   10 * time.Second,
		DialTimeout:    10 * time.Second,
		WriteTimeout:   20 * time.Second,
		MaxTxSize:      1 << 20,
		TxQueue:        128,
	}
}

// withDefaults returns p with every zero field set to its default.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&p.MaxFrameSize, d.MaxFrameSize)
	set(&p.SendQueue, d.SendQueue)
	set(&p.SendQueueBytes, d.SendQueueBytes)
	set(&p.MaxTxSize, d.MaxTxSize)
	set(&p.TxQueue, d.TxQueue)
	setD(&p.ReconnectMin, d.ReconnectMin)
	setD(&p.ReconnectMax, d.ReconnectMax)
	setD(&p.DialTimeout, d.DialTimeout)
	setD(&p.WriteTimeout, d.WriteTimeout)
	return p
}

func (p Params) validate() error {
	switch {
	case p.MaxFrameSize < 0, p.SendQueue < 0, p.SendQueueBytes < 0, p.MaxTxSize < 0, p.TxQueue < 0:
		return fmt.Errorf("%w: negative size in params", ErrConfig)
	case p.ReconnectMin < 0 || p.ReconnectMax < 0 || p.DialTimeout < 0 || p.WriteTimeout < 0:
		return fmt.Errorf("%w: negative duration in params", ErrConfig)
	}
	q := p.withDefaults()
	if q.ReconnectMax < q.ReconnectMin {
		return fmt.Errorf("%w: ReconnectMax %v < ReconnectMin %v", ErrConfig, q.ReconnectMax, q.ReconnectMin)
	}
	if q.SendQueueBytes < q.MaxFrameSize {
		return fmt.Errorf("%w: SendQueueBytes %d < MaxFrameSize %d", ErrConfig, q.SendQueueBytes, q.MaxFrameSize)
	}
	return nil
}

// checkMembers validates a membership for a node with the given ID and peer
// ID. The node need not be a member (a leaving validator), but if it is, its
// peer ID must match.
func checkMembers(s *membership.Set, self mir.NodeID, pid peer.ID) error {
	if s == nil {
		return fmt.Errorf("%w: no membership", ErrConfig)
	}
	if s.Sim() {
		return fmt.Errorf("%w: a simulation membership set (no peer IDs) cannot run on libp2p", ErrConfig)
	}
	if v, ok := s.Validator(self); ok && v.PeerID != pid.String() {
		return fmt.Errorf("%w: %s has peer ID %s in the membership, but the key is %s", ErrConfig, self, v.PeerID, pid)
	}
	return nil
}
