package iss

import (
	"fmt"
	"math"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/internal/bugs"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// noRetention is the retention index of timers that must never be collected.
const noRetention = math.MaxUint64

// Stats are counters of an ISS module.
type Stats struct {
	Delivered      uint64
	Epoch          ordering.Epoch
	StableEpoch    ordering.Epoch
	Dropped        uint64
	StateTransfers uint64
	ViewChanges    uint64
}

// ISS is the ordering module (see the package doc). It is a passive module.
type ISS struct {
	cfg Config
	p   Params
	w   Wiring

	// sets maps epochs to their validator sets (from genesis and checkpoints).
	sets map[ordering.Epoch]*membership.Set
	// started: WAL recovery finished and an epoch is running.
	started bool
	// recovering: a restore from the WAL's stable checkpoint is pending.
	recovering bool
	// restoring is the certificate whose state the app is restoring, if
	// any, and restoreData the state data that came with it.
	restoring   *checkpoint.Certificate
	restoreData []byte

	// layout is the current epoch's; insts its PBFT instances by segment.
	layout Layout
	insts  []*pbft.Instance
	// decided holds decided, not yet delivered slots of the current epoch.
	decided map[ordering.SeqNr]pbft.Proposal
	// nextDeliver is the next sequence number to deliver.
	nextDeliver ordering.SeqNr
	// delivered holds the current epoch's delivered values and
	// prevDelivered the previous epoch's, to answer lagging peers.
	delivered     map[ordering.SeqNr]pbft.Proposal
	prevDelivered map[ordering.SeqNr]pbft.Proposal
	prevEpoch     ordering.Epoch
	// prevInsts are the previous epoch's instances, kept to resend this
	// node's commits to peers still finishing that epoch.
	prevInsts []*pbft.Instance
	// suspects are leaders of the current epoch with an aborted slot.
	suspects map[mir.NodeID]bool
	// bans[e] are the leader bans in force at the start of epoch e.
	bans map[ordering.Epoch][]checkpoint.Ban

	// Leader pipeline of the current epoch: mySeg is the local segment or
	// -1; reqNext the index of the next slot to request a batch for;
	// ownDecided the decided slots of mySeg; ready batches not yet proposed.
	mySeg      int
	reqNext    int
	ownDecided int
	ready      map[ordering.SeqNr]ordering.Batch
	// maxSeen is the highest sequence number of the current epoch another
	// leader pre-prepared; cut holds the requests already cut because of it.
	maxSeen ordering.SeqNr
	cut     map[ordering.SeqNr]bool

	// Checkpoints: ckpts per epoch being certified; prevHash[e] is the hash
	// of the checkpoint at the start of e; stable the latest stable
	// certificate and stableData the state at it (nil if not held).
	ckpts      map[ordering.Epoch]*ckptState
	prevHash   map[ordering.Epoch]checkpoint.Hash
	layouts    map[ordering.Epoch]Layout
	stable     checkpoint.Certificate
	stableData []byte

	// future buffers messages for the next epoch.
	future []futureMsg
	// pendingVotes holds recovered WAL entries of epochs not started yet.
	pendingVotes map[ordering.Epoch][]any
	// claims are catch-up answers per slot: digest tallies and bodies.
	claims map[ordering.SeqNr]*claim
	// lastStatus is the last Status seen from each peer.
	lastStatus map[mir.NodeID]Status
	ticks      uint64

	// Votes persisted but not yet durable, by message key, and the key of
	// each persist sequence number: retransmissions skip them, so that no
	// copy of a vote leaves the node before the vote is in the WAL.
	persistSeq  uint64
	undurable   map[voteKey]uint64
	durableKeys map[uint64]voteKey

	stats Stats
}

// voteKey identifies a message this node persists before sending.
type voteKey struct {
	kind  uint8
	epoch ordering.Epoch
	seg   uint32
	view  uint64
	sn    ordering.SeqNr
}

// keyOf returns the key of a persisted message type.
func keyOf(msg any) (voteKey, bool) {
	switch m := msg.(type) {
	case pbft.Preprepare:
		return voteKey{1, m.H.Epoch, m.H.Seg, m.H.View, m.SeqNr}, true
	case pbft.Prepare:
		return voteKey{2, m.H.Epoch, m.H.Seg, m.H.View, m.SeqNr}, true
	case pbft.Commit:
		return voteKey{3, m.H.Epoch, m.H.Seg, m.H.View, m.SeqNr}, true
	case pbft.SignedViewChange:
		return voteKey{4, m.VC.H.Epoch, m.VC.H.Seg, m.VC.H.View, 0}, true
	case pbft.NewView:
		return voteKey{5, m.H.Epoch, m.H.Seg, m.H.View, 0}, true
	case CheckpointMsg:
		return voteKey{6, m.Checkpoint.Epoch, 0, 0, 0}, true
	}
	return voteKey{}, false
}

// durable reports whether msg may be (re)transmitted: it is not a message
// whose WAL append is still pending.
func (s *ISS) durable(msg any) bool {
	k, ok := keyOf(msg)
	if !ok {
		return true
	}
	_, pending := s.undurable[k]
	return !pending
}

type futureMsg struct {
	from mir.NodeID
	msg  any
}

type claim struct {
	by     map[mir.NodeID]ordering.Digest
	votes  map[ordering.Digest]*membership.Tally
	bodies map[ordering.Digest]pbft.Proposal
}

// New creates the ISS module.
func New(cfg Config) (*ISS, error) {
	if err := cfg.Params.Check(); err != nil {
		return nil, err
	}
	if err := cfg.Genesis.Check(); err != nil {
		return nil, fmt.Errorf("%w: genesis: %v", ErrBadConfig, err)
	}
	if cfg.Signer == nil || cfg.Verifier == nil {
		return nil, fmt.Errorf("%w: signer and verifier required", ErrBadConfig)
	}
	if cfg.Wiring == (Wiring{}) {
		cfg.Wiring = DefaultWiring()
	}
	s := &ISS{cfg: cfg, p: cfg.Params, w: cfg.Wiring, sets: map[ordering.Epoch]*membership.Set{},
		ckpts: map[ordering.Epoch]*ckptState{}, prevHash: map[ordering.Epoch]checkpoint.Hash{},
		layouts: map[ordering.Epoch]Layout{}, bans: map[ordering.Epoch][]checkpoint.Ban{}, pendingVotes: map[ordering.Epoch][]any{},
		lastStatus: map[mir.NodeID]Status{}, mySeg: -1,
		undurable: map[voteKey]uint64{}, durableKeys: map[uint64]voteKey{}}
	s.learnSets(cfg.Genesis)
	s.stable = checkpoint.Certificate{Checkpoint: cfg.Genesis}
	s.prevHash[0] = cfg.Genesis.Hash()
	return s, nil
}

// Stats returns the module's counters.
func (s *ISS) Stats() Stats {
	st := s.stats
	st.Epoch, st.StableEpoch = s.layout.Epoch, s.stable.Checkpoint.Epoch
	return st
}

func (s *ISS) learnSets(c checkpoint.Checkpoint) {
	for i, m := range c.Memberships {
		s.sets[c.Epoch+uint64(i)] = m
	}
}

// members returns the validator set of epoch e (the latest known set at or
// before e if e is beyond what checkpoints fixed).
func (s *ISS) members(e ordering.Epoch) *membership.Set {
	if m, ok := s.sets[e]; ok {
		return m
	}
	var best *membership.Set
	bestE := uint64(0)
	for k, m := range s.sets {
		if k <= e && (best == nil || k > bestE) {
			best, bestE = m, k
		}
	}
	if best == nil {
		return s.cfg.Genesis.Memberships[0]
	}
	return best
}

// ApplyEvents implements mir.PassiveModule.
func (s *ISS) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, s.apply)
}

