package pbft

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/mirsubnet/mirsubnet/consensus/internal/bugs"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// startViewChange moves to view v and announces it with a signed view change.
func (in *Instance) startViewChange(v uint64) []Action {
	if v <= in.view && in.changing {
		return nil
	}
	in.enterView(v, true)
	vc := ViewChange{H: in.header()}
	for _, s := range in.slots {
		if s.hasP && !bugs.On(bugs.ForgetPrepared) {
			vc.PSet = append(vc.PSet, PEntry{SeqNr: s.sn, View: s.pView, Digest: s.pDigest})
		}
		for _, d := range sortedDigests(s.q) {
			vc.QSet = append(vc.QSet, QEntry{SeqNr: s.sn, View: s.q[d], Digest: d})
		}
	}
	data, err := vc.SignedData()
	if err != nil {
		panic(fmt.Sprintf("pbft: encode own view change: %v", err))
	}
	sig, err := in.cfg.Signer.Sign(data)
	if err != nil {
		panic(fmt.Sprintf("pbft: sign own view change: %v", err))
	}
	svc := SignedViewChange{VC: vc, Signer: in.cfg.Self, Signature: sig}
	in.storeVC(svc)
	in.rememberVC(svc)
	acts := []Action{SendAction{Msg: svc, Persist: WALViewChange{SVC: svc}}}
	in.progressMark = in.decidedCount
	acts = append(acts, in.armViewChangeTimer()...)
	return append(acts, in.tryNewView()...)
}

// armViewChangeTimer arms the new-view timer of the view being changed to
// once a strong quorum announced it (PBFT's rule: a node that moved ahead
// alone waits for the others instead of running further ahead).
func (in *Instance) armViewChangeTimer() []Action {
	if !in.changing || in.vcTimerArmed == in.view+1 {
		return nil
	}
	t := in.cfg.Members.NewTally()
	for id := range in.vcs[in.view] {
		t.Add(id)
	}
	if !in.strong(t) {
		return nil
	}
	in.vcTimerArmed = in.view + 1
	return []Action{in.timer()}
}

// enterView resets the per-view state for view v.
func (in *Instance) enterView(v uint64, changing bool) {
	in.view, in.changing, in.nv = v, changing, nil
	for _, s := range in.slots {
		s.havePP, s.sentPrepare, s.sentCommit = false, false, false
	}
	for w := range in.vcs {
		if w < v {
			delete(in.vcs, w)
		}
	}
}

// rememberVC keeps the node's own view change for retransmission.
func (in *Instance) rememberVC(svc SignedViewChange) {
	in.myVCs = append(in.myVCs, svc)
	if len(in.myVCs) > 2 {
		in.myVCs = append(in.myVCs[:0:0], in.myVCs[len(in.myVCs)-2:]...)
	}
}

func (in *Instance) storeVC(svc SignedViewChange) {
	v := svc.VC.H.View
	m := in.vcs[v]
	if m == nil {
		m = map[mir.NodeID]SignedViewChange{}
		in.vcs[v] = m
	}
	if _, dup := m[svc.Signer]; !dup {
		m[svc.Signer] = svc
	}
}

// checkVC validates a signed view change for this instance.
func (in *Instance) checkVC(svc SignedViewChange) error {
	vc := svc.VC
	if vc.H.Epoch != in.cfg.Epoch || vc.H.Seg != in.cfg.Seg || vc.H.View == 0 {
		return fmt.Errorf("%w: view change for %d/%d view %d", ErrInvalidMessage, vc.H.Epoch, vc.H.Seg, vc.H.View)
	}
	if !in.cfg.Members.Contains(svc.Signer) {
		return fmt.Errorf("%w: view change signer %q not a member", ErrInvalidMessage, svc.Signer)
	}
	if len(vc.PSet) > len(in.slots) || len(vc.QSet) > MaxSlots {
		return fmt.Errorf("%w: view change too large", ErrInvalidMessage)
	}
	seenP := map[ordering.SeqNr]bool{}
	for _, p := range vc.PSet {
		if in.bySN[p.SeqNr] == nil || seenP[p.SeqNr] || p.View >= vc.H.View {
			return fmt.Errorf("%w: bad prepared entry for %d", ErrInvalidMessage, p.SeqNr)
		}
		seenP[p.SeqNr] = true
	}
	for _, q := range vc.QSet {
		if in.bySN[q.SeqNr] == nil || q.View >= vc.H.View {
			return fmt.Errorf("%w: bad pre-prepared entry for %d", ErrInvalidMessage, q.SeqNr)
		}
	}
	if bugs.On(bugs.SkipSignatureCheck) {
		return nil
	}
	data, err := vc.SignedData()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if err := in.cfg.Verifier.Verify(svc.Signer, data, svc.Signature); err != nil {
		return fmt.Errorf("%w: view change signature of %s: %v", ErrInvalidMessage, svc.Signer, err)
	}
	return nil
}

