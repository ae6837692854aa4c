package eventlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ErrMismatch is wrapped by the error Replay returns when a module's
// replayed outputs differ from the log.
var ErrMismatch = errors.New("eventlog: replay mismatch")

// Factory builds a fresh passive module for node from a log header's Meta.
type Factory func(node mir.NodeID, meta map[string]string) (mir.PassiveModule, error)

var factories = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// RegisterFactory registers a module factory under name, for tools that
// rebuild modules to replay a log (mirsubnet mircat replay). It is meant for
// init functions and panics if name is registered twice.
func RegisterFactory(name string, f Factory) {
	if name == "" || f == nil {
		panic("eventlog: RegisterFactory needs a name and a factory")
	}
	factories.Lock()
	defer factories.Unlock()
	if _, dup := factories.m[name]; dup {
		panic(fmt.Sprintf("eventlog: factory %q registered twice", name))
	}
	factories.m[name] = f
}

// LookupFactory returns the factory registered under name.
func LookupFactory(name string) (Factory, bool) {
	factories.RLock()
	defer factories.RUnlock()
	f, ok := factories.m[name]
	return f, ok
}

// FactoryNames returns the registered factory names, sorted.
func FactoryNames() []string {
	factories.RLock()
	defer factories.RUnlock()
	names := make([]string, 0, len(factories.m))
	for n := range factories.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BuildModules builds modules for node from specs of the form "factory" (the
// module ID is the factory name) or "id=factory".
func BuildModules(specs []string, node mir.NodeID, meta map[string]string) (map[mir.ModuleID]mir.PassiveModule, error) {
	mods := map[mir.ModuleID]mir.PassiveModule{}
	for _, spec := range specs {
		id, name, found := strings.Cut(spec, "=")
		if !found {
			name = id
		}
		mid := mir.ModuleID(id)
		if !mid.Valid() || mid.Top() != mid {
			return nil, fmt.Errorf("eventlog: %q is not a top-level module ID", id)
		}
		if _, dup := mods[mid]; dup {
			return nil, fmt.Errorf("eventlog: module %q given twice", id)
		}
		f, ok := LookupFactory(name)
		if !ok {
			return nil, fmt.Errorf("eventlog: no module factory %q (registered: %s)", name, strings.Join(FactoryNames(), ", "))
		}
		m, err := f(node, meta)
		if err != nil {
			return nil, fmt.Errorf("eventlog: build module %q for node %q: %w", id, node, err)
		}
		mods[mid] = m
	}
	return mods, nil
}

// Report is the outcome of a replay.
type Report struct {
	// Node is the node whose log was replayed.
	Node mir.NodeID
	// Records is the number of records read.
	Records uint64
	// Batches counts the batches replayed into each module.
	Batches map[mir.ModuleID]int
	// Outputs counts the events each replayed module produced (outputs and
	// released follow-ups).
	Outputs map[mir.ModuleID]int
	// Matched is the number of produced events found, identical, in the log.
	Matched int
	// Undispatched counts, per destination, produced events the log ends
	// before dispatching (allowed: the run stopped with them queued).
	Undispatched map[mir.ModuleID]int
	// RestartAt is the index of the first record after a restart of the
	// node, where replay stopped (modules restarted from scratch), or 0.
	RestartAt uint64
	// Tail is where the log stopped early at a bad frame, if it did.
	Tail *CorruptionError
	// Mismatch is the first difference found, or nil.
	Mismatch *Mismatch
}

// OK reports whether no mismatch was found.
func (r *Report) OK() bool { return r.Mismatch == nil }

// Mismatch describes the first difference between replayed and logged
// outputs.
type Mismatch struct {
	// Index is the record at which the difference showed.
	Index uint64
	// Module is the replayed module whose outputs differ.
	Module mir.ModuleID
	// Dest is the top-level destination of the differing event.
	Dest mir.ModuleID
	// Position is the event's position in record Index's batch (-1 if the
	// difference is not about a logged event).
	Position int
	// Output is the ordinal (from 0) of the event among those Module sent
	// to Dest.
	Output int
	// Expected is the event the replayed module produced (JSON), or null.
	Expected json.RawMessage
	// Actual is the event in the log (JSON), or null.
	Actual json.RawMessage
	// Reason says what differs.
	Reason string
}

// String describes the mismatch on several lines.
func (m *Mismatch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "record %d: module %s -> %s, output #%d", m.Index, m.Module, m.Dest, m.Output)
	if m.Position >= 0 {
		fmt.Fprintf(&b, " (event %d of the batch)", m.Position)
	}
	fmt.Fprintf(&b, ": %s\n  expected: %s\n  actual:   %s", m.Reason, orNull(m.Expected), orNull(m.Actual))
	return b.String()
}

func orNull(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	return string(b)
}

// expected is a produced event waiting for its dispatch in the log.
type expected struct {
	event mir.Event
	enc   []byte
	// index is the record whose replay produced it.
	index uint64
}

type route struct{ src, dest mir.ModuleID }

// Replay checks a recorded run against fresh passive modules. Every
// dispatch record for a module in modules is applied to it, in log order,
// and its expected outputs computed with mir.ExpectedOutputs. For each
// destination, the events the log dispatches to it from that module must be
// those expected outputs, in order, with identical encodings; expected
// outputs the log has not dispatched yet when it ends are allowed (counted
// in Report.Undispatched). Replay stops at the first mismatch (returned in
// the Report and as an error wrapping ErrMismatch) and at a restart of the
// node (Report.RestartAt).
//
// r must be unfiltered (apart from Filter.Node) and hold one node's log
// from its first record. Replay reads r to its end (or the restart) but
// does not close it.
func Replay(r *Reader, modules map[mir.ModuleID]mir.PassiveModule) (Report, error) {
	rep := Report{Batches: map[mir.ModuleID]int{}, Outputs: map[mir.ModuleID]int{}, Undispatched: map[mir.ModuleID]int{}}
	if r.filter.narrows() || r.filter.Kind != 0 || r.filter.From != 0 || r.filter.To != 0 {
		return rep, errors.New("eventlog: replay needs an unfiltered reader")
	}
	for id := range modules {
		if !id.Valid() || id.Top() != id {
			return rep, fmt.Errorf("eventlog: replay: %q is not a top-level module ID", id)
		}
	}
	enc := newEncoder()
	pending := map[route][]expected{}
	sent := map[route]int{}
	fail := func(m *Mismatch) (Report, error) {
		rep.Mismatch = m
		rep.Tail = r.Tail()
		return rep, fmt.Errorf("%w: %s", ErrMismatch, m.String())
	}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rep, err
		}
		if rep.Records == 0 {
			if rec.Index != 1 {
				return rep, fmt.Errorf("eventlog: replay needs the log from its first record; it starts at %d", rec.Index)
			}
			rep.Node = rec.NodeID
		} else if rec.NodeID != rep.Node {
			return rep, fmt.Errorf("eventlog: log holds records of nodes %q and %q; select one node", rep.Node, rec.NodeID)
		}
		if hdr := r.Header(); hdr.Resumed && rec.Index == hdr.FirstIndex {
			rep.RestartAt = rec.Index
			break
		}
		rep.Records++
		if rec.Kind != mir.RecordDispatch {
			continue
		}
		// Compare the logged dispatches from replayed modules.
		for pos := range rec.Events {
			ev := &rec.Events[pos]
			if _, replayed := modules[ev.Src]; !replayed {
				continue
			}
			rt := route{ev.Src, rec.Module}
			q := pending[rt]
			actual, aerr := enc.encodeEvent(ev)
			m := &Mismatch{Index: rec.Index, Module: ev.Src, Dest: rec.Module, Position: pos, Output: sent[rt]}
			m.Actual, _ = EventJSON(*ev)
			if aerr != nil {
				m.Reason = fmt.Sprintf("logged event cannot be encoded: %v", aerr)
				return fail(m)
			}
			if len(q) == 0 {
				m.Reason = "the log dispatches an event the replayed module did not produce"
				return fail(m)
			}
			exp := q[0]
			if !bytes.Equal(exp.enc, actual) {
				m.Expected, _ = EventJSON(exp.event)
				m.Reason = fmt.Sprintf("event differs from the one produced by replaying record %d", exp.index)
				return fail(m)
			}
			q[0] = expected{}
			pending[rt] = q[1:]
			sent[rt]++
			rep.Matched++
		}
		mod, ok := modules[rec.Module]
		if !ok {
			continue
		}
		rep.Batches[rec.Module]++
		out, err := applySafely(mod, rec.Events)
		if err != nil {
			return fail(&Mismatch{Index: rec.Index, Module: rec.Module, Position: -1, Output: -1,
				Reason: fmt.Sprintf("replayed module failed on the batch (the recorded node went on): %v", err)})
		}
		for _, ev := range mir.ExpectedOutputs(rec.Module, rec.Events, out) {
			b, err := enc.encodeEvent(&ev)
			if err != nil {
				m := &Mismatch{Index: rec.Index, Module: rec.Module, Dest: ev.Dest.Top(), Position: -1,
					Reason: fmt.Sprintf("replayed output cannot be encoded: %v", err)}
				m.Expected, _ = EventJSON(ev)
				return fail(m)
			}
			rt := route{rec.Module, ev.Dest.Top()}
			pending[rt] = append(pending[rt], expected{event: ev, enc: b, index: rec.Index})
			rep.Outputs[rec.Module]++
		}
	}
	for rt, q := range pending {
		if len(q) > 0 {
			rep.Undispatched[rt.dest] += len(q)
		}
	}
	rep.Tail = r.Tail()
	return rep, nil
}

// applySafely applies a batch, turning a panic into an error.
func applySafely(m mir.PassiveModule, batch mir.EventList) (out mir.EventList, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return m.ApplyEvents(batch)
}
