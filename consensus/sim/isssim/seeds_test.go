package isssim

import (
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "run only this seed")
	seedsFlag = flag.Int("seeds", 0, "number of seeds (0: each test's default)")
	logFlag   = flag.String("eventlog", "", "write one event log per node incarnation under this directory (for mirsubnet mircat)")
)

// seedList returns the seeds a test runs: -seed alone, or -seeds (default
// def, scaled down under -short) consecutive seeds from 1.
func seedList(def int) []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	n := def
	if *seedsFlag > 0 {
		n = *seedsFlag
	} else if testing.Short() {
		n = max(1, def/10)
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i) + 1
	}
	return seeds
}

// mixScenario draws one scenario of the default suite from a seed: n=4 or
// n=7, equal or unequal weights, every fault kind, and in a quarter of the
// runs a Twins identity that also forges certificates. Correct nodes are
// checked for equivocation across crashes.
func mixScenario(seed uint64) sim.Scenario {
	cfg := DefaultConfig()
	opts := sim.Options{N: 4, Config: cfg, Faults: sim.AllFaults}
	switch seed % 8 {
	case 1:
		opts.N = 7
	case 2, 3:
		n := 4 + int(seed/8%4)
		opts.N = n
		opts.Weights = make([]uint64, n)
		for i := range opts.Weights {
			opts.Weights[i] = 1 + (seed*7919+uint64(i)*104729)%9
		}
	case 4, 5:
		opts.Faults |= sim.FaultTwins
		opts.HealedDuration = 25 * time.Second
		opts.LivenessBound = 20 * time.Second
	}
	sc := sim.RandomScenario(seed, opts)
	if len(sc.Twins) > 0 {
		cfg.Forgers = append([]mir.NodeID(nil), sc.Twins...)
		sc.Config = cfg
	}
	sc.SentCheck = EquivocationCheck()
	return sc
}

// run runs one scenario and reports a failure with its seed, the command
// that reproduces it and (with -v) each node's state.
func run(t *testing.T, test string, sc sim.Scenario) sim.Result {
	t.Helper()
	nodes := map[string]*iss.ISS{}
	if cfg, ok := sc.Config.(Config); ok {
		cfg.Built = func(env sim.NodeEnv, m *iss.ISS) { nodes[fmt.Sprintf("%s#%d", env.ID, env.Copy)] = m }
		sc.Config = cfg
	}
	if *logFlag != "" {
		dir := filepath.Join(*logFlag, test, strconv.FormatUint(sc.Seed, 10))
		sc.Interceptor = func(ep sim.Endpoint, inc int) (mir.Interceptor, error) {
			return eventlog.NewWriter(filepath.Join(dir, fmt.Sprintf("%s-inc%d", ep, inc)), eventlog.Options{NodeID: ep.ID})
		}
	}
	sc.Repro = "go test ./consensus/sim/isssim -run '^" + test + "$' -seed=" + strconv.FormatUint(sc.Seed, 10) + " -v"
	res := sim.Run(sc, Factory())
	if err := res.Err(); err != nil {
		t.Errorf("%v", err)
		if testing.Verbose() {
			keys := make([]string, 0, len(nodes))
			for k := range nodes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("node %s: %s", k, nodes[k].Describe())
			}
		}
	}
	return res
}

// TestRandomSeeds is the default random suite (see mixScenario).
func TestRandomSeeds(t *testing.T) {
	fails := 0
	for _, seed := range seedList(1000) {
		sc := mixScenario(seed)
		sc.Hash = sim.HashOff
		if res := run(t, "TestRandomSeeds", sc); !res.OK() {
			if fails++; fails >= 5 {
				t.Fatalf("stopping after %d failed seeds", fails)
			}
		}
	}
}

// TestTwins runs Twins scenarios: n=4, one twin, partitions that separate
// its copies changing every round, up to 8 rounds.
func TestTwins(t *testing.T) {
	fails := 0
	for _, seed := range seedList(2000) {
		cfg := DefaultConfig()
		sc := sim.TwinsScenario(seed, sim.TwinsOptions{Config: cfg, RoundDuration: cfg.Params.ViewChangeTimeout})
		sc.SentCheck = EquivocationCheck()
		sc.Hash = sim.HashOff
		if res := run(t, "TestTwins", sc); !res.OK() {
			if fails++; fails >= 5 {
				t.Fatalf("stopping after %d failed seeds", fails)
			}
		}
	}
}

// TestDeterminism runs seeds twice and compares the event-log hashes.
func TestDeterminism(t *testing.T) {
	for _, seed := range seedList(20) {
		a := run(t, "TestDeterminism", mixScenario(seed))
		b := run(t, "TestDeterminism", mixScenario(seed))
		if a.Hash == ([32]byte{}) {
			t.Fatalf("seed %d: the run computed no event-log hash", seed)
		}
		if a.Hash != b.Hash {
			t.Errorf("seed %d: event-log hashes differ between two runs: %x vs %x (reproduce: go test ./consensus/sim/isssim -run '^TestDeterminism$' -seed=%d)", seed, a.Hash[:8], b.Hash[:8], seed)
		}
	}
}
