package engine

import (
	"bufio"
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/mirsubnet/mirsubnet/client"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/mempool"
)

// StateRooter is implemented by applications that expose their state root
// (reported in client status replies).
type StateRooter interface{ Root() []byte }

// ServeClients registers the client protocol (client.ProtocolID) on the
// engine's libp2p host: Submit streams answer each transaction with admitted
// or the rejection reason, Follow streams push commit notices, Status
// streams describe the node.
func (e *Engine) ServeClients() {
	e.tr.Host().SetStreamHandler(client.ProtocolID, e.handleClient)
}

func (e *Engine) handleClient(s network.Stream) {
	defer s.Close()
	r := bufio.NewReader(s)
	w := bufio.NewWriterSize(s, 64<<10)
	var req client.Request
	if err := client.ReadMsg(r, &req); err != nil {
		_ = s.Reset()
		return
	}
	switch {
	case req.Submit != nil:
		e.serveSubmits(r, w, req)
	case req.Follow != nil:
		e.serveFollow(s, w)
	case req.Status:
		_ = client.WriteMsg(w, e.statusReply())
		_ = w.Flush()
	default:
		_ = s.Reset()
	}
}

func (e *Engine) serveSubmits(r *bufio.Reader, w *bufio.Writer, first client.Request) {
	req := first
	for {
		if req.Submit == nil {
			return // a stream carries one kind of request
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := e.Submit(ctx, *req.Submit)
		cancel()
		if err := client.WriteMsg(w, replyFor(err)); err != nil {
			return
		}
		// Flush when no further request is already buffered, so pipelined
		// submits share writes.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
		req = client.Request{}
		if err := client.ReadMsg(r, &req); err != nil {
			_ = w.Flush()
			return
		}
	}
}

// replyFor turns an admission result into a reply.
func replyFor(err error) client.SubmitReply {
	if err == nil {
		return client.SubmitReply{Admitted: true}
	}
	var rej *mempool.Rejection
	if errors.As(err, &rej) {
		return client.SubmitReply{Reason: rej.Reason.String(), Detail: rej.Error()}
	}
	return client.SubmitReply{Reason: "unavailable", Detail: err.Error()}
}

func (e *Engine) serveFollow(s network.Stream, w *bufio.Writer) {
	ch, cancel := e.Subscribe(256 << 20)
	defer cancel()
	for d := range ch {
		ids := make([]ordering.TxID, len(d.Txs))
		for i, tx := range d.Txs {
			ids[i] = tx.ID()
		}
		if err := client.WriteMsg(w, client.Commit{SeqNr: d.SeqNr, Epoch: d.Epoch, TxIDs: ids}); err != nil {
			return
		}
		if len(ch) == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func (e *Engine) statusReply() client.StatusReply {
	st := e.Status()
	rep := client.StatusReply{Node: string(st.Self), Height: st.Height, Epoch: st.Epoch, StableEpoch: st.StableEpoch,
		Delivered: st.Delivered, Peers: st.Peers, PoolTxs: st.Mempool.Txs}
	if sr, ok := e.cfg.App.(StateRooter); ok {
		rep.StateRoot = sr.Root()
	}
	return rep
}
