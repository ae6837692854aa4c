// Package transport is the libp2p network of a mirsubnet node: a go-libp2p
// host (TCP and QUIC, Noise and TLS as go-libp2p negotiates them) wrapped as
// a mir active module, registered under the module ID "net".
//
// # Consensus messages
//
// The node hands the Transport events.SendMessage events; the Transport
// emits events.MessageReceived to the message's DestModule on the receiving
// node. Every member dials each other member and keeps one long-lived
// outbound stream of protocol ProtocolID to it; it only writes on that
// stream (the remote never writes back), so each pair of nodes shares two
// unidirectional streams. A stream carries frames:
//
//	frame = uvarint(len(body)) || body
//	body  = CBOR([DestModule, EncodePayload(Msg)])   (a Frame)
//
// The length is checked against Params.MaxFrameSize before any buffer is
// allocated; an oversized frame resets the stream. A body that does not
// decode, or names a module outside Config.AllowedModules, is dropped and
// counted, and the stream goes on.
//
// The sender of a received message (MessageReceived.From) is the member
// whose libp2p peer ID authenticated the stream (Noise or TLS), looked up in
// the current membership for every frame; nothing inside a frame names its
// sender. Only members may connect at all: the connection gater refuses other
// peer IDs at the security handshake (InterceptSecured), and the stream
// handler checks again. Messages to self never touch the network.
//
// Each peer has a bounded send queue (Params.SendQueue frames and
// Params.SendQueueBytes bytes). A full queue drops the frame and counts it:
// delivery is best effort and the protocols retransmit. A sender whose stream
// or connection breaks redials with exponential backoff and jitter
// (Params.ReconnectMin to Params.ReconnectMax); a frame being written when
// the stream broke is dropped and counted. A remote that stops reading blocks
// the writer only until Params.WriteTimeout, then the stream is reset.
//
// Received frames are emitted as soon as they are read and the reader blocks
// while the node is not reading EventsOut, so the node's flow control pushes
// back through the stream to the sender's queue: memory stays bounded on both
// sides.
//
// # Transactions
//
// Transactions travel separately, over gossipsub (go-libp2p-pubsub) on topic
// TxTopic: PublishTx publishes, Config.OnTx receives what other nodes
// published (at most Params.MaxTxSize bytes; a node's own transactions are
// not handed back to it).
//
// # Lifecycle
//
// New starts the host (listening, accepting members, gossiping). Run, called
// once by the mir node, runs the senders and hands received messages to the
// node; when its context is cancelled it resets the consensus streams, waits
// for the goroutines it owns and returns. Close shuts the host down and must
// always be called.
//
// # Metrics
//
// Every counter is kept per peer (labelled with the validator's node ID, or
// "unknown" for traffic that cannot be attributed to a member) and is
// available both from Stats and, if Config.Metrics is set, as Prometheus
// metrics under mirsubnet_transport_*.
//
// Package memnet provides an in-memory network with the same module
// interface for tests.
package transport
