package sim

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Violation kinds.
const (
	// KindAgreement: two correct nodes delivered different batches at one
	// sequence number.
	KindAgreement = "agreement"
	// KindGap: a correct incarnation skipped or repeated a sequence number.
	KindGap = "gap"
	// KindRestore: a correct node restored past what any correct node
	// delivered.
	KindRestore = "restore"
	// KindCheckpoint: correct nodes disagree on a stable checkpoint.
	KindCheckpoint = "checkpoint"
	// KindLiveness: a transaction was not delivered by a strong quorum of
	// correct nodes in time after the heal.
	KindLiveness = "liveness"
	// KindInvalid: a correct node accepted something the harness's own
	// check rejects (Observer.Invalid).
	KindInvalid = "invalid"
	// KindEquivocation: a correct node sent a message contradicting an
	// earlier one (Scenario.SentCheck).
	KindEquivocation = "equivocation"
	// KindNodeError: a module failed or broke the service contract.
	KindNodeError = "node-error"
	// KindCodec: a message or WAL entry does not survive CBOR round trip.
	KindCodec = "codec"
	// KindConfig: the scenario is invalid.
	KindConfig = "config"
)

// Violation is one thing a checker found.
type Violation struct {
	Kind     string
	At       time.Duration // virtual time
	Endpoint Endpoint
	Msg      string
}

// String describes the violation.
func (v Violation) String() string {
	if v.Endpoint.ID == "" {
		return fmt.Sprintf("%s at %v: %s", v.Kind, v.At, v.Msg)
	}
	return fmt.Sprintf("%s at %v on node %v: %s", v.Kind, v.At, v.Endpoint, v.Msg)
}

// Stats are counters of a run.
type Stats struct {
	VirtualTime time.Duration // virtual time at the end of the run
	Steps       uint64        // queue items processed
	Events      uint64        // events dispatched by all nodes

	MsgSent        uint64 // message copies addressed to an endpoint
	MsgDelivered   uint64
	MsgDropped     uint64 // lost at random
	MsgDuplicated  uint64
	MsgCut         uint64 // dropped by a partition
	MsgHeld        uint64 // held by a clog (later delivered or dropped)
	MsgToDown      uint64 // addressed to a crashed incarnation
	MsgNoModule    uint64 // the destination module does not exist
	MsgUnknownDest uint64 // addressed to an unknown identity

	WALAppends uint64
	WALSyncs   uint64
	WALLost    uint64 // entries lost in crashes (unsynced tails)

	Crashes  int
	Restarts int

	TxSubmitted int
	TxQuorum    int    // transactions delivered by a strong quorum
	Decided     uint64 // sequence numbers delivered by some correct node
}

// Result is the outcome of Run.
type Result struct {
	Seed       uint64
	Scenario   string // Scenario.String()
	Repro      string // command that reproduces the run
	Violations []Violation
	// Hash is the determinism hash (see Scenario.Hash): it covers the
	// virtual instant, endpoint and incarnation of every hashed record and
	// the NodeHashes.
	Hash [32]byte
	// NodeHashes are the hashes of each incarnation's records in the order
	// incarnations ended; compare them to find the node that diverged first.
	NodeHashes []NodeHash
	Stats      Stats
}

// NodeHash is the event-log hash of one incarnation: with HashEvery it is
// what eventlog.HashLog computes for the incarnation's event log.
type NodeHash struct {
	Endpoint    Endpoint
	Incarnation int
	Records     uint64
	Sum         [32]byte
}

// OK reports whether no checker found anything.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// Err returns nil if the run is clean, else an error listing the
// violations, the scenario, the seed and the command that reproduces it.
func (r *Result) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sim: seed %d: %d violation(s)\n", r.Seed, len(r.Violations))
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(&b, "  ... %d more\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(&b, "  %v\n", v)
	}
	fmt.Fprintf(&b, "scenario: %s\nreproduce: %s", r.Scenario, r.Repro)
	return errors.New(b.String())
}

// HasKind reports whether a violation of the kind was found.
func (r *Result) HasKind(kind string) bool {
	for _, v := range r.Violations {
		if v.Kind == kind {
			return true
		}
	}
	return false
}

// maxViolations caps the violations one run records.
const maxViolations = 50

