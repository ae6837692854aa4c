package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

var log = logging.Logger("transport")

// ModuleID is the module ID the transport is registered under in a node.
const ModuleID mir.ModuleID = "net"

// ErrStopped is returned by ApplyEvents once Run has returned or Close was
// called.
var ErrStopped = errors.New("transport: stopped")

// protectTag is the connection-manager tag that keeps members' connections.
const protectTag = "mirsubnet-member"

// maxReadBatch bounds the events emitted in one batch by a stream reader.
const maxReadBatch = 256

// lifecycle states of a Transport.
type state int

const (
	stateIdle    state = iota // New returned, Run not called
	stateRunning              // Run is running
	stateStopped              // Run returned or Close was called
)

// Transport is the libp2p network module (mir.ActiveModule and mir.Runner).
// See the package documentation. Its methods are safe for concurrent use.
type Transport struct {
	self    mir.NodeID
	pid     peer.ID
	params  Params
	allowed map[mir.ModuleID]bool // top-level modules remotes may address; read-only
	host    host.Host
	gater   *gater
	reg     *registry
	metrics prometheus.Registerer // nil if metrics are not exported
	gossip  *gossip

	// ctx is cancelled by Close; it bounds the gossip and Run.
	ctx    context.Context
	cancel context.CancelFunc

	// out carries emitted batches; closed by teardown once nothing sends.
	out chan mir.EventList
	// stopCh is closed by teardown: readers stop emitting.
	stopCh chan struct{}
	// runDone is closed when a Run that started has returned.
	runDone chan struct{}

	mu sync.Mutex
	// state is the lifecycle state; it only moves forward. Guarded by mu.
	state state
	// peers holds a sender for every member other than self. Guarded by mu.
	peers map[mir.NodeID]*peerConn
	// inbound is the current inbound consensus stream of each member
	// (at most one; a newer one replaces and resets the older). Guarded by mu.
	inbound map[mir.NodeID]network.Stream
	// runCtx is Run's context while it runs (senders derive theirs from it);
	// nil otherwise. Guarded by mu.
	runCtx context.Context
	// senders counts running sender goroutines; Add only under mu while
	// running.
	senders sync.WaitGroup
	// readers counts running stream handlers; Add only under mu while not
	// stopped.
	readers sync.WaitGroup

	localMu sync.Mutex
	// local holds events for this node that did not come from the network
	// (messages to self, released follow-ups), in order. Guarded by localMu.
	local mir.EventList
	// localSignal has a token when local may be non-empty.
	localSignal chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var (
	_ mir.ActiveModule = (*Transport)(nil)
	_ mir.Runner       = (*Transport)(nil)
)

// New validates cfg, starts a libp2p host listening on cfg.ListenAddrs and
// joins the transaction gossip. The consensus senders start with Run. The
// caller must Close the transport.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Params.validate(); err != nil {
		return nil, err
	}
	params := cfg.Params.withDefaults()
	if cfg.Self == "" {
		return nil, fmt.Errorf("%w: no Self", ErrConfig)
	}
	if cfg.PrivKey == nil {
		return nil, fmt.Errorf("%w: no PrivKey", ErrConfig)
	}
	pid, err := peer.IDFromPrivateKey(cfg.PrivKey)
	if err != nil {
		return nil, fmt.Errorf("%w: PrivKey: %v", ErrConfig, err)
	}
	if err := checkMembers(cfg.Members, cfg.Self, pid); err != nil {
		return nil, err
	}
	if !cfg.Members.Contains(cfg.Self) {
		return nil, fmt.Errorf("%w: %s is not a member", ErrConfig, cfg.Self)
	}
	if len(cfg.ListenAddrs) == 0 {
		return nil, fmt.Errorf("%w: no ListenAddrs", ErrConfig)
	}
	for _, a := range cfg.ListenAddrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, a, err)
		}
	}
	allowed := make(map[mir.ModuleID]bool, len(cfg.AllowedModules))
	for _, m := range cfg.AllowedModules {
		if !m.Valid() || m.Sub() != "" {
			return nil, fmt.Errorf("%w: allowed module %q is not a top-level module ID", ErrConfig, m)
		}
		allowed[m] = true
	}

	t := &Transport{
		self:        cfg.Self,
		pid:         pid,
		params:      params,
		allowed:     allowed,
		reg:         newRegistry(cfg.Self),
		metrics:     cfg.Metrics,
		out:         make(chan mir.EventList, 16),
		stopCh:      make(chan struct{}),
		runDone:     make(chan struct{}),
		peers:       map[mir.NodeID]*peerConn{},
		inbound:     map[mir.NodeID]network.Stream{},
		localSignal: make(chan struct{}, 1),
	}
	t.reg.queues = t.queueLens
	t.gater = &gater{self: pid, allow: cfg.AllowNonMember, refused: &t.reg.refused}
	t.gater.members.Store(cfg.Members)

	opts := []libp2p.Option{
		libp2p.Identity(cfg.PrivKey),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionGater(t.gater),
		libp2p.DisableRelay(),
		libp2p.UserAgent("mirsubnet"),
	}
	if cfg.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	opts = append(opts, cfg.HostOptions...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("transport: start libp2p host: %w", err)
	}
	t.host = h
	t.ctx, t.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(ProtocolID, t.handleStream)

	t.mu.Lock()
	closePeers := t.applyMembershipLocked(cfg.Members)
	t.mu.Unlock()
	_ = closePeers // nothing to close in a new host

	if t.gossip, err = t.startGossip(cfg.OnTx); err != nil {
		t.cancel()
		_ = h.Close()
		return nil, err
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(t.reg); err != nil {
			t.gossip.close()
			t.cancel()
			_ = h.Close()
			return nil, fmt.Errorf("transport: register metrics: %w", err)
		}
	}
	log.Infow("transport started", "node", t.self, "peer", pid, "addrs", h.Addrs())
	return t, nil
}

