// Package engine assembles a validator: the mir node with ISS-PBFT (and its
// checkpoints), the libp2p transport, the mempool, the timer, the WAL, the
// optional event-log recording, and an application (iss.App). It offers the
// consensus engine a chain (or the key-value application) plugs into:
// Start, Stop, Submit, and subscriptions to delivered batches and stable
// checkpoints.
//
// It lives outside consensus/ because it wires the transport (go-libp2p) to
// the protocol, and consensus/... never imports libp2p.
package engine
