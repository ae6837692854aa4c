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

// startEngines starts n validators in this process on 127.0.0.1 with
// OS-assigned ports and returns them with their kv stores.
func startEngines(t *testing.T, ctx context.Context, n int) ([]*engine.Engine, []*kvstore.Store) {
	t.Helper()
	keys := crypto.TestKeys(7, n)
	ports, err := localnet.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	var vals []membership.Validator
	for i := 0; i < n; i++ {
		vals = append(vals, membership.Validator{ID: mir.NodeID(fmt.Sprintf("n%d", i)), PeerID: keys[i].ID.String(),
			Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[i])}, Weight: membership.NewWeight(1)})
	}
	set, err := membership.NewSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	p := iss.DefaultParams()
	p.SegmentLength = 4
	p.EmptyProposalPeriod = 50 * time.Millisecond
	var engs []*engine.Engine
	var stores []*kvstore.Store
	for i := 0; i < n; i++ {
		store := kvstore.New()
		e, err := engine.New(engine.Config{
			Self: vals[i].ID, Key: keys[i].Priv, Members: set, ListenAddrs: vals[i].Addrs, DataDir: t.TempDir(),
			App: store, GenesisRoot: store.Root(), ISS: p, Mempool: mempool.DefaultParams(),
			TxValidator: kvstore.CheckTx, NonceSource: store, AllowClients: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		e.ServeClients()
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
		engs = append(engs, e)
		stores = append(stores, store)
	}
	return engs, stores
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
		tx := ordering.Tx{Sender: "alice", Nonce: uint64(i), Data: kvstore.Command{Op: kvstore.OpSet, Key: fmt.Sprintf("k%d", i), Value: []byte("v")}.Encode()}
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
