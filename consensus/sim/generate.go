package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Faults is a set of fault kinds RandomScenario may draw.
type Faults uint32

const (
	// FaultDelay: varied per-link latencies, jitter (reordering) and a slow
	// tail.
	FaultDelay Faults = 1 << iota
	// FaultDrop: random message loss.
	FaultDrop
	// FaultDup: duplicated messages.
	FaultDup
	// FaultPartition: a schedule of network partitions.
	FaultPartition
	// FaultClog: swizzle-clogging (clog endpoints one by one, unclog them in
	// another order).
	FaultClog
	// FaultCrash: crashes with loss of the unsynced WAL tail, and restarts.
	FaultCrash
	// FaultTwins: one identity runs two copies (a Byzantine node).
	FaultTwins
)

// AllFaults are all fault kinds but Twins.
const AllFaults = FaultDelay | FaultDrop | FaultDup | FaultPartition | FaultClog | FaultCrash

// Options parametrise RandomScenario. Zero durations take defaults.
type Options struct {
	N       int
	Weights []uint64
	Config  any
	Faults  Faults
	// FaultDuration, HealedDuration, LivenessBound: see Scenario. Defaults
	// 5s, 15s, 10s.
	FaultDuration  time.Duration
	HealedDuration time.Duration
	LivenessBound  time.Duration
	// TxInterval is the mean time between client transactions (default
	// 20ms); TxSize their size (default 32).
	TxInterval time.Duration
	TxSize     int
	// MaxLatency bounds the base latency of links (default 50ms).
	MaxLatency time.Duration
	FirstSeqNr uint64
	Repro      string
}

func (o *Options) defaults() {
	if o.FaultDuration == 0 {
		o.FaultDuration = 5 * time.Second
	}
	if o.HealedDuration == 0 {
		o.HealedDuration = 15 * time.Second
	}
	if o.LivenessBound == 0 {
		o.LivenessBound = 10 * time.Second
	}
	if o.TxInterval == 0 {
		o.TxInterval = 20 * time.Millisecond
	}
	if o.TxSize == 0 {
		o.TxSize = 32
	}
	if o.MaxLatency == 0 {
		o.MaxLatency = 50 * time.Millisecond
	}
}

