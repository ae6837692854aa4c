// Package bugs holds the switches of deliberately planted protocol bugs.
// They exist only to prove that the simulator's checkers catch real bugs:
// without the build tag mirbugs every switch is a constant false and the
// compiler removes the broken code paths.
package bugs

// Bug names one planted bug.
type Bug int

// The planted bugs.
const (
	// HalfQuorum makes a strong quorum mean half of the weight instead of
	// more than two thirds.
	HalfQuorum Bug = iota + 1
	// CheckpointWeakQuorum accepts a checkpoint certificate with weak-quorum
	// (more than one third) weight.
	CheckpointWeakQuorum
	// ForgetPrepared makes view-change messages omit prepared certificates.
	ForgetPrepared
	// DeliverBeforeCommit delivers a batch once prepared, before its commit
	// quorum.
	DeliverBeforeCommit
	// SendBeforeWAL sends votes without waiting for them to be durable.
	SendBeforeWAL
	// SkipSignatureCheck accepts signed messages without verifying them.
	SkipSignatureCheck
)

// All lists every planted bug.
var All = []Bug{HalfQuorum, CheckpointWeakQuorum, ForgetPrepared, DeliverBeforeCommit, SendBeforeWAL, SkipSignatureCheck}

// String names the bug.
func (b Bug) String() string {
	switch b {
	case HalfQuorum:
		return "HalfQuorum"
	case CheckpointWeakQuorum:
		return "CheckpointWeakQuorum"
	case ForgetPrepared:
		return "ForgetPrepared"
	case DeliverBeforeCommit:
		return "DeliverBeforeCommit"
	case SendBeforeWAL:
		return "SendBeforeWAL"
	case SkipSignatureCheck:
		return "SkipSignatureCheck"
	}
	return "unknown"
}
