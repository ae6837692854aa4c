// Package iss implements Insanely Scalable SMR (Stathakopoulou et al.,
// EuroSys 2022) on the mir framework: time is divided into epochs, each
// epoch's sequence numbers are split into interleaved segments, one per
// leader, each ordered by its own PBFT instance (consensus/pbft); batches are
// delivered to the application strictly in sequence-number order.
// Transactions are hashed by sender into buckets; each epoch assigns
// disjoint bucket sets to its leaders and rotates them. A leader whose
// segment needed a view change (an aborted slot in the agreed log) is left
// out of the next epoch's leaders. At the end of every epoch the validators
// sign a checkpoint (consensus/checkpoint); a strong quorum makes it stable,
// which garbage-collects older state and lets lagging nodes catch up by
// state transfer.
//
// The ISS module is passive: it talks to the mempool, the application, the
// WAL, the network and the timer only through events (see events.go and
// consensus/events). Every message it signs or votes is appended to the WAL
// and sent only once durable (the send is a follow-up of the append).
package iss
