package timer

import (
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestVirtualClockFiresInDeadlineThenCreationOrder(t *testing.T) {
	c := NewVirtualClock(epoch)
	var got []string
	var at []time.Duration
	add := func(d time.Duration, name string) Timer {
		return c.AfterFunc(d, func() {
			got = append(got, name)
			at = append(at, c.Now().Sub(epoch))
		})
	}
	add(30*time.Millisecond, "a")
	add(10*time.Millisecond, "b")
	add(20*time.Millisecond, "c")
	add(10*time.Millisecond, "d")
	add(-time.Second, "neg") // due now
	stopped := add(15*time.Millisecond, "stopped")
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}
	if n := c.Advance(25 * time.Millisecond); n != 4 {
		t.Fatalf("Advance fired %d timers, want 4", n)
	}
	if got := c.Now().Sub(epoch); got != 25*time.Millisecond {
		t.Fatalf("Now after Advance = +%v, want +25ms", got)
	}
	c.Advance(5 * time.Millisecond)
	want := []string{"neg", "b", "d", "c", "a"}
	wantAt := []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || at[i] != wantAt[i] {
			t.Fatalf("firing %d: %s at +%v, want %s at +%v", i, got[i], at[i], want[i], wantAt[i])
		}
	}
	if c.Pending() != 0 {
		t.Fatalf("Pending = %d, want 0", c.Pending())
	}
}

func TestVirtualClockAdvanceToNext(t *testing.T) {
	c := NewVirtualClock(epoch)
	if c.AdvanceToNext() {
		t.Fatal("AdvanceToNext with no timers returned true")
	}
	var got []string
	c.AfterFunc(time.Second, func() {
		got = append(got, "first")
		// Created during the advance, due at the same instant: fires now.
		c.AfterFunc(0, func() { got = append(got, "chained") })
		// Due later: waits for the next advance.
		c.AfterFunc(time.Second, func() { got = append(got, "later") })
	})
	c.AfterFunc(time.Second, func() { got = append(got, "tie") })
	if !c.AdvanceToNext() {
		t.Fatal("AdvanceToNext returned false")
	}
	if want := "[first tie chained]"; fmtSlice(got) != want {
		t.Fatalf("fired %v, want %s", got, want)
	}
	if next, ok := c.Next(); !ok || next.Sub(epoch) != 2*time.Second {
		t.Fatalf("Next = %v %v, want +2s", next, ok)
	}
	if c.Now().Sub(epoch) != time.Second {
		t.Fatalf("Now = +%v, want +1s", c.Now().Sub(epoch))
	}
	c.AdvanceToNext()
	if want := "[first tie chained later]"; fmtSlice(got) != want {
		t.Fatalf("fired %v, want %s", got, want)
	}
}

func TestVirtualClockAdvanceToPastDoesNotMoveBack(t *testing.T) {
	c := NewVirtualClock(epoch)
	c.Advance(time.Second)
	fired := false
	c.AfterFunc(0, func() { fired = true })
	c.AdvanceTo(epoch)
	if !fired || !c.Now().Equal(epoch.Add(time.Second)) {
		t.Fatalf("fired=%v now=%v", fired, c.Now())
	}
}

func TestVirtualClockConcurrentUse(t *testing.T) {
	c := NewVirtualClock(epoch)
	var mu sync.Mutex
	fired := 0
	var wg sync.WaitGroup
	const goroutines, perG = 4, 200
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				tm := c.AfterFunc(time.Duration(i)*time.Millisecond, func() {
					mu.Lock()
					fired++
					mu.Unlock()
				})
				if i%10 == 9 {
					tm.Stop()
				}
				c.Advance(time.Microsecond)
			}
		}()
	}
	wg.Wait()
	for c.AdvanceToNext() {
	}
	mu.Lock()
	defer mu.Unlock()
	// The clock moved at most goroutines*perG microseconds before the
	// stops, less than the 9ms of the shortest stopped timer: every stopped
	// timer was stopped in time and every other one fired.
	if want := goroutines * perG * 9 / 10; fired != want {
		t.Fatalf("fired %d timers, want %d", fired, want)
	}
}

func TestVirtualClockNegativeAdvancePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1) did not panic")
		}
	}()
	NewVirtualClock(epoch).Advance(-1)
}

func fmtSlice(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