func (in *Instance) onViewChange(from mir.NodeID, svc SignedViewChange) []Action {
	v := svc.VC.H.View
	if svc.Signer == from && v <= in.view && !in.changing && in.nv != nil && from != in.cfg.Self {
		// The sender is still changing to a view we installed: relay the new
		// view (it is self-certifying; see onNewView).
		return []Action{SendAction{To: []mir.NodeID{from}, Msg: *in.nv}}
	}
	if svc.Signer != from || v < in.view || v > in.view+maxViewsAhead {
		in.dropped++
		return nil
	}
	if _, dup := in.vcs[v][from]; dup {
		return nil
	}
	if err := in.checkVC(svc); err != nil {
		in.dropped++
		return nil
	}
	in.storeVC(svc)
	acts := in.armViewChangeTimer()
	// Join rule: a weak quorum announcing views above ours moves us to the
	// smallest of them.
	if higher, ok := in.joinView(); ok {
		acts = append(acts, in.startViewChange(higher)...)
	}
	return append(acts, in.tryNewView()...)
}

// joinView returns the smallest view above the current one (or the current
// one if not changing) announced by a weak quorum of distinct signers.
func (in *Instance) joinView() (uint64, bool) {
	t := in.cfg.Members.NewTally()
	smallest := uint64(0)
	views := make([]uint64, 0, len(in.vcs))
	for w := range in.vcs {
		views = append(views, w)
	}
	sort.Slice(views, func(i, j int) bool { return views[i] < views[j] })
	for _, w := range views {
		if w <= in.view {
			continue
		}
		for _, id := range sortedSigners(in.vcs[w]) {
			if id == in.cfg.Self {
				continue
			}
			if t.Add(id) && smallest == 0 {
				smallest = w
			}
		}
	}
	if smallest > 0 && t.Weak() {
		return smallest, true
	}
	return 0, false
}

// tryNewView makes the local node, if it leads the view being changed to,
// send a new view once its view changes decide every slot.
func (in *Instance) tryNewView() []Action {
	if !in.changing || in.LeaderOf(in.view) != in.cfg.Self || in.nv != nil {
		return nil
	}
	set := in.vcs[in.view]
	t := in.cfg.Members.NewTally()
	var vcs []SignedViewChange
	for _, id := range sortedSigners(set) {
		t.Add(id)
		vcs = append(vcs, set[id])
	}
	if !in.strong(t) {
		return nil
	}
	choices, ok := in.decideAll(vcs)
	if !ok {
		return nil
	}
	nv := NewView{H: in.header(), ViewChanges: vcs, Choices: choices}
	acts := []Action{SendAction{Msg: nv, Persist: WALNewView{NV: nv}}}
	return append(acts, in.enterNewView(nv, true)...)
}

// decideAll runs the decision procedure for every slot.
func (in *Instance) decideAll(vcs []SignedViewChange) ([]Choice, bool) {
	choices := make([]Choice, 0, len(in.slots))
	for _, s := range in.slots {
		c, ok := in.decideSlot(s.sn, vcs)
		if !ok {
			return nil, false
		}
		choices = append(choices, c)
	}
	return choices, true
}

