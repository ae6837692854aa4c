package iss

import (
	"errors"
	"fmt"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// ErrBadConfig is returned for an invalid configuration.
var ErrBadConfig = errors.New("iss: bad configuration")

// Wiring names the modules ISS talks to.
type Wiring struct {
	Self    mir.ModuleID
	Net     mir.ModuleID
	Timer   mir.ModuleID
	WAL     mir.ModuleID
	App     mir.ModuleID
	Mempool mir.ModuleID
}

// DefaultWiring returns the standard module IDs.
func DefaultWiring() Wiring {
	return Wiring{Self: "iss", Net: "net", Timer: "timer", WAL: "wal", App: "app", Mempool: "mempool"}
}

// Params are the protocol's tunables.
type Params struct {
	// SegmentLength is the number of sequence numbers per leader per epoch.
	SegmentLength int
	// NumBuckets is the number of transaction buckets.
	NumBuckets int
	// MaxInFlight is the number of proposals a leader keeps outstanding.
	MaxInFlight int
	// MaxBatchTxs and MaxBatchBytes limit a batch.
	MaxBatchTxs   int
	MaxBatchBytes int
	// EmptyProposalPeriod: a leader with nothing to order proposes an empty
	// batch after this long, so that epochs and checkpoints advance.
	EmptyProposalPeriod time.Duration
	// ViewChangeTimeout is PBFT's base timeout without progress.
	ViewChangeTimeout    time.Duration
	MaxViewChangeTimeout time.Duration
	// ResendPeriod is the period of retransmission and status exchange.
	ResendPeriod time.Duration
	// MaxFutureMessages bounds messages buffered for the next epoch.
	MaxFutureMessages int
	// CatchUpBatch bounds the slots sent in one catch-up answer.
	CatchUpBatch int
}

// DefaultParams returns parameters for a local subnet.
func DefaultParams() Params {
	return Params{
		SegmentLength:        32,
		NumBuckets:           64,
		MaxInFlight:          4,
		MaxBatchTxs:          2048,
		MaxBatchBytes:        4 << 20,
		EmptyProposalPeriod:  200 * time.Millisecond,
		ViewChangeTimeout:    2 * time.Second,
		MaxViewChangeTimeout: 60 * time.Second,
		ResendPeriod:         500 * time.Millisecond,
		MaxFutureMessages:    20000,
		CatchUpBatch:         64,
	}
}

// Check validates the parameters.
func (p Params) Check() error {
	switch {
	case p.SegmentLength < 1:
		return fmt.Errorf("%w: SegmentLength %d < 1", ErrBadConfig, p.SegmentLength)
	case p.NumBuckets < 1:
		return fmt.Errorf("%w: NumBuckets %d < 1", ErrBadConfig, p.NumBuckets)
	case p.MaxInFlight < 1:
		return fmt.Errorf("%w: MaxInFlight %d < 1", ErrBadConfig, p.MaxInFlight)
	case p.MaxBatchTxs < 1 || p.MaxBatchBytes < 1:
		return fmt.Errorf("%w: batch limits must be positive", ErrBadConfig)
	case p.EmptyProposalPeriod <= 0 || p.ViewChangeTimeout <= 0 || p.ResendPeriod <= 0:
		return fmt.Errorf("%w: periods and timeouts must be positive", ErrBadConfig)
	case p.ViewChangeTimeout <= p.EmptyProposalPeriod:
		return fmt.Errorf("%w: ViewChangeTimeout must exceed EmptyProposalPeriod", ErrBadConfig)
	}
	return nil
}

// Config assembles an ISS module.
type Config struct {
	Self     mir.NodeID
	Genesis  checkpoint.Checkpoint
	Params   Params
	Wiring   Wiring
	Signer   ordering.Signer
	Verifier ordering.Verifier
}
