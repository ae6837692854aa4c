package iss

import (
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// App is the replicated application. Its methods must be deterministic:
// every correct node applies the same batches in the same order and must
// reach the same state root.
type App interface {
	// Apply applies a delivered batch (empty for an aborted slot). The
	// state root is asked for only at checkpoints (Snapshot), so an App may
	// defer computing it until then.
	Apply(sn ordering.SeqNr, batch ordering.Batch) error
	// Snapshot returns the state root and a serialized copy of the state.
	Snapshot() (root []byte, data []byte, err error)
	// Restore replaces the state by a snapshot and returns its root. It must
	// leave the state unchanged when it fails.
	Restore(data []byte) (root []byte, err error)
}

// AppObserver receives the application's view of the protocol (tests and
// the simulator's checkers use it). Calls happen on the module's goroutine.
type AppObserver interface {
	// Delivered reports a batch the app has applied; Deliver carries no
	// digest, so an observer that needs one computes it (not every observer
	// pays for hashing each batch again).
	Delivered(d Deliver)
	Stable(cert checkpoint.Certificate)
	Restored(cert checkpoint.Certificate)
}

// AppModule runs an in-process App as a passive module answering ISS's
// application events. Use it for applications whose Apply does no I/O (the
// simulator's and the key-value application).
type AppModule struct {
	app      App
	iss      mir.ModuleID
	observer AppObserver
}

// NewAppModule returns the module; iss is the ISS module's ID, observer may be
// nil.
func NewAppModule(app App, iss mir.ModuleID, observer AppObserver) *AppModule {
	return &AppModule{app: app, iss: iss, observer: observer}
}

// ApplyEvents implements mir.PassiveModule.
func (m *AppModule) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		switch ev := e.Payload.(type) {
		case events.Init:
			return nil, nil
		case Deliver:
			if err := m.app.Apply(ev.SeqNr, ev.Proposal.Batch); err != nil {
				return nil, fmt.Errorf("apply batch %d: %w", ev.SeqNr, err)
			}
			if m.observer != nil {
				m.observer.Delivered(ev)
			}
			return nil, nil
		case SnapshotRequest:
			root, data, err := m.app.Snapshot()
			if err != nil {
				return nil, fmt.Errorf("snapshot at epoch %d: %w", ev.Epoch, err)
			}
			return mir.EventList{mir.NewEvent(m.iss, StateSnapshot{Epoch: ev.Epoch, Root: root, Data: data})}, nil
		case RestoreState:
			root, err := m.app.Restore(ev.Data)
			res := StateRestored{Epoch: ev.Cert.Checkpoint.Epoch, Root: root}
			if err != nil {
				res.Err = err.Error()
			} else if m.observer != nil {
				m.observer.Restored(ev.Cert)
			}
			return mir.EventList{mir.NewEvent(m.iss, res)}, nil
		case StableCheckpoint:
			if m.observer != nil {
				m.observer.Stable(ev.Cert)
			}
			return nil, nil
		}
		return nil, fmt.Errorf("app: unexpected event %T", e.Payload)
	})
}
