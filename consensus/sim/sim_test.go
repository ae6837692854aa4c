package sim_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

// countingInterceptor counts intercepted batches per incarnation.
type countingInterceptor struct {
	counts map[string]int
	key    string
	closed *int
}

func (c *countingInterceptor) Intercept(mir.RecordKind, mir.ModuleID, mir.EventList) error {
	c.counts[c.key]++
	return nil
}

func (c *countingInterceptor) Close() error {
	*c.closed++
	return nil
}

var flags = sim.RegisterFlags(flag.CommandLine, 50)

const pkg = "./consensus/sim"

// repro sets the scenario's reproduction command for the running test.
func repro(t testing.TB, sc *sim.Scenario) {
	name := t.Name()
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	sc.Repro = sim.ReproCommand(pkg, name, sc.Seed)
	if flags.EventLog != "" && flags.Seed != 0 {
		sc.Interceptor = eventLogs(filepath.Join(flags.EventLog, name), sc.Seed)
	}
}

// eventLogs returns a Scenario.Interceptor writing one event log per
// incarnation to dir/<endpoint>-inc<k> (read them with mirsubnet mircat).
func eventLogs(dir string, seed uint64) func(sim.Endpoint, int) (mir.Interceptor, error) {
	return func(ep sim.Endpoint, inc int) (mir.Interceptor, error) {
		return eventlog.NewWriter(filepath.Join(dir, fmt.Sprintf("%s-inc%d", ep, inc)), eventlog.Options{
			NodeID: ep.ID,
			Meta:   map[string]string{"sim.seed": itoa(seed), "sim.endpoint": ep.String(), "sim.incarnation": strconv.Itoa(inc)},
		})
	}
}

