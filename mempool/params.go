package mempool

import (
	"errors"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// ErrBadParams is returned by New for invalid parameters.
var ErrBadParams = errors.New("mempool: bad parameters")

// Params are the limits of a FIFO pool. A zero field takes its default.
type Params struct {
	// MaxTxs bounds the number of pending transactions.
	MaxTxs int
	// MaxLocalTxs bounds the pending transactions this node's clients
	// submitted (OriginLocal); the rest of MaxTxs is room for the ones
	// other nodes gossip. Under overload every node refuses its clients at
	// this bound, so the backlog of distinct transactions (and with it the
	// commit latency) stays near MaxLocalTxs per node, and every pool keeps
	// room for the gossiped copies that a bucket's leader needs to propose
	// them. It must not exceed MaxTxs; zero means MaxTxs (no separate
	// bound).
	MaxLocalTxs int
	// MaxBytes bounds the total size of pending transactions.
	MaxBytes int
	// MaxPerSender bounds the pending transactions of one sender.
	MaxPerSender int
	// MaxGapped bounds the pending transactions, over all senders, that
	// wait for a missing nonce, so that transactions which may never become
	// selectable cannot fill the pool. It must not exceed MaxTxs.
	MaxGapped int
	// MaxNonceGap is how far beyond a sender's next expected nonce a nonce
	// may be: a nonce n is admitted only if n - next <= MaxNonceGap.
	MaxNonceGap uint64
	// MaxTxSize bounds the size of one transaction (ordering.Tx.Size). It
	// must not exceed the engine's batch byte limit, or a transaction of
	// that size could never be selected and would block its sender.
	MaxTxSize int
	// NumBuckets is the bucket count the sender index is built for; it
	// should equal the engine's. Select with another count rebuilds the
	// index once (O(senders)).
	NumBuckets int
}

// DefaultParams returns the defaults. The pool holds about a second of a
// validator's throughput: beyond it overload is answered with "full"
// rejections. A pool of 262,144 transactions let twice the saturation rate
// fill queues until consensus starved (mirsubnet bench, ADR 0007). A
// quarter of it is for the node's own clients, the rest for gossip.
func DefaultParams() Params {
	return Params{
		MaxTxs:       20000,
		MaxLocalTxs:  5000,
		MaxBytes:     256 << 20,
		MaxPerSender: 1024,
		MaxGapped:    4096,
		MaxNonceGap:  1024,
		MaxTxSize:    ordering.MaxSenderLen + 8 + ordering.MaxTxData,
		NumBuckets:   64,
	}
}

// withDefaults fills zero fields from DefaultParams.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.MaxTxs == 0 {
		p.MaxTxs = d.MaxTxs
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = d.MaxBytes
	}
	if p.MaxLocalTxs == 0 {
		p.MaxLocalTxs = p.MaxTxs
	}
	if p.MaxPerSender == 0 {
		p.MaxPerSender = d.MaxPerSender
	}
	if p.MaxGapped == 0 {
		p.MaxGapped = min(d.MaxGapped, p.MaxTxs)
	}
	if p.MaxNonceGap == 0 {
		p.MaxNonceGap = d.MaxNonceGap
	}
	if p.MaxTxSize == 0 {
		p.MaxTxSize = d.MaxTxSize
	}
	if p.NumBuckets == 0 {
		p.NumBuckets = d.NumBuckets
	}
	return p
}

// Check validates the parameters (after defaults are applied).
func (p Params) Check() error {
	switch {
	case p.MaxTxs < 1, p.MaxBytes < 1, p.MaxPerSender < 1, p.MaxTxSize < 1, p.NumBuckets < 1:
		return fmt.Errorf("%w: limits must be positive: %+v", ErrBadParams, p)
	case p.MaxGapped < 0 || p.MaxGapped > p.MaxTxs:
		return fmt.Errorf("%w: MaxGapped %d not in [0, MaxTxs %d]", ErrBadParams, p.MaxGapped, p.MaxTxs)
	case p.MaxLocalTxs < 1 || p.MaxLocalTxs > p.MaxTxs:
		return fmt.Errorf("%w: MaxLocalTxs %d not in [1, MaxTxs %d]", ErrBadParams, p.MaxLocalTxs, p.MaxTxs)
	}
	return nil
}

// Option configures a FIFO pool.
type Option func(*FIFO)

// WithValidator sets the admission check (default: none beyond the shape
// check of ordering.Tx.Check).
func WithValidator(v Validator) Option { return func(p *FIFO) { p.validator = v } }

// WithNonceSource sets where the pool learns a sender's next nonce (default:
// every sender starts at 0 and advances on Committed, remembered for every
// sender ever committed).
func WithNonceSource(s NonceSource) Option { return func(p *FIFO) { p.nonces = s } }

// WithGossiper sets where locally admitted transactions are published
// (default: nowhere).
func WithGossiper(g Gossiper) Option { return func(p *FIFO) { p.gossiper = g } }