func (s *ISS) apply(e mir.Event) (mir.EventList, error) {
	switch ev := e.Payload.(type) {
	case events.Init:
		return mir.EventList{s.timerRepeat(ResendTick{}, s.p.ResendPeriod)}, nil
	case events.WALRecovered:
		return s.recover(ev)
	case events.MessageReceived:
		if !s.started {
			s.stats.Dropped++
			return nil, nil
		}
		return s.onMessage(ev.From, ev.Msg), nil
	case NewBatch:
		return s.onNewBatch(ev), nil
	case CutTimeout:
		return s.onCutTimeout(ev), nil
	case ViewTimeout:
		if in := s.instance(ev.Epoch, ev.Seg); in != nil && s.started {
			return s.applyEpochActions(ev.Epoch, ev.Seg, in.Timeout(ev.View)), nil
		}
		return nil, nil
	case ResendTick:
		return s.onTick(), nil
	case Durable:
		s.onDurable(ev)
		return nil, nil
	case StateSnapshot:
		return s.onStateSnapshot(ev), nil
	case StateRestored:
		return s.onStateRestored(ev)
	}
	return nil, fmt.Errorf("iss: unexpected event %T", e.Payload)
}

// --- effects ---

func (s *ISS) others() []mir.NodeID {
	ids := s.members(s.layout.Epoch).IDs()
	out := ids[:0:0]
	for _, id := range ids {
		if id != s.cfg.Self {
			out = append(out, id)
		}
	}
	return out
}

