package transport

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TxTopic is the gossipsub topic transactions travel on.
const TxTopic = "/mirsubnet/txs/1.0.0"

// Gossip errors.
var (
	// ErrTxSize: a transaction that is empty or above Params.MaxTxSize.
	ErrTxSize = errors.New("transport: transaction size out of range")
)

// Tx is a transaction received over gossip.
type Tx struct {
	// From is the peer that forwarded it (gossip messages carry no author:
	// see startGossip).
	From peer.ID
	// Data are the transaction's bytes; owned by the receiver.
	Data []byte
}

// gossip is the transaction topic of one transport.
type gossip struct {
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	// done is closed when the subscription loop returned.
	done chan struct{}
	once sync.Once
}

// txID identifies a gossiped transaction by its content, so that the same
// transaction submitted at two nodes is forwarded once.
func txID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

// startGossip joins TxTopic and starts handing received transactions to
// onTx (if set) until t.ctx is cancelled.
func (t *Transport) startGossip(onTx func(Tx)) (*gossip, error) {
	maxTx := t.params.MaxTxSize
	// No mesh (D = Dlo = Dhi = Dout = 0, the configuration gossipsub
	// documents for bootstrappers): validators are few and all connected to
	// each other, so the publisher's flood reaches every one of them, and
	// mesh forwarding only made each node receive, decrypt, hash and drop
	// every message two more times. Lost messages are still repaired by
	// IHAVE/IWANT gossip at each heartbeat.
	gp := pubsub.DefaultGossipSubParams()
	gp.D, gp.Dlo, gp.Dhi, gp.Dout, gp.Dscore = 0, 0, 0, 0, 0
	// Messages are kept for IWANT answers for 3 heartbeats (not 5) and
	// announced for 2: at full load the cache of recent messages is the
	// largest gossip buffer (tens of megabytes per second of history).
	gp.HistoryLength, gp.HistoryGossip = 3, 2
	ps, err := pubsub.NewGossipSub(t.ctx, t.host,
		pubsub.WithGossipSubParams(gp),
		pubsub.WithMessageIdFn(txID),
		pubsub.WithMaxMessageSize(max(1<<20, maxTx+64<<10)),
		pubsub.WithPeerExchange(false),
		// A node sends its own transactions to every topic peer, not only
		// to its mesh, which is empty until the first heartbeat (a
		// validator set is small enough for this).
		pubsub.WithFloodPublish(true),
		// Transactions are not signed by the gossip layer: the connections
		// are authenticated (Noise/TLS) and admitted by the gater, message
		// IDs are transaction hashes, and a transaction carries its own
		// authorisation (checked by the pool's validator). Signing every
		// message cost a signature and a verification per hop.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
	)
	if err != nil {
		return nil, fmt.Errorf("transport: gossipsub: %w", err)
	}
	validate := func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		if len(m.Data) == 0 || len(m.Data) > maxTx {
			t.reg.txReject.Add(1)
			return false
		}
		return true
	}
	if err := ps.RegisterTopicValidator(TxTopic, validate); err != nil {
		return nil, fmt.Errorf("transport: gossip validator: %w", err)
	}
	topic, err := ps.Join(TxTopic)
	if err != nil {
		return nil, fmt.Errorf("transport: join %s: %w", TxTopic, err)
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(t.params.TxQueue))
	if err != nil {
		return nil, fmt.Errorf("transport: subscribe %s: %w", TxTopic, err)
	}
	g := &gossip{ps: ps, topic: topic, sub: sub, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for {
			m, err := sub.Next(t.ctx)
			if err != nil {
				return // cancelled
			}
			if m.ReceivedFrom == t.pid {
				continue // our own
			}
			t.reg.txReceived.Add(1)
			if onTx != nil {
				onTx(Tx{From: m.ReceivedFrom, Data: m.Data})
			}
		}
	}()
	return g, nil
}

// close leaves the topic; t.ctx must be cancelled already or soon.
func (g *gossip) close() {
	g.once.Do(func() {
		g.sub.Cancel()
		<-g.done
		_ = g.topic.Close()
	})
}

// PublishTx gossips a transaction (1 to Params.MaxTxSize bytes) to the other
// nodes. The node's own Config.OnTx does not see it.
func (t *Transport) PublishTx(ctx context.Context, data []byte) error {
	if len(data) == 0 || len(data) > t.params.MaxTxSize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTxSize, len(data), t.params.MaxTxSize)
	}
	if err := t.gossip.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("transport: publish tx: %w", err)
	}
	t.reg.txPublished.Add(1)
	return nil
}
