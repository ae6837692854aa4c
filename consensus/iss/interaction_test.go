package iss_test

import (
	"fmt"
	"github.com/mirsubnet/mirsubnet/consensus/internal/script"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// TestInteraction runs the golden interaction scripts in testdata: n ISS
// nodes, each an ISS module, a reference Pool and an AppModule around a
// HashChainApp on its own mir.Dispatcher, connected by an in-memory FIFO
// network, with an in-memory WAL and timers in virtual time. Only what
// matters is printed (deliveries per epoch, leaders' bucket sets, stable
// checkpoints, WAL truncation, timer garbage collection, state transfer,
// view changes); use summary for the rest. Regenerate with -rewrite.
//
// Commands:
//
//	init [n=4] [seglen=2] [buckets=8] [resend=300ms]
//	submit txs=8 [to=n0]       client transactions, to every pool (or one)
//	run d=300ms [quiet] [show=n2,n3]
//	                           deliver messages and fire timers up to now+d,
//	                           printing nothing or only the nodes listed
//	deliver                    deliver messages until the network is quiet
//	isolate n3 / heal n3       discard messages to and from n3
//	walmode n2 manual|instant  manual: appends become durable only on sync
//	sync n2                    make pending appends durable, release sends
//	restart n2                 rebuild n2's modules, lose its unsynced WAL
//	                           tail, recover from its durable entries
//	summary                    one line per node
//	wal n0 / timers n0         the node's durable WAL / pending timers
//
// Every delivery is checked against the other nodes' deliveries at the same
// sequence number; a mismatch prints a line starting with "!!" and fails.
func TestInteraction(t *testing.T) {
	for _, path := range script.Files(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			d := &idriver{t: t}
			script.Run(t, path, d.exec)
		})
	}
}

type inode struct {
	id   mir.NodeID
	iss  *iss.ISS
	app  *iss.HashChainApp
	disp *mir.Dispatcher
	// signer is the node's key (kept across restarts).
	signer *crypto.Signer
	// durable holds the WAL entries that survived; pending the WAL events
	// (appends, truncations) waiting for sync in manual mode.
	durable   []events.WALEntry
	pending   []mir.Event
	manualWAL bool
	// gcIndex is the highest TimerGarbageCollect index seen (timer
	// requests below it are stale, as in consensus/timer).
	gcIndex  uint64
	isolated bool
	// agg aggregates consecutive deliveries of one epoch into one line.
	agg struct {
		on              bool
		epoch           uint64
		from, to        uint64
		batches, txs, n int
		aborted         []uint64
	}
	lastBuckets string
	stale       map[string]int
}

type imsg struct {
	from, to mir.NodeID
	module   mir.ModuleID
	msg      any
}

type itimer struct {
	node      *inode
	due       time.Duration
	seq       uint64
	events    []mir.Event
	period    time.Duration
	retention uint64
}

type idriver struct {
	t       *testing.T
	line    int
	now     time.Duration
	seq     uint64
	nodes   []*inode
	byID    map[mir.NodeID]*inode
	keys    []crypto.KeyPair
	reg     *crypto.Registry
	genesis checkpoint.Checkpoint
	params  iss.Params
	net     []imsg
	timers  []*itimer
	decided map[ordering.SeqNr]ordering.Digest
	quiet   bool
	show    map[mir.NodeID]bool
	shown   map[string]bool
	out     *strings.Builder
	nextTx  uint64
}

func (d *idriver) fatalf(format string, args ...any) {
	d.t.Helper()
	d.t.Fatalf("line %d: "+format, append([]any{d.line}, args...)...)
}

// printf prints a line for node n (nil: no node), after n's pending
// delivery summary.
func (d *idriver) printf(n *inode, format string, args ...any) {
	if n != nil {
		d.flush(n)
	}
	line := fmt.Sprintf(format, args...)
	if strings.HasPrefix(line, "!!") {
		d.t.Errorf("line %d: invariant broken: %s", d.line, line)
	}
	if (d.quiet || (n != nil && d.show != nil && !d.show[n.id])) && !strings.HasPrefix(line, "!!") {
		return
	}
	d.out.WriteString(line + "\n")
}

