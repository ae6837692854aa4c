package transport

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// txLog records the transactions a node's OnTx saw.
type txLog struct {
	mu  sync.Mutex
	txs []Tx
}

func (l *txLog) add(tx Tx) {
	l.mu.Lock()
	l.txs = append(l.txs, tx)
	l.mu.Unlock()
}

func (l *txLog) get() []Tx {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Tx(nil), l.txs...)
}

// TestGossipTx: a transaction published at one node reaches the others over
// gossipsub, not the publisher itself; sizes are checked.
func TestGossipTx(t *testing.T) {
	logs := map[mir.NodeID]*txLog{}
	for _, id := range nodeIDs(3) {
		logs[id] = &txLog{}
	}
	nodes, _ := cluster(t, 3, func(c *Config) {
		c.OnTx = logs[c.Self].add
		c.Params.MaxTxSize = 1024
	})
	// Members connect through their consensus senders; wait until the
	// publisher sees both others in the topic.
	for _, nd := range nodes {
		waitFor(t, waitLong, "topic peers", func() bool { return len(nd.tr.gossip.topic.ListPeers()) == 2 })
	}
	if err := nodes[0].tr.PublishTx(context.Background(), []byte("tx-1")); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes[1:] {
		waitFor(t, waitLong, "tx at "+string(nd.id), func() bool { return len(logs[nd.id].get()) == 1 })
		tx := logs[nd.id].get()[0]
		// From is the forwarding peer (gossip carries no author): the
		// publisher or the other receiver, never the node itself.
		if string(tx.Data) != "tx-1" || tx.From == peer.ID(nd.key.ID) || tx.From == "" {
			t.Fatalf("%s got %+v", nd.id, tx)
		}
		if st := nd.tr.Stats(); st.TxReceived != 1 {
			t.Fatalf("%s: TxReceived %d", nd.id, st.TxReceived)
		}
	}
	if got := logs["n0"].get(); len(got) != 0 {
		t.Fatalf("the publisher got its own tx: %+v", got)
	}
	for _, bad := range [][]byte{nil, make([]byte, 1025)} {
		if err := nodes[0].tr.PublishTx(context.Background(), bad); !errors.Is(err, ErrTxSize) {
			t.Fatalf("PublishTx(%d bytes): %v", len(bad), err)
		}
	}
	if st := nodes[0].tr.Stats(); st.TxPublished != 1 {
		t.Fatalf("TxPublished %d", st.TxPublished)
	}
}
