package pbft_test

import (
	"fmt"
	"github.com/mirsubnet/mirsubnet/consensus/internal/script"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/pbft"
)

// TestInteraction runs the golden interaction scripts in testdata: n PBFT
// instances of one segment driven by commands, their actions printed one per
// line. Regenerate the expected output with -rewrite.
//
// Commands:
//
//	init [n=4] [leader=n0] [sns=0,4] [weights=1,1,1,1]
//	propose n0 sn=0 txs=3          the view-0 leader proposes a batch
//	deliver [a->b]                 deliver queued messages (a, b: node or *);
//	                               without a filter until the network is quiet
//	drop [a->b]                    discard queued messages
//	isolate n0 / heal n0           discard messages to and from n0 on delivery
//	timeout n1,n2 v0               fire view timers
//	resend n2                      retransmit
//	restore n3                     rebuild n3 from its WAL entries, then Start
//	inject n0->n1 preprepare v0 sn=0 txs=2   a forged (Byzantine) pre-prepare
//	state [n2]                     view, decided slots, dropped count
//	wal n1                         the node's WAL entries
//
// The driver checks two invariants on every action and prints a line
// starting with "!!" when one breaks: a node never sends two different votes
// for the same (kind, view, slot), across restarts; no two nodes decide
// different values for a slot.
func TestInteraction(t *testing.T) {
	for _, path := range script.Files(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			d := &pdriver{t: t}
			script.Run(t, path, d.exec)
		})
	}
}

type pnode struct {
	id       mir.NodeID
	in       *pbft.Instance
	signer   *crypto.Signer
	wal      []any
	isolated bool
	// votes holds the digest (or encoding) of every vote the node sent, by
	// kind/view/slot, across restarts.
	votes map[string]string
}

type pmsg struct {
	from, to mir.NodeID
	msg      any
}

type pdriver struct {
	t       *testing.T
	line    int
	ids     []mir.NodeID
	nodes   map[mir.NodeID]*pnode
	set     *membership.Set
	reg     *crypto.Registry
	leader  mir.NodeID
	sns     []ordering.SeqNr
	queue   []pmsg
	decided map[ordering.SeqNr]ordering.Digest
	out     *strings.Builder
}

func (d *pdriver) fatalf(format string, args ...any) {
	d.t.Helper()
	d.t.Fatalf("line %d: "+format, append([]any{d.line}, args...)...)
}

func (d *pdriver) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if strings.HasPrefix(strings.TrimSpace(line), "!!") {
		d.t.Errorf("line %d: invariant broken: %s", d.line, line)
	}
	d.out.WriteString(line + "\n")
}

func (d *pdriver) node(name string) *pnode {
	n := d.nodes[mir.NodeID(name)]
	if n == nil {
		d.fatalf("unknown node %q", name)
	}
	return n
}

// nodeList parses "n1,n2" or "all".
func (d *pdriver) nodeList(s string) []*pnode {
	if s == "all" {
		var out []*pnode
		for _, id := range d.ids {
			out = append(out, d.nodes[id])
		}
		return out
	}
	var out []*pnode
	for _, name := range strings.Split(s, ",") {
		out = append(out, d.node(name))
	}
	return out
}

