package membership

import (
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

var propSeed = flag.Uint64("membership.seed", 1, "seed of the quorum property tests (printed on failure)")

// refMember is a validator as the reference implementation sees it.
type refMember struct {
	id mir.NodeID
	w  *big.Int
}

// refFraction is the deliberately dumb reference: it walks voters head by
// head, looks each one up by linear scan, skips the ones it has seen (linear
// scan again), sums their weights and returns the sum as an exact fraction
// of the total weight.
func refFraction(members []refMember, voters []mir.NodeID) *big.Rat {
	total := new(big.Int)
	for _, m := range members {
		total.Add(total, m.w)
	}
	var seen []mir.NodeID
	sum := new(big.Int)
	for _, v := range voters {
		if slices.Contains(seen, v) {
			continue
		}
		for _, m := range members {
			if m.id == v {
				seen = append(seen, v)
				sum.Add(sum, m.w)
			}
		}
	}
	return new(big.Rat).SetFrac(sum, total)
}

var (
	twoThirds = big.NewRat(2, 3)
	oneThird  = big.NewRat(1, 3)
)

// refQuorum reports whether voters hold more than num/den of the weight,
// per refFraction.
func refQuorum(members []refMember, voters []mir.NodeID, num, den int64) bool {
	return refFraction(members, voters).Cmp(big.NewRat(num, den)) > 0
}

// genWeight returns a positive weight of the given kind.
func genWeight(rng *rand.Rand, kind int) *big.Int {
	switch kind {
	case 0: // tiny
		return big.NewInt(1 + rng.Int64N(3))
	case 1: // ordinary
		return new(big.Int).SetUint64(1 + rng.Uint64N(1<<32))
	case 2: // near the top of uint64: totals overflow uint64
		return new(big.Int).SetUint64(^uint64(0) - rng.Uint64N(1<<20))
	case 3: // huge: 65 to 256 bits
		bits := 65 + rng.IntN(192)
		buf := make([]byte, (bits+7)/8)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		w := new(big.Int).SetBytes(buf)
		w.SetBit(w, bits-1, 1)
		for i := bits; i < 8*len(buf); i++ {
			w.SetBit(w, i, 0)
		}
		return w
	default: // mixed
		return genWeight(rng, rng.IntN(4))
	}
}

// genCase returns n members with weights of one kind (or mixed), in random
// order, as Validators and as the reference sees them.
func genCase(rng *rand.Rand) ([]Validator, []refMember) {
	n := 1 + rng.IntN(50)
	kind := rng.IntN(5)
	vals := make([]Validator, n)
	ref := make([]refMember, n)
	for i := range vals {
		id := mir.NodeID(fmt.Sprintf("v%d", rng.Uint32()))
		for slices.ContainsFunc(ref[:i], func(m refMember) bool { return m.id == id }) {
			id += "x"
		}
		w := genWeight(rng, kind)
		vals[i] = Validator{ID: id, Weight: Weight{}.Add(fromOwnedBig(new(big.Int).Set(w)))}
		ref[i] = refMember{id: id, w: w}
	}
	return vals, ref
}

// genVoters returns 0..2n votes drawn from members (with repeats) and
// non-members.
func genVoters(rng *rand.Rand, ref []refMember) []mir.NodeID {
	out := make([]mir.NodeID, rng.IntN(2*len(ref)+1))
	for i := range out {
		if rng.IntN(8) == 0 {
			out[i] = mir.NodeID(fmt.Sprintf("outsider%d", rng.IntN(3)))
		} else {
			out[i] = ref[rng.IntN(len(ref))].id
		}
	}
	return out
}

// TestQuorumAgainstReference checks IsStrongQuorum, IsWeakQuorum and Tally
// (at every step) against refQuorum on 50,000 generated cases, and checks
// that the uint64 fast path and the big.Int path agree: scaling every
// weight by the same power of two changes no answer.
func TestQuorumAgainstReference(t *testing.T) {
	cases := 50_000
	if testing.Short() {
		cases = 5_000
	}
	seed := *propSeed
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for c := range cases {
		vals, ref := genCase(rng)
		s, err := NewSimSet(vals)
		if err != nil {
			t.Fatalf("seed %d case %d: NewSimSet: %v", seed, c, err)
		}
		// A scaled copy, if it stays within MaxWeightBytes.
		var scaled *Set
		maxBits := 0
		for _, m := range ref {
			maxBits = max(maxBits, m.w.BitLen())
		}
		if maxBits < 8*MaxWeightBytes {
			shift := uint(1 + rng.IntN(8*MaxWeightBytes-maxBits))
			sv := make([]Validator, len(vals))
			for i, v := range vals {
				sv[i] = Validator{ID: v.ID, Weight: fromOwnedBig(new(big.Int).Lsh(ref[i].w, shift))}
			}
			if scaled, err = NewSimSet(sv); err != nil {
				t.Fatalf("seed %d case %d: scaled NewSimSet: %v", seed, c, err)
			}
		}
		voters := genVoters(rng, ref)
		tally := s.NewTally()
		var stally *Tally
		if scaled != nil {
			stally = scaled.NewTally()
		}
		refStrong, refWeak := false, false
		var distinct []mir.NodeID
		for i, v := range voters {
			added := tally.Add(v)
			isNew := s.Contains(v) && !slices.Contains(distinct, v)
			if added != isNew {
				t.Fatalf("seed %d case %d step %d: Add(%q) = %v, want %v", seed, c, i, v, added, isNew)
			}
			if isNew {
				distinct = append(distinct, v)
				frac := refFraction(ref, voters[:i+1])
				refStrong, refWeak = frac.Cmp(twoThirds) > 0, frac.Cmp(oneThird) > 0
			}
			if tally.Strong() != refStrong || tally.Weak() != refWeak {
				t.Fatalf("seed %d case %d step %d: Tally strong/weak = %v/%v, reference %v/%v (sum %s of %s)",
					seed, c, i, tally.Strong(), tally.Weak(), refStrong, refWeak, tally.Sum(), s.TotalWeight())
			}
			if stally != nil {
				stally.Add(v)
				if stally.Strong() != refStrong || stally.Weak() != refWeak {
					t.Fatalf("seed %d case %d step %d: scaled Tally strong/weak = %v/%v, reference %v/%v",
						seed, c, i, stally.Strong(), stally.Weak(), refStrong, refWeak)
				}
			}
		}
		if got := s.IsStrongQuorum(voters); got != refStrong {
			t.Fatalf("seed %d case %d: IsStrongQuorum = %v, reference %v", seed, c, got, refStrong)
		}
		if got := s.IsWeakQuorum(voters); got != refWeak {
			t.Fatalf("seed %d case %d: IsWeakQuorum = %v, reference %v", seed, c, got, refWeak)
		}
		slices.Sort(distinct)
		if !slices.Equal(tally.Voters(), distinct) || tally.Count() != len(distinct) {
			t.Fatalf("seed %d case %d: Voters = %v (Count %d), want %v", seed, c, tally.Voters(), tally.Count(), distinct)
		}
		sum := new(big.Int)
		for _, id := range distinct {
			sum.Add(sum, s.Weight(id).Big())
		}
		if tally.Sum().Big().Cmp(sum) != 0 {
			t.Fatalf("seed %d case %d: Sum = %s, want %s", seed, c, tally.Sum(), sum)
		}
		// All members are always a strong quorum; nobody never is.
		if !s.IsStrongQuorum(s.IDs()) || s.IsWeakQuorum(nil) {
			t.Fatalf("seed %d case %d: all members not strong, or nobody weak", seed, c)
		}
	}
}

// TestStrongQuorumsIntersect checks on random pairs of strong quorums that
// their intersection is a weak quorum (holds more than 1/3 of the weight).
func TestStrongQuorumsIntersect(t *testing.T) {
	seed := *propSeed
	rng := rand.New(rand.NewPCG(seed, 0x1e75))
	pairs := 0
	for c := range 5_000 {
		vals, ref := genCase(rng)
		s, err := NewSimSet(vals)
		if err != nil {
			t.Fatal(err)
		}
		quorum := func() []mir.NodeID {
			// A random minimal-by-construction strong quorum (the tight
			// case), sometimes with extra members.
			ids := s.IDs()
			rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			t := s.NewTally()
			for _, id := range ids {
				if t.Strong() && rng.IntN(4) != 0 {
					break
				}
				t.Add(id)
			}
			return t.Voters()
		}
		for range 10 {
			q1, q2 := quorum(), quorum()
			if !s.IsStrongQuorum(q1) || !s.IsStrongQuorum(q2) || !refQuorum(ref, q1, 2, 3) {
				t.Fatalf("seed %d case %d: generated quorum is not strong", seed, c)
			}
			var both []mir.NodeID
			for _, id := range q1 {
				if slices.Contains(q2, id) {
					both = append(both, id)
				}
			}
			if !s.IsWeakQuorum(both) || !refQuorum(ref, both, 1, 3) {
				t.Fatalf("seed %d case %d: strong quorums %v and %v intersect in %v, not a weak quorum", seed, c, q1, q2, both)
			}
			pairs++
		}
	}
	t.Logf("%d pairs of strong quorums intersect in weak quorums", pairs)
}

// TestQuorumThresholdEdges pins the exact thresholds, where the 128-bit
// fast path and the big.Int path are most likely to go wrong.
func TestQuorumThresholdEdges(t *testing.T) {
	for _, tc := range []struct {
		weights      []string
		voters       []mir.NodeID
		strong, weak bool
		fastPath     bool
	}{
		{[]string{"1", "1", "1", "1"}, ids("a", "b", "c"), true, true, true},
		{[]string{"1", "1", "1", "1"}, ids("a", "b"), false, true, true},
		{[]string{"1", "1", "1", "1"}, ids("a"), false, false, true},
		{[]string{"1", "1", "1"}, ids("a", "b"), false, true, true}, // exactly 2/3 is not strong
		{[]string{"1", "1", "1"}, ids("a"), false, false, true},     // exactly 1/3 is not weak
		{[]string{"1", "1", "1"}, ids("a", "b", "c"), true, true, true},
		{[]string{"1"}, ids("a"), true, true, true},
		{[]string{"1"}, ids("b"), false, false, true},
		{[]string{"100", "1", "1", "1"}, ids("a"), true, true, true}, // weight, not heads
		{[]string{"1", "1", "1", "100"}, ids("a", "b", "c"), false, false, true},
		{[]string{"6148914691236517205", "6148914691236517205", "6148914691236517205"}, ids("a", "b"), false, true, true}, // total 2^64-1
		{[]string{"6148914691236517206", "6148914691236517205", "6148914691236517204"}, ids("a", "b"), true, true, true},
		{[]string{"6148914691236517205", "6148914691236517205", "6148914691236517206"}, ids("a", "b"), false, true, true}, // total 2^64
		{[]string{"18446744073709551615", "18446744073709551615", "18446744073709551615"}, ids("a", "b"), false, true, true},
		{[]string{"18446744073709551615", "18446744073709551615", "18446744073709551615", "1"}, ids("a", "b", "c"), true, true, true},
		{[]string{"113427455640312821154458202477256070485", "113427455640312821154458202477256070485", "113427455640312821154458202477256070485"}, ids("a", "b"), false, true, true}, // total 2^128-1: largest fast-path total
		{[]string{"113427455640312821154458202477256070486", "113427455640312821154458202477256070485", "113427455640312821154458202477256070484"}, ids("a", "b"), true, true, true},
		{[]string{"113427455640312821154458202477256070486", "113427455640312821154458202477256070485", "113427455640312821154458202477256070484"}, ids("b", "c"), false, true, true},
		{[]string{"113427455640312821154458202477256070485", "113427455640312821154458202477256070485", "113427455640312821154458202477256070486"}, ids("a", "b"), false, true, false}, // total 2^128: big path
		{[]string{"113427455640312821154458202477256070486", "113427455640312821154458202477256070486", "113427455640312821154458202477256070485"}, ids("a", "b"), true, true, false},
		{[]string{"113427455640312821154458202477256070486", "113427455640312821154458202477256070486", "113427455640312821154458202477256070485"}, ids("c"), false, false, false},
		{[]string{"115792089237316195423570985008687907853269984665640564039457584007913129639935", "115792089237316195423570985008687907853269984665640564039457584007913129639935", "115792089237316195423570985008687907853269984665640564039457584007913129639935"}, ids("a", "b"), false, true, false}, // largest weights
		{[]string{"115792089237316195423570985008687907853269984665640564039457584007913129639935", "115792089237316195423570985008687907853269984665640564039457584007913129639935", "115792089237316195423570985008687907853269984665640564039457584007913129639935", "1"}, ids("a", "b", "c"), true, true, false},
	} {
		vals := make([]Validator, len(tc.weights))
		total := new(big.Int)
		for i, w := range tc.weights {
			vals[i] = Validator{ID: mir.NodeID(rune('a' + i)), Weight: mustParse(t, w)}
			total.Add(total, vals[i].Weight.Big())
		}
		s, err := NewSimSet(vals)
		if err != nil {
			t.Fatal(err)
		}
		if s.small != tc.fastPath || s.TotalWeight().Big().Cmp(total) != 0 {
			t.Errorf("%v: fast path %v, total %s", tc.weights, s.small, s.TotalWeight())
		}
		tl := s.NewTally()
		for _, id := range tc.voters {
			tl.Add(id)
		}
		if s.IsStrongQuorum(tc.voters) != tc.strong || s.IsWeakQuorum(tc.voters) != tc.weak || tl.Strong() != tc.strong || tl.Weak() != tc.weak {
			t.Errorf("%v voters %v: strong/weak = %v/%v, want %v/%v", tc.weights, tc.voters,
				s.IsStrongQuorum(tc.voters), s.IsWeakQuorum(tc.voters), tc.strong, tc.weak)
		}
		if frac := refFraction(refOf(s), tc.voters); (frac.Cmp(twoThirds) > 0) != tc.strong || (frac.Cmp(oneThird) > 0) != tc.weak {
			t.Errorf("%v voters %v: table disagrees with the reference", tc.weights, tc.voters)
		}
		if tl.Sum().Big().Cmp(refSum(s, tc.voters)) != 0 {
			t.Errorf("%v voters %v: Sum = %s", tc.weights, tc.voters, tl.Sum())
		}
	}
}

func refOf(s *Set) []refMember {
	var out []refMember
	for _, v := range s.Validators() {
		out = append(out, refMember{id: v.ID, w: v.Weight.Big()})
	}
	return out
}

func refSum(s *Set, voters []mir.NodeID) *big.Int {
	sum := new(big.Int)
	seen := map[mir.NodeID]bool{}
	for _, id := range voters {
		if !seen[id] {
			seen[id] = true
			sum.Add(sum, s.Weight(id).Big())
		}
	}
	return sum
}

func ids(s ...string) []mir.NodeID {
	out := make([]mir.NodeID, len(s))
	for i, x := range s {
		out[i] = mir.NodeID(x)
	}
	return out
}

func TestTallyReset(t *testing.T) {
	s := TestSet(ids("a", "b", "c", "d"), nil)
	tl := s.NewTally()
	for _, id := range ids("a", "b", "c") {
		tl.Add(id)
	}
	if !tl.Strong() || !tl.Voted("a") || tl.Voted("d") || tl.Voted("zz") {
		t.Fatal("tally before reset")
	}
	tl.Reset()
	if tl.Count() != 0 || tl.Weak() || tl.Voted("a") || len(tl.Voters()) != 0 || !tl.Sum().IsZero() {
		t.Fatal("Reset left votes")
	}
	if !tl.Add("a") {
		t.Fatal("Add after Reset")
	}
}
