package iss_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

const layoutCases = 20000

func randLayout(r *rand.Rand) iss.Layout {
	n := 1 + r.IntN(10)
	leaders := make([]mir.NodeID, n)
	for i := range leaders {
		leaders[i] = mir.NodeID(fmt.Sprintf("n%02d", i))
	}
	return iss.Layout{
		Epoch:      r.Uint64N(1 << 40),
		FirstSN:    r.Uint64N(1 << 40),
		Leaders:    leaders,
		SegLen:     1 + r.IntN(40),
		NumBuckets: 1 + r.IntN(70),
	}
}

// TestLayoutBuckets: in every epoch the leaders' bucket sets are disjoint,
// cover every bucket and differ in size by at most one; from one epoch to
// the next every segment takes over the buckets of the segment before it,
// so with two or more leaders every bucket changes owner.
func TestLayoutBuckets(t *testing.T) {
	seed := uint64(1)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := 0; i < layoutCases; i++ {
		l := randLayout(r)
		L := len(l.Leaders)
		owner := make([]int, l.NumBuckets)
		for b := range owner {
			owner[b] = -1
		}
		minSize, maxSize := l.NumBuckets+1, -1
		for seg := 0; seg < L; seg++ {
			bs := l.Buckets(seg)
			if !slices.IsSorted(bs) {
				t.Fatalf("seed %d case %d %+v: buckets of segment %d not ascending: %v", seed, i, l, seg, bs)
			}
			minSize, maxSize = min(minSize, len(bs)), max(maxSize, len(bs))
			for _, b := range bs {
				if b < 0 || b >= l.NumBuckets {
					t.Fatalf("seed %d case %d %+v: bucket %d out of range", seed, i, l, b)
				}
				if owner[b] != -1 {
					t.Fatalf("seed %d case %d %+v: bucket %d owned by segments %d and %d", seed, i, l, b, owner[b], seg)
				}
				owner[b] = seg
				if l.SegmentOfBucket(b) != seg {
					t.Fatalf("seed %d case %d %+v: SegmentOfBucket(%d) = %d, Buckets says %d", seed, i, l, b, l.SegmentOfBucket(b), seg)
				}
			}
		}
		for b, o := range owner {
			if o == -1 {
				t.Fatalf("seed %d case %d %+v: bucket %d has no owner", seed, i, l, b)
			}
		}
		if maxSize-minSize > 1 {
			t.Fatalf("seed %d case %d %+v: unbalanced bucket sets (%d..%d buckets)", seed, i, l, minSize, maxSize)
		}
		next := l
		next.Epoch++
		for seg := 0; seg < L; seg++ {
			if got, want := next.Buckets((seg+1)%L), l.Buckets(seg); !slices.Equal(got, want) {
				t.Fatalf("seed %d case %d %+v: epoch %d segment %d has %v, want the buckets %v of segment %d in epoch %d",
					seed, i, l, next.Epoch, (seg+1)%L, got, want, seg, l.Epoch)
			}
		}
		if L >= 2 {
			for b := 0; b < l.NumBuckets; b++ {
				if l.SegmentOfBucket(b) == next.SegmentOfBucket(b) {
					t.Fatalf("seed %d case %d %+v: bucket %d keeps owner %d in epoch %d", seed, i, l, b, l.SegmentOfBucket(b), next.Epoch)
				}
			}
		}
	}
}

// TestLayoutSeqNrs: the segments' sequence numbers partition the epoch's
// range [FirstSN, End), each ascending, and SegmentOf agrees with SeqNrs.
func TestLayoutSeqNrs(t *testing.T) {
	seed := uint64(2)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := 0; i < layoutCases; i++ {
		l := randLayout(r)
		if l.End()-l.FirstSN != l.Length() || l.Length() != uint64(len(l.Leaders)*l.SegLen) {
			t.Fatalf("seed %d case %d %+v: Length %d End %d", seed, i, l, l.Length(), l.End())
		}
		seen := map[uint64]int{}
		for seg := range l.Leaders {
			sns := l.SeqNrs(seg)
			if len(sns) != l.SegLen || !slices.IsSorted(sns) {
				t.Fatalf("seed %d case %d %+v: segment %d has %v", seed, i, l, seg, sns)
			}
			for _, sn := range sns {
				if !l.Contains(sn) {
					t.Fatalf("seed %d case %d %+v: sn %d of segment %d outside the epoch", seed, i, l, sn, seg)
				}
				if prev, dup := seen[sn]; dup {
					t.Fatalf("seed %d case %d %+v: sn %d in segments %d and %d", seed, i, l, sn, prev, seg)
				}
				seen[sn] = seg
				if l.SegmentOf(sn) != seg {
					t.Fatalf("seed %d case %d %+v: SegmentOf(%d) = %d, want %d", seed, i, l, sn, l.SegmentOf(sn), seg)
				}
			}
		}
		if uint64(len(seen)) != l.Length() {
			t.Fatalf("seed %d case %d %+v: segments cover %d of %d sequence numbers", seed, i, l, len(seen), l.Length())
		}
		if l.Contains(l.FirstSN-1) && l.FirstSN > 0 || l.Contains(l.End()) {
			t.Fatalf("seed %d case %d %+v: Contains accepts a neighbour of the range", seed, i, l)
		}
	}
}