// violate records a violation; every kind but liveness stops the run (the
// state after a safety violation tells nothing more).
func (s *sim) violate(kind string, ep Endpoint, msg string) {
	if len(s.res.Violations) < maxViolations {
		s.res.Violations = append(s.res.Violations, Violation{Kind: kind, At: s.now, Endpoint: ep, Msg: msg})
	}
	if kind != KindLiveness {
		s.stopped = true
	}
}

// decision is the first delivery (or stable checkpoint) seen for an index.
type decision struct {
	digest []byte
	by     Endpoint
	at     time.Duration
	// txs are the transactions of a delivered batch (nil for checkpoints);
	// a node that restores past the batch is credited with them.
	txs [][]byte
}

// txRec tracks one submitted transaction.
type txRec struct {
	tx       []byte
	to       *instance
	at       time.Duration
	mask     uint64 // slots (correct identities) that delivered it
	weight   uint64
	quorumAt time.Duration // -1 until a strong quorum delivered it
	// checked: submitted to a correct incarnation, which did not crash
	// before the quorum was reached.
	checked bool
}

// checker holds the safety and liveness checkers' state. The rules:
//
//   - agreement: for each seqNr, every correct incarnation that delivers it
//     delivers the same digest (the first one delivered fixes it);
//   - gap-free: each correct incarnation delivers FirstSeqNr (or its latest
//     Restore point), then each next seqNr, with no gap or repeat. With
//     agreement this makes every correct log a contiguous range of one
//     global log, hence logs starting at FirstSeqNr are prefixes of one
//     another;
//   - restore: a Restore(n) is allowed only if every seqNr below n was
//     delivered by some correct node;
//   - checkpoints: all correct nodes agree on each epoch's digest;
//   - liveness: see Scenario.LivenessBound. Transactions submitted to an
//     incarnation that crashes before a quorum delivered them are excused
//     (the client would resubmit).
//
// Twins identities are Byzantine: nothing they report is checked.
type checker struct {
	s        *sim
	decided  map[uint64]decision
	frontier uint64 // every seqNr in [FirstSeqNr, frontier) is decided
	ckpts    map[uint64]decision
	txs      map[string]*txRec
	txOrder  []*txRec
	pending  int // checked transactions without quorum
}

func (c *checker) init(s *sim) {
	c.s = s
	c.decided = map[uint64]decision{}
	c.frontier = s.sc.FirstSeqNr
	c.ckpts = map[uint64]decision{}
	c.txs = map[string]*txRec{}
}

// observer binds the Observer interface to one incarnation.
type observer struct{ in *instance }

func (o observer) Deliver(seqNr uint64, digest []byte, txs [][]byte) {
	o.in.s.check.deliver(o.in, seqNr, digest, txs)
}

func (o observer) StableCheckpoint(epoch uint64, digest []byte) {
	o.in.s.check.checkpoint(o.in, epoch, digest)
}

func (o observer) Restore(next uint64) { o.in.s.check.restore(o.in, next) }

func (o observer) Invalid(msg string) {
	if o.in.slot.twin || o.in.dead {
		return
	}
	o.in.s.violate(KindInvalid, o.in.slot.ep, msg)
}

func short(d []byte) string {
	if len(d) > 8 {
		d = d[:8]
	}
	return hex.EncodeToString(d)
}

func (c *checker) deliver(in *instance, seq uint64, digest []byte, txs [][]byte) {
	s := c.s
	sl := in.slot
	if sl.twin || in.dead {
		return
	}
	if seq != in.next {
		s.violate(KindGap, sl.ep, fmt.Sprintf("incarnation %d delivered seqNr %d, expected %d", in.incarnation, seq, in.next))
	}
	in.next = seq + 1
	if d, ok := c.decided[seq]; ok {
		if !bytes.Equal(d.digest, digest) {
			s.violate(KindAgreement, sl.ep, fmt.Sprintf("delivered %s at seqNr %d, but %v delivered %s at %v",
				short(digest), seq, d.by, short(d.digest), d.at))
		}
	} else {
		c.decided[seq] = decision{digest: bytes.Clone(digest), by: sl.ep, at: s.now, txs: txs}
		s.res.Stats.Decided++
		for {
			if _, ok := c.decided[c.frontier]; !ok {
				break
			}
			c.frontier++
		}
	}
	c.credit(in, txs)
}