// RandomScenario draws a scenario with the given fault kinds from seed.
func RandomScenario(seed uint64, opts Options) Scenario {
	opts.defaults()
	r := rand.New(rand.NewPCG(seed, 0x7363656e6172696f))
	sc := Scenario{
		Name: "random", Seed: seed, N: opts.N, Weights: opts.Weights, Config: opts.Config,
		Net:            Network{MinLatency: time.Millisecond, MaxLatency: time.Millisecond},
		Storage:        Storage{MinSync: 100 * time.Microsecond, MaxSync: 2 * time.Millisecond},
		Services:       Services{CryptoDelay: 200 * time.Microsecond, HashDelay: 50 * time.Microsecond},
		Load:           Load{Interval: opts.TxInterval, Size: opts.TxSize},
		FaultDuration:  opts.FaultDuration,
		HealedDuration: opts.HealedDuration,
		LivenessBound:  opts.LivenessBound,
		FirstSeqNr:     opts.FirstSeqNr,
		Repro:          opts.Repro,
	}
	dur := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	}
	if opts.Faults&FaultDelay != 0 {
		sc.Net.MinLatency = dur(100*time.Microsecond, opts.MaxLatency/5)
		sc.Net.MaxLatency = dur(sc.Net.MinLatency, opts.MaxLatency)
		sc.Net.Jitter = dur(0, opts.MaxLatency/2)
		sc.Net.TailProb = r.Float64() * 0.05
		sc.Net.TailFactor = 2 + r.IntN(20)
		sc.Storage.MaxSync = dur(sc.Storage.MinSync, 20*time.Millisecond)
		sc.Services.CryptoDelay = dur(0, 2*time.Millisecond)
	}
	if opts.Faults&FaultDrop != 0 {
		sc.Net.DropProb = r.Float64() * 0.3
	}
	if opts.Faults&FaultDup != 0 {
		sc.Net.DupProb = r.Float64() * 0.2
	}
	if opts.Faults&FaultTwins != 0 && opts.N > 0 {
		sc.Twins = []mir.NodeID{NodeIDs(opts.N)[r.IntN(opts.N)]}
		sc.TwinsAtHeal = TwinsHeal(r.IntN(3))
	}
	eps := sc.Endpoints()
	fd := opts.FaultDuration
	if opts.Faults&(FaultPartition|FaultTwins) != 0 {
		changes := 1 + r.IntN(5)
		for range changes {
			a := Action{At: dur(0, fd), Kind: ActionPartition}
			if r.IntN(4) > 0 {
				a.Groups = randomGroups(r, eps, 2+r.IntN(2))
			}
			sc.Schedule = append(sc.Schedule, a)
		}
	}
	if opts.Faults&FaultClog != 0 {
		perm := r.Perm(len(eps))[:1+r.IntN(len(eps))]
		interval := dur(20*time.Millisecond, fd/time.Duration(2*len(perm)+2))
		at := dur(0, fd/2)
		for _, i := range perm {
			sc.Schedule = append(sc.Schedule, Action{At: at, Kind: ActionClog, Endpoint: eps[i]})
			at += interval
		}
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		for _, i := range perm {
			at += interval
			sc.Schedule = append(sc.Schedule, Action{At: at, Kind: ActionUnclog, Endpoint: eps[i]})
		}
	}
	if opts.Faults&FaultCrash != 0 {
		// Any subset may crash, even all: with a WAL, safety must hold anyway.
		for _, i := range r.Perm(len(eps))[:1+r.IntN(len(eps))] {
			at := dur(0, fd)
			for range 1 + r.IntN(3) {
				sc.Schedule = append(sc.Schedule, Action{At: at, Kind: ActionCrash, Endpoint: eps[i]})
				if r.IntN(4) == 0 {
					break // stays down until the heal
				}
				at += dur(time.Millisecond, fd/4)
				sc.Schedule = append(sc.Schedule, Action{At: at, Kind: ActionRestart, Endpoint: eps[i]})
				at += dur(time.Millisecond, fd/2)
			}
		}
	}
	sortActions(sc.Schedule)
	return sc
}

// sortActions orders actions by time, stably.
func sortActions(as []Action) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].At < as[j-1].At; j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

// randomGroups splits eps into k groups at random (some may be empty).
func randomGroups(r *rand.Rand, eps []Endpoint, k int) [][]Endpoint {
	groups := make([][]Endpoint, k)
	for _, ep := range eps {
		g := r.IntN(k)
		groups[g] = append(groups[g], ep)
	}
	return groups
}

// TwinsOptions parametrise the Twins scenario generator.
type TwinsOptions struct {
	// Rounds is the maximum number of partition rounds (default and at
	// most 8).
	Rounds int
	// RoundDuration is the length of one round (default 500ms): choose it
	// near the protocol's view-change timeout.
	RoundDuration time.Duration
	// HealedDuration, LivenessBound: see Scenario (defaults 10s, 8s).
	HealedDuration time.Duration
	LivenessBound  time.Duration
	// NoLiveness disables the liveness check.
	NoLiveness bool
	Config     any
	TxInterval time.Duration
	FirstSeqNr uint64
	Repro      string
}

// TwinsN is the number of identities of Twins scenarios; one is twinned.
const TwinsN = 4

// TwinsPartitions returns the partitions a Twins round chooses from, for
// twin identity twin among TwinsN identities: index 0 is no partition, the
// others are the 2^(TwinsN-1) splits into two groups that separate the two
// copies of the twin.
func TwinsPartitions(twin mir.NodeID) [][][]Endpoint {
	parts := [][][]Endpoint{nil}
	var others []Endpoint
	for _, id := range NodeIDs(TwinsN) {
		if id != twin {
			others = append(others, Endpoint{ID: id})
		}
	}
	for mask := 0; mask < 1<<len(others); mask++ {
		a := []Endpoint{{ID: twin}}
		b := []Endpoint{{ID: twin, Copy: 1}}
		for i, ep := range others {
			if mask&(1<<i) != 0 {
				b = append(b, ep)
			} else {
				a = append(a, ep)
			}
		}
		parts = append(parts, [][]Endpoint{a, b})
	}
	return parts
}

