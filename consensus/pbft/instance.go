package pbft

import (
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/internal/bugs"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// maxViewsAhead bounds how far above its current view an instance keeps
// votes and view changes (memory stays bounded under Byzantine spam).
const maxViewsAhead = 8

// Params are the instance's tunables.
type Params struct {
	// ViewChangeTimeout is the view-0 timeout without progress; view v waits
	// ViewChangeTimeout * 2^v.
	ViewChangeTimeout time.Duration
	// MaxViewChangeTimeout caps the exponential growth.
	MaxViewChangeTimeout time.Duration
}

// Config describes one instance: its segment, membership and collaborators.
type Config struct {
	Epoch ordering.Epoch
	Seg   uint32
	// Leader proposes in view 0; view v's leader is the v-th member after it
	// in ID order.
	Leader mir.NodeID
	// SeqNrs are the segment's sequence numbers, ascending.
	SeqNrs   []ordering.SeqNr
	Members  *membership.Set
	Self     mir.NodeID
	Signer   ordering.Signer
	Verifier ordering.Verifier
	// Validate checks a view-0 proposal's content (bucket ownership, sizes).
	Validate func(sn ordering.SeqNr, p Proposal) error
	Params   Params
}

// Action is an output of an Instance: SendAction, DecideAction or
// TimerAction.
type Action interface{ isAction() }

// SendAction asks the caller to send Msg to To (nil: every member but self).
// If Persist is set, it must be durable in the WAL before Msg is sent.
type SendAction struct {
	To      []mir.NodeID
	Msg     any
	Persist any
}

// DecideAction reports that a slot's value is decided.
type DecideAction struct {
	SeqNr    ordering.SeqNr
	Proposal Proposal
}

// TimerAction asks for Timeout(View) to be called after After.
type TimerAction struct {
	View  uint64
	After time.Duration
}

func (SendAction) isAction()   {}
func (DecideAction) isAction() {}
func (TimerAction) isAction()  {}

type vote struct {
	view   uint64
	digest ordering.Digest
}

// slot is the state of one sequence number.
type slot struct {
	sn  ordering.SeqNr
	idx int // position in Config.SeqNrs
	// havePP: a pre-prepare for the current view was accepted (pp, ppDigest).
	havePP   bool
	pp       Proposal
	ppDigest ordering.Digest
	// sentPrepare / sentCommit: this node voted in the current view.
	sentPrepare bool
	sentCommit  bool
	// bodies holds every proposal body seen, by digest.
	bodies map[ordering.Digest]Proposal
	// prepares/commits tally votes per (view, digest); prepBy/commitBy hold
	// the first digest each voter voted for per view (later ones ignored).
	prepares map[vote]*membership.Tally
	commits  map[vote]*membership.Tally
	prepBy   map[uint64]map[mir.NodeID]ordering.Digest
	commitBy map[uint64]map[mir.NodeID]ordering.Digest
	// myCommit is the latest commit this node sent for the slot (if any).
	myCommit *Commit
	// hasP/pView/pDigest: the latest view in which this node prepared.
	hasP    bool
	pView   uint64
	pDigest ordering.Digest
	// q: for each digest this node pre-prepared, the highest such view.
	q map[ordering.Digest]uint64
	// decided/value: the slot's final value.
	decided bool
	value   Proposal
}

// Instance is one PBFT instance (see the package doc).
type Instance struct {
	cfg   Config
	ids   []mir.NodeID
	lead0 int
	slots []*slot
	bySN  map[ordering.SeqNr]*slot
	// view is the current view; changing means a view change to view is in
	// progress (no new view accepted yet).
	view     uint64
	changing bool
	// vcs holds valid view changes per view and signer.
	vcs map[uint64]map[mir.NodeID]SignedViewChange
	// nv is the new view accepted (or sent) for the current view, if any.
	nv *NewView
	// vcTimerArmed is 1 + the view whose new-view timer was armed (0: none).
	vcTimerArmed uint64
	// myVCs are the last view changes this node sent (at most two): a node
	// that moved on keeps announcing the previous one too, so that peers
	// still changing to it can complete their quorum and follow.
	myVCs []SignedViewChange
	// nextPropose is the index of the next slot the view-0 leader proposes.
	nextPropose int
	// decidedCount counts decided slots; progressMark is its value when the
	// current view's timer was armed.
	decidedCount int
	progressMark int
	// stats
	dropped int
}

// New creates an instance. It panics on a malformed Config (a local
// invariant: the caller derives it from agreed state).
func New(cfg Config) *Instance {
	if len(cfg.SeqNrs) == 0 || cfg.Members == nil || !cfg.Members.Contains(cfg.Leader) {
		panic(fmt.Sprintf("pbft: bad config for epoch %d segment %d", cfg.Epoch, cfg.Seg))
	}
	in := &Instance{cfg: cfg, ids: cfg.Members.IDs(), bySN: map[ordering.SeqNr]*slot{}, vcs: map[uint64]map[mir.NodeID]SignedViewChange{}}
	for i, id := range in.ids {
		if id == cfg.Leader {
			in.lead0 = i
		}
	}
	for i, sn := range cfg.SeqNrs {
		s := &slot{sn: sn, idx: i, bodies: map[ordering.Digest]Proposal{}, prepares: map[vote]*membership.Tally{},
			commits: map[vote]*membership.Tally{}, prepBy: map[uint64]map[mir.NodeID]ordering.Digest{},
			commitBy: map[uint64]map[mir.NodeID]ordering.Digest{}, q: map[ordering.Digest]uint64{}}
		in.slots = append(in.slots, s)
		in.bySN[sn] = s
	}
	return in
}

// LeaderOf returns the leader of view v.
func (in *Instance) LeaderOf(v uint64) mir.NodeID {
	return in.ids[(uint64(in.lead0)+v)%uint64(len(in.ids))]
}

// View returns the current view and whether a view change is in progress.
func (in *Instance) View() (uint64, bool) { return in.view, in.changing }

// Done reports whether every slot is decided.
func (in *Instance) Done() bool { return in.decidedCount == len(in.slots) }

// Dropped returns the number of messages dropped as invalid or stale.
func (in *Instance) Dropped() int { return in.dropped }

// Decided returns a slot's decided value.
func (in *Instance) Decided(sn ordering.SeqNr) (Proposal, bool) {
	s := in.bySN[sn]
	if s == nil || !s.decided {
		return Proposal{}, false
	}
	return s.value, true
}

// Start arms the timer of the current view.
func (in *Instance) Start() []Action {
	in.progressMark = in.decidedCount
	return []Action{in.timer()}
}

func (in *Instance) timer() TimerAction {
	d := in.cfg.Params.ViewChangeTimeout
	for i := uint64(0); i < in.view && d < in.cfg.Params.MaxViewChangeTimeout; i++ {
		d *= 2
	}
	if m := in.cfg.Params.MaxViewChangeTimeout; m > 0 && d > m {
		d = m
	}
	return TimerAction{View: in.view, After: d}
}

// NextProposal returns the sequence number the local node should propose
// next, if it is the view-0 leader with slots left to propose.
func (in *Instance) NextProposal() (ordering.SeqNr, bool) {
	if in.cfg.Self != in.cfg.Leader || in.view != 0 || in.changing || in.nextPropose >= len(in.slots) {
		return 0, false
	}
	return in.slots[in.nextPropose].sn, true
}

// Proposed returns how many slots the view-0 leader has proposed.
func (in *Instance) Proposed() int { return in.nextPropose }

// Propose makes the local leader propose batch for slot sn, which must be
// NextProposal.
func (in *Instance) Propose(sn ordering.SeqNr, batch ordering.Batch) []Action {
	next, ok := in.NextProposal()
	if !ok || next != sn {
		return nil
	}
	in.nextPropose++
	s := in.bySN[sn]
	pp := Preprepare{H: in.header(), SeqNr: sn, Proposal: Proposal{Batch: batch}}
	d := pp.Proposal.Digest()
	acts := []Action{SendAction{Msg: pp, Persist: WALPreprepare{PP: pp, Digest: d}}}
	return append(acts, in.acceptPP(s, pp.Proposal, d, true, false)...)
}

func (in *Instance) header() Header {
	return Header{Epoch: in.cfg.Epoch, Seg: in.cfg.Seg, View: in.view}
}

// Step applies a message from an authenticated sender.
func (in *Instance) Step(from mir.NodeID, msg any) []Action {
	if !in.cfg.Members.Contains(from) {
		in.dropped++
		return nil
	}
	switch m := msg.(type) {
	case Preprepare:
		return in.onPreprepare(from, m)
	case Prepare:
		return in.onPrepare(from, m)
	case Commit:
		return in.onCommit(from, m)
	case SignedViewChange:
		return in.onViewChange(from, m)
	case NewView:
		return in.onNewView(from, m)
	case FetchBody:
		return in.onFetchBody(from, m)
	case Body:
		if m.H.Epoch != in.cfg.Epoch || m.H.Seg != in.cfg.Seg {
			in.dropped++
			return nil
		}
		return in.AddBody(m.SeqNr, m.Proposal)
	}
	in.dropped++
	return nil
}

// onFetchBody answers a peer that lacks a proposal body we have.
func (in *Instance) onFetchBody(from mir.NodeID, f FetchBody) []Action {
	s := in.bySN[f.SeqNr]
	if s == nil || f.H.Epoch != in.cfg.Epoch || f.H.Seg != in.cfg.Seg || from == in.cfg.Self {
		in.dropped++
		return nil
	}
	p, ok := s.bodies[f.Digest]
	if !ok {
		return nil
	}
	return []Action{SendAction{To: []mir.NodeID{from}, Msg: Body{H: f.H, SeqNr: f.SeqNr, Proposal: p}}}
}

func (in *Instance) onPreprepare(from mir.NodeID, pp Preprepare) []Action {
	s := in.bySN[pp.SeqNr]
	if s == nil || pp.H.View != in.view || in.changing || pp.H.View != 0 || from != in.LeaderOf(0) || from == in.cfg.Self {
		in.dropped++
		return nil
	}
	if s.havePP {
		return nil // duplicate (or equivocation: first wins)
	}
	if pp.Proposal.Aborted || pp.Proposal.Check() != nil {
		in.dropped++
		return nil
	}
	if in.cfg.Validate != nil {
		if err := in.cfg.Validate(pp.SeqNr, pp.Proposal); err != nil {
			in.dropped++
			return nil
		}
	}
	return in.acceptPP(s, pp.Proposal, pp.Proposal.Digest(), true, true)
}

// acceptPP accepts a pre-prepare for the current view: digest d, with body p
// if haveBody. The leader's view-0 pre-prepare counts as its prepare. A
// replica sends (sendPrepare) a Prepare persisted together with the
// pre-prepare. Votes are on digests; a missing body is fetched and only
// needed to decide.
func (in *Instance) acceptPP(s *slot, p Proposal, d ordering.Digest, haveBody, sendPrepare bool) []Action {
	if !haveBody {
		p, haveBody = s.bodies[d]
	}
	s.havePP, s.pp, s.ppDigest = true, p, d
	if haveBody {
		s.bodies[d] = p
	}
	if v, ok := s.q[d]; !ok || v < in.view {
		s.q[d] = in.view
	}
	var acts []Action
	leader := in.LeaderOf(in.view)
	if in.view == 0 {
		// The leader's own pre-prepare is its prepare. In later views the
		// pre-prepares come inside a new view that any member may relay, so
		// every node, the leader included, votes with an explicit prepare.
		in.addPrepare(s, leader, in.view, d)
	}
	if sendPrepare && (in.cfg.Self != leader || in.view > 0) && !s.sentPrepare {
		s.sentPrepare = true
		pr := Prepare{H: in.header(), SeqNr: s.sn, Digest: d}
		acts = append(acts, SendAction{Msg: pr, Persist: WALPreprepare{PP: Preprepare{H: in.header(), SeqNr: s.sn, Proposal: p}, Digest: d, NoBody: !haveBody}})
		in.addPrepare(s, in.cfg.Self, in.view, d)
	}
	if !haveBody {
		acts = append(acts, SendAction{Msg: FetchBody{H: in.header(), SeqNr: s.sn, Digest: d}})
	}
	acts = append(acts, in.checkPrepared(s)...)
	return append(acts, in.checkCommitted(s, vote{in.view, d})...)
}

func (in *Instance) addPrepare(s *slot, from mir.NodeID, v uint64, d ordering.Digest) {
	by := s.prepBy[v]
	if by == nil {
		by = map[mir.NodeID]ordering.Digest{}
		s.prepBy[v] = by
	}
	if _, voted := by[from]; voted {
		return
	}
	by[from] = d
	t := s.prepares[vote{v, d}]
	if t == nil {
		t = in.cfg.Members.NewTally()
		s.prepares[vote{v, d}] = t
	}
	t.Add(from)
}

func (in *Instance) addCommit(s *slot, from mir.NodeID, v uint64, d ordering.Digest) bool {
	by := s.commitBy[v]
	if by == nil {
		by = map[mir.NodeID]ordering.Digest{}
		s.commitBy[v] = by
	}
	if _, voted := by[from]; voted {
		return false
	}
	by[from] = d
	t := s.commits[vote{v, d}]
	if t == nil {
		t = in.cfg.Members.NewTally()
		s.commits[vote{v, d}] = t
	}
	t.Add(from)
	return true
}

func (in *Instance) onPrepare(from mir.NodeID, p Prepare) []Action {
	s := in.bySN[p.SeqNr]
	if s == nil || p.H.View < in.view || p.H.View > in.view+maxViewsAhead {
		in.dropped++
		return nil
	}
	in.addPrepare(s, from, p.H.View, p.Digest)
	if p.H.View != in.view {
		return nil
	}
	return in.checkPrepared(s)
}

func (in *Instance) checkPrepared(s *slot) []Action {
	if !s.havePP || in.changing || s.sentCommit {
		return nil
	}
	t := s.prepares[vote{in.view, s.ppDigest}]
	if t == nil || !in.strong(t) {
		return nil
	}
	s.hasP, s.pView, s.pDigest = true, in.view, s.ppDigest
	s.sentCommit = true
	c := Commit{H: in.header(), SeqNr: s.sn, Digest: s.ppDigest}
	s.myCommit = &c
	acts := []Action{SendAction{Msg: c, Persist: WALCommit{C: c}}}
	in.addCommit(s, in.cfg.Self, in.view, s.ppDigest)
	if bugs.On(bugs.DeliverBeforeCommit) && !s.decided {
		acts = append(acts, in.decide(s, s.pp)...)
	}
	return append(acts, in.checkCommitted(s, vote{in.view, s.ppDigest})...)
}

func (in *Instance) onCommit(from mir.NodeID, c Commit) []Action {
	s := in.bySN[c.SeqNr]
	if s == nil || c.H.View > in.view+maxViewsAhead {
		in.dropped++
		return nil
	}
	if !in.addCommit(s, from, c.H.View, c.Digest) {
		return nil
	}
	return in.checkCommitted(s, vote{c.H.View, c.Digest})
}

// checkCommitted decides the slot if the votes for key form a commit quorum
// and the body is known.
func (in *Instance) checkCommitted(s *slot, key vote) []Action {
	if s.decided {
		return nil
	}
	t := s.commits[key]
	if t == nil || !in.strong(t) {
		return nil
	}
	p, ok := s.bodies[key.digest]
	if !ok {
		return nil // the body arrives with a pre-prepare or by catch-up
	}
	return in.decide(s, p)
}

func (in *Instance) decide(s *slot, p Proposal) []Action {
	s.decided, s.value = true, p
	in.decidedCount++
	return []Action{DecideAction{SeqNr: s.sn, Proposal: p}}
}

// ForceDecide records a value learned by catch-up (certified by the caller,
// e.g. by matching answers of a weak quorum).
func (in *Instance) ForceDecide(sn ordering.SeqNr, p Proposal) []Action {
	s := in.bySN[sn]
	if s == nil || s.decided {
		return nil
	}
	s.bodies[p.Digest()] = p
	return in.decide(s, p)
}

// AddBody records a proposal body learned from a peer (catch-up). Bodies are
// keyed by their digest, so an unverified body is harmless; it may complete a
// slot whose commit quorum is already known.
func (in *Instance) AddBody(sn ordering.SeqNr, p Proposal) []Action {
	s := in.bySN[sn]
	if s == nil || s.decided || p.Check() != nil {
		return nil
	}
	d := p.Digest()
	if _, ok := s.bodies[d]; ok {
		return nil
	}
	s.bodies[d] = p
	if s.havePP && s.ppDigest == d {
		s.pp = p
	}
	for _, k := range sortedVotes(s.commits) {
		if k.digest == d {
			if acts := in.checkCommitted(s, k); len(acts) > 0 {
				return acts
			}
		}
	}
	return nil
}

// Commits returns the latest commit this node sent for each slot, so that a
// lagging peer can complete its commit quorums.
func (in *Instance) Commits() []Commit {
	var out []Commit
	for _, s := range in.slots {
		if s.myCommit != nil {
			out = append(out, *s.myCommit)
		}
	}
	return out
}

func sortedVotes(m map[vote]*membership.Tally) []vote {
	ks := make([]vote, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].view != ks[j].view {
			return ks[i].view < ks[j].view
		}
		return string(ks[i].digest[:]) < string(ks[j].digest[:])
	})
	return ks
}

