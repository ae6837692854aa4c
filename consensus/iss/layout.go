package iss

import (
	"sort"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// Layout is the arithmetic of one epoch: which sequence numbers and buckets
// each leader's segment gets. Sequence numbers are interleaved: slot i of
// segment s is FirstSN + i*len(Leaders) + s, so that in-order delivery never
// waits for one leader's whole segment.
type Layout struct {
	Epoch      ordering.Epoch
	FirstSN    ordering.SeqNr
	Leaders    []mir.NodeID
	SegLen     int
	NumBuckets int
}

// Length returns the number of sequence numbers in the epoch.
func (l Layout) Length() uint64 { return uint64(len(l.Leaders) * l.SegLen) }

// End returns the first sequence number after the epoch.
func (l Layout) End() ordering.SeqNr { return l.FirstSN + l.Length() }

// Contains reports whether sn belongs to the epoch.
func (l Layout) Contains(sn ordering.SeqNr) bool { return sn >= l.FirstSN && sn < l.End() }

// SeqNrs returns the sequence numbers of segment seg, ascending.
func (l Layout) SeqNrs(seg int) []ordering.SeqNr {
	out := make([]ordering.SeqNr, l.SegLen)
	for i := range out {
		out[i] = l.FirstSN + uint64(i*len(l.Leaders)+seg)
	}
	return out
}

// SegmentOf returns the segment sn belongs to (sn must be in the epoch).
func (l Layout) SegmentOf(sn ordering.SeqNr) int {
	return int((sn - l.FirstSN) % uint64(len(l.Leaders)))
}

// SegmentOfBucket returns the segment whose leader owns bucket b this epoch.
// Assignments rotate by one segment every epoch.
func (l Layout) SegmentOfBucket(b int) int {
	return int((uint64(b) + l.Epoch) % uint64(len(l.Leaders)))
}

// Buckets returns the buckets segment seg owns, ascending.
func (l Layout) Buckets(seg int) []int {
	var out []int
	for b := 0; b < l.NumBuckets; b++ {
		if l.SegmentOfBucket(b) == seg {
			out = append(out, b)
		}
	}
	return out
}

// MaxStrikes caps the exponent of leader bans: a leader is banned for at most
// 2^(MaxStrikes-1) epochs.
const MaxStrikes = 6

// NextBans derives the bans in force at the start of epoch next from those
// at the start of the epoch before it, its leaders and which of them had a
// segment with an aborted slot (suspects). A suspect gets one more strike and
// is banned for 2^(strikes-1) epochs; a leader whose segment completed loses
// a strike. The result is sorted by node; every node derives the same from
// the same delivered log.
func NextBans(prev []checkpoint.Ban, leaders []mir.NodeID, suspects map[mir.NodeID]bool, next ordering.Epoch) []checkpoint.Ban {
	m := map[mir.NodeID]checkpoint.Ban{}
	for _, b := range prev {
		m[b.Node] = b
	}
	for _, l := range leaders {
		b := m[l]
		b.Node = l
		if suspects[l] {
			if b.Strikes < MaxStrikes {
				b.Strikes++
			}
			b.Until = next + (uint64(1) << (b.Strikes - 1))
		} else if b.Strikes > 0 {
			b.Strikes--
		}
		m[l] = b
	}
	out := make([]checkpoint.Ban, 0, len(m))
	for _, b := range m {
		if b.Strikes > 0 || b.Until > next {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// NextLeaders returns the leaders of an epoch: every validator not banned
// in it, in ID order, or every validator if that leaves none.
func NextLeaders(validators []mir.NodeID, bans []checkpoint.Ban, epoch ordering.Epoch) []mir.NodeID {
	banned := map[mir.NodeID]bool{}
	for _, b := range bans {
		if b.Until > epoch {
			banned[b.Node] = true
		}
	}
	var out []mir.NodeID
	for _, id := range validators {
		if !banned[id] {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		out = append(out, validators...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
