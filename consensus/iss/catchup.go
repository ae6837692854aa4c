package iss

import (
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// onStatus answers a peer that made no progress since its previous status:
// with the stable certificate if it is behind it, else with the decided slots
// of its epoch that it has not delivered.
func (s *ISS) onStatus(from mir.NodeID, st Status) mir.EventList {
	prev, seen := s.lastStatus[from]
	s.lastStatus[from] = st
	if !seen || prev != st {
		return nil // the peer is progressing (or new): let it be
	}
	if st.Epoch < s.stable.Checkpoint.Epoch && s.stable.Checkpoint.Epoch > 0 {
		return mir.EventList{s.sendTo([]mir.NodeID{from}, StableCert{Cert: s.stable})}
	}
	var slots []SlotValue
	switch {
	case st.Epoch == s.layout.Epoch:
		for sn := st.NextDeliver; s.layout.Contains(sn) && len(slots) < s.p.CatchUpBatch; sn++ {
			if p, ok := s.insts[s.layout.SegmentOf(sn)].Decided(sn); ok {
				slots = append(slots, SlotValue{SeqNr: sn, Proposal: p})
			}
		}
	case st.Epoch == s.prevEpoch && s.prevDelivered != nil:
		for sn := st.NextDeliver; len(slots) < s.p.CatchUpBatch; sn++ {
			p, ok := s.prevDelivered[sn]
			if !ok {
				break
			}
			slots = append(slots, SlotValue{SeqNr: sn, Proposal: p})
		}
	}
	if len(slots) == 0 {
		return nil
	}
	to := []mir.NodeID{from}
	out := mir.EventList{s.sendTo(to, CommittedSlots{Epoch: st.Epoch, Slots: slots})}
	if st.Epoch == s.prevEpoch {
		// Our commits of the previous epoch let the peer complete its commit
		// quorums (together with the bodies above).
		for _, in := range s.prevInsts {
			for _, c := range in.Commits() {
				if c.SeqNr >= st.NextDeliver && s.durable(c) {
					out = append(out, s.sendTo(to, c))
				}
			}
		}
	}
	return out
}

// onCommittedSlots accepts a slot value once a weak quorum (by weight, so at
// least one correct node) reported the same one.
func (s *ISS) onCommittedSlots(from mir.NodeID, m CommittedSlots) mir.EventList {
	if m.Epoch != s.layout.Epoch || len(m.Slots) > s.p.CatchUpBatch {
		s.stats.Dropped++
		return nil
	}
	set := s.members(s.layout.Epoch)
	if !set.Contains(from) {
		return nil
	}
	var out mir.EventList
	for _, sv := range m.Slots {
		if !s.layout.Contains(sv.SeqNr) || sv.SeqNr < s.nextDeliver || sv.Proposal.Check() != nil {
			continue
		}
		seg := s.layout.SegmentOf(sv.SeqNr)
		in := s.insts[seg]
		if _, done := in.Decided(sv.SeqNr); done {
			continue
		}
		if acts := in.AddBody(sv.SeqNr, sv.Proposal); len(acts) > 0 {
			out = append(out, s.applyActions(uint32(seg), acts)...)
			continue
		}
		c := s.claims[sv.SeqNr]
		if c == nil {
			c = &claim{by: map[mir.NodeID]ordering.Digest{}, votes: map[ordering.Digest]*membership.Tally{}, bodies: map[ordering.Digest]pbft.Proposal{}}
			s.claims[sv.SeqNr] = c
		}
		if _, dup := c.by[from]; dup {
			continue
		}
		d := sv.Proposal.Digest()
		c.by[from] = d
		if c.votes[d] == nil {
			c.votes[d] = set.NewTally()
			c.bodies[d] = sv.Proposal
		}
		c.votes[d].Add(from)
		if c.votes[d].Weak() {
			delete(s.claims, sv.SeqNr)
			out = append(out, s.applyActions(uint32(seg), in.ForceDecide(sv.SeqNr, c.bodies[d]))...)
		}
	}
	return out
}