func (d *pdriver) exec(c script.Cmd) string {
	d.line = c.Line
	var b strings.Builder
	d.out = &b
	if c.Name != "init" && d.nodes == nil {
		d.fatalf("init first")
	}
	switch c.Name {
	case "init":
		d.init(c)
	case "propose":
		n := d.node(c.Pos[0])
		sn := d.uintArg(c, "sn")
		acts := n.in.Propose(sn, testBatch(sn, int(d.uintArg(c, "txs")), 0))
		if len(acts) == 0 {
			d.printf("%s: not proposing sn=%d", n.id, sn)
		}
		d.apply(n, acts, "")
	case "deliver":
		d.deliver(c)
	case "drop":
		from, to := d.filter(c)
		kept := d.queue[:0]
		dropped := 0
		for _, m := range d.queue {
			if match(from, m.from) && match(to, m.to) {
				dropped++
				continue
			}
			kept = append(kept, m)
		}
		d.queue = kept
		d.printf("dropped %d messages", dropped)
	case "isolate", "heal":
		for _, n := range d.nodeList(c.Pos[0]) {
			n.isolated = c.Name == "isolate"
		}
	case "timeout":
		v := d.viewArg(c.Pos[1])
		for _, n := range d.nodeList(c.Pos[0]) {
			acts := n.in.Timeout(v)
			if len(acts) == 0 {
				d.printf("%s: timeout v%d ignored", n.id, v)
			}
			d.apply(n, acts, "")
		}
	case "resend":
		for _, n := range d.nodeList(c.Pos[0]) {
			d.apply(n, n.in.Resend(), "")
		}
	case "restore":
		for _, n := range d.nodeList(c.Pos[0]) {
			n.in = d.newInstance(n)
			for _, e := range n.wal {
				n.in.Restore(e)
			}
			v, ch := n.in.View()
			d.printf("%s: restored from %d WAL entries: v%d changing=%v", n.id, len(n.wal), v, ch)
			d.apply(n, n.in.Start(), "")
		}
	case "inject":
		from, to, ok := strings.Cut(c.Pos[0], "->")
		if !ok || c.Pos[1] != "preprepare" {
			d.fatalf("inject a->b preprepare v0 sn=N txs=M")
		}
		sn := d.uintArg(c, "sn")
		pp := pbft.Preprepare{H: pbft.Header{View: d.viewArg(c.Pos[2])}, SeqNr: sn,
			Proposal: pbft.Proposal{Batch: testBatch(sn, int(d.uintArg(c, "txs")), 1)}}
		d.queue = append(d.queue, pmsg{from: d.node(from).id, to: d.node(to).id, msg: pp})
		d.printf("%s -> %s: %s (forged)", from, to, describe(pp))
	case "state":
		which := "all"
		if len(c.Pos) > 0 {
			which = c.Pos[0]
		}
		for _, n := range d.nodeList(which) {
			d.printState(n)
		}
	case "wal":
		for _, n := range d.nodeList(c.Pos[0]) {
			for i, e := range n.wal {
				d.printf("%s: wal[%d] %s", n.id, i, describeWAL(e))
			}
		}
	default:
		d.fatalf("unknown command %q", c.Name)
	}
	return b.String()
}

func (d *pdriver) uintArg(c script.Cmd, key string) uint64 {
	v, err := strconv.ParseUint(c.Arg(key, ""), 10, 64)
	if err != nil {
		d.fatalf("%s=: %v", key, err)
	}
	return v
}

func (d *pdriver) viewArg(s string) uint64 {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "v"), 10, 64)
	if err != nil || !strings.HasPrefix(s, "v") {
		d.fatalf("bad view %q", s)
	}
	return v
}

func (d *pdriver) init(c script.Cmd) {
	n, err := strconv.Atoi(c.Arg("n", "4"))
	if err != nil || n < 1 {
		d.fatalf("bad n")
	}
	var weights []uint64
	if w := c.Arg("weights", ""); w != "" {
		for _, s := range strings.Split(w, ",") {
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				d.fatalf("bad weights: %v", err)
			}
			weights = append(weights, x)
		}
	}
	d.ids = nil
	for i := 0; i < n; i++ {
		d.ids = append(d.ids, mir.NodeID(fmt.Sprintf("n%d", i)))
	}
	d.set = membership.TestSet(d.ids, weights)
	keys := crypto.TestKeys(1, n)
	pubs := map[mir.NodeID]ic.PubKey{}
	for i, id := range d.ids {
		pubs[id] = keys[i].Pub
	}
	if d.reg, err = crypto.NewRegistry(pubs); err != nil {
		d.fatalf("%v", err)
	}
	d.leader = mir.NodeID(c.Arg("leader", "n0"))
	d.sns = nil
	for _, s := range strings.Split(c.Arg("sns", "0,4"), ",") {
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			d.fatalf("bad sns: %v", err)
		}
		d.sns = append(d.sns, x)
	}
	d.nodes = map[mir.NodeID]*pnode{}
	d.queue = nil
	d.decided = map[ordering.SeqNr]ordering.Digest{}
	for i, id := range d.ids {
		s, err := crypto.NewSigner(keys[i].Priv)
		if err != nil {
			d.fatalf("%v", err)
		}
		nd := &pnode{id: id, signer: s, votes: map[string]string{}}
		nd.in = d.newInstance(nd)
		d.nodes[id] = nd
	}
	d.printf("%d nodes, segment e0/s0 leader %s slots %v", n, d.leader, d.sns)
	for _, id := range d.ids {
		d.apply(d.nodes[id], d.nodes[id].in.Start(), "")
	}
}

func (d *pdriver) newInstance(n *pnode) *pbft.Instance {
	return pbft.New(pbft.Config{
		Epoch: 0, Seg: 0, Leader: d.leader, SeqNrs: d.sns, Members: d.set, Self: n.id,
		Signer: n.signer, Verifier: d.reg,
		Params: pbft.Params{ViewChangeTimeout: time.Second, MaxViewChangeTimeout: 8 * time.Second},
	})
}

