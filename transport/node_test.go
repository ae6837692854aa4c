package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sample"
)

// deliveryCounter is an interceptor that counts sample.Delivered events
// dispatched to the app module and closes done at want.
type deliveryCounter struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (d *deliveryCounter) Intercept(kind mir.RecordKind, module mir.ModuleID, evs mir.EventList) error {
	if kind != mir.RecordDispatch || module != "app" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range evs {
		if _, ok := e.Payload.(sample.Delivered); ok {
			d.n++
			if d.n == d.want {
				close(d.done)
			}
		}
	}
	return nil
}

// TestMirNodes runs the sample reliable-broadcast protocol on four mir
// nodes connected by real libp2p transports: every node delivers every
// broadcast.
func TestMirNodes(t *testing.T) {
	const n, perNode = 4, 5
	ids := nodeIDs(n)
	keys := crypto.TestKeys(11, n)
	bare := setOf(t, ids, keys, nil)
	trs := make([]*Transport, n)
	addrs := map[mir.NodeID][]string{}
	for i, id := range ids {
		tr, err := New(Config{
			Self: id, PrivKey: keys[i].Priv, ListenAddrs: loopback, Members: bare,
			AllowedModules: []mir.ModuleID{"rbc"}, Params: testParams(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		trs[i] = tr
		addrs[id] = addrsOf(tr, "")
	}
	full := setOf(t, ids, keys, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	nodes := make([]*mir.Node, n)
	counters := make([]*deliveryCounter, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		if err := trs[i].UpdateMembership(full); err != nil {
			t.Fatal(err)
		}
		counters[i] = &deliveryCounter{want: n * perNode, done: make(chan struct{})}
		mods := map[mir.ModuleID]mir.Module{
			"rbc": sample.NewRBC(id, ids),
			"app": sample.NewCollector(),
			"net": trs[i],
		}
		nd, err := mir.NewNode(id, mir.DefaultNodeParams(), mods, counters[i])
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nd.Run(ctx); !errors.Is(err, mir.ErrStopped) {
				errs <- fmt.Errorf("node %s: %w", id, err)
			}
		}()
	}
	defer func() {
		for _, nd := range nodes {
			nd.Stop()
		}
		wg.Wait()
	}()
	for i, nd := range nodes {
		evs := make(mir.EventList, perNode)
		for k := range evs {
			evs[k] = mir.NewEvent("rbc", sample.Broadcast{Data: []byte(fmt.Sprintf("%s-%d", ids[i], k))})
		}
		if err := nd.InjectEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range counters {
		select {
		case <-c.done:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("node %s delivered %d of %d", ids[i], c.n, n*perNode)
		}
	}
}

// TestMetrics: the counters are exported to Prometheus per peer.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	nodes, _ := cluster(t, 2, func(c *Config) {
		if c.Self == "n0" {
			c.Metrics = reg
		}
	})
	send(t, nodes[0].tr, []mir.NodeID{"n1"}, "app", testMsg{Seq: 1})
	waitFor(t, waitLong, "delivery", func() bool { return nodes[1].in.count() == 1 })
	waitFor(t, waitLong, "frame counted", func() bool { return nodes[0].tr.Stats().Peers["n1"].FramesSent == 1 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "mirsubnet_transport_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "mirsubnet_transport_frames_sent_total" && labels["peer"] == "n1" && labels["node"] == "n0" {
				if v := m.GetCounter().GetValue(); v != 1 {
					t.Errorf("frames_sent_total{peer=n1} = %v", v)
				}
			}
		}
		found[mf.GetName()] = true
	}
	for _, name := range []string{"bytes_sent_total", "bytes_received_total", "frames_sent_total", "frames_received_total",
		"frames_dropped_total", "reconnects_total", "send_queue_frames", "connections_refused_total"} {
		if !found["mirsubnet_transport_"+name] {
			t.Errorf("metric %s missing", name)
		}
	}
	// The collector is unregistered on Close, so a restarted transport can
	// register again.
	nodes[0].stop()
	if err := reg.Register(nodes[0].tr.reg); err != nil {
		t.Fatalf("collector still registered after Close: %v", err)
	}
}