// TestNextBansAndLeaders runs random histories of suspects through
// NextBans/NextLeaders and checks: a suspect is not a leader of the next
// epoch (unless every validator is banned), the leader set is never empty,
// sorted and a subset of the validators, bans are sorted and bounded, and a
// node that is never suspected again leads again once its ban expires and
// is forgotten after at most MaxStrikes more epochs.
func TestNextBansAndLeaders(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		n := 1 + r.IntN(7)
		var vals []mir.NodeID
		for i := 0; i < n; i++ {
			vals = append(vals, mir.NodeID(fmt.Sprintf("n%d", i)))
		}
		var bans []checkpoint.Ban
		leaders := iss.NextLeaders(vals, bans, 0)
		quietFrom := uint64(100) // no suspects from this epoch on
		lastUntil := map[mir.NodeID]uint64{}
		for e := uint64(0); e < 200; e++ {
			suspects := map[mir.NodeID]bool{}
			if e < quietFrom {
				for _, l := range leaders {
					if r.IntN(4) == 0 {
						suspects[l] = true
					}
				}
			}
			next := e + 1
			bans = iss.NextBans(bans, leaders, suspects, next)
			leaders = iss.NextLeaders(vals, bans, next)
			if len(leaders) == 0 || !slices.IsSorted(leaders) {
				t.Fatalf("seed %d epoch %d: leaders %v", seed, next, leaders)
			}
			for _, l := range leaders {
				if !slices.Contains(vals, l) {
					t.Fatalf("seed %d epoch %d: leader %s not a validator", seed, next, l)
				}
			}
			if len(leaders) < len(vals) {
				for s := range suspects {
					if slices.Contains(leaders, s) {
						t.Fatalf("seed %d epoch %d: suspect %s leads the next epoch (%v, bans %+v)", seed, next, s, leaders, bans)
					}
				}
			} else if len(suspects) > 0 {
				// Every validator leads: only the fallback for "everyone
				// banned" may let a suspect lead.
				for _, v := range vals {
					banned := false
					for _, b := range bans {
						banned = banned || (b.Node == v && b.Until > next)
					}
					if !banned {
						t.Fatalf("seed %d epoch %d: suspects %v lead although %s is not banned (bans %+v)", seed, next, suspects, v, bans)
					}
				}
			}
			for i, b := range bans {
				if i > 0 && bans[i-1].Node >= b.Node {
					t.Fatalf("seed %d epoch %d: bans not sorted: %+v", seed, next, bans)
				}
				if b.Strikes > iss.MaxStrikes || b.Until > next+(1<<(iss.MaxStrikes-1)) {
					t.Fatalf("seed %d epoch %d: ban %+v exceeds the cap", seed, next, b)
				}
				if b.Strikes == 0 && b.Until <= next {
					t.Fatalf("seed %d epoch %d: expired ban %+v kept", seed, next, b)
				}
				lastUntil[b.Node] = max(lastUntil[b.Node], b.Until)
			}
			if next >= quietFrom {
				for _, v := range vals {
					if next >= lastUntil[v] && !slices.Contains(leaders, v) {
						t.Fatalf("seed %d epoch %d: %s not suspected since epoch %d and its ban ended at %d, but it does not lead", seed, next, v, quietFrom, lastUntil[v])
					}
				}
			}
		}
		// quietFrom + the longest ban + MaxStrikes epochs to forget strikes.
		if len(bans) != 0 {
			t.Fatalf("seed %d: bans never expire: %+v", seed, bans)
		}
	}
}

// TestNextLeadersAllBanned: banning every validator leaves all of them
// leaders (never an empty epoch).
func TestNextLeadersAllBanned(t *testing.T) {
	vals := []mir.NodeID{"c", "a", "b"}
	var bans []checkpoint.Ban
	for _, v := range vals {
		bans = append(bans, checkpoint.Ban{Node: v, Until: 10, Strikes: 1})
	}
	if got := iss.NextLeaders(vals, bans, 5); !slices.Equal(got, []mir.NodeID{"a", "b", "c"}) {
		t.Fatalf("NextLeaders with everyone banned = %v", got)
	}
	if got := iss.NextLeaders(vals, bans, 10); len(got) != 3 {
		t.Fatalf("bans ending at 10 still in force in epoch 10: %v", got)
	}
}