func (s *ISS) sendTo(to []mir.NodeID, msg any) mir.Event {
	if to == nil {
		to = s.others()
	}
	return mir.NewEvent(s.w.Net, events.SendMessage{Destinations: to, DestModule: s.w.Self, Msg: msg})
}

// persistThenSend appends entry to the WAL and sends msg (carried by send)
// only once it is durable; until then retransmissions skip msg.
func (s *ISS) persistThenSend(entry any, retention uint64, msg any, send mir.Event) mir.EventList {
	app := mir.NewEvent(s.w.WAL, events.WALAppend{Owner: s.w.Self, Entry: entry, RetentionIndex: retention})
	if bugs.On(bugs.SendBeforeWAL) {
		return mir.EventList{send, app}
	}
	s.persistSeq++
	seq := s.persistSeq
	if k, ok := keyOf(msg); ok {
		s.undurable[k] = seq
		s.durableKeys[seq] = k
	}
	return mir.EventList{app.WithNext(send, mir.NewEvent(s.w.Self, Durable{Seq: seq}))}
}

func (s *ISS) onDurable(d Durable) {
	if k, ok := s.durableKeys[d.Seq]; ok {
		delete(s.durableKeys, d.Seq)
		if s.undurable[k] == d.Seq {
			delete(s.undurable, k)
		}
	}
}

func (s *ISS) timerDelay(payload any, after time.Duration, retention uint64) mir.Event {
	return mir.NewEvent(s.w.Timer, events.TimerDelay{
		Events: []mir.Event{mir.NewEvent(s.w.Self, payload)}, After: after, RetentionIndex: retention})
}

func (s *ISS) timerRepeat(payload any, period time.Duration) mir.Event {
	return mir.NewEvent(s.w.Timer, events.TimerRepeat{
		Events: []mir.Event{mir.NewEvent(s.w.Self, payload)}, Period: period, RetentionIndex: noRetention})
}

// applyActions turns a current-epoch instance's actions into events.
func (s *ISS) applyActions(seg uint32, acts []pbft.Action) mir.EventList {
	return s.applyEpochActions(s.layout.Epoch, seg, acts)
}

// applyEpochActions turns the actions of an instance of epoch (the current
// or the previous one) into events; decisions count only in the current one.
func (s *ISS) applyEpochActions(epoch ordering.Epoch, seg uint32, acts []pbft.Action) mir.EventList {
	var out mir.EventList
	for _, a := range acts {
		switch a := a.(type) {
		case pbft.SendAction:
			ev := s.sendTo(a.To, a.Msg)
			switch {
			case a.Persist != nil:
				out = append(out, s.persistThenSend(a.Persist, epoch, a.Msg, ev)...)
			case s.durable(a.Msg):
				out = append(out, ev)
			}
			if _, ok := a.Msg.(pbft.SignedViewChange); ok && a.Persist != nil {
				s.stats.ViewChanges++
			}
		case pbft.TimerAction:
			out = append(out, s.timerDelay(ViewTimeout{Epoch: epoch, Seg: seg, View: a.View}, a.After, epoch))
		case pbft.DecideAction:
			if epoch != s.layout.Epoch {
				continue // the epoch ended while applying these actions
			}
			out = append(out, s.onDecide(int(seg), a.SeqNr, a.Proposal)...)
		}
	}
	return out
}

