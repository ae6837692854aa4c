package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/apps/kvstore"
	"github.com/mirsubnet/mirsubnet/client"
	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/engine"
	"github.com/mirsubnet/mirsubnet/localnet"
	"github.com/mirsubnet/mirsubnet/mempool"
)

// testNet is a validator set of n in-process validators on 127.0.0.1 with
// OS-assigned ports; each validator keeps its data directory across
// restarts.
type testNet struct {
	t    *testing.T
	keys []crypto.KeyPair
	vals []membership.Validator
	set  *membership.Set
	p    iss.Params
	dirs []string
}

func newTestNet(t *testing.T, n int) *testNet {
	t.Helper()
	tn := &testNet{t: t, keys: crypto.TestKeys(7, n)}
	ports, err := localnet.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		tn.vals = append(tn.vals, membership.Validator{ID: mir.NodeID(fmt.Sprintf("n%d", i)), PeerID: tn.keys[i].ID.String(),
			Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[i])}, Weight: membership.NewWeight(1)})
		tn.dirs = append(tn.dirs, t.TempDir())
	}
	if tn.set, err = membership.NewSet(tn.vals); err != nil {
		t.Fatal(err)
	}
	tn.p = iss.DefaultParams()
	tn.p.SegmentLength = 4
	tn.p.EmptyProposalPeriod = 50 * time.Millisecond
	return tn
}

// start starts validator i (again, after a stop: it recovers from its
// data directory); the test's cleanup stops it.
func (tn *testNet) start(ctx context.Context, i int) (*engine.Engine, *kvstore.Store) {
	tn.t.Helper()
	store := kvstore.New()
	e, err := engine.New(engine.Config{
		Self: tn.vals[i].ID, Key: tn.keys[i].Priv, Members: tn.set, ListenAddrs: tn.vals[i].Addrs, DataDir: tn.dirs[i],
		App: store, GenesisRoot: store.Root(), ISS: tn.p, Mempool: mempool.DefaultParams(),
		TxValidator: kvstore.CheckTx, NonceSource: store, AllowClients: true,
	})
	if err != nil {
		tn.t.Fatal(err)
	}
	e.ServeClients()
	if err := e.Start(ctx); err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			tn.t.Errorf("stop: %v", err)
		}
	})
	return e, store
}

// startEngines starts n validators and returns them with their kv stores.
func startEngines(t *testing.T, ctx context.Context, n int) ([]*engine.Engine, []*kvstore.Store) {
	t.Helper()
	tn := newTestNet(t, n)
	var engs []*engine.Engine
	var stores []*kvstore.Store
	for i := 0; i < n; i++ {
		e, store := tn.start(ctx, i)
		engs = append(engs, e)
		stores = append(stores, store)
	}
	return engs, stores
}

func kvTx(sender string, nonce uint64) ordering.Tx {
	return ordering.Tx{Sender: sender, Nonce: nonce, Data: kvstore.Command{Op: kvstore.OpSet, Key: fmt.Sprintf("k%d", nonce), Value: []byte("v")}.Encode()}
}

// TestJournalGivesBackAdmittedTxs: transactions a validator acknowledged
// while it could not commit them (it ran alone) and never gossiped to anyone
// are not lost with its memory: after a restart its journal gives them back
// to the pool, and the subnet commits each exactly once.
func TestJournalGivesBackAdmittedTxs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four libp2p validators")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := newTestNet(t, 4)
	e0, _ := tn.start(ctx, 0)
	cl, err := client.Dial(ctx, e0.Transport().Addrs()[0].String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[ordering.TxID]bool{}
	for i := range 20 {
		tx := kvTx("alice", uint64(i))
		if err := cl.Submit(ctx, tx); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		want[tx.ID()] = true
	}
	cl.Close()
	if err := e0.Stop(); err != nil {
		t.Fatal(err)
	}
	if h := e0.Status().Height; h != 0 {
		t.Fatalf("a validator alone committed up to height %d", h)
	}
	// The whole subnet, validator 0 restarted from its data directory last
	// (after the subscription, which sees every commit).
	e1, _ := tn.start(ctx, 1)
	commits, cancelSub := e1.Subscribe(64 << 20)
	defer cancelSub()
	for _, i := range []int{2, 3, 0} {
		tn.start(ctx, i)
	}
	seen := map[ordering.TxID]int{}
	for len(want) > 0 {
		select {
		case d, ok := <-commits:
			if !ok {
				t.Fatal("subscription closed")
			}
			for _, tx := range d.Txs {
				seen[tx.ID()]++
				delete(want, tx.ID())
			}
		case <-ctx.Done():
			t.Fatalf("%d acknowledged transactions never committed", len(want))
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("tx %s committed %d times", id, n)
		}
	}
}

func TestEnginesCommitAndAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four libp2p validators")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	engs, stores := startEngines(t, ctx, 4)

	addr := engs[1].Transport().Addrs()[0].String()
	cl, err := client.Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	commits, err := cl.Follow(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	const txs = 50
	want := map[ordering.TxID]bool{}
	for i := 0; i < txs; i++ {
		tx := kvTx("alice", uint64(i))
		if err := cl.Submit(ctx, tx); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		want[tx.ID()] = true
	}
	// A replay of an admitted transaction is refused with a reason.
	dup := ordering.Tx{Sender: "alice", Nonce: 0, Data: kvstore.Command{Op: kvstore.OpSet, Key: "k0", Value: []byte("v")}.Encode()}
	if err := cl.Submit(ctx, dup); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("duplicate submit: got %v, want a rejection", err)
	}
	seen := map[ordering.TxID]int{}
	for len(want) > 0 {
		select {
		case cm, ok := <-commits:
			if !ok {
				t.Fatal("commit stream closed")
			}
			for _, id := range cm.TxIDs {
				seen[id]++
				delete(want, id)
			}
		case <-ctx.Done():
			t.Fatalf("%d transactions not committed", len(want))
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("tx %s committed %d times", id, n)
		}
	}
	// All nodes reach the same state root at the same height. Heights move
	// only when a node delivers, so the condition is re-checked after every
	// delivery at any node.
	changed := make(chan struct{}, 1)
	for _, e := range engs {
		ch, cancelSub := e.Subscribe(64 << 20)
		defer cancelSub()
		go func() {
			for range ch {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	}
	deadline := time.After(30 * time.Second)
	for {
		v0, ok := stores[0].Get("k49")
		agree := ok && string(v0) == "v"
		r0 := stores[0].Root()
		h0 := engs[0].Status().Height
		for i := 1; i < len(engs) && agree; i++ {
			agree = engs[i].Status().Height == h0 && string(stores[i].Root()) == string(r0)
		}
		if agree {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("nodes did not converge on one state root")
		}
	}
}