// filter parses an optional "a->b" argument (a, b: node or *).
func (d *pdriver) filter(c script.Cmd) (from, to mir.NodeID) {
	if len(c.Pos) == 0 {
		return "*", "*"
	}
	f, t, ok := strings.Cut(c.Pos[0], "->")
	if !ok {
		d.fatalf("want a->b, got %q", c.Pos[0])
	}
	return mir.NodeID(f), mir.NodeID(t)
}

func match(pattern, id mir.NodeID) bool { return pattern == "*" || pattern == id }

// deliver hands queued messages to their destinations in FIFO order. With a
// filter, only the messages queued now that match it are delivered (their
// answers stay queued); without one, until the network is quiet. A delivery
// is printed only if the receiver reacted or dropped the message.
func (d *pdriver) deliver(c script.Cmd) {
	from, to := d.filter(c)
	all := len(c.Pos) == 0
	delivered, quiet, discarded := 0, 0, 0
	for rounds := 0; ; rounds++ {
		if rounds > 10000 {
			d.fatalf("network does not quiesce")
		}
		batch := d.queue
		d.queue = nil
		var kept []pmsg
		for _, m := range batch {
			if !match(from, m.from) || !match(to, m.to) {
				kept = append(kept, m)
				continue
			}
			src, dst := d.nodes[m.from], d.nodes[m.to]
			if src.isolated || dst.isolated {
				discarded++
				continue
			}
			delivered++
			dropped := dst.in.Dropped()
			acts := dst.in.Step(m.from, m.msg)
			if dst.in.Dropped() > dropped {
				d.printf("%s->%s %s: dropped", m.from, m.to, describe(m.msg))
			}
			if len(acts) == 0 {
				quiet++
				continue
			}
			d.printf("%s->%s %s", m.from, m.to, describe(m.msg))
			d.apply(dst, acts, "  ")
		}
		d.queue = append(kept, d.queue...)
		if !all || len(d.queue) == 0 {
			break
		}
	}
	d.printf("(%d delivered, %d without reaction, %d discarded; %d queued)", delivered, quiet, discarded, len(d.queue))
}

// apply executes a node's actions: persist, then send; decisions and timers
// are printed. It checks the no-equivocation and agreement invariants.
func (d *pdriver) apply(n *pnode, acts []pbft.Action, indent string) {
	for _, a := range acts {
		switch a := a.(type) {
		case pbft.SendAction:
			if a.Persist != nil {
				n.wal = append(n.wal, a.Persist)
				d.printf("%s%s: wal append %s", indent, n.id, describeWAL(a.Persist))
			}
			to := "all"
			dests := a.To
			if dests == nil {
				for _, id := range d.ids {
					if id != n.id {
						dests = append(dests, id)
					}
				}
			} else {
				to = fmt.Sprint(a.To)
				to = strings.Trim(to, "[]")
			}
			d.checkVote(n, a.Msg, indent)
			d.printf("%s%s -> %s: %s", indent, n.id, to, describe(a.Msg))
			for _, id := range dests {
				d.queue = append(d.queue, pmsg{from: n.id, to: id, msg: a.Msg})
			}
		case pbft.DecideAction:
			dg := a.Proposal.Digest()
			d.printf("%s%s: decide sn=%d %s", indent, n.id, a.SeqNr, describeProposal(a.Proposal))
			if old, ok := d.decided[a.SeqNr]; ok && old != dg {
				d.printf("%s!! %s decided sn=%d d=%s, another node decided d=%s", indent, n.id, a.SeqNr, dg, old)
			}
			d.decided[a.SeqNr] = dg
		case pbft.TimerAction:
			d.printf("%s%s: timer v%d after %v", indent, n.id, a.View, a.After)
		}
	}
}

// checkVote records the vote a node sends and reports a contradiction.
func (d *pdriver) checkVote(n *pnode, msg any, indent string) {
	var key, val string
	switch m := msg.(type) {
	case pbft.Preprepare:
		key, val = fmt.Sprintf("preprepare v%d sn=%d", m.H.View, m.SeqNr), m.Proposal.Digest().String()
	case pbft.Prepare:
		key, val = fmt.Sprintf("prepare v%d sn=%d", m.H.View, m.SeqNr), m.Digest.String()
	case pbft.Commit:
		key, val = fmt.Sprintf("commit v%d sn=%d", m.H.View, m.SeqNr), m.Digest.String()
	case pbft.SignedViewChange:
		if m.Signer != n.id {
			return
		}
		enc, err := mir.Marshal(m.VC)
		if err != nil {
			d.fatalf("%v", err)
		}
		key, val = fmt.Sprintf("viewchange v%d", m.VC.H.View), string(enc)
	default:
		return
	}
	if old, ok := n.votes[key]; ok && old != val {
		d.printf("%s!! %s contradicts its earlier %s", indent, n.id, key)
	}
	n.votes[key] = val
}

