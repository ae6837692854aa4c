package memnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ErrStopped is returned by ApplyEvents once the transport's Run returned.
var ErrStopped = errors.New("memnet: stopped")

// DefaultInboxSize is the default capacity of a node's inbox in messages.
const DefaultInboxSize = 1 << 16

// Option configures NewNetwork.
type Option func(*Network)

// WithInboxSize bounds every node's inbox to n undelivered events.
func WithInboxSize(n int) Option { return func(nw *Network) { nw.inboxSize = n } }

// Network connects the Transports made by its Transport method.
type Network struct {
	inboxSize int // read-only after NewNetwork

	mu sync.RWMutex
	// nodes holds every registered node's transport. Guarded by mu.
	nodes map[mir.NodeID]*Transport
	// blocked holds the cut directions [from, to]. Guarded by mu.
	blocked map[[2]mir.NodeID]bool
}

// NewNetwork returns an empty network.
func NewNetwork(opts ...Option) *Network {
	nw := &Network{inboxSize: DefaultInboxSize, nodes: map[mir.NodeID]*Transport{}, blocked: map[[2]mir.NodeID]bool{}}
	for _, o := range opts {
		o(nw)
	}
	return nw
}

// Transport registers self and returns its transport module (a new one
// replaces an earlier registration, as a restarted node would).
func (nw *Network) Transport(self mir.NodeID) *Transport {
	t := &Transport{
		net:    nw,
		self:   self,
		out:    make(chan mir.EventList),
		signal: make(chan struct{}, 1),
	}
	nw.mu.Lock()
	nw.nodes[self] = t
	nw.mu.Unlock()
	return t
}

// Drop cuts (drop true) or restores the direction from -> to.
func (nw *Network) Drop(from, to mir.NodeID, drop bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if drop {
		nw.blocked[[2]mir.NodeID{from, to}] = true
	} else {
		delete(nw.blocked, [2]mir.NodeID{from, to})
	}
}

// Partition cuts every direction between nodes of different groups. Nodes
// in no group keep their links.
func (nw *Network) Partition(groups ...[]mir.NodeID) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					nw.blocked[[2]mir.NodeID{a, b}] = true
				}
			}
		}
	}
}

// Heal restores every link.
func (nw *Network) Heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.blocked)
}

// route returns the destination's transport, or nil if it is unknown or the
// link is cut.
func (nw *Network) route(from, to mir.NodeID) *Transport {
	nw.mu.RLock()
	defer nw.mu.RUnlock()
	if nw.blocked[[2]mir.NodeID{from, to}] {
		return nil
	}
	return nw.nodes[to]
}

// Stats are a Transport's counters.
type Stats struct {
	// Sent counts messages handed to a destination's inbox.
	Sent uint64
	// Received counts messages delivered to this node.
	Received uint64
	// Dropped counts messages not delivered: unknown destination, cut link,
	// full inbox, or a message that does not encode or decode.
	Dropped uint64
}

// Transport is one node's end of a Network: a mir.ActiveModule and
// mir.Runner. Its methods are safe for concurrent use.
type Transport struct {
	net  *Network
	self mir.NodeID
	out  chan mir.EventList

	mu sync.Mutex
	// inbox holds events not yet emitted, at most net.inboxSize messages
	// (released follow-ups are not counted). Guarded by mu.
	inbox mir.EventList
	// messages is the number of messages in inbox. Guarded by mu.
	messages int
	// stopped is set once Run returned. Guarded by mu.
	stopped bool
	// signal has a token when inbox may be non-empty.
	signal chan struct{}

	sent, received, dropped atomic.Uint64
}

var (
	_ mir.ActiveModule = (*Transport)(nil)
	_ mir.Runner       = (*Transport)(nil)
)

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{Sent: t.sent.Load(), Received: t.received.Load(), Dropped: t.dropped.Load()}
}

// EventsOut implements mir.ActiveModule.
func (t *Transport) EventsOut() <-chan mir.EventList { return t.out }

// ApplyEvents implements mir.ActiveModule: it delivers the messages of
// events.SendMessage events and releases follow-ups once their parent is
// handed over. It never blocks.
func (t *Transport) ApplyEvents(_ context.Context, evs mir.EventList) error {
	t.mu.Lock()
	stopped := t.stopped
	t.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.SendMessage:
			t.send(p)
		case events.Init:
		default:
			return fmt.Errorf("memnet: unexpected event %s", mir.PayloadName(e.Payload))
		}
		if len(e.Next) > 0 {
			t.enqueue(false, e.Next...)
		}
	}
	return nil
}

func (t *Transport) send(p events.SendMessage) {
	var data []byte
	var encErr error
	for _, dest := range p.Destinations {
		if dest == t.self {
			if err := mir.CheckPayload(p.Msg); err != nil || !p.DestModule.Valid() {
				t.dropped.Add(1)
				continue
			}
			t.sent.Add(1)
			t.enqueue(true, mir.NewEvent(p.DestModule, events.MessageReceived{From: t.self, Msg: p.Msg}))
			continue
		}
		if data == nil && encErr == nil {
			data, encErr = mir.EncodePayload(p.Msg)
			if encErr == nil && !p.DestModule.Valid() {
				encErr = fmt.Errorf("memnet: bad destination module %q", p.DestModule)
			}
		}
		peer := t.net.route(t.self, dest)
		if encErr != nil || peer == nil {
			t.dropped.Add(1)
			continue
		}
		msg, err := mir.DecodePayload(data) // a private copy per destination
		if err != nil {
			t.dropped.Add(1)
			continue
		}
		if !peer.enqueue(true, mir.NewEvent(p.DestModule, events.MessageReceived{From: t.self, Msg: msg})) {
			t.dropped.Add(1)
			continue
		}
		t.sent.Add(1)
	}
}

// enqueue queues events for Run to emit. Messages beyond the inbox size are
// refused (false); follow-ups are always accepted.
func (t *Transport) enqueue(message bool, evs ...mir.Event) bool {
	t.mu.Lock()
	if t.stopped || (message && t.messages >= t.net.inboxSize) {
		t.mu.Unlock()
		return false
	}
	if message {
		t.messages += len(evs)
	}
	t.inbox = append(t.inbox, evs...)
	t.mu.Unlock()
	select {
	case t.signal <- struct{}{}:
	default:
	}
	return true
}

// Run implements mir.Runner: it emits queued events until ctx is done, then
// closes EventsOut and returns nil.
func (t *Transport) Run(ctx context.Context) error {
	defer close(t.out)
	defer func() {
		t.mu.Lock()
		t.stopped = true
		t.inbox = nil
		t.mu.Unlock()
	}()
	for {
		select {
		case <-t.signal:
		case <-ctx.Done():
			return nil
		}
		t.mu.Lock()
		batch := t.inbox
		n := t.messages
		t.inbox, t.messages = nil, 0
		t.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		select {
		case t.out <- batch:
			t.received.Add(uint64(n))
		case <-ctx.Done():
			return nil
		}
	}
}
