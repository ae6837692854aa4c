package itests

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/localnet"
)

// tuneFast makes checkpoints (and so state transfer to a restarted node)
// come quickly: short segments, so an epoch is a few dozen sequence numbers.
func tuneFast(c *localnet.NodeConfig) {
	c.SegmentLength = 8
	c.BatchTimeoutMS = 5
}

// TestCommitsUnderLoad drives a short load through all four validators and
// checks that every acknowledged transaction commits exactly once and the
// validators agree on the state root.
func TestCommitsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts validator processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := startCluster(t, ctx, 4, tuneFast)
	f := startFollower(t, ctx, c, 0)

	l := newLoader(c, 4, 200, 20*time.Millisecond)
	l.start(ctx)
	if err := waitFor(ctx, 20*time.Second, 50*time.Millisecond, func() error {
		if n := f.committedCount(); n < 200 {
			return fmt.Errorf("%d transactions committed", n)
		}
		return nil
	}); err != nil {
		t.Fatalf("no progress under load: %v (%s)", err, l.summary())
	}
	l.halt()
	t.Logf("load: %s", l.summary())
	checkOutcome(t, ctx, c, f, l)
}

// TestKillRestart SIGKILLs a validator under load, restarts it from its
// home, and checks that it catches up, that no acknowledged transaction is
// lost or committed twice, and that all validators end with the same state
// root at the same height.
func TestKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts validator processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	c := startCluster(t, ctx, 4, tuneFast)
	const victim = 2
	others := []int{0, 1, 3}
	f := startFollower(t, ctx, c, 0)

	l := newLoader(c, 6, 1000, 25*time.Millisecond)
	l.start(ctx)
	committed := func(min int) func() error {
		return func() error {
			if n := f.committedCount(); n < min {
				return fmt.Errorf("%d transactions committed, want %d", n, min)
			}
			return nil
		}
	}
	if err := waitFor(ctx, 20*time.Second, 50*time.Millisecond, committed(200)); err != nil {
		t.Fatalf("before the kill: %v (%s)", err, l.summary())
	}
	t.Logf("%v: killing %s", time.Since(start).Round(time.Millisecond), c.nw.IDs[victim])
	c.kill(victim)

	// Three of four validators are a quorum: commits go on.
	base := f.committedCount()
	if err := waitFor(ctx, 20*time.Second, 50*time.Millisecond, committed(base+200)); err != nil {
		t.Fatalf("with %s down: %v (%s)", c.nw.IDs[victim], err, l.summary())
	}
	t.Logf("%v: restarting %s", time.Since(start).Round(time.Millisecond), c.nw.IDs[victim])
	c.start(ctx, victim)

	sts, err := c.statuses(ctx, others)
	if err != nil {
		t.Fatal(err)
	}
	var target uint64
	for _, st := range sts {
		target = max(target, st.Height)
	}
	if err := waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		st, err := c.status(ctx, victim)
		if err != nil {
			return err
		}
		if st.Height < target {
			return fmt.Errorf("%s at height %d, others were at %d", c.nw.IDs[victim], st.Height, target)
		}
		return nil
	}); err != nil {
		all, _ := c.statuses(ctx, c.all())
		t.Fatalf("restarted validator does not catch up: %v; %s", err, describe(all))
	}
	t.Logf("%v: %s caught up to height %d", time.Since(start).Round(time.Millisecond), c.nw.IDs[victim], target)

	base = f.committedCount()
	if err := waitFor(ctx, 20*time.Second, 50*time.Millisecond, committed(base+300)); err != nil {
		t.Fatalf("after the restart: %v (%s)", err, l.summary())
	}
	l.halt()
	t.Logf("load: %s", l.summary())
	checkOutcome(t, ctx, c, f, l)
	t.Logf("%v: done", time.Since(start).Round(time.Millisecond))
}

// startFollower follows validator i's commits and waits for the first
// notice, so that no batch with a transaction precedes the follower.
func startFollower(t *testing.T, ctx context.Context, c *cluster, i int) *follower {
	t.Helper()
	f, err := follow(ctx, c, i)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 10*time.Second, 20*time.Millisecond, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.started {
			return fmt.Errorf("no commit notice from %s", c.nw.IDs[i])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// checkOutcome waits until every acknowledged transaction committed, checks
// each did exactly once, and waits until all validators report the same
// height with the same state root, which must be the root of the log the
// follower saw replayed into a fresh store.
func checkOutcome(t *testing.T, ctx context.Context, c *cluster, f *follower, l *loader) {
	t.Helper()
	acked := l.ackedIDs()
	if len(acked) == 0 {
		t.Fatal("no transaction was acknowledged")
	}
	if err := waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		n, one, err := f.missing(acked)
		if err != nil {
			return err
		}
		if n > 0 {
			tx, _ := l.lookup(one)
			return fmt.Errorf("%d of %d acknowledged transactions not committed (e.g. %s nonce %d)", n, len(acked), tx.Sender, tx.Nonce)
		}
		return nil
	}); err != nil {
		all, _ := c.statuses(ctx, c.all())
		_, one, _ := f.missing(acked)
		tx, _ := l.lookup(one)
		t.Fatalf("acknowledged transactions lost: %v; %s; around it: %s", err, describe(all), f.around(tx, l.lookup))
	}
	if err := f.checkExactlyOnce(acked); err != nil {
		t.Fatal(err)
	}
	// Heights advance with empty batches even when idle, and the state root
	// commits to the height, so compare the nodes at a moment when they all
	// report the same height.
	var last string
	if err := waitFor(ctx, 20*time.Second, 10*time.Millisecond, func() error {
		sts, err := c.statuses(ctx, c.all())
		if err != nil {
			return err
		}
		last = describe(sts)
		for _, st := range sts[1:] {
			if st.Height != sts[0].Height {
				return fmt.Errorf("heights differ: %s", last)
			}
		}
		for _, st := range sts[1:] {
			if !bytes.Equal(st.StateRoot, sts[0].StateRoot) {
				return fmt.Errorf("state roots differ at height %d: %s", sts[0].Height, last)
			}
		}
		var want []byte
		if err := waitFor(ctx, 5*time.Second, 10*time.Millisecond, func() error {
			r, ok, err := f.rootAt(sts[0].Height, l.lookup)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("follower has not reached height %d", sts[0].Height)
			}
			want = r
			return nil
		}); err != nil {
			return err
		}
		if !bytes.Equal(want, sts[0].StateRoot) {
			return fmt.Errorf("validators' root at height %d is %x, the replayed log gives %x", sts[0].Height, shortRoot(sts[0].StateRoot), shortRoot(want))
		}
		return nil
	}); err != nil {
		t.Fatalf("validators do not converge: %v", err)
	}
	t.Logf("converged: %s", last)
	// Ordered is not enough: every ordered transaction was applied. A
	// transaction ordered ahead of a nonce it follows (its predecessor's
	// batch aborted, its own committed) is skipped by the application, and
	// so is every later one of its sender.
	if st := f.replayStats(); st.BadNonce != 0 || st.Invalid != 0 {
		t.Fatalf("the replayed log skipped transactions: %+v", st)
	}
}
