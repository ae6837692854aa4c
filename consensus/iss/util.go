package iss

import "github.com/mirsubnet/mirsubnet/consensus/pbft"

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
