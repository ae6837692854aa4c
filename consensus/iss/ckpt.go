package iss

import (
	"bytes"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/internal/bugs"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// ckptState collects signatures for the checkpoints of one epoch.
type ckptState struct {
	// own is this node's checkpoint (set once the app answered) and data the
	// state snapshot at it.
	own     *checkpoint.Checkpoint
	ownHash checkpoint.Hash
	ownMsg  *CheckpointMsg
	data    []byte
	// byHash: checkpoints seen, their signatures and signature tallies.
	byHash map[checkpoint.Hash]checkpoint.Checkpoint
	sigs   map[checkpoint.Hash]map[mir.NodeID][]byte
	tally  map[checkpoint.Hash]*membership.Tally
	signed map[mir.NodeID]bool
}

func (s *ISS) ckpt(e ordering.Epoch) *ckptState {
	c := s.ckpts[e]
	if c == nil {
		c = &ckptState{byHash: map[checkpoint.Hash]checkpoint.Checkpoint{}, sigs: map[checkpoint.Hash]map[mir.NodeID][]byte{},
			tally: map[checkpoint.Hash]*membership.Tally{}, signed: map[mir.NodeID]bool{}}
		s.ckpts[e] = c
	}
	return c
}

// onStateSnapshot builds, signs and broadcasts this node's checkpoint.
func (s *ISS) onStateSnapshot(ss StateSnapshot) mir.EventList {
	e := ss.Epoch
	l, ok := s.layouts[e]
	if !ok || e <= s.stable.Checkpoint.Epoch && s.stableData != nil {
		return nil
	}
	prev, ok := s.prevHash[e-1]
	if !ok {
		return nil
	}
	offset := len(s.cfg.Genesis.Memberships)
	ms := make([]*membership.Set, offset)
	for i := range ms {
		ms[i] = s.members(e + uint64(i))
	}
	ck := checkpoint.Checkpoint{Epoch: e, SeqNr: l.FirstSN, StateRoot: ss.Root, Height: ss.Height, BlockCID: ss.BlockCID,
		Leaders: l.Leaders, Bans: s.bans[e], Memberships: ms, PrevHash: prev}
	h := ck.Hash()
	s.prevHash[e] = h
	c := s.ckpt(e)
	c.own, c.ownHash, c.data = &ck, h, ss.Data
	sig, err := s.cfg.Signer.Sign(ck.SignedData())
	if err != nil {
		panic("iss: sign own checkpoint: " + err.Error())
	}
	msg := CheckpointMsg{Checkpoint: ck, Signature: sig}
	c.ownMsg = &msg
	out := s.persistThenSend(WALCheckpointSig{Msg: msg}, e, msg, s.sendTo(nil, msg))
	out = append(out, s.addCkptSig(s.cfg.Self, ck, h, sig)...)
	// A certificate may have formed before our own snapshot arrived.
	if s.stable.Checkpoint.Epoch == e && s.stableData == nil && s.stable.Checkpoint.Hash() == h {
		out = append(out, s.finalizeStable()...)
	}
	return out
}

func (s *ISS) onCheckpointMsg(from mir.NodeID, m CheckpointMsg) mir.EventList {
	ck := m.Checkpoint
	e := ck.Epoch
	if e <= s.stable.Checkpoint.Epoch || e == 0 || e > s.layout.Epoch+1 {
		return nil
	}
	signers := s.members(e - 1)
	if !signers.Contains(from) || ck.Check() != nil {
		s.stats.Dropped++
		return nil
	}
	if !bugs.On(bugs.SkipSignatureCheck) {
		if err := s.cfg.Verifier.Verify(from, ck.SignedData(), m.Signature); err != nil {
			s.stats.Dropped++
			return nil
		}
	}
	return s.addCkptSig(from, ck, ck.Hash(), m.Signature)
}

// addCkptSig records a valid signature and makes the checkpoint stable once a
// strong quorum signed it.
func (s *ISS) addCkptSig(from mir.NodeID, ck checkpoint.Checkpoint, h checkpoint.Hash, sig []byte) mir.EventList {
	c := s.ckpt(ck.Epoch)
	if c.signed[from] {
		return nil
	}
	c.signed[from] = true
	if _, ok := c.byHash[h]; !ok {
		c.byHash[h] = ck
		c.sigs[h] = map[mir.NodeID][]byte{}
		c.tally[h] = s.members(ck.Epoch - 1).NewTally()
	}
	c.sigs[h][from] = sig
	c.tally[h].Add(from)
	if !checkpoint.Stable(c.tally[h]) {
		return nil
	}
	return s.onStable(checkpoint.NewCertificate(ck, c.sigs[h]))
}

// onStable adopts a newer stable checkpoint certificate.
func (s *ISS) onStable(cert checkpoint.Certificate) mir.EventList {
	e := cert.Checkpoint.Epoch
	if e <= s.stable.Checkpoint.Epoch {
		return nil
	}
	s.stable, s.stableData = cert, nil
	s.learnSets(cert.Checkpoint)
	if c := s.ckpts[e]; c != nil && c.own != nil && c.ownHash == cert.Checkpoint.Hash() {
		return s.finalizeStable()
	}
	// We have not reached this checkpoint: catch up by state transfer if we
	// stay behind (see maybeFetchState).
	return nil
}

// finalizeStable persists the stable checkpoint with the state at it,
// truncates the WAL, collects old state and tells the application.
func (s *ISS) finalizeStable() mir.EventList {
	e := s.stable.Checkpoint.Epoch
	if c := s.ckpts[e]; c != nil && c.data != nil {
		s.stableData = c.data
	}
	if s.stableData == nil {
		s.stableData = []byte{}
	}
	return s.persistStable()
}

func (s *ISS) persistStable() mir.EventList {
	e := s.stable.Checkpoint.Epoch
	for k := range s.ckpts {
		if k < e {
			delete(s.ckpts, k)
		}
	}
	for k := range s.layouts {
		if k+1 < e {
			delete(s.layouts, k)
			delete(s.bans, k)
		}
	}
	for k := range s.prevHash {
		if k+1 < e {
			delete(s.prevHash, k)
		}
	}
	app := mir.NewEvent(s.w.WAL, events.WALAppend{Owner: s.w.Self, Entry: WALStable{Cert: s.stable, Data: s.stableData}, RetentionIndex: e})
	return mir.EventList{
		app.WithNext(mir.NewEvent(s.w.WAL, events.WALTruncate{RetentionIndex: e})),
		mir.NewEvent(s.w.Timer, events.TimerGarbageCollect{RetentionIndex: e}),
		mir.NewEvent(s.w.App, StableCheckpoint{Cert: s.stable}),
	}
}

// --- state transfer ---

// maybeFetchState asks peers for the state at the stable checkpoint when the
// node is at least a whole epoch behind it.
func (s *ISS) maybeFetchState() mir.EventList {
	if s.restoring != nil || s.stable.Checkpoint.Epoch <= s.layout.Epoch {
		return nil
	}
	signers := make([]mir.NodeID, 0, len(s.stable.Sigs))
	for _, sg := range s.stable.Sigs {
		if sg.Signer != s.cfg.Self {
			signers = append(signers, sg.Signer)
		}
	}
	if len(signers) == 0 {
		return nil
	}
	peer := signers[s.ticks%uint64(len(signers))]
	return mir.EventList{s.sendTo([]mir.NodeID{peer}, SnapshotFetch{Epoch: s.stable.Checkpoint.Epoch})}
}

func (s *ISS) onStableCert(from mir.NodeID, m StableCert) mir.EventList {
	if m.Cert.Checkpoint.Epoch <= s.stable.Checkpoint.Epoch || s.verifyCert(m.Cert) != nil {
		return nil
	}
	return s.onStable(m.Cert)
}

// verifyCert checks a certificate against the validators of the epoch before
// it, as far as this node knows them.
func (s *ISS) verifyCert(cert checkpoint.Certificate) error {
	e := cert.Checkpoint.Epoch
	if e == 0 {
		return checkpoint.ErrInvalid
	}
	return cert.Verify(s.members(e-1), s.cfg.Verifier)
}

func (s *ISS) onSnapshotFetch(from mir.NodeID, m SnapshotFetch) mir.EventList {
	if s.stableData == nil || s.stable.Checkpoint.Epoch == 0 || s.stable.Checkpoint.Epoch < m.Epoch {
		return nil
	}
	return mir.EventList{s.sendTo([]mir.NodeID{from}, SnapshotData{Cert: s.stable, Data: s.stableData})}
}

func (s *ISS) onSnapshotData(from mir.NodeID, m SnapshotData) mir.EventList {
	e := m.Cert.Checkpoint.Epoch
	if s.restoring != nil || e <= s.layout.Epoch || s.verifyCert(m.Cert) != nil {
		return nil
	}
	cert := m.Cert
	s.restoring, s.restoreData = &cert, m.Data
	s.stats.StateTransfers++
	return mir.EventList{mir.NewEvent(s.w.App, RestoreState{Cert: cert, Data: m.Data})}
}

func (s *ISS) onStateRestored(r StateRestored) (mir.EventList, error) {
	if s.restoring == nil || r.Epoch != s.restoring.Checkpoint.Epoch {
		return nil, nil
	}
	cert := *s.restoring
	s.restoring = nil
	ok := r.Err == "" && bytes.Equal(r.Root, cert.Checkpoint.StateRoot)
	if s.recovering {
		if !ok {
			return nil, errRecovery(cert.Checkpoint.Epoch, r.Err)
		}
		s.recovering = false
		return s.jumpTo(cert, s.stableData, false), nil
	}
	if !ok {
		return nil, nil // a bad snapshot: ask again on the next tick
	}
	data := s.restoreData
	s.restoreData = nil
	return s.jumpTo(cert, data, true), nil
}

// jumpTo makes the node continue from the start of cert's epoch, whose state
// the application now holds.
func (s *ISS) jumpTo(cert checkpoint.Certificate, data []byte, persist bool) mir.EventList {
	e := cert.Checkpoint.Epoch
	s.stable, s.stableData = cert, data
	s.learnSets(cert.Checkpoint)
	s.prevHash[e] = cert.Checkpoint.Hash()
	s.bans[e] = cert.Checkpoint.Bans
	s.started = true
	out := mir.EventList{mir.NewEvent(s.w.Mempool, ResetProposals{})}
	if persist {
		out = append(out, s.persistStable()...)
	} else {
		out = append(out, mir.NewEvent(s.w.App, StableCheckpoint{Cert: cert}))
	}
	// Keep the buffered messages of the epoch we start (its pre-prepares
	// were sent when it began, and peers do not resend decided slots).
	kept := s.future[:0]
	for _, m := range s.future {
		if h, ok := pbft.HeaderOf(m.msg); ok && h.Epoch == e {
			kept = append(kept, m)
		}
	}
	clear(s.future[len(kept):])
	s.future = kept
	return append(out, s.startEpoch(Layout{Epoch: e, FirstSN: cert.Checkpoint.SeqNr, Leaders: cert.Checkpoint.Leaders,
		SegLen: s.p.SegmentLength, NumBuckets: s.p.NumBuckets})...)
}