// credit counts the transactions as delivered by in's identity.
func (c *checker) credit(in *instance, txs [][]byte) {
	s := c.s
	sl := in.slot
	bit := uint64(1) << uint(sl.idx)
	for _, tx := range txs {
		r := c.txs[string(tx)]
		if r == nil || r.mask&bit != 0 {
			continue
		}
		r.mask |= bit
		r.weight += s.weights[sl.idx]
		if r.quorumAt < 0 && 3*r.weight > 2*s.totalWeight {
			r.quorumAt = s.now
			s.res.Stats.TxQuorum++
			if r.checked {
				c.pending--
			}
		}
	}
}

func (c *checker) checkpoint(in *instance, epoch uint64, digest []byte) {
	if in.slot.twin || in.dead {
		return
	}
	if d, ok := c.ckpts[epoch]; ok {
		if !bytes.Equal(d.digest, digest) {
			c.s.violate(KindCheckpoint, in.slot.ep, fmt.Sprintf("stable checkpoint of epoch %d is %s, but %v had %s at %v",
				epoch, short(digest), d.by, short(d.digest), d.at))
		}
		return
	}
	c.ckpts[epoch] = decision{digest: bytes.Clone(digest), by: in.slot.ep, at: c.s.now}
}

func (c *checker) restore(in *instance, next uint64) {
	if in.slot.twin || in.dead {
		return
	}
	if next > c.frontier {
		c.s.violate(KindRestore, in.slot.ep, fmt.Sprintf("restored to seqNr %d, but correct nodes delivered only up to %d",
			next, c.frontier))
	}
	// The restored state reflects every batch below next: the transactions
	// in them count as delivered by this node.
	for seq := in.next; seq < next; seq++ {
		if d, ok := c.decided[seq]; ok {
			c.credit(in, d.txs)
		}
	}
	in.next = next
}

// submitted starts tracking a transaction submitted to in.
func (c *checker) submitted(in *instance, tx []byte) {
	r := &txRec{tx: tx, to: in, at: c.s.now, quorumAt: -1}
	r.checked = !in.slot.twin && !c.s.sc.NoLiveness
	c.txs[string(tx)] = r
	c.txOrder = append(c.txOrder, r)
	if r.checked {
		c.pending++
		in.pendingTx = append(in.pendingTx, r)
	}
}

// stopped excuses the transactions pending at an incarnation that ended.
func (c *checker) stopped(in *instance) {
	for _, r := range in.pendingTx {
		if r.checked && r.quorumAt < 0 {
			r.checked = false
			c.pending--
		}
	}
	in.pendingTx = nil
}

// finish runs the liveness check at the end of the run.
func (c *checker) finish() {
	s := c.s
	if s.sc.NoLiveness || !s.healed {
		return
	}
	for _, v := range s.res.Violations {
		if v.Kind != KindLiveness {
			return // the run stopped early
		}
	}
	var missed []*txRec
	for _, r := range c.txOrder {
		if !r.checked {
			continue
		}
		deadline := max(r.at, s.healAt) + s.sc.LivenessBound
		if deadline > s.now && r.quorumAt < 0 {
			continue // the run ended before its deadline (early stop cannot do that)
		}
		if r.quorumAt < 0 || r.quorumAt > deadline {
			missed = append(missed, r)
		}
	}
	if len(missed) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d checked transactions not delivered by a strong quorum of correct nodes within %v after heal",
		len(missed), len(c.txOrder), s.sc.LivenessBound)
	for i, r := range missed {
		if i == 5 {
			b.WriteString("; ...")
			break
		}
		var got, miss []string
		for _, sl := range s.slots {
			if sl.twin {
				continue
			}
			if r.mask&(1<<uint(sl.idx)) != 0 {
				got = append(got, sl.ep.String())
			} else {
				miss = append(miss, sl.ep.String())
			}
		}
		when := "never"
		if r.quorumAt >= 0 {
			when = r.quorumAt.String()
		}
		fmt.Fprintf(&b, "; tx %q submitted to %v at %v: quorum %s, delivered by %v, missing %v",
			r.tx[:min(len(r.tx), 24)], r.to.slot.ep, r.at, when, got, miss)
	}
	s.violate(KindLiveness, Endpoint{}, b.String())
}
