// Package pbft implements one PBFT instance per ISS segment (Sequenced
// Broadcast): the leader of a segment proposes batches for the segment's
// sequence numbers, replicas agree on them with pre-prepare / prepare /
// commit, and a view change with prepared certificates (the decision
// procedure of Castro and Liskov's TOCS 2002 paper, with weights instead of
// head counts) replaces a faulty leader. In views above 0 no fresh batches
// are proposed: the new view fills every undecided slot with the prepared
// value a quorum certifies, or with an aborted (empty) marker.
//
// An Instance is a pure state machine in the style of etcd's raft: inputs are
// method calls (Propose, Step, Timeout, Resend), outputs are Actions the
// caller executes. Contract for the caller: an action Send whose Persist is
// set must be made durable before its message is sent (the ISS module puts
// the message behind a WAL append). No goroutines, clocks or I/O here.
package pbft
