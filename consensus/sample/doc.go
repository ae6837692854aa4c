// Package sample is a small protocol written on the mir framework: Bracha's
// reliable broadcast among n nodes tolerating f = (n-1)/3 Byzantine ones. It
// serves tests of the framework and is the worked example of how a module is
// written (see docs/modules.md).
//
// The pieces:
//
//   - RBC (module ID ModRBC) is a passive module: the protocol itself. A
//     Broadcast event addressed to it broadcasts a value; each value it
//     delivers becomes a Delivered event for ModApp. It talks to the network
//     with events.SendMessage (to ModNet) and events.MessageReceived.
//   - Collector (ModApp) is a passive module that keeps what was delivered.
//   - NetModule (ModNet) is an active module: an in-memory network that
//     connects nodes running in one process, with optional seeded reordering
//     and delays. Messages are encoded and decoded on the way, like on a real
//     network.
//   - RunLocal runs n mir.Nodes in one process until every node delivered
//     every broadcast.
package sample