// Host returns the libp2p host, for other protocols. Its connection gater
// admits members only (and peers Config.AllowNonMember admits).
func (t *Transport) Host() host.Host { return t.host }

// ID returns the host's peer ID.
func (t *Transport) ID() peer.ID { return t.pid }

// Addrs returns the host's listen addresses with its /p2p/ peer ID
// appended, ready to be put into a membership.
func (t *Transport) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: t.pid, Addrs: t.host.Addrs()})
	if err != nil {
		return nil // only for an empty peer ID, impossible here
	}
	return addrs
}

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats { return t.reg.stats() }

// queueLens reports the current and largest send-queue lengths of the
// current members.
func (t *Transport) queueLens() map[mir.NodeID][2]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[mir.NodeID][2]int, len(t.peers))
	for id, pc := range t.peers {
		m[id] = [2]int{len(pc.queue), int(pc.maxQueued.Load())}
	}
	return m
}

// EventsOut implements mir.ActiveModule. It is closed once Run has returned.
func (t *Transport) EventsOut() <-chan mir.EventList { return t.out }

// ApplyEvents implements mir.ActiveModule: it queues the messages of
// events.SendMessage events and ignores events.Init. It never blocks. Any
// follow-ups (Next) are released once their parent's frames are queued.
// Other events are a wiring bug and return an error.
func (t *Transport) ApplyEvents(_ context.Context, evs mir.EventList) error {
	var local mir.EventList
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.SendMessage:
			var err error
			if local, err = t.send(p, local); err != nil {
				return err
			}
		case events.Init:
		default:
			return fmt.Errorf("transport: unexpected event %s", mir.PayloadName(e.Payload))
		}
		local = append(local, e.Next...)
	}
	t.deliverLocal(local)
	return nil
}

// send queues a message for each destination and appends the events it
// delivers to self to local.
func (t *Transport) send(p events.SendMessage, local mir.EventList) (mir.EventList, error) {
	var (
		frame  []byte
		encErr error
	)
	if err := mir.CheckPayload(p.Msg); err != nil || !p.DestModule.Valid() {
		encErr = fmt.Errorf("%w: message for %q: %v", ErrFrameMalformed, p.DestModule, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == stateStopped {
		return nil, ErrStopped
	}
	for _, dest := range p.Destinations {
		if encErr != nil {
			t.reg.peer(dest).drop(DropEncodeError, 1) // dest came from a local module
			log.Warnw("message not sent", "to", dest, "err", encErr)
			continue
		}
		if dest == t.self {
			local = append(local, mir.NewEvent(p.DestModule, events.MessageReceived{From: t.self, Msg: p.Msg}))
			t.reg.local.Add(1)
			continue
		}
		pc := t.peers[dest]
		if pc == nil {
			t.reg.peer(UnknownPeer).drop(DropUnknownDestination, 1)
			continue
		}
		if frame == nil {
			f, err := EncodeFrame(p.DestModule, p.Msg, t.params.MaxFrameSize)
			if err != nil {
				reason := DropEncodeError
				if errors.Is(err, ErrFrameTooLarge) {
					reason = DropTooLarge
				}
				pc.c.drop(reason, 1)
				encErr = err
				continue
			}
			frame = f
		}
		pc.enqueue(frame)
	}
	return local, nil
}

// deliverLocal queues events for Run to emit.
func (t *Transport) deliverLocal(evs mir.EventList) {
	if len(evs) == 0 {
		return
	}
	t.localMu.Lock()
	t.local = append(t.local, evs...)
	t.localMu.Unlock()
	select {
	case t.localSignal <- struct{}{}:
	default:
	}
}

// Run implements mir.Runner: it runs a sender per member and emits local
// events until ctx is cancelled or the transport is closed. Then it resets
// the consensus streams, waits for every goroutine it owns, closes EventsOut
// and returns nil. It may be called once.
func (t *Transport) Run(ctx context.Context) error {
	t.mu.Lock()
	if t.state != stateIdle {
		t.mu.Unlock()
		return errors.New("transport: Run called twice or after Close")
	}
	t.state = stateRunning
	runCtx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(t.ctx, cancel)
	t.runCtx = runCtx
	for _, pc := range t.peers {
		t.startSenderLocked(pc)
	}
	t.mu.Unlock()
	defer close(t.runDone)
	defer stopAfter()
	defer cancel()

	t.pump(runCtx)
	cancel()
	t.teardown()
	return nil
}

// pump emits local events until ctx is done.
func (t *Transport) pump(ctx context.Context) {
	for {
		select {
		case <-t.localSignal:
		case <-ctx.Done():
			return
		}
		t.localMu.Lock()
		batch := t.local
		t.local = nil
		t.localMu.Unlock()
		if len(batch) == 0 {
			continue
		}
		select {
		case t.out <- batch:
		case <-ctx.Done():
			return
		}
	}
}

// teardown stops the consensus side: it marks the transport stopped, resets
// the inbound streams, waits for senders (whose context the caller already
// cancelled) and readers, and closes out. It runs once, from Run or Close.
func (t *Transport) teardown() {
	t.mu.Lock()
	t.state = stateStopped
	t.runCtx = nil
	streams := make([]network.Stream, 0, len(t.inbound))
	for _, s := range t.inbound {
		streams = append(streams, s)
	}
	t.mu.Unlock()
	close(t.stopCh)
	for _, s := range streams {
		_ = s.Reset()
	}
	t.senders.Wait()
	t.readers.Wait()
	close(t.out)
}

// Close stops Run (if it runs) and waits for it, leaves the gossip and shuts
// the host down. It may be called more than once; later calls return the
// first call's result.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		t.mu.Lock()
		st := t.state
		if st == stateIdle {
			t.state = stateStopped
		}
		t.mu.Unlock()
		switch st {
		case stateIdle:
			t.teardown()
		case stateRunning:
			<-t.runDone
		}
		t.gossip.close()
		t.closeErr = t.host.Close()
		if t.metrics != nil {
			t.metrics.Unregister(t.reg)
		}
	})
	return t.closeErr
}