// strong reports whether a tally reaches a strong quorum.
func (in *Instance) strong(t *membership.Tally) bool {
	if bugs.On(bugs.HalfQuorum) {
		sum := new(big.Int).Mul(t.Sum().Big(), big.NewInt(2))
		return sum.Cmp(in.cfg.Members.TotalWeight().Big()) >= 0
	}
	return t.Strong()
}

// Timeout handles the expiry of view v's timer.
func (in *Instance) Timeout(v uint64) []Action {
	if v != in.view || in.Done() {
		return nil
	}
	if !in.changing && in.decidedCount > in.progressMark {
		in.progressMark = in.decidedCount
		return []Action{in.timer()}
	}
	return in.startViewChange(in.view + 1)
}

// Resend retransmits this node's messages for undecided work; they are
// already durable.
func (in *Instance) Resend() []Action {
	var acts []Action
	for _, c := range in.Commits() {
		acts = append(acts, SendAction{Msg: c})
	}
	if in.changing {
		for _, svc := range in.myVCs {
			acts = append(acts, SendAction{Msg: svc})
		}
		return acts
	}
	if in.nv != nil && in.LeaderOf(in.view) == in.cfg.Self {
		acts = append(acts, SendAction{Msg: *in.nv})
	}
	for _, s := range in.slots {
		if s.decided {
			continue
		}
		if s.havePP {
			if _, ok := s.bodies[s.ppDigest]; !ok {
				acts = append(acts, SendAction{Msg: FetchBody{H: in.header(), SeqNr: s.sn, Digest: s.ppDigest}})
			}
		}
		if in.view == 0 && s.havePP && in.cfg.Self == in.cfg.Leader {
			acts = append(acts, SendAction{Msg: Preprepare{H: in.header(), SeqNr: s.sn, Proposal: s.pp}})
		}
		if s.sentPrepare {
			acts = append(acts, SendAction{Msg: Prepare{H: in.header(), SeqNr: s.sn, Digest: s.ppDigest}})
		}
	}
	return acts
}

func sortedSigners(m map[mir.NodeID]SignedViewChange) []mir.NodeID {
	ids := make([]mir.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Describe summarises the instance's view-change state for failure reports.
func (in *Instance) Describe() string {
	out := fmt.Sprintf("v%d ch=%v armed=%d nv=%v decided=%d/%d vcs:", in.view, in.changing, in.vcTimerArmed, in.nv != nil, in.decidedCount, len(in.slots))
	views := make([]uint64, 0, len(in.vcs))
	for v := range in.vcs {
		views = append(views, v)
	}
	sort.Slice(views, func(i, j int) bool { return views[i] < views[j] })
	for _, v := range views {
		out += fmt.Sprintf(" v%d%v", v, sortedSigners(in.vcs[v]))
	}
	return out
}
