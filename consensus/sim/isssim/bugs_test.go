//go:build mirbugs

package isssim

import (
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/internal/bugs"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

// bugBudget is the number of seeds within which the simulator must catch
// each planted bug.
const bugBudget = 500

// TestPlantedBugs plants each deliberately broken protocol variant (see
// consensus/internal/bugs) and asserts that the simulator's checkers catch
// it within bugBudget seeds of the default scenario mix, alternating with
// Twins scenarios. A checker that catches none of them is broken.
func TestPlantedBugs(t *testing.T) {
	for _, b := range bugs.All {
		t.Run(b.String(), func(t *testing.T) {
			bugs.Plant(b)
			defer bugs.Plant(0)
			for seed := uint64(1); seed <= bugBudget; seed++ {
				var sc sim.Scenario
				if seed%2 == 0 {
					cfg := DefaultConfig()
					sc = sim.TwinsScenario(seed, sim.TwinsOptions{Config: cfg, RoundDuration: cfg.Params.ViewChangeTimeout})
					sc.SentCheck = EquivocationCheck()
				} else {
					sc = mixScenario(seed)
				}
				sc.Hash = sim.HashOff
				res := sim.Run(sc, Factory())
				for _, v := range res.Violations {
					if v.Kind != sim.KindLiveness {
						t.Logf("caught at seed %d: %s (%s)", seed, v.Kind, v.Msg)
						return
					}
				}
			}
			t.Errorf("planted bug %s not caught as a safety violation within %d seeds", b, bugBudget)
		})
	}
}
