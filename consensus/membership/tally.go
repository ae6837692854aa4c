package membership

import (
	"math/big"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Tally counts votes of distinct members of a Set, one at a time. Strong and
// Weak cost O(1) after each Add: the thresholds are precomputed by the Set.
// When the set's total weight is below 2^128 (every stake distribution in
// attoFIL), Add and Strong use fixed-width 128-bit arithmetic; otherwise
// they use a big.Int owned by the Tally. Neither allocates per vote. A Tally is not safe for concurrent use.
type Tally struct {
	set    *Set
	voted  []bool  // voted[i] iff set.vals[i].ID was counted
	count  int     // number of true entries in voted
	sum128 u128    // weight counted so far, if set.small (cannot overflow: sum <= total < 2^128)
	sum    big.Int // weight counted so far, if !set.small
}

// NewTally returns an empty Tally for s.
func (s *Set) NewTally() *Tally {
	return &Tally{set: s, voted: make([]bool, len(s.vals))}
}

// Add counts a vote of id. It returns true if id is a member not counted
// before, and false (counting nothing) for a non-member or a repeat.
func (t *Tally) Add(id mir.NodeID) bool {
	i, ok := t.set.byID[id]
	if !ok || t.voted[i] {
		return false
	}
	t.voted[i] = true
	t.count++
	if t.set.small {
		t.sum128 = t.sum128.add(t.set.w128[i])
	} else {
		t.sum.Add(&t.sum, t.set.vals[i].Weight.n)
	}
	return true
}

// Strong reports whether the counted members hold more than 2/3 of the
// total weight.
func (t *Tally) Strong() bool {
	if t.set.small {
		return t.sum128.greater(t.set.strong128)
	}
	return t.sum.Cmp(t.set.strongBig) > 0
}

// Weak reports whether the counted members hold more than 1/3 of the total
// weight.
func (t *Tally) Weak() bool {
	if t.set.small {
		return t.sum128.greater(t.set.weak128)
	}
	return t.sum.Cmp(t.set.weakBig) > 0
}

// Count returns the number of distinct members counted.
func (t *Tally) Count() int { return t.count }

// Sum returns the total weight of the members counted.
func (t *Tally) Sum() Weight {
	if t.set.small {
		n := new(big.Int).SetUint64(t.sum128.hi)
		n.Lsh(n, 64)
		return fromOwnedBig(n.Or(n, new(big.Int).SetUint64(t.sum128.lo)))
	}
	return fromOwnedBig(new(big.Int).Set(&t.sum))
}

// Voted reports whether id was counted.
func (t *Tally) Voted(id mir.NodeID) bool {
	i, ok := t.set.byID[id]
	return ok && t.voted[i]
}

// Voters returns the counted members in canonical (sorted) order.
func (t *Tally) Voters() []mir.NodeID {
	out := make([]mir.NodeID, 0, t.count)
	for i, v := range t.voted {
		if v {
			out = append(out, t.set.vals[i].ID)
		}
	}
	return out
}

// Reset empties the tally for reuse with the same set.
func (t *Tally) Reset() {
	clear(t.voted)
	t.count = 0
	t.sum128 = u128{}
	t.sum.SetInt64(0)
}
