package iss_test

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// Benchmark harness for the ordering core: n ISS nodes (ISS, reference pool,
// HashChainApp) whose mir.Dispatchers are driven from one goroutine, with
// in-memory services in place of the active modules:
//
//   - net moves every SendMessage payload, unencoded, to the destination
//     dispatcher as MessageReceived (zero latency, no loss);
//   - wal keeps nothing and releases follow-ups (Next) at once;
//   - timer runs on a virtual clock that advances only when every node is
//     idle and no load can be submitted (so batch and empty-proposal
//     timeouts still work; view-change timeouts never fire under load).
//
// Client transactions are not signed or verified; each is submitted to every
// node's pool (no gossip). The load is closed-loop: at most window
// transactions are outstanding (submitted, not yet delivered by all nodes).

const (
	benchNodes   = 4
	benchTxBytes = 512
	benchSenders = 1024
	benchWindow  = 20000
	// benchSubmitChunk bounds the transactions submitted in one go, so that
	// submission interleaves with ordering.
	benchSubmitChunk = 2048
)

// benchParams are the ISS parameters of BenchmarkOrdering, tuned for
// throughput.
func benchParams() (iss.Params, time.Duration) {
	p := iss.DefaultParams()
	p.SegmentLength = 32
	p.NumBuckets = 128
	p.MaxInFlight = 8
	p.MaxBatchTxs = 2048
	p.MaxBatchBytes = 4 << 20
	p.EmptyProposalPeriod = 200 * time.Millisecond
	p.ViewChangeTimeout = 10 * time.Second
	p.MaxViewChangeTimeout = 60 * time.Second
	p.ResendPeriod = 500 * time.Millisecond
	return p, 20 * time.Millisecond // pool batch timeout
}

// benchApp is an iss.App that counts what it delivers.
type benchApp interface {
	iss.App
	// Stats returns the delivered transactions, non-empty batches and the
	// next sequence number expected.
	Stats() (txs, batches uint64, next ordering.SeqNr)
	Root() []byte
}

// chainApp is a HashChainApp that also counts non-empty batches.
type chainApp struct {
	iss.HashChainApp
	batches uint64
}

func (a *chainApp) Apply(sn ordering.SeqNr, b ordering.Batch) error {
	if len(b.Txs) > 0 {
		a.batches++
	}
	return a.HashChainApp.Apply(sn, b)
}

func (a *chainApp) Stats() (uint64, uint64, ordering.SeqNr) { return a.Txs, a.batches, a.Next() }

// countApp only checks the order of sequence numbers and counts: it keeps
// the application's work (HashChainApp hashes every batch again) out of the
// measurement of the ordering core. Its root is SHA-256 of the next
// sequence number, so checkpoints still agree.
type countApp struct {
	next         ordering.SeqNr
	txs, batches uint64
}

func (a *countApp) Apply(sn ordering.SeqNr, b ordering.Batch) error {
	if sn != a.next {
		return fmt.Errorf("%w: got %d, want %d", iss.ErrOutOfOrder, sn, a.next)
	}
	a.next++
	a.txs += uint64(len(b.Txs))
	if len(b.Txs) > 0 {
		a.batches++
	}
	return nil
}

func (a *countApp) Root() []byte {
	r := sha256.Sum256(binary.BigEndian.AppendUint64(nil, a.next))
	return r[:]
}

func (a *countApp) Snapshot() ([]byte, []byte, error) {
	return a.Root(), binary.BigEndian.AppendUint64(nil, a.next), nil
}

func (a *countApp) Restore(data []byte) ([]byte, error) {
	if len(data) != 8 {
		return nil, fmt.Errorf("countApp: snapshot of %d bytes, want 8", len(data))
	}
	a.next = binary.BigEndian.Uint64(data)
	return a.Root(), nil
}

func (a *countApp) Stats() (uint64, uint64, ordering.SeqNr) { return a.txs, a.batches, a.next }

type benchNode struct {
	id   mir.NodeID
	disp *mir.Dispatcher
	app  benchApp
	core *iss.ISS
}

