package mempool

import (
	"context"
	"errors"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// Pool is the mempool as the engine consumes it. Implementations must be
// safe for concurrent use: clients and gossip call Add while the consensus
// side calls Select, Committed and ResetProposals.
type Pool interface {
	// Add admits tx, or returns a *Rejection saying why not (or ctx.Err()
	// if ctx is done before the decision). origin says whether a local
	// client or gossip delivered it; only local transactions are gossiped
	// on.
	Add(ctx context.Context, tx ordering.Tx, origin Origin) error
	// Select returns up to maxTxs admitted transactions of total size (as
	// ordering.Tx.Size counts it) at most maxBytes, taken only from the
	// given buckets (of numBuckets, as ordering.BucketOf computes them), in
	// the pool's order. It marks them proposed: they are not returned again
	// until ResetProposals (unless they are committed first). full reports
	// that the limits were reached: the result holds maxTxs transactions, or
	// the next transaction in order did not fit in maxBytes; an
	// implementation that cannot tell may always report false (the batch
	// timeout then answers the request). Select never blocks.
	Select(buckets []int, numBuckets, maxTxs, maxBytes int) (txs []ordering.Tx, full bool)
	// Committed tells the pool that txs were committed, in order. It removes
	// them and treats their nonces as used.
	Committed(txs []ordering.Tx)
	// ResetProposals makes every transaction handed out by Select and not
	// committed selectable again.
	ResetProposals()
	// Notify returns a channel that receives a value (non-blocking, with
	// coalescing: one pending value at most) after transactions are
	// admitted. It has a single consumer, the engine's mempool module.
	Notify() <-chan struct{}
	// Stats returns a snapshot of the pool's counters.
	Stats() Stats
}

// Origin says where a transaction came from.
type Origin uint8

const (
	// OriginLocal is a transaction a client submitted to this node; it is
	// gossiped to the other nodes once admitted.
	OriginLocal Origin = iota + 1
	// OriginGossip is a transaction received from another node's gossip; it
	// is not gossiped again.
	OriginGossip
)

// String returns "local" or "gossip".
func (o Origin) String() string {
	switch o {
	case OriginLocal:
		return "local"
	case OriginGossip:
		return "gossip"
	default:
		return fmt.Sprintf("origin(%d)", uint8(o))
	}
}

// Validator checks a transaction on admission (a signature check, for
// instance). A non-nil error rejects the transaction with ReasonInvalid and
// the error's message. It must be safe for concurrent use and must not call
// into the pool.
type Validator func(tx ordering.Tx) error

// NonceSource tells the pool the next nonce a sender is expected to use,
// from committed state. The pool asks it when it starts tracking a sender
// (the sender has no pending transaction) and from then on advances the
// nonce itself on Committed. It must be safe for concurrent use, fast, and
// must not call into the pool. It may lag behind Committed.
type NonceSource interface {
	NextNonce(sender string) uint64
}

// Gossiper publishes locally admitted transactions to the other nodes (the
// transport implements it, over gossipsub). Publish must not block for long
// and must not call into the pool synchronously; delivery is best effort
// (the pool publishes its pending local transactions again at every
// ResetProposals).
type Gossiper interface {
	Publish(tx ordering.Tx)
}

// Stats are a pool's gauges and counters.
type Stats struct {
	// Txs, Bytes and Senders describe the pending transactions; Local of
	// them were submitted to this node.
	Txs, Bytes, Senders, Local int
	// Gapped counts pending transactions that wait for a missing nonce.
	Gapped int
	// Proposed counts pending transactions handed out by Select.
	Proposed int
	// Admitted counts transactions ever admitted.
	Admitted uint64
	// Committed counts pending transactions removed because they were
	// committed.
	Committed uint64
	// Superseded counts pending transactions removed because a different
	// committed transaction used their nonce.
	Superseded uint64
	// Rejected counts rejections by reason.
	Rejected map[Reason]uint64
}

// Reason is why a transaction was rejected.
type Reason uint8

const (
	// ReasonFull: the pool, or the sender's share of it, is full. Retry
	// later (backpressure).
	ReasonFull Reason = iota + 1
	// ReasonDuplicate: the same transaction is already pending. Nothing to
	// do.
	ReasonDuplicate
	// ReasonNonceTooLow: the sender's nonce was already used by a committed
	// transaction. Use the next expected nonce.
	ReasonNonceTooLow
	// ReasonNonceTooHigh: the nonce is more than MaxNonceGap beyond the
	// sender's next expected nonce. Submit the missing nonces first.
	ReasonNonceTooHigh
	// ReasonNonceTaken: a different pending transaction of the sender has
	// this nonce (replacement is not supported). Use another nonce.
	ReasonNonceTaken
	// ReasonTooLarge: the transaction exceeds MaxTxSize.
	ReasonTooLarge
	// ReasonInvalid: the transaction is malformed or failed the validator.
	ReasonInvalid

	numReasons = int(ReasonInvalid) + 1
)

// Sentinel errors, one per Reason: errors.Is(err, ErrFull) holds for a
// *Rejection with ReasonFull, and so on.
var (
	ErrFull         = errors.New("mempool: full")
	ErrDuplicate    = errors.New("mempool: duplicate transaction")
	ErrNonceTooLow  = errors.New("mempool: nonce too low")
	ErrNonceTooHigh = errors.New("mempool: nonce too high")
	ErrNonceTaken   = errors.New("mempool: nonce taken by another pending transaction")
	ErrTooLarge     = errors.New("mempool: transaction too large")
	ErrInvalid      = errors.New("mempool: invalid transaction")
)

var sentinels = [numReasons]error{
	ReasonFull:         ErrFull,
	ReasonDuplicate:    ErrDuplicate,
	ReasonNonceTooLow:  ErrNonceTooLow,
	ReasonNonceTooHigh: ErrNonceTooHigh,
	ReasonNonceTaken:   ErrNonceTaken,
	ReasonTooLarge:     ErrTooLarge,
	ReasonInvalid:      ErrInvalid,
}

// String returns the reason's name, such as "nonce too low".
func (r Reason) String() string {
	switch r {
	case ReasonFull:
		return "full"
	case ReasonDuplicate:
		return "duplicate"
	case ReasonNonceTooLow:
		return "nonce too low"
	case ReasonNonceTooHigh:
		return "nonce too high"
	case ReasonNonceTaken:
		return "nonce taken"
	case ReasonTooLarge:
		return "too large"
	case ReasonInvalid:
		return "invalid"
	default:
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
}

// Sentinel returns the sentinel error of r (ErrFull for ReasonFull, ...), or
// nil for an unknown reason.
func (r Reason) Sentinel() error {
	if int(r) < numReasons {
		return sentinels[r]
	}
	return nil
}

// Rejection is the error Add returns for a transaction it refuses.
type Rejection struct {
	// Reason is the class of the rejection.
	Reason Reason
	// TxID identifies the rejected transaction (zero if it was too
	// malformed to hash).
	TxID ordering.TxID
	// Detail says what exactly was wrong, such as "expected nonce 7".
	Detail string
	// Err is the validator's error for a ReasonInvalid rejection by the
	// validator, else nil.
	Err error
}

// Error returns the reason and detail.
func (r *Rejection) Error() string {
	s := "mempool: rejected: " + r.Reason.String()
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Is reports whether target is the sentinel error of the rejection's
// reason.
func (r *Rejection) Is(target error) bool {
	s := r.Reason.Sentinel()
	return s != nil && target == s
}

// Unwrap returns the validator's error, if any.
func (r *Rejection) Unwrap() error { return r.Err }

// ReasonOf returns the Reason of a *Rejection in err's chain, and false if
// there is none.
func ReasonOf(err error) (Reason, bool) {
	var rej *Rejection
	if errors.As(err, &rej) {
		return rej.Reason, true
	}
	return 0, false
}
