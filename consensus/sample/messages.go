package sample

import "github.com/mirsubnet/mirsubnet/consensus/mir"

// Module IDs the sample protocol is wired with.
const (
	// ModRBC is the reliable broadcast module.
	ModRBC mir.ModuleID = "rbc"
	// ModNet is the network (transport) module.
	ModNet mir.ModuleID = "net"
	// ModApp is the module deliveries go to.
	ModApp mir.ModuleID = "app"
)

// Broadcast asks the RBC module to broadcast Data to all members. It comes
// from outside the node (InjectEvents).
type Broadcast struct {
	_    struct{} `cbor:",toarray"`
	Data []byte
}

// Delivered is emitted to ModApp once for each value RBC delivers: the Seq-th
// broadcast of Origin.
type Delivered struct {
	_      struct{} `cbor:",toarray"`
	Origin mir.NodeID
	Seq    uint64
	Data   []byte
}

// Send is the first message of a broadcast, sent by its origin. The origin is
// the message's authenticated sender, so it is not a field.
type Send struct {
	_    struct{} `cbor:",toarray"`
	Seq  uint64
	Data []byte
}

// Echo is a node's vote that Origin's Seq-th broadcast is Data.
type Echo struct {
	_      struct{} `cbor:",toarray"`
	Origin mir.NodeID
	Seq    uint64
	Data   []byte
}

// Ready is a node's vote that enough nodes echoed Data for Origin's Seq-th
// broadcast (or that enough nodes are ready).
type Ready struct {
	_      struct{} `cbor:",toarray"`
	Origin mir.NodeID
	Seq    uint64
	Data   []byte
}

func init() {
	b := mir.TagBaseSample
	mir.RegisterPayload(b+0, Broadcast{})
	mir.RegisterPayload(b+1, Delivered{})
	mir.RegisterPayload(b+2, Send{})
	mir.RegisterPayload(b+3, Echo{})
	mir.RegisterPayload(b+4, Ready{})
}
