package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Endpoint is one network presence of a node identity: Copy 0 normally, 0
// and 1 for the two copies of a Twins identity.
type Endpoint struct {
	ID   mir.NodeID
	Copy int
}

// String returns "ID" for copy 0 and "ID#copy" otherwise.
func (e Endpoint) String() string {
	if e.Copy == 0 {
		return string(e.ID)
	}
	return string(e.ID) + "#" + strconv.Itoa(e.Copy)
}

// NodeIDs returns the identities of an n-node system: "0", "1", ... "n-1".
func NodeIDs(n int) []mir.NodeID {
	ids := make([]mir.NodeID, n)
	for i := range ids {
		ids[i] = mir.NodeID(strconv.Itoa(i))
	}
	return ids
}

// Network describes the simulated network. Each directed link between two
// endpoints draws a base latency uniformly from [MinLatency, MaxLatency] when
// the run starts; each message then takes base + uniform[0, Jitter], times
// TailFactor with probability TailProb. Jitter reorders messages.
type Network struct {
	MinLatency time.Duration
	MaxLatency time.Duration
	Jitter     time.Duration
	TailProb   float64
	TailFactor int
	// DropProb is the probability that one copy of a message is lost
	// (fault phase only).
	DropProb float64
	// DupProb is the probability that a message is delivered twice.
	DupProb float64
}

// Storage describes the simulated WAL: an fsync takes uniform[MinSync,
// MaxSync] of virtual time.
type Storage struct {
	MinSync time.Duration
	MaxSync time.Duration
}

// Services describes the latency of the simulated crypto and hasher modules.
type Services struct {
	CryptoDelay time.Duration // upper bound, uniform from 0
	HashDelay   time.Duration // upper bound, uniform from 0
}

// Load describes the client transactions the simulator submits. Every
// Interval (jittered by up to half of it) one transaction of Size bytes is
// submitted to a random live endpoint, until LivenessBound before the end of
// the run.
type Load struct {
	Interval time.Duration
	Size     int
}

// ActionKind says what a scheduled Action does.
type ActionKind uint8

const (
	// ActionCrash crashes the endpoint: its dispatcher state and the
	// unsynced tail of its WAL are lost, messages to it are dropped.
	ActionCrash ActionKind = iota + 1
	// ActionRestart restarts a crashed endpoint as a new incarnation.
	ActionRestart
	// ActionPartition replaces the partition by Groups.
	ActionPartition
	// ActionClog holds every message to or from the endpoint until it is
	// unclogged (a swizzle-clog step).
	ActionClog
	// ActionUnclog releases a clogged endpoint's held messages.
	ActionUnclog
)

// String names the kind.
func (k ActionKind) String() string {
	switch k {
	case ActionCrash:
		return "crash"
	case ActionRestart:
		return "restart"
	case ActionPartition:
		return "partition"
	case ActionClog:
		return "clog"
	case ActionUnclog:
		return "unclog"
	}
	return "action(" + strconv.Itoa(int(k)) + ")"
}

// Action is one scheduled fault. Actions run at their virtual time At (in
// the order given when several share an instant); those after the fault
// phase are ignored.
type Action struct {
	At       time.Duration
	Kind     ActionKind
	Endpoint Endpoint // crash, restart, clog, unclog
	// Groups is the new partition (ActionPartition): links between
	// endpoints of different groups are cut. Endpoints named in no group
	// form one further group together. Nil or one group heals it.
	Groups [][]Endpoint
}

// String describes the action.
func (a Action) String() string {
	if a.Kind == ActionPartition {
		var gs []string
		for _, g := range a.Groups {
			var es []string
			for _, e := range g {
				es = append(es, e.String())
			}
			gs = append(gs, "{"+strings.Join(es, ",")+"}")
		}
		return fmt.Sprintf("%v partition %s", a.At, strings.Join(gs, " "))
	}
	return fmt.Sprintf("%v %v %v", a.At, a.Kind, a.Endpoint)
}

// TwinsHeal says what happens to Twins copies when the fault phase ends.
type TwinsHeal uint8

const (
	// TwinsStopExtra stops every copy but copy 0 at the heal (default).
	TwinsStopExtra TwinsHeal = iota
	// TwinsKeep keeps all copies running.
	TwinsKeep
	// TwinsStopAll stops every copy of Twins identities.
	TwinsStopAll
)

// HashMode selects what Result.Hash covers. Hashing costs CBOR-encoding
// every covered record; large sweeps that do not compare hashes turn it off.
type HashMode uint8

const (
	// HashEvery covers every record each node's interceptor sees: inbound
	// batches and dispatches to passive and simulated active modules.
	HashEvery HashMode = iota
	// HashEffects covers inbound batches and dispatches to the simulated
	// active modules (every input and every effect, not passive-to-passive
	// traffic).
	HashEffects
	// HashOff computes no hash (Result.Hash is zero).
	HashOff
)

