package transport

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"

	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// The tests in this file run the transport on go-libp2p's simulated QUIC
// network inside synctest bubbles: time is virtual, links have a fixed
// latency and bandwidth, and no real socket is opened. Everything they start
// (simnet, hosts, transports) is created and stopped inside the bubble.

// fastLink is a 100 Mbit/s link each way.
var fastLink = simnet.NodeBiDiLinkSettings{
	Downlink: simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
	Uplink:   simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
}

// newSimnet starts a simulated network whose packets take latency one way.
// It is closed at the end of the test, after the nodes (cleanups run last
// in, first out).
func newSimnet(t *testing.T, latency time.Duration) *simnet.Simnet {
	t.Helper()
	sn := &simnet.Simnet{LatencyFunc: simnet.StaticLatency(latency)}
	sn.Start()
	t.Cleanup(sn.Close)
	return sn
}

// simAddr is the simulated QUIC address of the i-th node.
func simAddr(i int) string { return fmt.Sprintf("/ip4/1.0.0.%d/udp/8000/quic-v1", i+1) }

// onSimnet puts a node's host on sn at simAddr(i) behind link, through the
// existing Config fields.
func onSimnet(sn *simnet.Simnet, i int, link simnet.NodeBiDiLinkSettings, mod func(*Config)) func(*Config) {
	return func(c *Config) {
		c.ListenAddrs = []string{simAddr(i)}
		c.HostOptions = append(c.HostOptions,
			simlibp2p.QUICSimnet(sn, link),
			// Every node listens on the address its peers dial: there is
			// nothing for observed-address discovery to find.
			libp2p.DisableIdentifyAddressDiscovery(),
		)
		if mod != nil {
			mod(c)
		}
	}
}

// simSet is the membership of one node per key, node i at simAddr(i).
func simSet(t *testing.T, keys []crypto.KeyPair) *membership.Set {
	t.Helper()
	ids := nodeIDs(len(keys))
	addrs := map[mir.NodeID][]string{}
	for i, id := range ids {
		addrs[id] = []string{simAddr(i)}
	}
	return setOf(t, ids, keys, addrs)
}

// simCluster starts a member per key on sn; links[i] (or fastLink if links
// is short) is node i's link, and mod, if set, adjusts node i's Config.
// Addresses are known in advance, so every node starts with the full
// membership.
func simCluster(t *testing.T, sn *simnet.Simnet, keys []crypto.KeyPair, links []simnet.NodeBiDiLinkSettings, mod func(i int, c *Config)) []*tnode {
	t.Helper()
	set := simSet(t, keys)
	nodes := make([]*tnode, len(keys))
	for i, id := range nodeIDs(len(keys)) {
		link := fastLink
		if i < len(links) {
			link = links[i]
		}
		nodes[i] = startNode(t, id, keys[i], set, onSimnet(sn, i, link, func(c *Config) {
			if mod != nil {
				mod(i, c)
			}
		}))
	}
	return nodes
}

// waitVirtual waits, in virtual time, until cond holds, failing the test if
// that takes more than limit. Each check follows synctest.Wait, so it sees
// everything the bubble could do at that instant; only then is virtual time
// moved on by a millisecond.
func waitVirtual(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("%s did not happen within %v of virtual time", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// others returns ids without self.
func others(ids []mir.NodeID, self mir.NodeID) []mir.NodeID {
	return slices.DeleteFunc(slices.Clone(ids), func(id mir.NodeID) bool { return id == self })
}

// TestSimnetExchange: four validators on 25 ms links send to each other; all
// messages arrive, in order per sender, and none before the network could
// have carried it: the first round needs the QUIC handshake, and on the
// warm connections a message takes one one-way latency and less than two.
func TestSimnetExchange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			n       = 4
			perPeer = 20
			latency = 25 * time.Millisecond
		)
		sn := newSimnet(t, latency)
		nodes := simCluster(t, sn, crypto.TestKeys(21, n), nil, nil)
		ids := nodeIDs(n)

		start := time.Now()
		for i, nd := range nodes {
			for k := range perPeer {
				send(t, nd.tr, others(ids, nd.id), "app", testMsg{Seq: uint64(i*1000 + k), Data: []byte{byte(i)}})
			}
		}
		want := (n - 1) * perPeer
		waitVirtual(t, 10*time.Second, "the first round", func() bool {
			for _, nd := range nodes {
				if nd.in.count() < want {
					return false
				}
			}
			return true
		})
		for _, nd := range nodes {
			got := nd.in.received()
			if len(got) != want {
				t.Fatalf("%s received %d messages, want %d", nd.id, len(got), want)
			}
			next := map[mir.NodeID]uint64{}
			first := time.Duration(-1)
			for _, r := range got {
				i := slices.Index(ids, r.From)
				if i < 0 || r.From == nd.id {
					t.Fatalf("%s: message from %q", nd.id, r.From)
				}
				if w := uint64(i*1000) + next[r.From]; r.Seq != w {
					t.Fatalf("%s: from %s got seq %d, want %d", nd.id, r.From, r.Seq, w)
				}
				next[r.From]++
				if d := r.At.Sub(start); first < 0 || d < first {
					first = d
				}
			}
			t.Logf("%s: first message after %v, last after %v", nd.id, first, got[len(got)-1].At.Sub(start))
			// A fresh connection carries nothing before its handshake has
			// made a round trip.
			if first < 2*latency {
				t.Fatalf("%s: a message arrived %v after it was sent on a fresh connection, below one round trip (%v)", nd.id, first, 2*latency)
			}
		}

		// The connections are up: one more message each way takes one
		// one-way latency (plus the time to put it on the wire), and less
		// than two.
		const warm = 1 << 20
		sent := time.Now()
		for _, nd := range nodes {
			send(t, nd.tr, others(ids, nd.id), "app", testMsg{Seq: warm})
		}
		waitVirtual(t, 10*time.Second, "the warm round", func() bool {
			for _, nd := range nodes {
				if nd.in.count() < want+n-1 {
					return false
				}
			}
			return true
		})
		var slowest time.Duration
		for _, nd := range nodes {
			for _, r := range nd.in.received()[want:] {
				d := r.At.Sub(sent)
				if r.Seq != warm || d < latency || d >= 2*latency {
					t.Errorf("%s: warm message %d from %s took %v, want [%v, %v)", nd.id, r.Seq, r.From, d, latency, 2*latency)
				}
				slowest = max(slowest, d)
			}
		}
		t.Logf("warm round: slowest message took %v", slowest)
	})
}

