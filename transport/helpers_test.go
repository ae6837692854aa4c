package transport

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// TestMain checks that no goroutine outlives the tests: everything this
// package starts is stopped by Run and Close, and go-libp2p, quic-go and
// go-libp2p-pubsub (as of go-libp2p v0.51.0, pubsub v0.15.0) stop theirs
// when a host closes, so no goleak.Ignore option is needed. If a dependency
// upgrade adds a process-wide background goroutine, ignore it here by its
// top function (goleak.IgnoreTopFunction) with a comment naming it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The test message; the transport package owns tags TagBaseTransport+0..99
// and its tests use +90 and up.
type testMsg struct {
	_    struct{} `cbor:",toarray"`
	Seq  uint64
	Data []byte
}

func init() { mir.RegisterPayload(mir.TagBaseTransport+90, testMsg{}) }

// unregisteredMsg has no tag: sending it must be refused.
type unregisteredMsg struct{ X int }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

const waitLong = 30 * time.Second

// inbox collects what a transport emits.
type inbox struct {
	mu  sync.Mutex
	evs []mir.Event
	at  []time.Time // when each event was collected (virtual time in a synctest bubble)
}

func (b *inbox) add(evs mir.EventList) {
	now := time.Now()
	b.mu.Lock()
	b.evs = append(b.evs, evs...)
	for range evs {
		b.at = append(b.at, now)
	}
	b.mu.Unlock()
}

func (b *inbox) events() []mir.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]mir.Event(nil), b.evs...)
}

// received returns the MessageReceived events with a testMsg.
func (b *inbox) received() []received {
	b.mu.Lock()
	evs := append([]mir.Event(nil), b.evs...)
	at := append([]time.Time(nil), b.at...)
	b.mu.Unlock()
	var out []received
	for i, e := range evs {
		mr, ok := e.Payload.(events.MessageReceived)
		if !ok {
			continue
		}
		m, ok := mr.Msg.(testMsg)
		if !ok {
			continue
		}
		out = append(out, received{Dest: e.Dest, From: mr.From, Seq: m.Seq, Len: len(m.Data), At: at[i]})
	}
	return out
}

func (b *inbox) count() int { return len(b.received()) }

type received struct {
	Dest mir.ModuleID
	From mir.NodeID
	Seq  uint64
	Len  int
	At   time.Time // when the transport emitted it
}

// tnode is a running transport under test.
type tnode struct {
	id   mir.NodeID
	key  crypto.KeyPair
	tr   *Transport
	in   *inbox
	stop func() // stops Run, waits for it and closes the transport; idempotent
}

func testParams() Params {
	return Params{ReconnectMin: 10 * time.Millisecond, ReconnectMax: 300 * time.Millisecond, DialTimeout: 5 * time.Second}
}

var loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// startNode starts a transport and its Run, and drains EventsOut into an
// inbox. The node is stopped at the end of the test.
func startNode(t testing.TB, id mir.NodeID, key crypto.KeyPair, members *membership.Set, mod func(*Config)) *tnode {
	t.Helper()
	cfg := Config{
		Self:           id,
		PrivKey:        key.Priv,
		ListenAddrs:    loopback,
		Members:        members,
		AllowedModules: []mir.ModuleID{"app"},
		Params:         testParams(),
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	n := &tnode{id: id, key: key, tr: tr, in: &inbox{}}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- tr.Run(ctx) }()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for evs := range tr.EventsOut() {
			n.in.add(evs)
		}
	}()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-runErr; err != nil {
				t.Errorf("Run(%s): %v", id, err)
			}
			<-drained
			if err := tr.Close(); err != nil {
				t.Errorf("Close(%s): %v", id, err)
			}
		})
	}
	t.Cleanup(n.stop)
	return n
}

// addrsOf returns a transport's addresses of one kind ("tcp" or "quic-v1"),
// or all of them for "".
func addrsOf(tr *Transport, kind string) []string {
	var out []string
	for _, a := range tr.Addrs() {
		if kind == "" || strings.Contains(a.String(), "/"+kind+"/") || strings.HasSuffix(a.String(), "/"+kind) {
			out = append(out, a.String())
		}
	}
	return out
}

// setOf builds a strict membership; addrs may be nil.
func setOf(t testing.TB, ids []mir.NodeID, keys []crypto.KeyPair, addrs map[mir.NodeID][]string) *membership.Set {
	t.Helper()
	vals := make([]membership.Validator, len(ids))
	for i, id := range ids {
		vals[i] = membership.Validator{ID: id, PeerID: keys[i].ID.String(), Addrs: addrs[id], Weight: membership.NewWeight(1)}
	}
	s, err := membership.NewSet(vals)
	if err != nil {
		t.Fatalf("membership: %v", err)
	}
	return s
}

func nodeIDs(n int) []mir.NodeID {
	ids := make([]mir.NodeID, n)
	for i := range ids {
		ids[i] = mir.NodeID(fmt.Sprintf("n%d", i))
	}
	return ids
}

// cluster starts n members on loopback. Even nodes are dialed over TCP, odd
// ones over QUIC. They start with a membership without addresses (ports are
// only known once they listen) and get the full one with UpdateMembership.
func cluster(t testing.TB, n int, mod func(*Config)) ([]*tnode, *membership.Set) {
	t.Helper()
	ids := nodeIDs(n)
	keys := crypto.TestKeys(1, n)
	bare := setOf(t, ids, keys, nil)
	nodes := make([]*tnode, n)
	addrs := map[mir.NodeID][]string{}
	for i, id := range ids {
		nodes[i] = startNode(t, id, keys[i], bare, mod)
		kind := "tcp"
		if i%2 == 1 {
			kind = "quic-v1"
		}
		addrs[id] = addrsOf(nodes[i].tr, kind)
		if len(addrs[id]) == 0 {
			t.Fatalf("%s has no %s address among %v", id, kind, nodes[i].tr.Addrs())
		}
	}
	full := setOf(t, ids, keys, addrs)
	for _, nd := range nodes {
		if err := nd.tr.UpdateMembership(full); err != nil {
			t.Fatalf("UpdateMembership(%s): %v", nd.id, err)
		}
	}
	return nodes, full
}

// send hands a transport one SendMessage.
func send(t testing.TB, tr *Transport, dests []mir.NodeID, module mir.ModuleID, msg any) {
	t.Helper()
	ev := mir.NewEvent(ModuleID, events.SendMessage{Destinations: dests, DestModule: module, Msg: msg})
	if err := tr.ApplyEvents(context.Background(), mir.EventList{ev}); err != nil {
		t.Fatalf("ApplyEvents: %v", err)
	}
}

func mustAddr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
