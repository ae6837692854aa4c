package engine

import (
	"bufio"
	"context"
	"errors"

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

// maxPendingReplies bounds the submits of one stream whose answers are not
// yet written (the reader stops reading beyond it).
const maxPendingReplies = 4096

// serveSubmits answers a stream of pipelined submits, in order. Admission
// runs as each request is read; an admitted transaction's answer waits
// until it is journaled, without holding up the requests behind it (the
// journal commits them together). Answers are flushed when no further
// answer is ready, so pipelined submits share writes.
func (e *Engine) serveSubmits(r *bufio.Reader, w *bufio.Writer, first client.Request) {
	type answer struct {
		ready chan struct{}
		rep   client.SubmitReply
	}
	answers := make(chan *answer, maxPendingReplies)
	written := make(chan struct{})
	go func() {
		defer close(written)
		broken := false
		for a := range answers {
			if broken {
				continue // the stream is gone; keep draining
			}
			select {
			case <-a.ready:
			default:
				// Send what is ready before waiting for the journal.
				if err := w.Flush(); err != nil {
					broken = true
					continue
				}
				<-a.ready
			}
			if err := client.WriteMsg(w, a.rep); err != nil {
				broken = true
				continue
			}
			if len(answers) == 0 {
				broken = w.Flush() != nil
			}
		}
		if !broken {
			_ = w.Flush()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for req := first; req.Submit != nil; {
		a := &answer{ready: make(chan struct{})}
		answers <- a
		e.submitAsync(ctx, *req.Submit, func(err error) {
			a.rep = replyFor(err)
			close(a.ready)
		})
		req = client.Request{}
		if err := client.ReadMsg(r, &req); err != nil {
			break
		}
	}
	close(answers)
	<-written
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