// queuedBytes returns the bytes in tr's send queue to id.
func queuedBytes(tr *Transport, id mir.NodeID) int64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.peers[id].queuedBytes.Load()
}

// TestSimnetSlowPeer: n1's downlink carries 1 Mbit/s while n0 offers it
// about 13 Mbit/s of 16 KiB frames, and the same frames to n2 on a fast
// link. n0's queue to n1 stays within SendQueue and SendQueueBytes, the
// excess is dropped and counted, every frame written to n1 still arrives,
// and n2 gets every frame: a slow member does not hold up the others.
func TestSimnetSlowPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			latency    = 10 * time.Millisecond
			frames     = 300
			every      = 10 * time.Millisecond
			payload    = 16 << 10
			queue      = 32
			queueBytes = 256 << 10 // binds before queue: 15 frames
		)
		slowLink := fastLink
		slowLink.Downlink.BitsPerSecond = 1 * simlibp2p.OneMbps
		sn := newSimnet(t, latency)
		nodes := simCluster(t, sn, crypto.TestKeys(22, 3), []simnet.NodeBiDiLinkSettings{fastLink, slowLink, fastLink}, func(_ int, c *Config) {
			c.Params.SendQueue = queue
			c.Params.SendQueueBytes = queueBytes
			c.Params.MaxFrameSize = 64 << 10
		})
		a, slow, fast := nodes[0], nodes[1], nodes[2]
		both := []mir.NodeID{slow.id, fast.id}

		send(t, a.tr, both, "app", testMsg{Seq: 0})
		waitVirtual(t, 10*time.Second, "the first message at both", func() bool {
			return slow.in.count() == 1 && fast.in.count() == 1
		})

		data := make([]byte, payload)
		frame, err := EncodeFrame("app", testMsg{Seq: 1, Data: data}, 64<<10) // the smallest of the burst
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := 1; i <= frames; i++ {
			send(t, a.tr, both, "app", testMsg{Seq: uint64(i), Data: data})
			st := a.tr.Stats().Peers[slow.id]
			if st.Queued > queue {
				t.Fatalf("frame %d: queue to the slow peer holds %d frames, limit %d", i, st.Queued, queue)
			}
			if b := queuedBytes(a.tr, slow.id); b > queueBytes {
				t.Fatalf("frame %d: queue to the slow peer holds %d bytes, limit %d", i, b, queueBytes)
			}
			time.Sleep(every) // pace the offered load in virtual time
		}
		waitVirtual(t, 10*time.Second, "every frame at the fast peer", func() bool { return fast.in.count() == frames+1 })
		t.Logf("fast peer had all %d frames %v after the first was offered", frames, time.Since(start))

		st := a.tr.Stats().Peers[slow.id]
		if st.MaxQueued > queue || st.MaxQueued*len(frame) > queueBytes {
			t.Errorf("queue to the slow peer reached %d frames of at least %d bytes; limits %d frames, %d bytes", st.MaxQueued, len(frame), queue, queueBytes)
		}
		if st.Drops[DropQueueFull] == 0 {
			t.Errorf("no queue-full drops towards the slow peer: %+v", st)
		}
		if fs := a.tr.Stats().Peers[fast.id]; fs.Dropped() != 0 || fs.FramesSent != frames+1 {
			t.Errorf("fast peer: %+v", fs)
		}
		got := fast.in.received()
		for i, r := range got {
			if r.Seq != uint64(i) {
				t.Fatalf("fast peer: message %d has seq %d", i, r.Seq)
			}
		}

		// What n0 wrote to the slow peer still arrives, in order; nothing is
		// lost silently: every frame was either written or dropped and
		// counted.
		waitVirtual(t, time.Minute, "the slow peer's backlog to drain", func() bool {
			s := a.tr.Stats().Peers[slow.id]
			return s.Queued == 0 && uint64(slow.in.count()) == s.FramesSent
		})
		st = a.tr.Stats().Peers[slow.id]
		if st.FramesSent+st.Dropped() != frames+1 || st.Dropped() != st.Drops[DropQueueFull] {
			t.Errorf("slow peer: %d written + %d dropped != %d offered: %+v", st.FramesSent, st.Dropped(), frames+1, st)
		}
		prev := int64(-1)
		for _, r := range slow.in.received() {
			if int64(r.Seq) <= prev {
				t.Fatalf("slow peer: seq %d after %d", r.Seq, prev)
			}
			prev = int64(r.Seq)
		}
		t.Logf("slow peer: offered %d frames, written %d, dropped %d, max queued %d; drained %v after the first was offered",
			frames+1, st.FramesSent, st.Drops[DropQueueFull], st.MaxQueued, time.Since(start))
	})
}

