package sample

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// MemNetOption configures NewMemNet.
type MemNetOption func(*memNetConfig)

type memNetConfig struct {
	seed     int64
	reorder  bool
	maxDelay time.Duration
}

// WithReorder makes every node's network module deliver the messages that
// are waiting for it in a random order drawn from a source seeded with seed
// (and the node's index in members).
func WithReorder(seed int64) MemNetOption {
	return func(c *memNetConfig) { c.seed, c.reorder = seed, true }
}

// WithMaxDelay makes every node's network module wait a random time up to
// max (drawn from the seeded source of WithReorder, seed 0 without it) before
// delivering each batch of waiting messages.
func WithMaxDelay(max time.Duration) MemNetOption {
	return func(c *memNetConfig) { c.maxDelay = max }
}

// NetModule is one node's end of an in-memory network made by NewMemNet: an
// active module (ModNet) that sends the messages of events.SendMessage to the
// other nodes' NetModules, which emit them as events.MessageReceived. Every
// message is encoded and decoded on the way (mir.EncodePayload), so nodes
// share no memory and unregistered messages are caught as on a real network.
// Sending never blocks: each NetModule queues what it has not delivered yet,
// without bound, so a node that is not running (a crashed node) only holds
// memory.
type NetModule struct {
	self mir.NodeID
	// peers maps every member to its module; read-only after NewMemNet.
	peers map[mir.NodeID]*NetModule
	cfg   memNetConfig
	out   chan mir.EventList

	mu sync.Mutex
	// inbox holds the messages for this node not yet emitted; guarded by mu.
	inbox mir.EventList
	// wake has a token when inbox may be non-empty.
	wake chan struct{}
	// rng draws reordering and delays; used by Run only.
	rng *rand.Rand

	sent, received, dropped atomic.Uint64
}

// NewMemNet connects members in memory and returns the network module of
// each. A module's Run must be running (the node runs it) for it to deliver.
func NewMemNet(members []mir.NodeID, opts ...MemNetOption) map[mir.NodeID]*NetModule {
	var cfg memNetConfig
	for _, o := range opts {
		o(&cfg)
	}
	peers := make(map[mir.NodeID]*NetModule, len(members))
	for i, id := range members {
		peers[id] = &NetModule{
			self:  id,
			peers: peers,
			cfg:   cfg,
			out:   make(chan mir.EventList),
			wake:  make(chan struct{}, 1),
			rng:   rand.New(rand.NewSource(cfg.seed + int64(i))),
		}
	}
	return peers
}

// NetStats counts what a NetModule did.
type NetStats struct {
	// Sent counts messages handed to a destination's queue.
	Sent uint64
	// Received counts events emitted to the node (messages and released
	// follow-ups).
	Received uint64
	// Dropped counts messages to unknown destinations and messages that do
	// not encode or decode.
	Dropped uint64
}

// Stats returns the module's counters; it is safe for concurrent use.
func (m *NetModule) Stats() NetStats {
	return NetStats{Sent: m.sent.Load(), Received: m.received.Load(), Dropped: m.dropped.Load()}
}

// EventsOut implements mir.ActiveModule.
func (m *NetModule) EventsOut() <-chan mir.EventList { return m.out }

// ApplyEvents implements mir.ActiveModule: it sends the messages of
// SendMessage events. It never blocks.
func (m *NetModule) ApplyEvents(_ context.Context, evs mir.EventList) error {
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.SendMessage:
			m.send(p)
		case events.Init:
		default:
			return fmt.Errorf("sample: net: unexpected event %s", mir.PayloadName(e.Payload))
		}
		if len(e.Next) > 0 {
			// Sending is done once queued; release the follow-ups.
			m.deliver(e.Next...)
		}
	}
	return nil
}

func (m *NetModule) send(p events.SendMessage) {
	data, err := mir.EncodePayload(p.Msg)
	if err != nil {
		m.dropped.Add(uint64(len(p.Destinations)))
		return
	}
	for _, dest := range p.Destinations {
		peer := m.peers[dest]
		if peer == nil {
			m.dropped.Add(1)
			continue
		}
		msg, err := mir.DecodePayload(data) // a copy per destination
		if err != nil {
			m.dropped.Add(1)
			continue
		}
		m.sent.Add(1)
		peer.deliver(mir.NewEvent(p.DestModule, events.MessageReceived{From: m.self, Msg: msg}))
	}
}

// deliver queues events to be emitted by m.
func (m *NetModule) deliver(evs ...mir.Event) {
	m.mu.Lock()
	m.inbox = append(m.inbox, evs...)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run implements mir.Runner: it emits queued messages until ctx is done.
func (m *NetModule) Run(ctx context.Context) error {
	for {
		select {
		case <-m.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
		batch := m.inbox
		m.inbox = nil
		m.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if m.cfg.reorder {
			m.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		}
		if m.cfg.maxDelay > 0 {
			t := time.NewTimer(time.Duration(m.rng.Int63n(int64(m.cfg.maxDelay) + 1)))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		select {
		case m.out <- batch:
			m.received.Add(uint64(len(batch)))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
