package sim

import (
	"flag"
	"fmt"
)

// Flags are the command-line flags of simulation tests.
type Flags struct {
	// Seed replays one seed (0: sweep).
	Seed uint64
	// Seeds is how many seeds a sweep runs.
	Seeds int
	// EventLog is a directory to write per-node event logs to ("" none).
	EventLog string
}

// RegisterFlags defines -seed, -seeds and -eventlog on fs (flag.CommandLine
// in a test package) with defaultSeeds as the default of -seeds.
func RegisterFlags(fs *flag.FlagSet, defaultSeeds int) *Flags {
	f := &Flags{}
	fs.Uint64Var(&f.Seed, "seed", 0, "replay only this simulation seed")
	fs.IntVar(&f.Seeds, "seeds", defaultSeeds, "number of random seeds a simulation sweep runs")
	fs.StringVar(&f.EventLog, "eventlog", "", "directory to write per-node event logs to (with -seed)")
	return f
}

// SeedList returns the seeds to run: just Seed if set, else first ..
// first+n-1 where n is Seeds scaled by scale (at least 1).
func (f *Flags) SeedList(first uint64, scale float64) []uint64 {
	if f.Seed != 0 {
		return []uint64{f.Seed}
	}
	n := max(int(float64(f.Seeds)*scale), 1)
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = first + uint64(i)
	}
	return seeds
}

// ReproCommand returns the command that replays seed in test of pkg, such as
// "go test ./consensus/sim -run '^TestToy$' -seed=7".
func ReproCommand(pkg, test string, seed uint64) string {
	return fmt.Sprintf("go test %s -run '^%s$' -seed=%d", pkg, test, seed)
}