func (d *idriver) node(name string) *inode {
	n := d.byID[mir.NodeID(name)]
	if n == nil {
		d.fatalf("unknown node %q", name)
	}
	return n
}

func (d *idriver) nodeList(s string) []*inode {
	if s == "all" {
		return d.nodes
	}
	var out []*inode
	for _, name := range strings.Split(s, ",") {
		out = append(out, d.node(name))
	}
	return out
}

func (d *idriver) exec(c script.Cmd) string {
	d.line = c.Line
	var b strings.Builder
	d.out = &b
	d.quiet = false
	if c.Name != "init" && d.nodes == nil {
		d.fatalf("init first")
	}
	switch c.Name {
	case "init":
		d.init(c)
	case "submit":
		n, err := strconv.Atoi(c.Arg("txs", ""))
		if err != nil {
			d.fatalf("txs=: %v", err)
		}
		targets := d.nodes
		if to := c.Arg("to", ""); to != "" {
			targets = d.nodeList(to)
		}
		for i := 0; i < n; i++ {
			k := d.nextTx
			d.nextTx++
			tx := ordering.Tx{Sender: fmt.Sprintf("client-%02d", k%16), Nonce: k, Data: []byte{byte(k)}}
			for _, nd := range targets {
				d.enqueue(nd, "", mir.NewEvent("mempool", iss.SubmitTx{Tx: tx}))
			}
		}
		d.printf(nil, "submitted %d txs", n)
	case "run":
		dur, err := time.ParseDuration(c.Arg("d", ""))
		if err != nil {
			d.fatalf("d=: %v", err)
		}
		d.quiet = len(c.Pos) > 0 && c.Pos[0] == "quiet"
		if show := c.Arg("show", ""); show != "" {
			d.show = map[mir.NodeID]bool{}
			for _, n := range d.nodeList(show) {
				d.show[n.id] = true
			}
		}
		d.run(d.now + dur)
		for _, n := range d.nodes {
			d.flush(n)
		}
		d.quiet, d.show = false, nil
		d.printf(nil, "time %v", d.now)
	case "deliver":
		d.deliverAll()
	case "isolate", "heal":
		for _, n := range d.nodeList(c.Pos[0]) {
			n.isolated = c.Name == "isolate"
		}
	case "walmode":
		for _, n := range d.nodeList(c.Pos[0]) {
			n.manualWAL = c.Pos[1] == "manual"
		}
	case "sync":
		for _, n := range d.nodeList(c.Pos[0]) {
			pending := n.pending
			n.pending = nil
			d.printf(n, "%s: sync %d WAL events", n.id, len(pending))
			for _, e := range pending {
				d.walApply(n, e)
			}
		}
		d.deliverAll()
	case "restart":
		for _, n := range d.nodeList(c.Pos[0]) {
			d.restart(n)
		}
	case "summary":
		for _, n := range d.nodes {
			d.summary(n)
		}
	case "wal":
		for _, n := range d.nodeList(c.Pos[0]) {
			d.printf(n, "%s: wal %s", n.id, describeWAL(n.durable))
		}
	case "describe":
		// For debugging scripts; its output follows internal state and
		// should not be committed in golden files.
		for _, n := range d.nodeList(c.Pos[0]) {
			d.printf(n, "%s: %s", n.id, n.iss.Describe())
		}
	case "timers":
		for _, n := range d.nodeList(c.Pos[0]) {
			d.printf(n, "%s: timers %s", n.id, d.describeTimers(n))
		}
	default:
		d.fatalf("unknown command %q", c.Name)
	}
	for _, n := range d.nodes {
		d.flush(n)
		for _, k := range sortedKeys(n.stale) {
			d.printf(nil, "%s: %d timer requests dropped as stale (%s)", n.id, n.stale[k], k)
		}
		n.stale = map[string]int{}
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (d *idriver) init(c script.Cmd) {
	n, err := strconv.Atoi(c.Arg("n", "4"))
	if err != nil || n < 1 {
		d.fatalf("bad n")
	}
	p := iss.DefaultParams()
	if p.SegmentLength, err = strconv.Atoi(c.Arg("seglen", "2")); err != nil {
		d.fatalf("seglen: %v", err)
	}
	if p.NumBuckets, err = strconv.Atoi(c.Arg("buckets", "8")); err != nil {
		d.fatalf("buckets: %v", err)
	}
	p.MaxInFlight = 2
	p.MaxBatchTxs = 16
	p.EmptyProposalPeriod = 100 * time.Millisecond
	p.ViewChangeTimeout = 800 * time.Millisecond
	p.MaxViewChangeTimeout = 3200 * time.Millisecond
	p.ResendPeriod = 300 * time.Millisecond
	if r := c.Arg("resend", ""); r != "" {
		if p.ResendPeriod, err = time.ParseDuration(r); err != nil {
			d.fatalf("resend: %v", err)
		}
	}
	d.params = p
	var ids []mir.NodeID
	for i := 0; i < n; i++ {
		ids = append(ids, mir.NodeID(fmt.Sprintf("n%d", i)))
	}
	set := membership.TestSet(ids, nil)
	d.keys = crypto.TestKeys(1, n)
	pubs := map[mir.NodeID]ic.PubKey{}
	for i, id := range ids {
		pubs[id] = d.keys[i].Pub
	}
	if d.reg, err = crypto.NewRegistry(pubs); err != nil {
		d.fatalf("%v", err)
	}
	d.genesis = checkpoint.Genesis(set, new(iss.HashChainApp).Root(), 2)
	d.byID = map[mir.NodeID]*inode{}
	d.decided = map[ordering.SeqNr]ordering.Digest{}
	d.shown = map[string]bool{}
	d.nodes, d.net, d.timers, d.now = nil, nil, nil, 0
	for i, id := range ids {
		s, err := crypto.NewSigner(d.keys[i].Priv)
		if err != nil {
			d.fatalf("%v", err)
		}
		nd := &inode{id: id, signer: s, stale: map[string]int{}}
		d.nodes = append(d.nodes, nd)
		d.byID[id] = nd
	}
	d.printf(nil, "%d nodes, segment length %d, %d buckets, epoch length %d", n, p.SegmentLength, p.NumBuckets, n*p.SegmentLength)
	for _, nd := range d.nodes {
		d.boot(nd)
	}
	d.deliverAll()
}

// boot (re)builds a node's modules and recovers it from its durable WAL.
func (d *idriver) boot(n *inode) {
	var err error
	n.iss, err = iss.New(iss.Config{Self: n.id, Genesis: d.genesis, Params: d.params, Wiring: iss.DefaultWiring(), Signer: n.signer, Verifier: d.reg})
	if err != nil {
		d.fatalf("%v", err)
	}
	n.app = new(iss.HashChainApp)
	pool := iss.NewPool("mempool", "timer", iss.PoolParams{BatchTimeout: 10 * time.Millisecond, NumBuckets: d.params.NumBuckets})
	n.disp, err = mir.NewDispatcher(map[mir.ModuleID]mir.PassiveModule{
		"iss":     n.iss,
		"app":     &tap{inner: iss.NewAppModule(n.app, "iss", nil), f: func(e mir.Event) { d.onApp(n, e) }},
		"mempool": &tap{inner: pool, f: func(e mir.Event) { d.onPool(n, e) }},
	}, []mir.ModuleID{"net", "timer", "wal"}, nil)
	if err != nil {
		d.fatalf("%v", err)
	}
	n.gcIndex, n.lastBuckets = 0, ""
	entries := append([]events.WALEntry(nil), n.durable...)
	d.enqueue(n, "", mir.NewEvent("iss", events.Init{}), mir.NewEvent("app", events.Init{}), mir.NewEvent("mempool", events.Init{}))
	d.enqueue(n, "wal", mir.NewEvent("iss", events.WALRecovered{Entries: entries}))
}

func (d *idriver) restart(n *inode) {
	d.flush(n)
	lost := 0
	for _, e := range n.pending {
		if _, ok := e.Payload.(events.WALAppend); ok {
			lost++
		}
	}
	n.pending = nil
	kept := d.timers[:0]
	for _, t := range d.timers {
		if t.node != n {
			kept = append(kept, t)
		}
	}
	d.timers = kept
	// Messages in flight to the crashed incarnation are lost.
	keptMsgs := d.net[:0]
	for _, m := range d.net {
		if m.to != n.id {
			keptMsgs = append(keptMsgs, m)
		}
	}
	d.net = keptMsgs
	d.printf(n, "%s: restart with %d durable WAL entries (%d unsynced appends lost)", n.id, len(n.durable), lost)
	d.boot(n)
	d.deliverAll()
}

// tap is a passive module that shows the driver every event it forwards.
type tap struct {
	inner mir.PassiveModule
	f     func(mir.Event)
}

func (t *tap) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	for _, e := range evs {
		t.f(e)
	}
	return t.inner.ApplyEvents(evs)
}

func (d *idriver) onApp(n *inode, e mir.Event) {
	switch ev := e.Payload.(type) {
	case iss.Deliver:
		dg := ev.Proposal.Digest()
		if old, ok := d.decided[ev.SeqNr]; ok && old != dg {
			d.printf(n, "!! %s delivered sn=%d d=%s, another node d=%s", n.id, ev.SeqNr, dg, old)
		}
		d.decided[ev.SeqNr] = dg
		a := &n.agg
		if a.on && (a.epoch != ev.Epoch || a.to+1 != ev.SeqNr) {
			d.flush(n)
		}
		if !a.on {
			a.on, a.epoch, a.from, a.batches, a.txs, a.aborted = true, ev.Epoch, ev.SeqNr, 0, 0, nil
		}
		a.to = ev.SeqNr
		a.batches++
		a.txs += len(ev.Proposal.Batch.Txs)
		if ev.Proposal.Aborted {
			a.aborted = append(a.aborted, ev.SeqNr)
		}
	case iss.StableCheckpoint:
		var signers []string
		for _, s := range ev.Cert.Sigs {
			signers = append(signers, string(s.Signer))
		}
		ck := ev.Cert.Checkpoint
		d.printf(n, "%s: stable checkpoint e%d sn=%d leaders %v bans %s signers [%s]", n.id, ck.Epoch, ck.SeqNr, ck.Leaders, describeBans(ck.Bans), strings.Join(signers, " "))
	case iss.RestoreState:
		ck := ev.Cert.Checkpoint
		d.printf(n, "%s: restore state at e%d sn=%d", n.id, ck.Epoch, ck.SeqNr)
	}
}

func describeBans(bans []checkpoint.Ban) string {
	var out []string
	for _, b := range bans {
		out = append(out, fmt.Sprintf("%s<e%d(%d)", b.Node, b.Until, b.Strikes))
	}
	return "[" + strings.Join(out, " ") + "]"
}

func (d *idriver) flush(n *inode) {
	a := &n.agg
	if !a.on {
		return
	}
	a.on = false
	ab := ""
	if len(a.aborted) > 0 {
		ab = fmt.Sprintf(", aborted %v", a.aborted)
	}
	if d.show != nil && !d.show[n.id] {
		return
	}
	d.printf(nil, "%s: delivered e%d sn=%d..%d (%d batches, %d txs%s)", n.id, a.epoch, a.from, a.to, a.batches, a.txs, ab)
}

func (d *idriver) onPool(n *inode, e mir.Event) {
	if rb, ok := e.Payload.(iss.RequestBatch); ok {
		b := fmt.Sprint(rb.Buckets)
		if b != n.lastBuckets {
			n.lastBuckets = b
			d.printf(n, "%s: leader requests batches for buckets %v (from sn=%d)", n.id, rb.Buckets, rb.ReqID)
		}
	}
}

func (d *idriver) enqueue(n *inode, src mir.ModuleID, evs ...mir.Event) {
	if len(evs) == 0 {
		return
	}
	if err := n.disp.Enqueue(src, append(mir.EventList(nil), evs...)); err != nil {
		d.fatalf("%s: enqueue: %v", n.id, err)
	}
	d.pump(n)
}

// pump runs the node's dispatcher until it is idle, executing what the
// passive modules ask of the active ones (network, timer, WAL).
func (d *idriver) pump(n *inode) {
	for n.disp.HasWork() {
		act, err := n.disp.Round()
		if err != nil {
			d.fatalf("%s: %v", n.id, err)
		}
		for _, b := range act {
			for _, e := range b.Events {
				switch b.Module {
				case "net":
					d.send(n, e)
				case "timer":
					d.timer(n, e)
				case "wal":
					if n.manualWAL {
						n.pending = append(n.pending, e)
					} else {
						d.walApply(n, e)
					}
				}
			}
		}
	}
}

func (d *idriver) send(n *inode, e mir.Event) {
	sm, ok := e.Payload.(events.SendMessage)
	if !ok {
		d.fatalf("%s: net got %T", n.id, e.Payload)
	}
	to := strings.Trim(fmt.Sprint(sm.Destinations), "[]")
	if len(sm.Destinations) == len(d.nodes)-1 {
		to = "all"
	}
	// A send is shown if its sender or one of its destinations is.
	shown := d.show == nil || d.show[n.id]
	for _, dst := range sm.Destinations {
		shown = shown || d.show[dst]
	}
	pn := n
	if shown {
		d.flush(n)
		pn = nil
	}
	switch m := sm.Msg.(type) {
	case iss.StableCert:
		d.printf(pn, "%s -> %s: StableCert e%d", n.id, to, m.Cert.Checkpoint.Epoch)
	case iss.SnapshotFetch:
		d.printf(pn, "%s -> %s: SnapshotFetch e%d", n.id, to, m.Epoch)
	case iss.SnapshotData:
		d.printf(pn, "%s -> %s: SnapshotData e%d (%d bytes)", n.id, to, m.Cert.Checkpoint.Epoch, len(m.Data))
	case pbft.SignedViewChange:
		if m.Signer == n.id && !d.seen(fmt.Sprintf("%s vc %d/%d/%d", n.id, m.VC.H.Epoch, m.VC.H.Seg, m.VC.H.View)) {
			d.printf(pn, "%s -> %s: ViewChange e%d/s%d v%d", n.id, to, m.VC.H.Epoch, m.VC.H.Seg, m.VC.H.View)
		}
	case pbft.NewView:
		if !d.seen(fmt.Sprintf("%s nv %d/%d/%d", n.id, m.H.Epoch, m.H.Seg, m.H.View)) {
			d.printf(pn, "%s -> %s: NewView e%d/s%d v%d", n.id, to, m.H.Epoch, m.H.Seg, m.H.View)
		}
	}
	for _, dst := range sm.Destinations {
		d.net = append(d.net, imsg{from: n.id, to: dst, module: sm.DestModule, msg: sm.Msg})
	}
}

// seen keeps retransmitted view changes and new views out of the output.
func (d *idriver) seen(key string) bool {
	if d.shown[key] {
		return true
	}
	d.shown[key] = true
	return false
}

func (d *idriver) timer(n *inode, e mir.Event) {
	arm := func(evs []mir.Event, after, period time.Duration, retention uint64) {
		if len(evs) == 0 {
			return
		}
		if retention < n.gcIndex {
			n.stale[mir.PayloadName(evs[0].Payload)]++
			return
		}
		if after == 0 && period == 0 {
			d.enqueue(n, "timer", evs...)
			return
		}
		d.seq++
		d.timers = append(d.timers, &itimer{node: n, due: d.now + after, seq: d.seq, events: evs, period: period, retention: retention})
	}
	switch p := e.Payload.(type) {
	case events.TimerDelay:
		arm(p.Events, p.After, 0, p.RetentionIndex)
	case events.TimerRepeat:
		arm(p.Events, p.Period, p.Period, p.RetentionIndex)
	case events.TimerGarbageCollect:
		if p.RetentionIndex > n.gcIndex {
			n.gcIndex = p.RetentionIndex
		}
		kept := d.timers[:0]
		for _, t := range d.timers {
			if t.node == n && t.retention < p.RetentionIndex {
				continue
			}
			kept = append(kept, t)
		}
		d.timers = kept
		d.printf(n, "%s: timer gc <%d", n.id, p.RetentionIndex)
	default:
		d.fatalf("%s: timer got %T", n.id, e.Payload)
	}
}

// walApply makes a WAL event durable and releases its follow-ups.
func (d *idriver) walApply(n *inode, e mir.Event) {
	switch p := e.Payload.(type) {
	case events.WALAppend:
		n.durable = append(n.durable, events.WALEntry{RetentionIndex: p.RetentionIndex, Entry: p.Entry})
		if st, ok := p.Entry.(iss.WALStable); ok {
			d.printf(n, "%s: wal append WALStable e%d", n.id, st.Cert.Checkpoint.Epoch)
		}
	case events.WALTruncate:
		kept := n.durable[:0]
		for _, en := range n.durable {
			if en.RetentionIndex >= p.RetentionIndex {
				kept = append(kept, en)
			}
		}
		n.durable = kept
		d.printf(n, "%s: wal truncate <%d, keeps %s", n.id, p.RetentionIndex, describeWAL(n.durable))
	default:
		d.fatalf("%s: wal got %T", n.id, e.Payload)
	}
	d.enqueue(n, "wal", e.Next...)
}

// describeWAL summarises entries: for each retention index, the number of
// entries and the stable checkpoints among them.
func describeWAL(es []events.WALEntry) string {
	var parts []string
	for i := 0; i < len(es); {
		j := i
		var stable []string
		for ; j < len(es) && es[j].RetentionIndex == es[i].RetentionIndex; j++ {
			if st, ok := es[j].Entry.(iss.WALStable); ok {
				stable = append(stable, fmt.Sprintf("WALStable e%d", st.Cert.Checkpoint.Epoch))
			}
		}
		s := fmt.Sprintf("r%d:%d", es[i].RetentionIndex, j-i)
		if len(stable) > 0 {
			s += "(" + strings.Join(stable, ",") + ")"
		}
		parts = append(parts, s)
		i = j
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (d *idriver) describeTimers(n *inode) string {
	counts := map[string]int{}
	for _, t := range d.timers {
		if t.node != n {
			continue
		}
		r := "max"
		if t.retention != math.MaxUint64 {
			r = strconv.FormatUint(t.retention, 10)
		}
		kind := "delay"
		if t.period > 0 {
			kind = "repeat"
		}
		counts[fmt.Sprintf("%s(%s r=%s)", strings.TrimPrefix(mir.PayloadName(t.events[0].Payload), "iss."), kind, r)]++
	}
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%dx%s", counts[k], k))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// deliverAll delivers network messages in FIFO order until none is left.
func (d *idriver) deliverAll() {
	for steps := 0; len(d.net) > 0; steps++ {
		if steps > 2_000_000 {
			d.fatalf("network does not quiesce")
		}
		m := d.net[0]
		d.net = d.net[1:]
		src, dst := d.byID[m.from], d.byID[m.to]
		if dst == nil || src.isolated || dst.isolated {
			continue
		}
		d.enqueue(dst, "net", mir.NewEvent(m.module, events.MessageReceived{From: m.from, Msg: m.msg}))
	}
}

// run delivers messages and fires timers in order of due time (then arming
// order) up to end.
func (d *idriver) run(end time.Duration) {
	for {
		d.deliverAll()
		var next *itimer
		for _, t := range d.timers {
			if t.due <= end && (next == nil || t.due < next.due || (t.due == next.due && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			d.now = end
			return
		}
		d.now = next.due
		if next.period > 0 {
			d.seq++
			next.due += next.period
			next.seq = d.seq
		} else {
			for i, t := range d.timers {
				if t == next {
					d.timers = append(d.timers[:i], d.timers[i+1:]...)
					break
				}
			}
		}
		d.enqueue(next.node, "timer", next.events...)
	}
}

func (d *idriver) summary(n *inode) {
	st := n.iss.Stats()
	iso := ""
	if n.isolated {
		iso = " isolated"
	}
	d.printf(n, "%s: epoch=%d next=%d stable=%d delivered=%d txs=%d viewchanges=%d statetransfers=%d root=%x%s",
		n.id, st.Epoch, n.app.Next(), st.StableEpoch, st.Delivered, n.app.Txs, st.ViewChanges, st.StateTransfers, n.app.Root()[:4], iso)
}