// TwinsScenarioCount is the number of distinct Twins schedules with the
// given number of rounds (TwinsScenarioAt enumerates them).
func TwinsScenarioCount(rounds int) uint64 {
	c := uint64(TwinsN)
	for range rounds {
		c *= uint64(len(TwinsPartitions("0")))
	}
	return c
}

// TwinsScenarioAt returns the index-th Twins scenario with exactly
// opts.Rounds rounds (index < TwinsScenarioCount(opts.Rounds)): the twin
// identity and each round's partition are the digits of index. The network
// is reliable with small jittered latencies; seed drives the rest.
func TwinsScenarioAt(index, seed uint64, opts TwinsOptions) Scenario {
	opts.twinsDefaults()
	parts := uint64(len(TwinsPartitions("0")))
	twin := NodeIDs(TwinsN)[index%TwinsN]
	index /= TwinsN
	choices := make([]int, opts.Rounds)
	for i := range choices {
		choices[i] = int(index % parts)
		index /= parts
	}
	return twinsScenario(seed, twin, choices, opts)
}

// TwinsScenario samples a Twins scenario from seed: a random twin, 1 to
// opts.Rounds rounds, a random partition per round.
func TwinsScenario(seed uint64, opts TwinsOptions) Scenario {
	opts.twinsDefaults()
	r := rand.New(rand.NewPCG(seed, 0x7477696e73))
	twin := NodeIDs(TwinsN)[r.IntN(TwinsN)]
	nparts := len(TwinsPartitions(twin))
	choices := make([]int, 1+r.IntN(opts.Rounds))
	for i := range choices {
		choices[i] = r.IntN(nparts)
	}
	return twinsScenario(seed, twin, choices, opts)
}

func (o *TwinsOptions) twinsDefaults() {
	if o.Rounds <= 0 || o.Rounds > 8 {
		o.Rounds = 8
	}
	if o.RoundDuration == 0 {
		o.RoundDuration = 500 * time.Millisecond
	}
	if o.HealedDuration == 0 {
		o.HealedDuration = 10 * time.Second
	}
	if o.LivenessBound == 0 {
		o.LivenessBound = 8 * time.Second
	}
	if o.TxInterval == 0 {
		o.TxInterval = 20 * time.Millisecond
	}
}

func twinsScenario(seed uint64, twin mir.NodeID, choices []int, opts TwinsOptions) Scenario {
	parts := TwinsPartitions(twin)
	sc := Scenario{
		Name: fmt.Sprintf("twins(twin=%s rounds=%v)", twin, choices), Seed: seed, N: TwinsN,
		Twins: []mir.NodeID{twin}, Config: opts.Config,
		Net:            Network{MinLatency: time.Millisecond, MaxLatency: 5 * time.Millisecond, Jitter: 2 * time.Millisecond},
		Storage:        Storage{MinSync: 100 * time.Microsecond, MaxSync: time.Millisecond},
		Services:       Services{CryptoDelay: 100 * time.Microsecond, HashDelay: 50 * time.Microsecond},
		Load:           Load{Interval: opts.TxInterval, Size: 32},
		FaultDuration:  time.Duration(len(choices)) * opts.RoundDuration,
		HealedDuration: opts.HealedDuration,
		LivenessBound:  opts.LivenessBound,
		NoLiveness:     opts.NoLiveness,
		FirstSeqNr:     opts.FirstSeqNr,
		Repro:          opts.Repro,
	}
	for i, c := range choices {
		sc.Schedule = append(sc.Schedule, Action{At: time.Duration(i) * opts.RoundDuration, Kind: ActionPartition, Groups: parts[c]})
	}
	return sc
}
