package iss

import (
	"errors"
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ErrRecovery is returned when the node cannot restore the state its WAL
// names (a local storage fault: the node must not continue).
var ErrRecovery = errors.New("iss: recovery failed")

func errRecovery(epoch uint64, reason string) error {
	return fmt.Errorf("%w: restoring the stable checkpoint of epoch %d: %s", ErrRecovery, epoch, reason)
}

// recover restarts the node from its WAL: the latest stable checkpoint (if
// any) is restored into the application, then the node's own votes of later
// epochs are re-applied as their epochs start, so it never contradicts a
// message it sent before the crash.
func (s *ISS) recover(r events.WALRecovered) (mir.EventList, error) {
	if s.started || s.recovering {
		return nil, fmt.Errorf("iss: WAL recovered twice")
	}
	var base *WALStable
	var votes []any
	for _, e := range r.Entries {
		switch entry := e.Entry.(type) {
		case WALStable:
			st := entry
			base = &st
		case WALCheckpointSig:
		default:
			if _, ok := walHeader(entry); !ok {
				return nil, fmt.Errorf("%w: unknown WAL entry %T", ErrRecovery, entry)
			}
			votes = append(votes, entry)
		}
	}
	for _, v := range votes {
		h, _ := walHeader(v)
		if base != nil && h.Epoch < base.Cert.Checkpoint.Epoch {
			continue // superseded by the stable checkpoint
		}
		s.pendingVotes[h.Epoch] = append(s.pendingVotes[h.Epoch], v)
	}
	if base == nil || base.Cert.Checkpoint.Epoch == 0 {
		s.started = true
		g := s.cfg.Genesis
		return s.startEpoch(Layout{Epoch: 0, FirstSN: g.SeqNr, Leaders: g.Leaders, SegLen: s.p.SegmentLength, NumBuckets: s.p.NumBuckets}), nil
	}
	s.recovering = true
	cert := base.Cert
	s.restoring, s.stableData = &cert, base.Data
	return mir.EventList{mir.NewEvent(s.w.App, RestoreState{Cert: base.Cert, Data: base.Data})}, nil
}