// sweep runs fn for every seed of the flags (scaled), counting throughput.
func sweep(t *testing.T, first uint64, scale float64, fn func(seed uint64) sim.Result) {
	if testing.Short() {
		scale /= 5
	}
	seeds := flags.SeedList(first, scale)
	start := time.Now()
	var virt time.Duration
	var events uint64
	for _, seed := range seeds {
		res := fn(seed)
		virt += res.Stats.VirtualTime
		events += res.Stats.Events
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	t.Logf("%d seeds in %v (%.1f seeds/s, %.0f events/s, virtual %v)", len(seeds), el.Round(time.Millisecond),
		float64(len(seeds))/el.Seconds(), float64(events)/el.Seconds(), virt)
}

func TestToyCorrectAllFaults(t *testing.T) {
	for _, n := range []int{4, 7} {
		t.Run(map[int]string{4: "n=4", 7: "n=7"}[n], func(t *testing.T) {
			sweep(t, 1, 1, func(seed uint64) sim.Result {
				sc := sim.RandomScenario(seed, sim.Options{N: n, Faults: sim.AllFaults})
				sc.Hash = sim.HashOff // TestDeterminism covers hashing
				repro(t, &sc)
				return sim.Run(sc, toyFactory(toyCorrect))
			})
		})
	}
}

func TestToyCorrectWeighted(t *testing.T) {
	sweep(t, 1000, 0.2, func(seed uint64) sim.Result {
		sc := sim.RandomScenario(seed, sim.Options{N: 5, Weights: []uint64{3, 1, 1, 2, 1}, Faults: sim.AllFaults})
		repro(t, &sc)
		return sim.Run(sc, toyFactory(toyCorrect))
	})
}

func TestToyFollowerTwinSafe(t *testing.T) {
	// A twinned follower equivocates nothing the checkers count.
	sweep(t, 1, 1, func(seed uint64) sim.Result {
		sc := sim.TwinsScenario(seed, sim.TwinsOptions{})
		if sc.Twins[0] == "0" {
			sc = sim.TwinsScenarioAt(1+4*(seed%1000), seed, sim.TwinsOptions{Rounds: 3})
		}
		repro(t, &sc)
		return sim.Run(sc, toyFactory(toyCorrect))
	})
}

// findViolation runs seeds until one shows a violation of kind.
func findViolation(t *testing.T, kind string, limit int, mk func(seed uint64) sim.Scenario, f sim.Factory) sim.Result {
	t.Helper()
	first, last := uint64(1), uint64(limit)
	if flags.Seed != 0 {
		first, last = flags.Seed, flags.Seed
	}
	for seed := first; seed <= last; seed++ {
		res := sim.Run(mk(seed), f)
		if res.OK() {
			continue
		}
		if !res.HasKind(kind) {
			t.Fatalf("expected a %s violation, got: %v", kind, res.Err())
		}
		msg := res.Err().Error()
		if !strings.Contains(msg, "seed "+itoa(seed)) || !strings.Contains(msg, "-seed="+itoa(seed)) {
			t.Fatalf("failure message lacks seed or command:\n%s", msg)
		}
		t.Logf("caught at seed %d:\n%s", seed, msg)
		// The seed reproduces it exactly.
		again := sim.Run(mk(seed), f)
		if again.Hash != res.Hash || len(again.Violations) != len(res.Violations) || again.Violations[0] != res.Violations[0] {
			t.Fatalf("seed %d does not reproduce the violation", seed)
		}
		return res
	}
	t.Fatalf("no %s violation in %d seeds", kind, limit)
	return sim.Result{}
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

func TestCheckerCatchesSkippedFsync(t *testing.T) {
	findViolation(t, sim.KindAgreement, 300, func(seed uint64) sim.Scenario {
		sc := sim.RandomScenario(seed, sim.Options{N: 4, Faults: sim.FaultCrash | sim.FaultDelay})
		repro(t, &sc)
		return sc
	}, toyFactory(toyNoWAL))
}

func TestCheckerCatchesTwoLeaders(t *testing.T) {
	findViolation(t, sim.KindAgreement, 20, func(seed uint64) sim.Scenario {
		sc := sim.RandomScenario(seed, sim.Options{N: 4, Faults: sim.FaultDelay})
		repro(t, &sc)
		return sc
	}, toyFactory(toyTwoLeaders))
}

func TestCheckerCatchesStall(t *testing.T) {
	res := findViolation(t, sim.KindLiveness, 5, func(seed uint64) sim.Scenario {
		sc := sim.RandomScenario(seed, sim.Options{N: 4, Faults: sim.FaultDelay})
		repro(t, &sc)
		return sc
	}, toyFactory(toyStall))
	if !strings.Contains(res.Violations[0].Msg, "missing [") {
		t.Fatalf("liveness report does not name the missing nodes: %s", res.Violations[0].Msg)
	}
}

func TestCheckerCatchesTwinLeader(t *testing.T) {
	findViolation(t, sim.KindAgreement, 300, func(seed uint64) sim.Scenario {
		sc := sim.TwinsScenario(seed, sim.TwinsOptions{})
		if sc.Twins[0] != "0" {
			// Enumerated schedules with twin "0" (index digit 0).
			sc = sim.TwinsScenarioAt(4*seed, seed, sim.TwinsOptions{Rounds: 4})
		}
		repro(t, &sc)
		return sc
	}, toyFactory(toyCorrect))
}

func TestDeterminism(t *testing.T) {
	hashes := map[[32]byte]uint64{}
	for seed := uint64(1); seed <= 6; seed++ {
		sc := sim.RandomScenario(seed, sim.Options{N: 4, Faults: sim.AllFaults})
		a := sim.Run(sc, toyFactory(toyCorrect))
		b := sim.Run(sc, toyFactory(toyCorrect))
		if a.Hash != b.Hash || a.Stats != b.Stats {
			t.Fatalf("seed %d: two runs differ: %x %+v vs %x %+v", seed, a.Hash, a.Stats, b.Hash, b.Stats)
		}
		if prev, dup := hashes[a.Hash]; dup {
			t.Fatalf("seeds %d and %d give the same hash", prev, seed)
		}
		hashes[a.Hash] = seed
	}
	// The scenario generators are deterministic too.
	if a, b := sim.RandomScenario(9, sim.Options{N: 7, Faults: sim.AllFaults | sim.FaultTwins}), sim.RandomScenario(9, sim.Options{N: 7, Faults: sim.AllFaults | sim.FaultTwins}); a.String() != b.String() || len(a.Schedule) != len(b.Schedule) {
		t.Fatal("RandomScenario is not deterministic")
	}
}

func TestTwinsEnumeration(t *testing.T) {
	parts := sim.TwinsPartitions("2")
	if len(parts) != 9 {
		t.Fatalf("%d partitions, want 9", len(parts))
	}
	for _, p := range parts[1:] {
		if len(p) != 2 || p[0][0] != (sim.Endpoint{ID: "2"}) || p[1][0] != (sim.Endpoint{ID: "2", Copy: 1}) || len(p[0])+len(p[1]) != 5 {
			t.Fatalf("bad partition %v", p)
		}
	}
	if got := sim.TwinsScenarioCount(8); got != 4*43046721 {
		t.Fatalf("count %d", got)
	}
	seen := map[string]bool{}
	for i := uint64(0); i < sim.TwinsScenarioCount(2); i++ {
		sc := sim.TwinsScenarioAt(i, 1, sim.TwinsOptions{Rounds: 2})
		if seen[sc.Name] {
			t.Fatalf("index %d repeats %s", i, sc.Name)
		}
		seen[sc.Name] = true
	}
}

// TestEventLogHook checks the Interceptor hook sees every incarnation and
// that each incarnation's hash is the hash of the event log written for it.
func TestEventLogHook(t *testing.T) {
	sc := sim.RandomScenario(3, sim.Options{N: 4, Faults: sim.FaultCrash})
	counts := map[string]int{}
	closed := 0
	sc.Interceptor = func(ep sim.Endpoint, inc int) (mir.Interceptor, error) {
		return &countingInterceptor{counts: counts, key: ep.String() + "/" + itoa(uint64(inc)), closed: &closed}, nil
	}
	res := sim.Run(sc, toyFactory(toyCorrect))
	mustOK(t, res)
	if len(counts) != 4+res.Stats.Restarts || closed != len(counts) || len(res.NodeHashes) != len(counts) {
		t.Fatalf("interceptors %v (closed %d) for %d restarts", counts, closed, res.Stats.Restarts)
	}

	dir := t.TempDir()
	sc.Interceptor = eventLogs(dir, sc.Seed)
	logged := sim.Run(sc, toyFactory(toyCorrect))
	mustOK(t, logged)
	if logged.Hash != res.Hash {
		t.Fatal("writing event logs changed the run")
	}
	for _, nh := range logged.NodeHashes {
		files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%s-inc%d", nh.Endpoint, nh.Incarnation), "*.mirlog"))
		sum, records, err := eventlog.HashLog(files...)
		if err != nil || records != nh.Records || string(sum) != string(nh.Sum[:]) {
			t.Fatalf("%v/%d: log hash %x (%d records, %v), sim hash %x (%d records)", nh.Endpoint, nh.Incarnation, sum, records, err, nh.Sum, nh.Records)
		}
	}
}

func BenchmarkToySeed(b *testing.B) {
	for _, bc := range []struct {
		name string
		hash sim.HashMode
		skip bool
	}{{"hash=every", sim.HashEvery, false}, {"hash=effects", sim.HashEffects, false}, {"hash=off", sim.HashOff, false}, {"hash=off,noencode", sim.HashOff, true}} {
		b.Run(bc.name, func(b *testing.B) { benchToy(b, bc.hash, bc.skip) })
	}
}

func benchToy(b *testing.B, hash sim.HashMode, skip bool) {
	var events uint64
	for i := range b.N {
		sc := sim.RandomScenario(uint64(i)+1, sim.Options{N: 4, Faults: sim.AllFaults})
		sc.Hash, sc.SkipEncoding = hash, skip
		res := sim.Run(sc, toyFactory(toyCorrect))
		if err := res.Err(); err != nil {
			b.Fatal(err)
		}
		events += res.Stats.Events
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "seeds/s")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