// TestSimnetRestartedPeer: n2 stops; while it is down n0's and n1's dials
// to it time out (a stopped node on the simulated network drops packets
// silently) and back off; it restarts with the same key and address, and
// without its peers' addresses, so that only n0 and n1 can reconnect. They
// do so within one DialTimeout plus ReconnectMax of virtual time, the
// reconnection is counted, a frame queued while n2 was down is delivered,
// and messages flow both ways again.
func TestSimnetRestartedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			latency = 10 * time.Millisecond
			down    = 10 * time.Second
		)
		params := func(c *Config) {
			c.Params.ReconnectMin = 100 * time.Millisecond
			c.Params.ReconnectMax = 2 * time.Second
			c.Params.DialTimeout = time.Second
		}
		sn := newSimnet(t, latency)
		keys := crypto.TestKeys(23, 3)
		ids := nodeIDs(3)
		nodes := simCluster(t, sn, keys, nil, func(_ int, c *Config) { params(c) })
		a, b, c := nodes[0], nodes[1], nodes[2]

		// exchange sends one message from every node to every other and
		// waits for all of them.
		exchange := func(seq uint64, nodes []*tnode) {
			t.Helper()
			base := make([]int, len(nodes))
			for i, nd := range nodes {
				base[i] = nd.in.count()
				send(t, nd.tr, others(ids, nd.id), "app", testMsg{Seq: seq})
			}
			waitVirtual(t, 10*time.Second, fmt.Sprintf("round %d", seq), func() bool {
				for i, nd := range nodes {
					if nd.in.count() < base[i]+len(nodes)-1 {
						return false
					}
				}
				return true
			})
			for i, nd := range nodes {
				for _, r := range nd.in.received()[base[i]:] {
					if r.Seq != seq {
						t.Fatalf("%s: round %d got %+v", nd.id, seq, r)
					}
				}
			}
		}
		exchange(1, nodes)

		c.stop()
		// Let the peers notice and fail to redial for a while, until their
		// backoff reaches ReconnectMax. A frame to n2 meanwhile waits in the
		// queue (sending never blocks).
		time.Sleep(down)
		send(t, a.tr, []mir.NodeID{c.id}, "app", testMsg{Seq: 100})
		for _, nd := range []*tnode{a, b} {
			if st := nd.tr.Stats().Peers[c.id]; st.Connected || st.Reconnects != 0 {
				t.Fatalf("%s: n2 down, but %+v", nd.id, st)
			}
		}

		restarted := startNode(t, c.id, keys[2], setOf(t, ids, keys, map[mir.NodeID][]string{c.id: {simAddr(2)}}), onSimnet(sn, 2, fastLink, params))
		back := time.Now()
		waitVirtual(t, 10*time.Second, "n0 and n1 to reconnect", func() bool {
			return a.tr.Stats().Peers[c.id].Reconnects == 1 && b.tr.Stats().Peers[c.id].Reconnects == 1
		})
		took := time.Since(back)
		t.Logf("reconnected %v after the restart", took)
		if limit := time.Second + 2*time.Second + 10*latency; took > limit {
			t.Errorf("reconnecting took %v of virtual time, want at most DialTimeout + ReconnectMax + handshake (%v)", took, limit)
		}
		// The frame queued while n2 was down waited for the new stream.
		waitVirtual(t, time.Second, "the queued frame at the restarted n2", func() bool { return restarted.in.count() == 1 })
		if r := restarted.in.received()[0]; r.From != a.id || r.Seq != 100 {
			t.Fatalf("restarted n2 received %+v", r)
		}
		exchange(2, []*tnode{a, b, restarted})
	})
}
