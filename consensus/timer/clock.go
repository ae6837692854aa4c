package timer

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the source of time of the timer module.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once, on a goroutine chosen by the clock, when d has
	// passed. A negative or zero d makes f due at once. The returned Timer
	// cancels the call.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled by Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call. It returns true if it prevented f from being
	// called, false if f was already called or is being called (or the
	// timer was stopped before).
	Stop() bool
}

// RealClock is the wall clock: Now is time.Now and AfterFunc is
// time.AfterFunc (f runs on its own goroutine).
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc calls f on its own goroutine after d, as time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// VirtualClock is a clock that moves only when told to. Due timers fire
// synchronously on the goroutine that calls Advance, AdvanceTo or
// AdvanceToNext, in deadline order, ties broken by creation order, and the
// clock reads the timer's deadline while its function runs. A timer created
// by a firing function that is due within the same advance fires in that
// advance too.
//
// A VirtualClock is safe for concurrent use; advances are serialised. A
// function fired by the clock may call Now and AfterFunc and stop timers but
// must not advance the clock itself (that deadlocks).
type VirtualClock struct {
	// advMu serialises advances; the fired functions run holding it.
	advMu sync.Mutex

	// mu guards the fields below; never held while a fired function runs.
	mu sync.Mutex
	// now never decreases.
	now time.Time
	// seq is the creation number of the next timer.
	seq uint64
	// pending holds the unfired, unstopped timers, earliest (deadline, seq) first.
	pending timerHeap
}

// NewVirtualClock returns a virtual clock that reads start until advanced.
func NewVirtualClock(start time.Time) *VirtualClock {
	return &VirtualClock{now: start}
}

// Now returns the clock's current time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d (at Now() for d <= 0). It fires during
// the next advance that reaches that time, never during AfterFunc itself.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) Timer {
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &virtualTimer{clock: c, when: c.now.Add(d), seq: c.seq, f: f}
	c.seq++
	heap.Push(&c.pending, t)
	return t
}

// Pending returns the number of timers waiting to fire.
func (c *VirtualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Next returns the deadline of the earliest pending timer, and false if no
// timer is pending.
func (c *VirtualClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return time.Time{}, false
	}
	return c.pending[0].when, true
}

// Advance moves the clock forward by d, firing every timer due by then, and
// returns the number of timers fired. It panics if d is negative (time
// never moves back; that is a bug in the caller).
func (c *VirtualClock) Advance(d time.Duration) int {
	if d < 0 {
		panic("timer: VirtualClock.Advance with a negative duration")
	}
	c.advMu.Lock()
	defer c.advMu.Unlock()
	return c.advanceTo(c.Now().Add(d))
}

// AdvanceTo moves the clock to t, firing every timer due by then, and
// returns the number of timers fired. A t before Now fires the timers due
// now and leaves the clock where it is.
func (c *VirtualClock) AdvanceTo(t time.Time) int {
	c.advMu.Lock()
	defer c.advMu.Unlock()
	if now := c.Now(); t.Before(now) {
		t = now
	}
	return c.advanceTo(t)
}

// AdvanceToNext moves the clock to the deadline of the earliest pending
// timer and fires every timer due at that instant (including ones those
// timers create with a zero delay). It returns false, leaving the clock as
// it is, if no timer is pending.
func (c *VirtualClock) AdvanceToNext() bool {
	c.advMu.Lock()
	defer c.advMu.Unlock()
	next, ok := c.Next()
	if !ok {
		return false
	}
	c.advanceTo(next)
	return true
}

// advanceTo fires due timers one at a time, releasing mu around each call.
// The caller holds advMu.
func (c *VirtualClock) advanceTo(target time.Time) int {
	fired := 0
	for {
		c.mu.Lock()
		if len(c.pending) == 0 || c.pending[0].when.After(target) {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return fired
		}
		t := heap.Pop(&c.pending).(*virtualTimer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		fired++
		t.f()
	}
}

// virtualTimer is one AfterFunc call of a VirtualClock.
type virtualTimer struct {
	clock *VirtualClock
	when  time.Time
	seq   uint64
	f     func()
	// index is the position in clock.pending, -1 once fired or stopped.
	index int
}

// Stop removes the timer if it has not fired yet.
func (t *virtualTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.pending, t.index)
	return true
}

// timerHeap is a min-heap of timers by (when, seq).
type timerHeap []*virtualTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*virtualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}