// instance returns the PBFT instance of a segment of the current or the
// previous epoch (the latter keeps helping peers that finish it), or nil.
func (s *ISS) instance(e ordering.Epoch, seg uint32) *pbft.Instance {
	switch {
	case e == s.layout.Epoch && int(seg) < len(s.insts):
		return s.insts[seg]
	case s.prevInsts != nil && e == s.prevEpoch && int(seg) < len(s.prevInsts):
		return s.prevInsts[seg]
	}
	return nil
}

// --- epochs and delivery ---

// startEpoch installs layout as the current epoch.
func (s *ISS) startEpoch(l Layout) mir.EventList {
	if s.delivered != nil && s.layout.Epoch+1 == l.Epoch {
		s.prevDelivered, s.prevEpoch, s.prevInsts = s.delivered, s.layout.Epoch, s.insts
	} else {
		s.prevDelivered, s.prevInsts = nil, nil
	}
	s.delivered = map[ordering.SeqNr]pbft.Proposal{}
	s.layout = l
	s.layouts[l.Epoch] = l
	s.decided = map[ordering.SeqNr]pbft.Proposal{}
	s.suspects = map[mir.NodeID]bool{}
	s.claims = map[ordering.SeqNr]*claim{}
	s.ready = map[ordering.SeqNr]ordering.Batch{}
	s.maxSeen, s.cut = 0, map[ordering.SeqNr]bool{}
	s.mySeg, s.reqNext, s.ownDecided = -1, 0, 0
	s.nextDeliver = l.FirstSN
	set := s.members(l.Epoch)
	s.insts = make([]*pbft.Instance, len(l.Leaders))
	var out mir.EventList
	for seg, leader := range l.Leaders {
		seg := seg
		in := pbft.New(pbft.Config{
			Epoch: l.Epoch, Seg: uint32(seg), Leader: leader, SeqNrs: l.SeqNrs(seg), Members: set,
			Self: s.cfg.Self, Signer: s.cfg.Signer, Verifier: s.cfg.Verifier,
			Validate: func(sn ordering.SeqNr, p pbft.Proposal) error { return s.validate(l, seg, p) },
			Params:   pbft.Params{ViewChangeTimeout: s.p.ViewChangeTimeout, MaxViewChangeTimeout: s.p.MaxViewChangeTimeout},
		})
		for _, entry := range s.pendingVotes[l.Epoch] {
			if h, ok := walHeader(entry); ok && h.Seg == uint32(seg) {
				in.Restore(entry)
			}
		}
		s.insts[seg] = in
		if leader == s.cfg.Self {
			s.mySeg = seg
			s.reqNext = in.Proposed()
		}
	}
	delete(s.pendingVotes, l.Epoch)
	for seg, in := range s.insts {
		out = append(out, s.applyActions(uint32(seg), in.Start())...)
	}
	// Decisions restored from the WAL do not exist (votes only); replay the
	// buffered messages of this epoch.
	fut := s.future
	s.future = nil
	for _, m := range fut {
		out = append(out, s.onMessage(m.from, m.msg)...)
	}
	return append(out, s.pump()...)
}

// validate checks a view-0 proposal of segment seg in layout l.
func (s *ISS) validate(l Layout, seg int, p pbft.Proposal) error {
	if len(p.Batch.Txs) > s.p.MaxBatchTxs || p.Batch.Size() > s.p.MaxBatchBytes {
		return fmt.Errorf("iss: batch over limits")
	}
	for _, tx := range p.Batch.Txs {
		if l.SegmentOfBucket(ordering.BucketOf(tx.Sender, l.NumBuckets)) != seg {
			return fmt.Errorf("iss: transaction of sender %q outside the leader's buckets", tx.Sender)
		}
	}
	return nil
}

func (s *ISS) onDecide(seg int, sn ordering.SeqNr, p pbft.Proposal) mir.EventList {
	if !s.layout.Contains(sn) || sn < s.nextDeliver {
		return nil
	}
	if _, dup := s.decided[sn]; dup {
		return nil
	}
	s.decided[sn] = p
	if p.Aborted {
		s.suspects[s.layout.Leaders[seg]] = true
	}
	var out mir.EventList
	if seg == s.mySeg {
		s.ownDecided++
		out = append(out, s.pump()...)
	}
	return append(out, s.tryDeliver()...)
}