// Scenario describes one simulated run. Everything in it is data; Run is a
// pure function of the scenario and the factory.
type Scenario struct {
	// Name describes the scenario in reports.
	Name string
	// Seed seeds every random choice of the run.
	Seed uint64
	// N is the number of node identities ("0" .. "N-1", see NodeIDs).
	N int
	// Weights are the identities' voting weights (nil: all 1).
	Weights []uint64
	// Twins lists identities that run two copies (Endpoint.Copy 0 and 1)
	// with the same keys. Twins identities are Byzantine: the checkers
	// ignore what they deliver.
	Twins []mir.NodeID
	// TwinsAtHeal says what happens to the copies when the faults heal.
	TwinsAtHeal TwinsHeal
	// Config is handed to the factory in NodeEnv.Config.
	Config any

	Net      Network
	Storage  Storage
	Services Services
	Load     Load
	// Schedule lists the faults of the fault phase.
	Schedule []Action

	// FaultDuration is the length of the fault phase; at its end all links
	// are restored, crashed identities restarted and twins handled by
	// TwinsAtHeal (the healed phase).
	FaultDuration time.Duration
	// HealedDuration is the length of the healed phase.
	HealedDuration time.Duration
	// LivenessBound is the time within which a transaction submitted to a
	// correct node must be delivered by a strong quorum of correct nodes,
	// counted from its submission or from the heal, whichever is later.
	LivenessBound time.Duration
	// NoLiveness disables the liveness checker.
	NoLiveness bool
	// SentCheck, if set, sees every message a correct endpoint sends (all
	// incarnations) and returns a non-empty description when the message
	// contradicts an earlier one (a protocol-specific equivocation check,
	// e.g. two different votes for one slot across a crash). It is reported
	// as a safety violation of kind equivocation.
	SentCheck func(ep Endpoint, msg any) string
	// FirstSeqNr is the sequence number a fresh node delivers first.
	FirstSeqNr uint64
	// SkipEncoding hands messages and WAL entries over as Go values instead
	// of CBOR-encoding and decoding them (faster, less faithful).
	SkipEncoding bool

	// Hash selects what the determinism hash covers (default: everything).
	Hash HashMode

	// Repro is the command that reproduces this run; failure messages
	// quote it (default: "go test ./consensus/sim -seed=<Seed>").
	Repro string
	// Interceptor, if set, returns an extra interceptor (an event log, say)
	// for each incarnation of each endpoint; Run closes it (if it is an
	// io.Closer) when the incarnation ends.
	Interceptor func(ep Endpoint, incarnation int) (mir.Interceptor, error)
}

// String summarises the scenario in one line (faults, not every action).
func (sc *Scenario) String() string {
	counts := map[ActionKind]int{}
	for _, a := range sc.Schedule {
		counts[a.Kind]++
	}
	return fmt.Sprintf("%s seed=%d n=%d twins=%v net=[lat %v-%v jitter %v drop %.2f dup %.2f] crash=%d partition=%d clog=%d fault=%v healed=%v",
		sc.Name, sc.Seed, sc.N, sc.Twins, sc.Net.MinLatency, sc.Net.MaxLatency, sc.Net.Jitter,
		sc.Net.DropProb, sc.Net.DupProb, counts[ActionCrash], counts[ActionPartition], counts[ActionClog],
		sc.FaultDuration, sc.HealedDuration)
}

// repro returns the reproduction command.
func (sc *Scenario) repro() string {
	if sc.Repro != "" {
		return sc.Repro
	}
	return fmt.Sprintf("go test ./consensus/sim -seed=%d", sc.Seed)
}

// Endpoints returns every endpoint of the scenario: all identities' copy 0
// in ID order, then the extra copies of Twins identities.
func (sc *Scenario) Endpoints() []Endpoint {
	var eps []Endpoint
	for _, id := range NodeIDs(sc.N) {
		eps = append(eps, Endpoint{ID: id})
	}
	for _, id := range sc.Twins {
		eps = append(eps, Endpoint{ID: id, Copy: 1})
	}
	return eps
}

func (sc *Scenario) validate() error {
	if sc.N <= 0 {
		return fmt.Errorf("sim: scenario needs N > 0, got %d", sc.N)
	}
	if sc.N+len(sc.Twins) > MaxEndpoints {
		return fmt.Errorf("sim: %d endpoints, at most %d", sc.N+len(sc.Twins), MaxEndpoints)
	}
	if sc.Weights != nil && len(sc.Weights) != sc.N {
		return fmt.Errorf("sim: %d weights for %d nodes", len(sc.Weights), sc.N)
	}
	ids := map[mir.NodeID]bool{}
	for _, id := range NodeIDs(sc.N) {
		ids[id] = true
	}
	seen := map[mir.NodeID]bool{}
	for _, id := range sc.Twins {
		if !ids[id] || seen[id] {
			return fmt.Errorf("sim: bad or repeated twin %q", id)
		}
		seen[id] = true
	}
	if sc.Net.MaxLatency < sc.Net.MinLatency || sc.Storage.MaxSync < sc.Storage.MinSync {
		return fmt.Errorf("sim: a maximum latency is below its minimum")
	}
	if sc.FaultDuration < 0 || sc.HealedDuration <= 0 {
		return fmt.Errorf("sim: need FaultDuration >= 0 and HealedDuration > 0")
	}
	if sc.Load.Interval <= 0 {
		return fmt.Errorf("sim: need Load.Interval > 0")
	}
	return nil
}