// benchTimer is a pending timer of the virtual clock.
type benchTimer struct {
	at        time.Duration
	seq       uint64
	node      int
	events    mir.EventList
	period    time.Duration
	retention uint64
	cancelled bool
}

type timerHeap []*benchTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(*benchTimer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// benchCluster is the single-goroutine driver.
type benchCluster struct {
	nodes  []*benchNode
	byID   map[mir.NodeID]int
	w      iss.Wiring
	now    time.Duration
	seq    uint64
	timers timerHeap
	// live[i] are node i's timers not yet fired or cancelled.
	live [][]*benchTimer
	// inbox[i] collects messages for node i during a round of another node.
	inbox []mir.EventList
	// msgs counts delivered messages, walAppends WAL appends.
	msgs, walAppends uint64
}

func newBenchCluster(tb testing.TB, n int, newApp func() benchApp) *benchCluster {
	p, batchTimeout := benchParams()
	ids := make([]mir.NodeID, n)
	for i := range ids {
		ids[i] = mir.NodeID(fmt.Sprintf("n%d", i))
	}
	set := membership.TestSet(ids, nil)
	keys := crypto.TestKeys(1, n)
	pubs := map[mir.NodeID]ic.PubKey{}
	for i, id := range ids {
		pubs[id] = keys[i].Pub
	}
	reg, err := crypto.NewRegistry(pubs)
	if err != nil {
		tb.Fatal(err)
	}
	w := iss.DefaultWiring()
	c := &benchCluster{byID: map[mir.NodeID]int{}, w: w, live: make([][]*benchTimer, n), inbox: make([]mir.EventList, n)}
	for i, id := range ids {
		signer, err := crypto.NewSigner(keys[i].Priv)
		if err != nil {
			tb.Fatal(err)
		}
		app := newApp()
		genesis := checkpoint.Genesis(set, app.Root(), 2)
		core, err := iss.New(iss.Config{Self: id, Genesis: genesis, Params: p, Wiring: w, Signer: signer, Verifier: reg})
		if err != nil {
			tb.Fatal(err)
		}
		pool := iss.NewPool(w.Mempool, w.Timer, iss.PoolParams{BatchTimeout: batchTimeout, NumBuckets: p.NumBuckets})
		appMod := iss.NewAppModule(app, w.Self, nil)
		disp, err := mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{w.Self: core, w.App: appMod, w.Mempool: pool},
			[]mir.ModuleID{w.Net, w.Timer, w.WAL}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		c.nodes = append(c.nodes, &benchNode{id: id, disp: disp, app: app, core: core})
		c.byID[id] = i
	}
	for _, nd := range c.nodes {
		c.enqueue(nd, "", mir.EventList{
			mir.NewEvent(w.App, events.Init{}), mir.NewEvent(w.Self, events.Init{}), mir.NewEvent(w.Mempool, events.Init{})})
		c.enqueue(nd, w.WAL, mir.EventList{mir.NewEvent(w.Self, events.WALRecovered{})})
	}
	return c
}

func (c *benchCluster) enqueue(nd *benchNode, src mir.ModuleID, evs mir.EventList) {
	if err := nd.disp.Enqueue(src, evs); err != nil {
		panic(fmt.Sprintf("%s: %v", nd.id, err))
	}
}

// delivered returns the number of transactions every node delivered.
func (c *benchCluster) delivered() uint64 {
	m, _, _ := c.nodes[0].app.Stats()
	for _, nd := range c.nodes[1:] {
		txs, _, _ := nd.app.Stats()
		m = min(m, txs)
	}
	return m
}

// idle reports whether no node has work queued.
func (c *benchCluster) idle() bool {
	for _, nd := range c.nodes {
		if nd.disp.HasWork() {
			return false
		}
	}
	return true
}

// step runs one dispatch round on every node with work, serving the active
// modules' batches, and then hands each node the messages sent to it.
func (c *benchCluster) step() {
	for i, nd := range c.nodes {
		if !nd.disp.HasWork() {
			continue
		}
		active, err := nd.disp.Round()
		if err != nil {
			panic(fmt.Sprintf("%s: %v", nd.id, err))
		}
		for _, ab := range active {
			c.serve(i, ab)
		}
	}
	for i, in := range c.inbox {
		if len(in) > 0 {
			c.inbox[i] = nil
			c.enqueue(c.nodes[i], c.w.Net, in)
		}
	}
}

func (c *benchCluster) serve(i int, ab mir.ActiveBatch) {
	nd := c.nodes[i]
	var next mir.EventList
	switch ab.Module {
	case c.w.Net:
		for _, e := range ab.Events {
			sm := e.Payload.(events.SendMessage)
			for _, dst := range sm.Destinations {
				j, ok := c.byID[dst]
				if !ok {
					panic(fmt.Sprintf("%s: message to unknown node %s", nd.id, dst))
				}
				c.inbox[j] = append(c.inbox[j], mir.Event{Dest: sm.DestModule, Payload: events.MessageReceived{From: nd.id, Msg: sm.Msg}})
				c.msgs++
			}
			next = append(next, e.Next...)
		}
	case c.w.WAL:
		for _, e := range ab.Events {
			if _, ok := e.Payload.(events.WALAppend); ok {
				c.walAppends++
			}
			next = append(next, e.Next...)
		}
	case c.w.Timer:
		for _, e := range ab.Events {
			switch p := e.Payload.(type) {
			case events.TimerDelay:
				c.addTimer(i, c.now+max(p.After, 0), p.Events, 0, p.RetentionIndex)
			case events.TimerRepeat:
				c.addTimer(i, c.now+p.Period, p.Events, p.Period, p.RetentionIndex)
			case events.TimerGarbageCollect:
				kept := c.live[i][:0]
				for _, t := range c.live[i] {
					if t.retention < p.RetentionIndex {
						t.cancelled = true
					} else {
						kept = append(kept, t)
					}
				}
				clear(c.live[i][len(kept):])
				c.live[i] = kept
			}
			next = append(next, e.Next...)
		}
	default:
		panic(fmt.Sprintf("%s: unexpected active module %s", nd.id, ab.Module))
	}
	if len(next) > 0 {
		c.enqueue(nd, ab.Module, next)
	}
}

func (c *benchCluster) addTimer(node int, at time.Duration, evs mir.EventList, period time.Duration, retention uint64) {
	c.seq++
	t := &benchTimer{at: at, seq: c.seq, node: node, events: evs, period: period, retention: retention}
	heap.Push(&c.timers, t)
	c.live[node] = append(c.live[node], t)
}

// fireNext advances the virtual clock to the earliest live timer and fires
// it. It reports false if no timer is pending.
func (c *benchCluster) fireNext() bool {
	for c.timers.Len() > 0 {
		t := heap.Pop(&c.timers).(*benchTimer)
		if t.cancelled {
			continue
		}
		c.now = max(c.now, t.at)
		if t.period > 0 {
			t.at = c.now + t.period
			c.seq++
			t.seq = c.seq
			heap.Push(&c.timers, t)
		} else {
			t.cancelled = true
			l := c.live[t.node]
			for k, lt := range l {
				if lt == t {
					l[k] = l[len(l)-1]
					l[len(l)-1] = nil
					c.live[t.node] = l[:len(l)-1]
					break
				}
			}
		}
		c.enqueue(c.nodes[t.node], c.w.Timer, append(mir.EventList(nil), t.events...))
		return true
	}
	return false
}

// benchTxs generates transactions: sender i%benchSenders, nonce i, and one
// of a ring of distinct 512-byte payloads (shared, never modified).
type benchTxs struct {
	senders  []string
	payloads [][]byte
}

func newBenchTxs() *benchTxs {
	g := &benchTxs{}
	for i := 0; i < benchSenders; i++ {
		g.senders = append(g.senders, fmt.Sprintf("client-%04d", i))
	}
	for i := 0; i < 4096; i++ {
		d := make([]byte, benchTxBytes)
		for j := range d {
			d[j] = byte(i*31 + j*7)
		}
		d[0], d[1] = byte(i), byte(i>>8)
		g.payloads = append(g.payloads, d)
	}
	return g
}

func (g *benchTxs) tx(i int) ordering.Tx {
	return ordering.Tx{Sender: g.senders[i%len(g.senders)], Nonce: uint64(i), Data: g.payloads[i%len(g.payloads)]}
}

// run orders total transactions and returns the number of virtual-clock
// advances it needed.
func (c *benchCluster) run(tb testing.TB, g *benchTxs, total int) int {
	submitted := 0
	advances := 0
	for {
		done := c.delivered()
		if done >= uint64(total) {
			return advances
		}
		if out := submitted - int(done); submitted < total && out < benchWindow {
			k := min(benchWindow-out, total-submitted, benchSubmitChunk)
			for _, nd := range c.nodes {
				evs := make(mir.EventList, k)
				for j := range evs {
					evs[j] = mir.NewEvent(c.w.Mempool, iss.SubmitTx{Tx: g.tx(submitted + j)})
				}
				c.enqueue(nd, "", evs)
			}
			submitted += k
		}
		if c.idle() {
			if !c.fireNext() {
				tb.Fatalf("stalled: no work and no timer; delivered %d of %d", done, total)
			}
			advances++
			continue
		}
		c.step()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOrdering measures the ordering core alone: b.N transactions of
// 512 bytes ordered by 4 ISS-PBFT nodes in one process (see the harness
// above). tx/s is per wall-clock second, tx/cpu-s per second of process CPU
// time (user+sys, GC included). app=count delivers to an application that
// only counts; app=hashchain to HashChainApp, which hashes every batch again.
//
//	go test ./consensus/iss -run '^$' -bench Ordering -benchtime 400000x
func BenchmarkOrdering(b *testing.B) {
	b.Run("app=count", func(b *testing.B) { benchOrdering(b, func() benchApp { return &countApp{} }) })
	b.Run("app=hashchain", func(b *testing.B) { benchOrdering(b, func() benchApp { return &chainApp{} }) })
}

func benchOrdering(b *testing.B, newApp func() benchApp) {
	g := newBenchTxs()
	c := newBenchCluster(b, benchNodes, newApp)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	advances := c.run(b, g, b.N)
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	txs := float64(c.delivered())
	b.ReportMetric(txs/wall.Seconds(), "tx/s")
	b.ReportMetric(txs/cpu.Seconds(), "tx/cpu-s")
	appTxs, batches, next := c.nodes[0].app.Stats()
	if batches > 0 {
		b.ReportMetric(float64(appTxs)/float64(batches), "tx/batch")
	}
	b.ReportMetric(float64(next), "slots")
	b.ReportMetric(float64(advances), "clock-advances")
	b.ReportMetric(float64(c.nodes[0].core.Stats().Epoch), "epochs")
	for _, nd := range c.nodes {
		if st := nd.core.Stats(); st.ViewChanges > 0 {
			b.Errorf("%s: %d view changes", nd.id, st.ViewChanges)
		}
	}
}

// TestOrderingHarness checks that the benchmark harness orders every
// transaction on every node, with the same HashChainApp state at the same
// height.
func TestOrderingHarness(t *testing.T) {
	g := newBenchTxs()
	c := newBenchCluster(t, benchNodes, func() benchApp { return &chainApp{} })
	const total = 30000
	c.run(t, g, total)
	app0 := c.nodes[0].app
	_, _, next0 := app0.Stats()
	for _, nd := range c.nodes {
		txs, _, next := nd.app.Stats()
		if txs < total {
			t.Errorf("%s delivered %d of %d transactions", nd.id, txs, total)
		}
		if next == next0 && string(nd.app.Root()) != string(app0.Root()) {
			t.Errorf("%s: state root differs from %s's at the same height", nd.id, c.nodes[0].id)
		}
	}
}