func (s *ISS) tryDeliver() mir.EventList {
	var out mir.EventList
	for {
		p, ok := s.decided[s.nextDeliver]
		if !ok {
			return out
		}
		delete(s.decided, s.nextDeliver)
		s.delivered[s.nextDeliver] = p
		out = append(out, mir.NewEvent(s.w.App, Deliver{SeqNr: s.nextDeliver, Epoch: s.layout.Epoch, Proposal: p}))
		if len(p.Batch.Txs) > 0 {
			out = append(out, mir.NewEvent(s.w.Mempool, TxsDelivered{Txs: p.Batch.Txs}))
		}
		s.nextDeliver++
		s.stats.Delivered++
		if s.nextDeliver == s.layout.End() {
			return append(out, s.endEpoch()...)
		}
	}
}

// endEpoch runs when every slot of the current epoch was delivered.
func (s *ISS) endEpoch() mir.EventList {
	next := s.layout.Epoch + 1
	out := mir.EventList{
		mir.NewEvent(s.w.App, SnapshotRequest{Epoch: next, SeqNr: s.nextDeliver}),
		mir.NewEvent(s.w.Mempool, ResetProposals{}),
	}
	bans := NextBans(s.bans[s.layout.Epoch], s.layout.Leaders, s.suspects, next)
	s.bans[next] = bans
	leaders := NextLeaders(s.members(next).IDs(), bans, next)
	return append(out, s.startEpoch(Layout{Epoch: next, FirstSN: s.nextDeliver, Leaders: leaders,
		SegLen: s.p.SegmentLength, NumBuckets: s.p.NumBuckets})...)
}

// --- the leader's pipeline ---

// pump requests batches for the local segment while fewer than MaxInFlight
// are outstanding, and proposes ready batches in slot order.
func (s *ISS) pump() mir.EventList {
	if s.mySeg < 0 {
		return nil
	}
	in := s.insts[s.mySeg]
	var out mir.EventList
	sns := s.layout.SeqNrs(s.mySeg)
	for s.reqNext < len(sns) && s.reqNext-s.ownDecided < s.p.MaxInFlight {
		if v, _ := in.View(); v != 0 {
			break
		}
		sn := sns[s.reqNext]
		s.reqNext++
		out = append(out,
			mir.NewEvent(s.w.Mempool, RequestBatch{ReqID: sn, Buckets: s.layout.Buckets(s.mySeg), NumBuckets: s.p.NumBuckets,
				MaxTxs: s.p.MaxBatchTxs, MaxBytes: s.p.MaxBatchBytes, ReplyTo: s.w.Self}),
			s.timerDelay(CutTimeout{Epoch: s.layout.Epoch, ReqID: sn}, s.p.EmptyProposalPeriod, s.layout.Epoch))
	}
	for {
		sn, ok := in.NextProposal()
		if !ok {
			break
		}
		b, ok := s.ready[sn]
		if !ok {
			break
		}
		delete(s.ready, sn)
		out = append(out, s.applyActions(uint32(s.mySeg), in.Propose(sn, b))...)
	}
	return out
}

// catchUpProposals cuts the local leader's pending batch request when
// another leader already proposed a later sequence number: in-order
// delivery would otherwise wait for our batch timeout or empty-proposal
// period. Under load our request is answered at once anyway; at low load
// this keeps leaders in step and commit latency near a few round trips.
func (s *ISS) catchUpProposals(sn ordering.SeqNr) mir.EventList {
	if sn > s.maxSeen {
		s.maxSeen = sn
	}
	if s.mySeg < 0 || !s.layout.Contains(s.maxSeen) {
		return nil
	}
	next, ok := s.insts[s.mySeg].NextProposal()
	if !ok || next >= s.maxSeen || s.cut[next] {
		return nil
	}
	if _, have := s.ready[next]; have {
		return nil
	}
	if idx := int((next - s.layout.FirstSN) / uint64(len(s.layout.Leaders))); idx >= s.reqNext {
		return nil // not requested yet
	}
	s.cut[next] = true
	return mir.EventList{mir.NewEvent(s.w.Mempool, CutBatch{ReqID: next})}
}

