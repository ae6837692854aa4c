package membership

import (
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// TestSet returns a simulation set (see NewSimSet) of the given IDs with the
// given weights, or weight 1 each if weights is nil, and no peer IDs or
// addresses. It is for tests and the simulator, and panics on invalid input
// (a bug in the calling test, never input from outside).
func TestSet(ids []mir.NodeID, weights []uint64) *Set {
	if weights != nil && len(weights) != len(ids) {
		panic(fmt.Sprintf("membership.TestSet: %d ids, %d weights", len(ids), len(weights)))
	}
	vals := make([]Validator, len(ids))
	for i, id := range ids {
		w := uint64(1)
		if weights != nil {
			w = weights[i]
		}
		vals[i] = Validator{ID: id, Weight: NewWeight(w)}
	}
	s, err := NewSimSet(vals)
	if err != nil {
		panic(fmt.Sprintf("membership.TestSet: %v", err))
	}
	return s
}
