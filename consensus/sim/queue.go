package sim

import (
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// itemKind says what a scheduled item does when its instant comes.
type itemKind uint8

const (
	itemStart   itemKind = iota + 1 // start slot (first incarnation)
	itemEvents                      // enqueue events into inst from src
	itemMessage                     // deliver a network message to inst
	itemTimer                       // fire a timer of inst
	itemSync                        // complete a WAL fsync of inst
	itemAction                      // run Scenario.Schedule[action]
	itemSubmit                      // submit the next client transaction
	itemHeal                        // end of the fault phase
	itemEnd                         // end of the run
)

// item is one entry of the global event queue. Items are recycled through
// sim.free; fields not used by a kind stay zero.
type item struct {
	at   time.Duration // virtual instant
	seq  uint64        // tie-breaker: scheduling order
	kind itemKind
	inst *instance // target incarnation (nil for global items)
	slot int       // start: slot; message: destination slot
	// itemEvents
	src    mir.ModuleID
	events mir.EventList
	// itemMessage
	from int // sender slot
	dest mir.ModuleID
	msg  any    // the message (SkipEncoding)
	wire []byte // the encoded message
	// itemTimer
	timer *timerRec
	// itemSync
	target uint64
	// itemAction
	action int
}

// itemHeap is a binary min-heap of items ordered by (at, seq).
type itemHeap []*item

func (h itemHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (h *itemHeap) push(it *item) {
	*h = append(*h, it)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *itemHeap) pop() *item {
	q := *h
	n := len(q) - 1
	top := q[0]
	q[0] = q[n]
	q[n] = nil
	q = q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}