func (s *ISS) onNewBatch(nb NewBatch) mir.EventList {
	if !s.started || s.mySeg < 0 || !s.layout.Contains(nb.ReqID) || s.layout.SegmentOf(nb.ReqID) != s.mySeg {
		return nil
	}
	if next, ok := s.insts[s.mySeg].NextProposal(); !ok || nb.ReqID < next {
		return nil
	}
	s.ready[nb.ReqID] = ordering.Batch{Txs: nb.Txs}
	return s.pump()
}

func (s *ISS) onCutTimeout(ct CutTimeout) mir.EventList {
	if !s.started || ct.Epoch != s.layout.Epoch || s.mySeg < 0 {
		return nil
	}
	if _, ok := s.ready[ct.ReqID]; ok {
		return nil
	}
	if next, ok := s.insts[s.mySeg].NextProposal(); !ok || ct.ReqID < next {
		return nil
	}
	return mir.EventList{mir.NewEvent(s.w.Mempool, CutBatch{ReqID: ct.ReqID})}
}

// --- messages ---

func (s *ISS) onMessage(from mir.NodeID, msg any) mir.EventList {
	if h, ok := pbft.HeaderOf(msg); ok {
		if in := s.instance(h.Epoch, h.Seg); in != nil {
			out := s.applyEpochActions(h.Epoch, h.Seg, in.Step(from, msg))
			if pp, ok := msg.(pbft.Preprepare); ok && h.Epoch == s.layout.Epoch && int(h.Seg) != s.mySeg {
				out = append(out, s.catchUpProposals(pp.SeqNr)...)
			}
			return out
		}
		switch {
		case h.Epoch == s.layout.Epoch+1 && len(s.future) < s.p.MaxFutureMessages:
			s.future = append(s.future, futureMsg{from: from, msg: msg})
		default:
			s.stats.Dropped++
		}
		return nil
	}
	switch m := msg.(type) {
	case CheckpointMsg:
		return s.onCheckpointMsg(from, m)
	case Status:
		return s.onStatus(from, m)
	case CommittedSlots:
		return s.onCommittedSlots(from, m)
	case StableCert:
		return s.onStableCert(from, m)
	case SnapshotFetch:
		return s.onSnapshotFetch(from, m)
	case SnapshotData:
		return s.onSnapshotData(from, m)
	}
	s.stats.Dropped++
	return nil
}

func (s *ISS) onTick() mir.EventList {
	if !s.started {
		return nil
	}
	s.ticks++
	var out mir.EventList
	for seg, in := range s.insts {
		out = append(out, s.applyActions(uint32(seg), in.Resend())...)
	}
	if s.prevInsts != nil {
		for seg, in := range s.prevInsts {
			out = append(out, s.applyEpochActions(s.prevEpoch, uint32(seg), in.Resend())...)
		}
	}
	out = append(out, s.sendTo(nil, Status{Epoch: s.layout.Epoch, NextDeliver: s.nextDeliver}))
	// Resend our signature of checkpoints not yet stable.
	for e := s.stable.Checkpoint.Epoch + 1; e <= s.layout.Epoch; e++ {
		if c := s.ckpts[e]; c != nil && c.ownMsg != nil && s.durable(*c.ownMsg) {
			out = append(out, s.sendTo(nil, *c.ownMsg))
		}
	}
	return append(out, s.maybeFetchState()...)
}

// Describe returns a one-line summary of the module's state for debugging
// and failure reports.
func (s *ISS) Describe() string {
	out := fmt.Sprintf("epoch=%d next=%d end=%d stable=%d held=%v started=%v restoring=%v decided=%d",
		s.layout.Epoch, s.nextDeliver, s.layout.End(), s.stable.Checkpoint.Epoch, s.stableData != nil, s.started, s.restoring != nil, len(s.decided))
	for seg, in := range s.insts {
		v, ch := in.View()
		out += fmt.Sprintf(" seg%d[%s v%d ch=%v done=%v]", seg, s.layout.Leaders[seg], v, ch, in.Done())
		if ch {
			out += " {" + in.Describe() + "}"
		}
	}
	for seg, in := range s.prevInsts {
		if v, ch := in.View(); ch || v > 0 {
			out += fmt.Sprintf(" prev%d {%s}", seg, in.Describe())
		}
	}
	return out
}