// decideSlot is the decision procedure for one slot (Castro and Liskov, TOCS
// 2002, with weights): pick a prepared value (v, d) that no strong quorum
// contradicts (A1) and that a weak quorum pre-prepared at v or later (A2);
// else, if a strong quorum prepared nothing, the aborted marker.
func (in *Instance) decideSlot(sn ordering.SeqNr, vcs []SignedViewChange) (Choice, bool) {
	var cands []PEntry
	pOf := make([]*PEntry, len(vcs))
	for i := range vcs {
		for j := range vcs[i].VC.PSet {
			if e := &vcs[i].VC.PSet[j]; e.SeqNr == sn {
				pOf[i] = e
				cands = append(cands, *e)
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].View != cands[j].View {
			return cands[i].View > cands[j].View
		}
		return bytes.Compare(cands[i].Digest[:], cands[j].Digest[:]) < 0
	})
	for _, c := range cands {
		a1, a2 := in.cfg.Members.NewTally(), in.cfg.Members.NewTally()
		for i := range vcs {
			p := pOf[i]
			if p == nil || p.View < c.View || (p.View == c.View && p.Digest == c.Digest) {
				a1.Add(vcs[i].Signer)
			}
			for _, q := range vcs[i].VC.QSet {
				if q.SeqNr == sn && q.Digest == c.Digest && q.View >= c.View {
					a2.Add(vcs[i].Signer)
					break
				}
			}
		}
		if in.strong(a1) && a2.Weak() {
			return Choice{SeqNr: sn, Digest: c.Digest}, true
		}
	}
	none := in.cfg.Members.NewTally()
	for i := range vcs {
		if pOf[i] == nil {
			none.Add(vcs[i].Signer)
		}
	}
	if in.strong(none) {
		return Choice{SeqNr: sn, Digest: abortedDigest, Aborted: true}, true
	}
	return Choice{}, false
}

func (in *Instance) onNewView(from mir.NodeID, nv NewView) []Action {
	// A new view is accepted from any member, not only the view's leader: its
	// view changes are signed and its pre-prepares are recomputed from them,
	// and every node votes on them with explicit prepares, so a relayed (or
	// even re-assembled) new view cannot produce a vote nobody cast. Accepting
	// at most one new view per view keeps quorums intersecting.
	v := nv.H.View
	if v == 0 || v < in.view || (v == in.view && !in.changing) || v > in.view+maxViewsAhead || from == in.cfg.Self {
		in.dropped++
		return nil
	}
	if nv.H.Epoch != in.cfg.Epoch || nv.H.Seg != in.cfg.Seg || len(nv.Choices) != len(in.slots) || len(nv.ViewChanges) > len(in.ids) {
		in.dropped++
		return nil
	}
	t := in.cfg.Members.NewTally()
	for _, svc := range nv.ViewChanges {
		if svc.VC.H != nv.H || in.checkVC(svc) != nil || !t.Add(svc.Signer) {
			in.dropped++
			return nil
		}
	}
	if !in.strong(t) {
		in.dropped++
		return nil
	}
	want, ok := in.decideAll(nv.ViewChanges)
	if !ok {
		in.dropped++
		return nil
	}
	for i, c := range nv.Choices {
		if c != want[i] {
			in.dropped++
			return nil
		}
	}
	var acts []Action
	if in.view < v || !in.changing {
		// We accept the new view without having sent our own view change.
		in.enterView(v, true)
	}
	return append(acts, in.enterNewView(nv, true)...)
}

// enterNewView installs a new view and accepts its pre-prepares; replicas
// send prepares when send is set (false during WAL recovery).
func (in *Instance) enterNewView(nv NewView, send bool) []Action {
	in.view, in.changing = nv.H.View, false
	nvCopy := nv
	in.nv = &nvCopy
	in.progressMark = in.decidedCount
	acts := []Action{in.timer()}
	for _, c := range nv.Choices {
		s := in.bySN[c.SeqNr]
		if c.Aborted {
			acts = append(acts, in.acceptPP(s, Proposal{Aborted: true}, abortedDigest, true, send)...)
		} else {
			acts = append(acts, in.acceptPP(s, Proposal{}, c.Digest, false, send)...)
		}
	}
	if !send {
		return nil
	}
	return acts
}

func sortedDigests(m map[ordering.Digest]uint64) []ordering.Digest {
	ds := make([]ordering.Digest, 0, len(m))
	for d := range m {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return bytes.Compare(ds[i][:], ds[j][:]) < 0 })
	return ds
}
