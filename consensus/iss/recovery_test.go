package iss_test

import (
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

func TestLastVotedEpoch(t *testing.T) {
	vote := func(ep uint64) events.WALEntry {
		return events.WALEntry{Entry: pbft.WALCommit{C: pbft.Commit{H: pbft.Header{Epoch: ep}}}}
	}
	pp := func(ep uint64) events.WALEntry {
		return events.WALEntry{Entry: pbft.WALPreprepare{PP: pbft.Preprepare{H: pbft.Header{Epoch: ep}}}}
	}
	stable := func(ep uint64) events.WALEntry {
		return events.WALEntry{Entry: iss.WALStable{Cert: checkpoint.Certificate{Checkpoint: checkpoint.Checkpoint{Epoch: ep}}}}
	}
	for _, tc := range []struct {
		name    string
		entries []events.WALEntry
		epoch   uint64
		ok      bool
	}{
		{"empty", nil, 0, false},
		{"only a stable checkpoint", []events.WALEntry{stable(7)}, 0, false},
		{"votes in epoch 0", []events.WALEntry{vote(0), pp(0)}, 0, true},
		{"latest wins, in any order", []events.WALEntry{stable(3), vote(4), pp(6), vote(5)}, 6, true},
	} {
		ep, ok := iss.LastVotedEpoch(tc.entries)
		if ep != tc.epoch || ok != tc.ok {
			t.Errorf("%s: got %d, %v; want %d, %v", tc.name, ep, ok, tc.epoch, tc.ok)
		}
	}
}
