package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ErrUnexpectedEvent is returned when the module is given an event it does
// not handle, or a WALAppend for an owner it was not told about.
var ErrUnexpectedEvent = errors.New("wal: unexpected event")

// maxOwnerLen bounds the owner module ID stored in a record.
const maxOwnerLen = 1 << 10

var (
	_ mir.ActiveModule = (*Module)(nil)
	_ mir.Runner       = (*Module)(nil)
)

// Params are the module's parameters.
type Params struct {
	// Log are the options of the underlying Log.
	Log Options
}

// DefaultParams returns the default options of the Log.
func DefaultParams() Params { return Params{Log: DefaultOptions()} }

// Module is the active WAL module. It appends the entries of
// events.WALAppend to a Log and emits each event's follow-ups once the entry
// is durable; it truncates the Log on events.WALTruncate; before any other
// event it emits one events.WALRecovered to each owner. Follow-ups of all
// events it is given (events.Init included) are emitted in the order the
// events arrived. A write error stops the module: Run returns it.
type Module struct {
	// log is the open Log; Close or the end of Run closes it.
	log *Log
	// report is what opening log found; it does not change.
	report RecoveryReport
	// recovered are the WALRecovered events, one per owner; they do not
	// change.
	recovered mir.EventList
	// owners is the set of modules entries may belong to; it does not change.
	owners map[mir.ModuleID]bool
	// out is the unbuffered channel Run emits on.
	out chan mir.EventList

	// mu protects pending, err and closed.
	mu sync.Mutex
	// pending holds events to emit, in order; it starts with the
	// WALRecovered events.
	pending mir.EventList
	// err is the first error of the Log; once set Run returns it.
	err error
	// closed is set once the Log was closed.
	closed bool
	// wake is signalled (without blocking) when pending or err changed.
	wake chan struct{}
	// runOnce makes Run run at most once.
	runOnce sync.Once
}

// NewModule opens the WAL in dir and recovers it. The owners are the modules
// that append entries; each gets one WALRecovered. The caller must either
// run the module (Run closes the Log when it returns) or Close it.
func NewModule(dir string, params Params, owners []mir.ModuleID) (*Module, error) {
	m := &Module{
		owners: map[mir.ModuleID]bool{},
		out:    make(chan mir.EventList),
		wake:   make(chan struct{}, 1),
	}
	for _, o := range owners {
		if !o.Valid() {
			return nil, fmt.Errorf("wal: invalid owner %q", o)
		}
		if m.owners[o] {
			return nil, fmt.Errorf("wal: owner %q given twice", o)
		}
		m.owners[o] = true
	}
	log, recs, report, err := Open(dir, params.Log)
	if err != nil {
		return nil, err
	}
	m.log, m.report = log, report
	byOwner := map[mir.ModuleID][]events.WALEntry{}
	for _, r := range recs {
		owner, entry, err := decodeEntry(r.Data)
		if err != nil {
			_ = log.Close()
			return nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, r.Index, err)
		}
		if !m.owners[owner] {
			_ = log.Close()
			return nil, fmt.Errorf("wal: record %d belongs to %q, which is not an owner", r.Index, owner)
		}
		byOwner[owner] = append(byOwner[owner], events.WALEntry{RetentionIndex: r.RetentionIndex, Entry: entry})
	}
	for _, o := range owners {
		m.recovered = append(m.recovered, mir.NewEvent(o, events.WALRecovered{Entries: byOwner[o]}))
	}
	m.pending = append(m.pending, m.recovered...)
	return m, nil
}

// Recovered returns the entries recovered for owner (those its
// WALRecovered carries), for the module's assembler to inspect.
func (m *Module) Recovered(owner mir.ModuleID) []events.WALEntry {
	for _, ev := range m.recovered {
		if ev.Dest == owner {
			return ev.Payload.(events.WALRecovered).Entries
		}
	}
	return nil
}

// RecoveryReport returns what opening the Log found and repaired.
func (m *Module) RecoveryReport() RecoveryReport { return m.report }

// Stats returns the Log's counters.
func (m *Module) Stats() Stats { return m.log.Stats() }

