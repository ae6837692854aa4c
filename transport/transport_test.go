package transport

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestNewRejectsBadConfig(t *testing.T) {
	keys := crypto.TestKeys(7, 2)
	ids := nodeIDs(2)
	good := setOf(t, ids, keys, nil)
	base := func() Config {
		return Config{Self: "n0", PrivKey: keys[0].Priv, ListenAddrs: loopback, Members: good, AllowedModules: []mir.ModuleID{"app"}}
	}
	cases := map[string]func(*Config){
		"sim set":          func(c *Config) { c.Members = membership.TestSet(ids, nil) },
		"nil set":          func(c *Config) { c.Members = nil },
		"not a member":     func(c *Config) { c.Self = "n9" },
		"wrong key":        func(c *Config) { c.PrivKey = keys[1].Priv },
		"no key":           func(c *Config) { c.PrivKey = nil },
		"no self":          func(c *Config) { c.Self = "" },
		"no listen addrs":  func(c *Config) { c.ListenAddrs = nil },
		"bad listen addr":  func(c *Config) { c.ListenAddrs = []string{"/ip4/nope"} },
		"sub-module":       func(c *Config) { c.AllowedModules = []mir.ModuleID{"iss/pbft"} },
		"bad module":       func(c *Config) { c.AllowedModules = []mir.ModuleID{""} },
		"negative queue":   func(c *Config) { c.Params.SendQueue = -1 },
		"max below min":    func(c *Config) { c.Params.ReconnectMin, c.Params.ReconnectMax = time.Second, time.Millisecond },
		"bytes below size": func(c *Config) { c.Params.MaxFrameSize, c.Params.SendQueueBytes = 1<<20, 1<<10 },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := base()
			mod(&cfg)
			tr, err := New(cfg)
			if err == nil {
				tr.Close()
				t.Fatal("New accepted a bad config")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

// TestExchange: four hosts (two dialed over TCP, two over QUIC) send to each
// other and to themselves through SendMessage; every message arrives once,
// in order per sender, attributed to the authenticated sender, at the module
// it was addressed to.
func TestExchange(t *testing.T) {
	const n, perPeer = 4, 50
	nodes, _ := cluster(t, n, nil)
	ids := nodeIDs(n)
	for i, nd := range nodes {
		for k := range perPeer {
			module := mir.ModuleID("app")
			if k%2 == 1 {
				module = "app/sub"
			}
			send(t, nd.tr, ids, module, testMsg{Seq: uint64(i*1000 + k), Data: []byte{byte(i)}})
		}
	}
	for _, nd := range nodes {
		waitFor(t, waitLong, string(nd.id)+" to receive everything", func() bool { return nd.in.count() >= n*perPeer })
	}
	for _, nd := range nodes {
		got := nd.in.received()
		if len(got) != n*perPeer {
			t.Fatalf("%s received %d messages, want %d", nd.id, len(got), n*perPeer)
		}
		next := map[mir.NodeID]uint64{}
		for _, r := range got {
			i := slices.Index(ids, r.From)
			if i < 0 {
				t.Fatalf("%s: message from unknown sender %q", nd.id, r.From)
			}
			want := uint64(i*1000) + next[r.From]
			if r.Seq != want {
				t.Fatalf("%s: from %s got seq %d, want %d (authenticated sender or order wrong)", nd.id, r.From, r.Seq, want)
			}
			wantDest := mir.ModuleID("app")
			if r.Seq%2 == 1 {
				wantDest = "app/sub"
			}
			if r.Dest != wantDest {
				t.Fatalf("%s: message %d delivered to %q, want %q", nd.id, r.Seq, r.Dest, wantDest)
			}
			next[r.From]++
		}
		st := nd.tr.Stats()
		if st.Local != perPeer {
			t.Errorf("%s: %d local deliveries, want %d", nd.id, st.Local, perPeer)
		}
		for _, id := range ids {
			if id == nd.id {
				continue
			}
			ps := st.Peers[id]
			if ps.FramesSent != perPeer || ps.FramesReceived != perPeer || ps.Dropped() != 0 {
				t.Errorf("%s: stats for %s: %+v", nd.id, id, ps)
			}
			if ps.BytesSent == 0 || ps.BytesReceived == 0 {
				t.Errorf("%s: no bytes counted for %s: %+v", nd.id, id, ps)
			}
		}
	}
}

// TestReceiveFilters: frames for modules remotes may not address, messages
// that do not encode and messages to non-members are dropped and counted.
func TestReceiveFilters(t *testing.T) {
	nodes, _ := cluster(t, 2, func(c *Config) { c.Params.MaxFrameSize = 64 << 10 })
	a, b := nodes[0], nodes[1]
	send(t, a.tr, []mir.NodeID{"n1"}, "crypto", testMsg{Seq: 1}) // not allowed at b
	send(t, a.tr, []mir.NodeID{"n1"}, "app", unregisteredMsg{X: 1})
	send(t, a.tr, []mir.NodeID{"n7"}, "app", testMsg{Seq: 2})
	send(t, a.tr, []mir.NodeID{"n1"}, "app", testMsg{Seq: 3, Data: make([]byte, 65<<10)}) // above MaxFrameSize
	send(t, a.tr, []mir.NodeID{"n1"}, "app", testMsg{Seq: 4})
	waitFor(t, waitLong, "the last message", func() bool { return b.in.count() == 1 })
	if got := b.in.received(); got[0].Seq != 4 {
		t.Fatalf("b received %+v", got)
	}
	waitFor(t, waitLong, "the unknown-module drop", func() bool {
		return b.tr.Stats().Peers["n0"].Drops[DropUnknownModule] == 1
	})
	sa := a.tr.Stats()
	if d := sa.Peers["n1"].Drops; d[DropEncodeError] != 1 || d[DropTooLarge] != 1 {
		t.Errorf("a's drops towards n1: %v", d)
	}
	if d := sa.Peers[UnknownPeer].Drops[DropUnknownDestination]; d != 1 {
		t.Errorf("a's unknown-destination drops: %d", d)
	}
	if got := b.tr.Stats().Peers["n0"].FramesReceived; got != 2 {
		t.Errorf("b read %d frames from a, want 2", got)
	}
}

// TestNonMemberRefused: a peer outside the membership cannot connect (the
// gater refuses it at the handshake), its frames never arrive, and the
// refusals are counted. A non-member that the gater lets in for another
// protocol still cannot use the consensus stream.
func TestNonMemberRefused(t *testing.T) {
	keys := crypto.TestKeys(3, 3)
	okKeys, outsiderKey := keys[:2], keys[2]
	ids := nodeIDs(2)

	allowed := outsiderKey.ID // the peer b's gater admits for "other protocols"
	mkNodes := func() []*tnode {
		bare := setOf(t, ids, okKeys, nil)
		nodes := []*tnode{
			startNode(t, "n0", okKeys[0], bare, nil),
			startNode(t, "n1", okKeys[1], bare, func(c *Config) {
				c.AllowNonMember = func(p peer.ID) bool { return p == allowed }
			}),
		}
		return nodes
	}
	nodes := mkNodes()
	a, b := nodes[0], nodes[1]
	addrs := map[mir.NodeID][]string{"n0": addrsOf(a.tr, ""), "n1": addrsOf(b.tr, "")}

	// The outsider believes it is in a membership with a and b.
	outSet := setOf(t, []mir.NodeID{"n0", "n1", "x"}, []crypto.KeyPair{okKeys[0], okKeys[1], outsiderKey}, addrs)
	x := startNode(t, "x", outsiderKey, outSet, nil)
	for i := range 20 {
		send(t, x.tr, []mir.NodeID{"n0"}, "app", testMsg{Seq: uint64(i)})
	}
	waitFor(t, waitLong, "a to refuse the outsider", func() bool { return a.tr.Stats().Refused >= 2 })
	// The dialer may finish its side of the handshake before a's gater
	// refuses, so a direct dial may look successful for an instant; the
	// connection never becomes usable and is closed by a.
	refused := a.tr.Stats().Refused
	_ = x.tr.Host().Connect(context.Background(), peer.AddrInfo{ID: a.tr.ID(), Addrs: a.tr.Host().Addrs()})
	waitFor(t, waitLong, "a to refuse the direct dial", func() bool { return a.tr.Stats().Refused > refused })
	waitFor(t, waitLong, "the outsider to be disconnected", func() bool {
		return x.tr.Host().Network().Connectedness(a.tr.ID()) != network.Connected
	})
	if c := a.tr.Host().Network().Connectedness(x.tr.ID()); c == network.Connected {
		t.Fatal("a is connected to the outsider")
	}
	if st := x.tr.Stats().Peers["n0"]; st.FramesSent != 0 {
		t.Fatalf("the outsider wrote %d frames to a", st.FramesSent)
	}

	// b admits the outsider's connections (a client protocol), but not its
	// consensus stream.
	bInfo := peer.AddrInfo{ID: b.tr.ID(), Addrs: b.tr.Host().Addrs()}
	if err := x.tr.Host().Connect(context.Background(), bInfo); err != nil {
		t.Fatalf("outsider cannot connect to b although admitted: %v", err)
	}
	s, err := x.tr.Host().NewStream(context.Background(), b.tr.ID(), ProtocolID)
	if err == nil {
		frame, _ := EncodeFrame("app", testMsg{Seq: 99}, 1<<20)
		_, _ = s.Write(frame)
		_ = s.Close()
	}
	waitFor(t, waitLong, "b to refuse the outsider's consensus stream", func() bool {
		return b.tr.Stats().Peers[UnknownPeer].Drops[DropNotMember] >= 1
	})

	// Members still talk.
	full := setOf(t, ids, okKeys, addrs)
	for _, nd := range nodes {
		if err := nd.tr.UpdateMembership(full); err != nil {
			t.Fatal(err)
		}
	}
	send(t, a.tr, []mir.NodeID{"n1"}, "app", testMsg{Seq: 7})
	waitFor(t, waitLong, "b to hear from a", func() bool { return b.in.count() == 1 })
	if a.in.count() != 0 || b.in.received()[0].From != "n0" {
		t.Fatalf("unexpected deliveries: a %v, b %v", a.in.received(), b.in.received())
	}
}

// TestRestartedPeerReconnects: a peer that restarts (same key, new port) is
// redialed once the membership has its new address, and messages flow both
// ways again.
func TestRestartedPeerReconnects(t *testing.T) {
	nodes, _ := cluster(t, 3, nil)
	ids := nodeIDs(3)
	keys := crypto.TestKeys(1, 3)
	// exchange sends a round of messages from every node to every node and
	// resends what did not arrive (as the protocols do: a frame handed over
	// while a peer's stream is breaking is dropped, and counted) until
	// everything arrived.
	exchange := func(round uint64, nodes []*tnode) {
		t.Helper()
		has := func(nd *tnode, from mir.NodeID) bool {
			for _, r := range nd.in.received() {
				if r.From == from && r.Seq == round {
					return true
				}
			}
			return false
		}
		deadline := time.Now().Add(waitLong)
		for attempt := 0; ; attempt++ {
			missing := 0
			for _, from := range nodes {
				var dests []mir.NodeID
				for _, to := range nodes {
					if !has(to, from.id) {
						dests = append(dests, to.id)
					}
				}
				if len(dests) > 0 {
					missing += len(dests)
					if attempt > 0 {
						t.Logf("round %d, attempt %d: resending from %s to %v", round, attempt, from.id, dests)
					}
					send(t, from.tr, dests, "app", testMsg{Seq: round})
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				for _, x := range nodes {
					t.Logf("%s: %+v in %+v", x.id, x.tr.Stats(), x.in.received())
				}
				t.Fatalf("round %d not delivered after %d attempts", round, attempt)
			}
			// Give this attempt a moment to arrive before resending.
			settle := time.Now().Add(200 * time.Millisecond)
			waitFor(t, waitLong, "an attempt to settle", func() bool {
				if time.Now().After(settle) {
					return true
				}
				for _, to := range nodes {
					for _, from := range nodes {
						if !has(to, from.id) {
							return false
						}
					}
				}
				return true
			})
		}
	}
	exchange(1, nodes)

	nodes[2].stop()
	addrs := map[mir.NodeID][]string{"n0": addrsOf(nodes[0].tr, "tcp"), "n1": addrsOf(nodes[1].tr, "quic-v1")}
	// Messages to the dead peer wait in the queue (or are dropped while its
	// stream breaks); none of this may block or fail.
	send(t, nodes[0].tr, []mir.NodeID{"n2"}, "app", testMsg{Seq: 100})

	bare := setOf(t, ids, keys, addrs) // n2's new address not known yet
	restarted := startNode(t, "n2", keys[2], bare, nil)
	addrs["n2"] = addrsOf(restarted.tr, "tcp")
	full := setOf(t, ids, keys, addrs)
	live := []*tnode{nodes[0], nodes[1], restarted}
	for _, nd := range live {
		if err := nd.tr.UpdateMembership(full); err != nil {
			t.Fatal(err)
		}
	}
	exchange(2, live)
	for _, nd := range live[:2] {
		waitFor(t, waitLong, "reconnect counted", func() bool { return nd.tr.Stats().Peers["n2"].Reconnects >= 1 })
	}
}

// TestSlowPeer: a remote that never reads cannot make the sender's memory
// grow: the queue stays within SendQueue and the excess is dropped and
// counted.
func TestSlowPeer(t *testing.T) {
	keys := crypto.TestKeys(5, 2)
	release := make(chan struct{})
	// The slow peer: a bare libp2p host that accepts the consensus stream and
	// never reads from it.
	slow, err := libp2p.New(libp2p.Identity(keys[1].Priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 1)
	slow.SetStreamHandler(ProtocolID, func(s network.Stream) {
		select {
		case accepted <- struct{}{}:
		default:
		}
		<-release
		_ = s.Reset()
	})
	t.Cleanup(func() { _ = slow.Close() })
	t.Cleanup(func() { close(release) }) // runs before slow.Close and after the sender stopped

	var slowAddrs []string
	for _, a := range slow.Addrs() {
		slowAddrs = append(slowAddrs, a.String())
	}
	ids := nodeIDs(2)
	set := setOf(t, ids, keys, map[mir.NodeID][]string{"n1": slowAddrs})
	const queue = 32
	a := startNode(t, "n0", keys[0], set, func(c *Config) {
		c.Params.SendQueue = queue
		c.Params.MaxFrameSize = 1 << 20
		c.Params.WriteTimeout = time.Minute
	})
	send(t, a.tr, []mir.NodeID{"n1"}, "app", testMsg{Seq: 0})
	select {
	case <-accepted:
	case <-time.After(waitLong):
		t.Fatal("the slow peer never got a stream")
	}
	payload := make([]byte, 64<<10)
	const total = 300 // 19 MiB offered, beyond the muxer window and socket buffers
	for i := range total {
		send(t, a.tr, []mir.NodeID{"n1"}, "app", testMsg{Seq: uint64(i + 1), Data: payload})
		if q := a.tr.Stats().Peers["n1"].Queued; q > queue {
			t.Fatalf("queue holds %d frames, limit %d", q, queue)
		}
	}
	st := a.tr.Stats().Peers["n1"]
	if st.MaxQueued > queue {
		t.Fatalf("queue reached %d frames, limit %d", st.MaxQueued, queue)
	}
	if st.Drops[DropQueueFull] == 0 {
		t.Fatalf("no queue-full drops: %+v", st)
	}
	if st.FramesSent > total/2 {
		t.Fatalf("%d frames written to a peer that never reads", st.FramesSent)
	}
	t.Logf("offered %d frames: written %d, dropped %d, max queued %d", total+1, st.FramesSent, st.Drops[DropQueueFull], st.MaxQueued)
}

// TestStop: after Run returns, EventsOut is closed, ApplyEvents fails with
// ErrStopped, and Close is idempotent.
func TestStop(t *testing.T) {
	keys := crypto.TestKeys(9, 1)
	set := setOf(t, []mir.NodeID{"n0"}, keys, nil)
	nd := startNode(t, "n0", keys[0], set, nil)
	send(t, nd.tr, []mir.NodeID{"n0"}, "app", testMsg{Seq: 1})
	waitFor(t, waitLong, "local delivery", func() bool { return nd.in.count() == 1 })
	nd.stop()
	err := nd.tr.ApplyEvents(context.Background(), mir.EventList{mir.NewEvent(ModuleID, events.SendMessage{Destinations: []mir.NodeID{"n0"}, DestModule: "app", Msg: testMsg{}})})
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("ApplyEvents after stop: %v", err)
	}
	if err := nd.tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := nd.tr.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

// TestFollowUpsReleased: the follow-ups of a SendMessage come out once the
// message is queued.
func TestFollowUpsReleased(t *testing.T) {
	keys := crypto.TestKeys(9, 1)
	set := setOf(t, []mir.NodeID{"n0"}, keys, nil)
	nd := startNode(t, "n0", keys[0], set, nil)
	ev := mir.NewEvent(ModuleID, events.SendMessage{Destinations: []mir.NodeID{"n0"}, DestModule: "app", Msg: testMsg{Seq: 1}}).
		WithNext(mir.NewEvent("app", testMsg{Seq: 2}))
	if err := nd.tr.ApplyEvents(context.Background(), mir.EventList{ev}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitLong, "both events", func() bool { return len(nd.in.events()) == 2 })
	evs := nd.in.events()
	if _, ok := evs[0].Payload.(events.MessageReceived); !ok {
		t.Fatalf("first event %v", evs[0])
	}
	if m, ok := evs[1].Payload.(testMsg); !ok || m.Seq != 2 {
		t.Fatalf("second event %v", evs[1])
	}
	if err := nd.tr.ApplyEvents(context.Background(), mir.EventList{mir.NewEvent(ModuleID, testMsg{})}); err == nil {
		t.Fatal("an unexpected event was accepted")
	}
}

// TestMembershipRemoval: a member removed from the set is disconnected and
// can no longer reach the node.
func TestMembershipRemoval(t *testing.T) {
	nodes, full := cluster(t, 3, nil)
	send(t, nodes[2].tr, []mir.NodeID{"n0"}, "app", testMsg{Seq: 1})
	waitFor(t, waitLong, "n0 hears n2", func() bool { return nodes[0].in.count() == 1 })
	var vals []membership.Validator
	for _, v := range full.Validators() {
		if v.ID != "n2" {
			vals = append(vals, v)
		}
	}
	smaller, err := membership.NewSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].tr.UpdateMembership(smaller); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitLong, "n2 disconnected from n0", func() bool {
		return nodes[0].tr.Host().Network().Connectedness(nodes[2].tr.ID()) != network.Connected
	})
	send(t, nodes[2].tr, []mir.NodeID{"n0"}, "app", testMsg{Seq: 2})
	send(t, nodes[1].tr, []mir.NodeID{"n0"}, "app", testMsg{Seq: 3})
	waitFor(t, waitLong, "n0 hears n1", func() bool { return nodes[0].in.count() == 2 })
	waitFor(t, waitLong, "n2 refused", func() bool { return nodes[0].tr.Stats().Refused > 0 })
	for _, r := range nodes[0].in.received() {
		if r.Seq == 2 {
			t.Fatal("n0 received a message from a removed member")
		}
	}
	if _, ok := nodes[0].tr.Stats().Peers["n2"]; !ok {
		t.Fatal("a removed member's counters vanished")
	}
}
