// Package memnet is an in-memory network for tests: each node's Transport
// is a mir active module with the interface of transport.Transport (it
// takes events.SendMessage and emits events.MessageReceived), so a test can
// swap it for the libp2p transport.
//
// Messages are encoded with mir.EncodePayload on send and decoded with
// mir.DecodePayload on delivery, once per destination, so unregistered types
// and codec bugs show up as on a real network and nodes share no memory.
// Messages to self are delivered without encoding, as the libp2p transport
// does. The sender seen by the receiver (MessageReceived.From) is the
// sending node's ID, never a field of the message.
//
// Controls: Network.Drop cuts one direction between two nodes, Partition
// splits the nodes into groups that cannot talk, Heal undoes both. Each
// node's inbox is bounded (WithInboxSize); what does not fit is dropped and
// counted, like a full send queue of the libp2p transport.
package memnet