// UpdateMembership installs a new validator set: the gater admits its
// members only, senders start for new members, stop for departed ones (whose
// connections are closed), and redial members whose addresses changed. The
// set must be a strict set; self need not be a member any more.
func (t *Transport) UpdateMembership(s *membership.Set) error {
	if err := checkMembers(s, t.self, t.pid); err != nil {
		return err
	}
	t.mu.Lock()
	t.gater.members.Store(s)
	closePeers := t.applyMembershipLocked(s)
	t.mu.Unlock()
	for _, pid := range closePeers {
		_ = t.host.Network().ClosePeer(pid)
	}
	return nil
}

// applyMembershipLocked brings t.peers and the peerstore in line with s and
// returns the peers whose connections must be closed (after mu is released).
func (t *Transport) applyMembershipLocked(s *membership.Set) []peer.ID {
	var closePeers []peer.ID
	ps := t.host.Peerstore()
	current := map[mir.NodeID]bool{}
	for _, v := range s.Validators() {
		if v.ID == t.self {
			continue
		}
		current[v.ID] = true
		pid, err := peer.Decode(v.PeerID)
		if err != nil {
			continue // impossible: a strict set holds parsed peer IDs
		}
		addrs := dialAddrs(v.Addrs)
		pc := t.peers[v.ID]
		if pc != nil && pc.pid != pid {
			closePeers = append(closePeers, t.removePeerLocked(pc))
			pc = nil
		}
		fresh := pc == nil
		if fresh {
			pc = newPeerConn(t, v.ID, pid)
			t.peers[v.ID] = pc
			t.host.ConnManager().Protect(pid, protectTag)
			if t.state == stateRunning {
				t.startSenderLocked(pc)
			}
		}
		if fresh || !slices.EqualFunc(pc.addrs, addrs, func(a, b ma.Multiaddr) bool { return a.Equal(b) }) {
			ps.ClearAddrs(pid)
			ps.AddAddrs(pid, addrs, peerstore.PermanentAddrTTL)
			pc.addrs = addrs
			if !fresh {
				pc.kickNow() // redial now at the new addresses
			}
		}
	}
	for id, pc := range t.peers {
		if !current[id] {
			closePeers = append(closePeers, t.removePeerLocked(pc))
		}
	}
	return closePeers
}

// removePeerLocked stops pc's sender, forgets pc and its addresses, resets
// its inbound stream and returns its peer ID, whose connections the caller
// closes.
func (t *Transport) removePeerLocked(pc *peerConn) peer.ID {
	delete(t.peers, pc.id)
	if pc.cancel != nil {
		pc.cancel()
	}
	if s := t.inbound[pc.id]; s != nil {
		delete(t.inbound, pc.id)
		_ = s.Reset()
	}
	t.host.ConnManager().Unprotect(pc.pid, protectTag)
	t.host.Peerstore().ClearAddrs(pc.pid)
	return pc.pid
}

// dialAddrs parses a member's addresses (validated by membership) and strips
// any /p2p/ suffix.
func dialAddrs(addrs []string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if tr, _ := peer.SplitAddr(m); len(tr) > 0 {
			out = append(out, tr)
		}
	}
	return out
}
