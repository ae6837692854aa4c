package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// ErrRejected is wrapped by Submit errors for transactions the node refused.
var ErrRejected = errors.New("client: transaction rejected")

// Rejection is a refusal by the node, with the reason a client can act on.
type Rejection struct {
	Reason string
	Detail string
}

// Error describes the refusal.
func (r *Rejection) Error() string { return fmt.Sprintf("rejected: %s: %s", r.Reason, r.Detail) }

// Is makes errors.Is(err, ErrRejected) true.
func (r *Rejection) Is(target error) bool { return target == ErrRejected }

// Client talks to one validator. It is safe for concurrent use; Submit calls
// are pipelined on one stream and answered in order.
type Client struct {
	h    host.Host
	ownH bool
	peer peer.ID

	mu      sync.Mutex // serialises writes and the pending queue
	stream  network.Stream
	w       *bufio.Writer
	pending chan chan SubmitReply
	// kick wakes the flusher: there are buffered submits to write out.
	kick    chan struct{}
	closed  bool
	readErr error
}

// Dial connects to the validator at addr (a multiaddr ending in /p2p/<id>).
// It creates its own libp2p host (closed by Close) unless h is given.
func Dial(ctx context.Context, addr string, h host.Host) (*Client, error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return nil, fmt.Errorf("client: address %q: %w", addr, err)
	}
	c := &Client{h: h, peer: info.ID, pending: make(chan chan SubmitReply, 1<<16)}
	if c.h == nil {
		c.h, err = libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay())
		if err != nil {
			return nil, err
		}
		c.ownH = true
	}
	if err := c.h.Connect(ctx, *info); err != nil {
		c.Close()
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	return c, nil
}

// Host returns the client's libp2p host.
func (c *Client) Host() host.Host { return c.h }

// Close closes the client's streams (and its host, if it made one).
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.closed && c.kick != nil {
		close(c.kick)
	}
	c.closed = true
	if c.stream != nil {
		_ = c.stream.Reset()
	}
	c.mu.Unlock()
	if c.ownH {
		return c.h.Close()
	}
	return nil
}

func (c *Client) submitStream(ctx context.Context) error {
	if c.stream != nil {
		return c.readErr
	}
	s, err := c.h.NewStream(ctx, c.peer, ProtocolID)
	if err != nil {
		return err
	}
	c.stream, c.w, c.kick = s, bufio.NewWriterSize(s, 64<<10), make(chan struct{}, 1)
	go c.readReplies(s)
	go c.flusher(s, c.kick)
	return nil
}

// flusher writes the buffered submits out each time Submit kicks it, so
// that submits made while a write is in progress share the next write (one
// frame and one system call for many transactions under load, no added
// wait when idle). A failed write resets the stream; readReplies then
// answers every pending submit.
func (c *Client) flusher(s network.Stream, kick <-chan struct{}) {
	for range kick {
		c.mu.Lock()
		err := c.w.Flush()
		if err != nil && c.readErr == nil {
			c.readErr = fmt.Errorf("client: send: %w", err)
		}
		c.mu.Unlock()
		if err != nil {
			_ = s.Reset()
			return
		}
	}
}

func (c *Client) readReplies(s network.Stream) {
	r := bufio.NewReader(s)
	for {
		var rep SubmitReply
		err := ReadMsg(r, &rep)
		if err != nil {
			c.mu.Lock()
			c.readErr = fmt.Errorf("client: submit stream: %w", err)
			c.mu.Unlock()
			for {
				select {
				case ch := <-c.pending:
					ch <- SubmitReply{Reason: "unavailable", Detail: err.Error()}
				default:
					return
				}
			}
		}
		select {
		case ch := <-c.pending:
			ch <- rep
		default:
			return // a reply nobody asked for: protocol violation
		}
	}
}

// Submit sends a transaction and waits for the node's answer: nil if
// admitted, a *Rejection (errors.Is ErrRejected) if refused, or another
// error if the node could not be reached.
func (c *Client) Submit(ctx context.Context, tx ordering.Tx) error {
	ch := make(chan SubmitReply, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("client: closed")
	}
	if err := c.submitStream(ctx); err != nil {
		c.mu.Unlock()
		return err
	}
	c.pending <- ch
	err := WriteMsg(c.w, Request{Submit: &tx})
	if err == nil {
		select {
		case c.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	select {
	case rep := <-ch:
		if rep.Admitted {
			return nil
		}
		if rep.Reason == "unavailable" {
			return fmt.Errorf("client: %s", rep.Detail)
		}
		return &Rejection{Reason: rep.Reason, Detail: rep.Detail}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Follow streams commit notices from sequence number from until ctx ends or
// the stream breaks (the channel is then closed).
func (c *Client) Follow(ctx context.Context, from ordering.SeqNr) (<-chan Commit, error) {
	s, err := c.h.NewStream(ctx, c.peer, ProtocolID)
	if err != nil {
		return nil, err
	}
	if err := WriteMsg(s, Request{Follow: &Follow{From: from}}); err != nil {
		_ = s.Reset()
		return nil, err
	}
	out := make(chan Commit, 1024)
	go func() {
		defer close(out)
		defer s.Reset()
		r := bufio.NewReader(s)
		for {
			var cm Commit
			if err := ReadMsg(r, &cm); err != nil {
				return
			}
			select {
			case out <- cm:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		<-ctx.Done()
		_ = s.Reset()
	}()
	return out, nil
}

// Status asks the node for its status.
func (c *Client) Status(ctx context.Context) (StatusReply, error) {
	s, err := c.h.NewStream(ctx, c.peer, ProtocolID)
	if err != nil {
		return StatusReply{}, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := WriteMsg(s, Request{Status: true}); err != nil {
		return StatusReply{}, err
	}
	var st StatusReply
	err = ReadMsg(bufio.NewReader(s), &st)
	return st, err
}