func (d *pdriver) printState(n *pnode) {
	v, ch := n.in.View()
	var dec []string
	for _, sn := range d.sns {
		if p, ok := n.in.Decided(sn); ok {
			dec = append(dec, fmt.Sprintf("sn=%d:%s", sn, describeProposal(p)))
		} else {
			dec = append(dec, fmt.Sprintf("sn=%d:-", sn))
		}
	}
	iso := ""
	if n.isolated {
		iso = " isolated"
	}
	d.printf("%s: v%d changing=%v done=%v dropped=%d%s decided[%s]", n.id, v, ch, n.in.Done(), n.in.Dropped(), iso, strings.Join(dec, " "))
}

// testBatch returns a deterministic batch of txs transactions for slot sn;
// variant changes its content.
func testBatch(sn ordering.SeqNr, txs, variant int) ordering.Batch {
	var b ordering.Batch
	for i := 0; i < txs; i++ {
		b.Txs = append(b.Txs, ordering.Tx{Sender: fmt.Sprintf("client-%d", i), Nonce: sn, Data: []byte{byte(variant)}})
	}
	return b
}

func describeProposal(p pbft.Proposal) string {
	if p.Aborted {
		return "aborted"
	}
	return fmt.Sprintf("batch[%d txs] d=%s", len(p.Batch.Txs), p.Digest())
}

func hdr(h pbft.Header) string { return fmt.Sprintf("e%d/s%d v%d", h.Epoch, h.Seg, h.View) }

func describe(msg any) string {
	switch m := msg.(type) {
	case pbft.Preprepare:
		return fmt.Sprintf("Preprepare %s sn=%d %s", hdr(m.H), m.SeqNr, describeProposal(m.Proposal))
	case pbft.Prepare:
		return fmt.Sprintf("Prepare %s sn=%d d=%s", hdr(m.H), m.SeqNr, m.Digest)
	case pbft.Commit:
		return fmt.Sprintf("Commit %s sn=%d d=%s", hdr(m.H), m.SeqNr, m.Digest)
	case pbft.SignedViewChange:
		var ps, qs []string
		for _, p := range m.VC.PSet {
			ps = append(ps, fmt.Sprintf("sn=%d v%d d=%s", p.SeqNr, p.View, p.Digest))
		}
		for _, q := range m.VC.QSet {
			qs = append(qs, fmt.Sprintf("sn=%d v%d d=%s", q.SeqNr, q.View, q.Digest))
		}
		return fmt.Sprintf("ViewChange %s by %s P[%s] Q[%s]", hdr(m.VC.H), m.Signer, strings.Join(ps, ", "), strings.Join(qs, ", "))
	case pbft.FetchBody:
		return fmt.Sprintf("FetchBody %s sn=%d d=%s", hdr(m.H), m.SeqNr, m.Digest)
	case pbft.Body:
		return fmt.Sprintf("Body %s sn=%d %s", hdr(m.H), m.SeqNr, describeProposal(m.Proposal))
	case pbft.NewView:
		var signers, pps []string
		for _, vc := range m.ViewChanges {
			signers = append(signers, string(vc.Signer))
		}
		for _, c := range m.Choices {
			if c.Aborted {
				pps = append(pps, fmt.Sprintf("sn=%d aborted", c.SeqNr))
			} else {
				pps = append(pps, fmt.Sprintf("sn=%d d=%s", c.SeqNr, c.Digest))
			}
		}
		return fmt.Sprintf("NewView %s vcs[%s] pp[%s]", hdr(m.H), strings.Join(signers, " "), strings.Join(pps, ", "))
	}
	return fmt.Sprintf("%T", msg)
}

func describeWAL(e any) string {
	switch e := e.(type) {
	case pbft.WALPreprepare:
		if e.NoBody {
			return fmt.Sprintf("WALPreprepare %s sn=%d d=%s (no body)", hdr(e.PP.H), e.PP.SeqNr, e.Digest)
		}
		return "WALPreprepare " + describe(e.PP)
	case pbft.WALCommit:
		return "WALCommit " + describe(e.C)
	case pbft.WALViewChange:
		return fmt.Sprintf("WALViewChange %s by %s", hdr(e.SVC.VC.H), e.SVC.Signer)
	case pbft.WALNewView:
		return "WALNewView " + hdr(e.NV.H)
	}
	return fmt.Sprintf("%T", e)
}
