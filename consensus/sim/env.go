package sim

import (
	"math/rand/v2"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// IDs of the simulated active modules every node has. A factory must not use
// them for passive modules; protocol modules address them as they would the
// real active modules.
const (
	NetModule    mir.ModuleID = "net"    // SendMessage -> MessageReceived
	TimerModule  mir.ModuleID = "timer"  // TimerDelay, TimerRepeat, TimerGarbageCollect
	WALModule    mir.ModuleID = "wal"    // WALAppend, WALTruncate -> WALRecovered
	CryptoModule mir.ModuleID = "crypto" // SignRequest, VerifyRequest
	HasherModule mir.ModuleID = "hasher" // HashRequest
)

// ServiceModules lists the simulated active modules in dispatch order.
var ServiceModules = []mir.ModuleID{CryptoModule, HasherModule, NetModule, TimerModule, WALModule}

// Factory builds the passive modules of one incarnation of one endpoint.
// It is called at the start of the run and at every restart.
type Factory func(env NodeEnv) (NodeModules, error)

// NodeEnv is what a factory knows about the node it builds.
type NodeEnv struct {
	// ID is the node's identity (shared by the copies of a Twins identity).
	ID mir.NodeID
	// Copy is the Twins copy index (0 normally).
	Copy int
	// Incarnation counts restarts (0 at the first start).
	Incarnation int
	// Nodes and Weights are the membership (parallel slices).
	Nodes   []mir.NodeID
	Weights []uint64
	// Config is Scenario.Config.
	Config any
	// Rand is the node's own seeded source (derived from the scenario seed,
	// the endpoint and the incarnation). Passive modules take randomness
	// only from it.
	Rand *rand.Rand
	// Observer is where the node's application reports deliveries and
	// stable checkpoints to the checkers.
	Observer Observer
}

// NodeModules is what a factory returns.
type NodeModules struct {
	// Passive are the node's passive modules by top-level ID.
	Passive map[mir.ModuleID]mir.PassiveModule
	// WALOwners are the modules that own WAL entries; each gets exactly one
	// events.WALRecovered at start, in this order, before any other WAL
	// event. Appends for other owners are a node error.
	WALOwners []mir.ModuleID
	// Submit returns the event that submits a client transaction to this
	// node (nil: the node takes no transactions).
	Submit func(tx []byte) mir.Event
}

// Observer is how a node's application reports to the checkers. The
// simulator binds one to each incarnation of each endpoint. Calls are made
// from inside passive modules (a reporting side channel, not an effect).
type Observer interface {
	// Deliver reports the batch delivered at seqNr, with its digest and
	// transactions. An incarnation delivers gap-free: its first delivery is
	// Scenario.FirstSeqNr (or the last Restore point), each next one is the
	// previous plus one.
	Deliver(seqNr uint64, batchDigest []byte, txs [][]byte)
	// StableCheckpoint reports that the checkpoint of epoch became stable
	// with the given digest.
	StableCheckpoint(epoch uint64, digest []byte)
	// Restore reports that the node's state now reflects every batch below
	// nextSeqNr (restored from a checkpoint or by state transfer); its next
	// delivery is nextSeqNr.
	Restore(nextSeqNr uint64)
	// Invalid reports that the node accepted something a protocol-specific
	// check of the harness found invalid (a certificate without a strong
	// quorum of valid signatures, say): a safety violation of kind invalid.
	Invalid(msg string)
}
