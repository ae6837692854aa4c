package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// fakeNode serves the submit half of the client protocol: it answers each
// submit in order, admitting even nonces and rejecting odd ones with the
// transaction's sender and nonce in the detail, so a test can tell which
// reply went to which submit. It counts the reads that found a whole batch
// of submits already buffered.
type fakeNode struct {
	h host.Host
	// resetAfter, if positive, makes the node reset the stream after that
	// many submits without answering the last one.
	resetAfter int
	// submits counts the submits received; batched counts submits that
	// arrived already buffered behind another one (written together).
	submits, batched atomic.Int64
}

// newFakeNode starts a node on 127.0.0.1; the caller closes n.h.
func newFakeNode(t *testing.T, resetAfter int) (*fakeNode, string) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{h: h, resetAfter: resetAfter}
	h.SetStreamHandler(ProtocolID, n.serve)
	return n, fmt.Sprintf("%s/p2p/%s", h.Addrs()[0], h.ID())
}

func (n *fakeNode) serve(s network.Stream) {
	defer s.Reset()
	r := bufio.NewReader(s)
	w := bufio.NewWriter(s)
	for {
		var req Request
		if err := ReadMsg(r, &req); err != nil || req.Submit == nil {
			return
		}
		k := n.submits.Add(1)
		if r.Buffered() > 0 {
			n.batched.Add(1)
		}
		if n.resetAfter > 0 && k >= int64(n.resetAfter) {
			return
		}
		tx := req.Submit
		rep := SubmitReply{Admitted: tx.Nonce%2 == 0}
		if !rep.Admitted {
			rep.Reason, rep.Detail = "nonce too high", fmt.Sprintf("%s/%d", tx.Sender, tx.Nonce)
		}
		if err := WriteMsg(w, rep); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// TestSubmitPipelined submits from many goroutines through one client:
// every submit gets its own answer, and submits made while a write is in
// progress share writes.
func TestSubmitPipelined(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	node, addr := newFakeNode(t, 0)
	defer node.h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	const senders, each = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender := fmt.Sprintf("s%d", i)
			for nonce := range uint64(each) {
				err := c.Submit(ctx, ordering.Tx{Sender: sender, Nonce: nonce, Data: []byte("x")})
				var rej *Rejection
				switch {
				case nonce%2 == 0 && err != nil:
					errs <- fmt.Errorf("%s/%d: %v, want admitted", sender, nonce, err)
					return
				case nonce%2 == 1 && !errors.As(err, &rej):
					errs <- fmt.Errorf("%s/%d: %v, want a rejection", sender, nonce, err)
					return
				case nonce%2 == 1 && rej.Detail != fmt.Sprintf("%s/%d", sender, nonce):
					errs <- fmt.Errorf("%s/%d got the reply for %s", sender, nonce, rej.Detail)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := node.submits.Load(); got != senders*each {
		t.Errorf("node received %d submits, want %d", got, senders*each)
	}
	// 64 concurrent submitters on one stream must share writes sometimes;
	// a client that flushed every submit alone would leave this at (nearly)
	// zero.
	if node.batched.Load() == 0 {
		t.Error("no submit was ever written together with another")
	}
	t.Logf("%d of %d submits arrived behind another in the same read buffer", node.batched.Load(), node.submits.Load())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, ordering.Tx{Sender: "late", Data: []byte("x")}); err == nil {
		t.Fatal("submit after Close succeeded")
	}
}

// TestSubmitStreamReset: when the node resets the stream, every pending and
// later submit fails promptly instead of waiting forever.
func TestSubmitStreamReset(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	node, addr := newFakeNode(t, 10)
	defer node.h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	var admitted, failed atomic.Int64
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Submit(ctx, ordering.Tx{Sender: fmt.Sprintf("s%d", i), Nonce: 0, Data: []byte("x")})
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, ErrRejected), ctx.Err() != nil:
				t.Errorf("submit %d: %v, want an unavailability error", i, err)
			default:
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() > 9 || failed.Load() < 31 {
		t.Fatalf("%d admitted, %d failed; the node answered only 9", admitted.Load(), failed.Load())
	}
	if err := c.Submit(ctx, ordering.Tx{Sender: "after", Data: []byte("x")}); err == nil || errors.Is(err, ErrRejected) {
		t.Fatalf("submit on a reset stream: %v, want an error", err)
	}
}
