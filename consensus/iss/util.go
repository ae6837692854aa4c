package iss

import (
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// LastVotedEpoch returns the latest epoch in which the node's recovered WAL
// entries (the WALRecovered of the ISS module) hold a vote of its own: the
// epoch it was working in when it stopped, in which its own proposals may
// still be undelivered. ok is false if there is none.
func LastVotedEpoch(entries []events.WALEntry) (epoch ordering.Epoch, ok bool) {
	for _, e := range entries {
		if h, isVote := walHeader(e.Entry); isVote && (!ok || h.Epoch > epoch) {
			epoch, ok = h.Epoch, true
		}
	}
	return epoch, ok
}

// walHeader returns the PBFT header of a recovered WAL entry.
func walHeader(entry any) (pbft.Header, bool) {
	switch e := entry.(type) {
	case pbft.WALPreprepare:
		return e.PP.H, true
	case pbft.WALCommit:
		return e.C.H, true
	case pbft.WALViewChange:
		return e.SVC.VC.H, true
	case pbft.WALNewView:
		return e.NV.H, true
	}
	return pbft.Header{}, false
}
