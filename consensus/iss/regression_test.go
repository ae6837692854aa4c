package iss_test

import (
	"github.com/mirsubnet/mirsubnet/consensus/internal/script"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// Regression tests for bugs the interaction tests found.

// TestPoolBatchTimerSurvivesTimerGC: the reference Pool arms its batch
// timeout with the timer module ISS also uses, with RetentionIndex 0. ISS
// sends TimerGarbageCollect{e} at every stable checkpoint, and the timer
// module (consensus/timer, Scheduler) cancels every timer below e and drops
// later requests below the highest index seen as stale. From the first
// stable checkpoint on, every pool batch timeout is therefore dropped: a
// partly filled batch waits for ISS's CutTimeout (EmptyProposalPeriod)
// instead of the pool's BatchTimeout. The golden scripts show it as "timer
// requests dropped as stale (iss.poolCut)". Fix (pool.go, serve): arm the
// TimerDelay with RetentionIndex math.MaxUint64 (it is the pool's own
// timer, never tied to an epoch; a stale poolCut is already harmless).
func TestPoolBatchTimerSurvivesTimerGC(t *testing.T) {
	pool := iss.NewPool("mempool", "timer", iss.PoolParams{BatchTimeout: 10 * time.Millisecond, NumBuckets: 1})
	out, err := pool.ApplyEvents(mir.EventList{
		mir.NewEvent("mempool", iss.RequestBatch{ReqID: 1, Buckets: []int{0}, NumBuckets: 1, MaxTxs: 10, MaxBytes: 1 << 20, ReplyTo: "iss"}),
		mir.NewEvent("mempool", iss.SubmitTx{Tx: ordering.Tx{Sender: "a", Nonce: 1}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range out {
		if td, ok := e.Payload.(events.TimerDelay); ok {
			found = true
			if td.RetentionIndex != math.MaxUint64 {
				t.Errorf("pool batch timer has RetentionIndex %d: the first TimerGarbageCollect of ISS (index 1) cancels it or drops it as stale", td.RetentionIndex)
			}
		}
	}
	if !found {
		t.Fatal("pool armed no batch timer for a partly filled request")
	}
}

// TestLaggingNodeKeepsFutureMessagesOnStateTransfer: a node restarted (or
// lagging) in epoch e buffers the messages of epoch e+1 it receives (the
// pre-prepares, prepares and commits of every slot of e+1, since leaders
// propose at the start of the epoch). When it then learns the stable
// certificate of e+1 and state-transfers to it, jumpTo (ckpt.go) sets
// s.future = nil: exactly the buffered messages of the epoch it now starts
// are thrown away. Peers do not retransmit pre-prepares of slots they have
// decided, so the node can only complete e+1 by catch-up (CommittedSlots),
// which a peer sends only after two unchanged Status rounds and only while
// it has not moved past the node's epoch (else it answers StableCert). When
// epochs are shorter than two resend periods the node never delivers again:
// it state-transfers every epoch, always one epoch behind (here: n2 keeps
// delivered=0 while the others run 30 epochs). Fix (ckpt.go, jumpTo): keep
// the buffered messages of epoch e (the one being started) instead of
// clearing the buffer, e.g.
//
//	kept := s.future[:0]
//	for _, m := range s.future { if h, ok := pbft.HeaderOf(m.msg); ok && h.Epoch == e { kept = append(kept, m) } }
//	s.future = kept
//
// so that startEpoch replays them.
func TestLaggingNodeKeepsFutureMessagesOnStateTransfer(t *testing.T) {
	d := &idriver{t: t}
	do := func(line string) string {
		c := script.ParseCmd(line)
		return d.exec(c)
	}
	do("init n=4 seglen=2 buckets=8")
	do("run d=150ms quiet")
	do("walmode n2 manual")
	do("submit txs=4")
	do("run d=120ms quiet")
	do("walmode n2 instant")
	do("restart n2")
	do("run d=3s quiet")
	n0, n2 := d.byID["n0"], d.byID["n2"]
	if n2.iss.Stats().Delivered == 0 || n2.app.Next()+8 < n0.app.Next() {
		t.Fatalf("restarted n2 does not catch up: n2 at sn=%d (delivered %d), n0 at sn=%d\n%s",
			n2.app.Next(), n2.iss.Stats().Delivered, n0.app.Next(), strings.TrimSpace(do("summary")))
	}
}
