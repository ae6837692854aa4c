package pbft

// Restore re-applies one of this node's own WAL entries (WALPreprepare,
// WALCommit, WALViewChange, WALNewView, in append order) after a restart,
// so that the node never contradicts a message it sent before the crash. It
// produces no actions; call Start afterwards.
func (in *Instance) Restore(entry any) {
	switch e := entry.(type) {
	case WALPreprepare:
		pp := e.PP
		s := in.bySN[pp.SeqNr]
		if s == nil {
			return
		}
		d := e.Digest
		if !e.NoBody {
			s.bodies[d] = pp.Proposal
		}
		if v, ok := s.q[d]; !ok || v < pp.H.View {
			s.q[d] = pp.H.View
		}
		if pp.H.View < in.view {
			return
		}
		if pp.H.View > in.view || in.changing {
			in.enterView(pp.H.View, false)
		}
		s.havePP, s.pp, s.ppDigest = true, s.bodies[d], d
		leader := in.LeaderOf(in.view)
		if in.view == 0 {
			in.addPrepare(s, leader, in.view, d)
		}
		if in.cfg.Self != leader || in.view > 0 {
			s.sentPrepare = true
			in.addPrepare(s, in.cfg.Self, in.view, d)
		}
		if in.view == 0 && in.cfg.Self == in.cfg.Leader && s.idx+1 > in.nextPropose {
			in.nextPropose = s.idx + 1
		}
	case WALCommit:
		c := e.C
		s := in.bySN[c.SeqNr]
		if s == nil {
			return
		}
		if !s.hasP || c.H.View >= s.pView {
			s.hasP, s.pView, s.pDigest = true, c.H.View, c.Digest
		}
		in.addCommit(s, in.cfg.Self, c.H.View, c.Digest)
		cc := c
		s.myCommit = &cc
		if c.H.View == in.view && !in.changing {
			s.sentCommit = true
		}
	case WALViewChange:
		v := e.SVC.VC.H.View
		if v > in.view || (v == in.view && !in.changing && in.nv == nil) {
			in.enterView(v, true)
		}
		in.storeVC(e.SVC)
		in.rememberVC(e.SVC)
	case WALNewView:
		if e.NV.H.View >= in.view {
			in.enterNewView(e.NV, false)
		}
	}
}
