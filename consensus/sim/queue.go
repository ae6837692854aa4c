package sim

import (
	"container/heap"
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

// itemHeap is a min-heap of items ordered by (at, seq), through
// container/heap. seq is unique, so the order of pops does not depend on the
// heap's shape.
type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }

func (h itemHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push and Pop are for container/heap; use push and pop.
func (h *itemHeap) Push(x any) { *h = append(*h, x.(*item)) }

func (h *itemHeap) Pop() any {
	old := *h
	n := len(old) - 1
	it := old[n]
	old[n] = nil
	*h = old[:n]
	return it
}

func (h *itemHeap) push(it *item) { heap.Push(h, it) }

func (h *itemHeap) pop() *item { return heap.Pop(h).(*item) }
