// Package mempool holds the transactions a node has admitted and not yet
// seen committed, and hands them to the ordering protocol.
//
// It has three parts:
//
//   - Pool, the small interface the engine consumes (add, select for a set
//     of buckets within count and byte limits, remove what was committed,
//     re-offer what was handed out, notify on new transactions). A
//     Lotus-like chain can plug in its own message pool by implementing it.
//   - FIFO (New), the default implementation: per-sender nonce order,
//     first-come order across senders, deduplication by transaction ID,
//     limits per sender and in total, a pluggable validity check and nonce
//     source, and gossip of locally submitted transactions. Every rejection
//     is a *Rejection whose Reason a client can act on.
//   - Module (NewModule), an active mir module that serves the ISS mempool
//     contract (iss.RequestBatch, iss.CutBatch, iss.TxsDelivered,
//     iss.ResetProposals, iss.SubmitTx) from any Pool, with its own clock for
//     the batch timeout.
//   - Journal (OpenJournal), a write-ahead log of locally admitted
//     transactions: the engine acknowledges a submit once its record is
//     durable, and a restarted node gives the pending ones back to its pool
//     (docs/adr/0008-mempool-journal.md).
//
// Nothing admitted is dropped while the node runs: a transaction leaves the
// pool only when it is committed, or when a committed transaction of the
// same sender used its nonce (it can then never be valid). When the pool is
// full, Add refuses new transactions; it never evicts admitted ones.
package mempool