// EventsOut is the channel the module emits on.
func (m *Module) EventsOut() <-chan mir.EventList { return m.out }

// ApplyEvents queues the events' work on the Log and returns without waiting
// for it; follow-ups are emitted by Run once their parent is done.
func (m *Module) ApplyEvents(ctx context.Context, evs mir.EventList) error {
	m.mu.Lock()
	err, closed := m.err, m.closed
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if closed {
		return ErrClosed
	}
	for _, e := range evs {
		release := m.releaser(e.Next)
		switch p := e.Payload.(type) {
		case events.WALAppend:
			if !m.owners[p.Owner] {
				return fmt.Errorf("%w: WALAppend for %q, which is not an owner", ErrUnexpectedEvent, p.Owner)
			}
			data, err := encodeEntry(p.Owner, p.Entry)
			if err != nil {
				return err
			}
			if len(data) > m.log.opts.MaxRecordSize {
				return fmt.Errorf("%w: entry for %s is %d bytes, limit %d", ErrTooLarge, p.Owner, len(data), m.log.opts.MaxRecordSize)
			}
			m.log.AppendAsync(data, p.RetentionIndex, func(_ uint64, err error) { release(err) })
		case events.WALTruncate:
			m.log.TruncateAsync(p.RetentionIndex, release)
		case events.Init:
			m.log.SyncAsync(release)
		default:
			return fmt.Errorf("%w: %s", ErrUnexpectedEvent, mir.PayloadName(e.Payload))
		}
	}
	return nil
}

// releaser returns the completion callback of an event with follow-ups next.
func (m *Module) releaser(next []mir.Event) func(error) {
	return func(err error) {
		m.mu.Lock()
		switch {
		case err != nil:
			if m.err == nil && !(m.closed && errors.Is(err, ErrClosed)) {
				m.err = err
			}
		case m.err == nil:
			m.pending = append(m.pending, next...)
		}
		m.mu.Unlock()
		if err != nil || len(next) > 0 {
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Err returns the error that stopped the module, or nil.
func (m *Module) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Run emits the module's events until ctx is done or the Log fails, then
// closes the Log. It returns the Log's error, or nil after cancellation.
func (m *Module) Run(ctx context.Context) error {
	err := errors.New("wal: Run called twice")
	m.runOnce.Do(func() { err = m.run(ctx) })
	return err
}

func (m *Module) run(ctx context.Context) error {
	defer func() { _ = m.Close() }()
	for {
		m.mu.Lock()
		batch, err := m.pending, m.err
		m.pending = nil
		m.mu.Unlock()
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			select {
			case m.out <- batch:
			case <-ctx.Done():
				return nil
			}
			continue
		}
		select {
		case <-m.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// Close closes the Log, completing the work already queued (follow-ups of
// that work are no longer emitted). It returns the Log's error, if any.
func (m *Module) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return m.log.Close()
}

// encodeEntry encodes a record's data: u16 owner length, owner, then the
// entry as a tagged CBOR item.
func encodeEntry(owner mir.ModuleID, entry any) ([]byte, error) {
	if len(owner) > maxOwnerLen {
		return nil, fmt.Errorf("wal: owner ID of %d bytes, limit %d", len(owner), maxOwnerLen)
	}
	p, err := mir.EncodePayload(entry)
	if err != nil {
		return nil, fmt.Errorf("wal: entry for %s: %w", owner, err)
	}
	b := make([]byte, 0, 2+len(owner)+len(p))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(owner)))
	b = append(b, owner...)
	return append(b, p...), nil
}

// decodeEntry decodes what encodeEntry produced. It never panics.
func decodeEntry(b []byte) (mir.ModuleID, any, error) {
	if len(b) < 2 {
		return "", nil, errors.New("entry shorter than its owner length")
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n > maxOwnerLen || len(b)-2 < n {
		return "", nil, fmt.Errorf("bad owner length %d", n)
	}
	owner := mir.ModuleID(b[2 : 2+n])
	if !owner.Valid() {
		return "", nil, fmt.Errorf("invalid owner %q", owner)
	}
	entry, err := mir.DecodePayload(b[2+n:])
	if err != nil {
		return "", nil, err
	}
	return owner, entry, nil
}
