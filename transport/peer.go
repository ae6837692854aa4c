package transport

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// maxWriteBatch bounds the frames written between two flushes.
const maxWriteBatch = 256

var (
	// errRemoteClosed: the remote closed or reset our outbound stream.
	errRemoteClosed = errors.New("transport: stream closed by remote")
	// errKicked: a dial was aborted to start afresh.
	errKicked = errors.New("transport: dial restarted")
)

// peerConn is the sending side towards one member: a bounded queue of
// encoded frames and the goroutine that writes them to one outbound stream.
type peerConn struct {
	t   *Transport
	id  mir.NodeID
	pid peer.ID
	c   *counters
	// addrs are the member's dial addresses as last installed in the
	// peerstore. Guarded by t.mu.
	addrs []ma.Multiaddr

	// queue holds encoded frames; len(queue) <= Params.SendQueue.
	queue chan []byte
	// queuedBytes is the total size of the frames in queue; it stays at or
	// below Params.SendQueueBytes.
	queuedBytes atomic.Int64
	// maxQueued is the largest len(queue) seen after an enqueue.
	maxQueued atomic.Int64
	// connected is set while the outbound stream is up.
	connected atomic.Bool
	// kick has a token when a backoff wait should end early (the member's
	// addresses changed, or it just opened a stream to us).
	kick chan struct{}
	// cancel stops the sender; nil until it starts. Guarded by t.mu.
	cancel context.CancelFunc
}

func newPeerConn(t *Transport, id mir.NodeID, pid peer.ID) *peerConn {
	return &peerConn{
		t:     t,
		id:    id,
		pid:   pid,
		c:     t.reg.peer(id),
		queue: make(chan []byte, t.params.SendQueue),
		kick:  make(chan struct{}, 1),
	}
}

// enqueue queues a frame, or drops and counts it if the queue is full. It
// never blocks. frame is shared and must not be modified.
func (p *peerConn) enqueue(frame []byte) {
	n := int64(len(frame))
	if p.queuedBytes.Add(n) > int64(p.t.params.SendQueueBytes) {
		p.queuedBytes.Add(-n)
		p.c.drop(DropQueueFull, 1)
		return
	}
	select {
	case p.queue <- frame:
		if l := int64(len(p.queue)); l > p.maxQueued.Load() {
			p.maxQueued.Store(l) // only ApplyEvents enqueues: no lost update
		}
	default:
		p.queuedBytes.Add(-n)
		p.c.drop(DropQueueFull, 1)
	}
}

// dequeued accounts for a frame taken from the queue.
func (p *peerConn) dequeued(frame []byte) { p.queuedBytes.Add(-int64(len(frame))) }

// kickNow ends the current backoff wait, if any.
func (p *peerConn) kickNow() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// startSenderLocked starts pc's sender goroutine under Run's context. The
// caller holds t.mu and the transport is running.
func (t *Transport) startSenderLocked(pc *peerConn) {
	ctx, cancel := context.WithCancel(t.runCtx)
	pc.cancel = cancel
	t.senders.Add(1)
	go func() {
		defer t.senders.Done()
		pc.run(ctx)
	}()
}

// run keeps a stream to the peer open and writes queued frames to it until
// ctx is cancelled, redialing with backoff when the stream breaks. When it
// returns, frames still queued are dropped and counted.
func (p *peerConn) run(ctx context.Context) {
	defer p.drain()
	params := p.t.params
	attempt, opened := 0, 0
	for {
		s, err := p.open(ctx)
		if err == nil {
			if opened > 0 {
				p.c.reconnects.Add(1)
			}
			opened++
			p.connected.Store(true)
			log.Debugw("consensus stream up", "node", p.t.self, "peer", p.id, "conn", s.Conn().ID(), "stream", s.ID())
			start := time.Now()
			err = p.write(ctx, s)
			p.connected.Store(false)
			if time.Since(start) >= params.ReconnectMax {
				attempt = 0 // a long-lived stream: start the backoff afresh
			}
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errKicked) {
			attempt = 0
			continue
		}
		log.Debugw("consensus stream down", "node", p.t.self, "peer", p.id, "err", err)
		attempt++
		switch p.wait(ctx, backoff(params.ReconnectMin, params.ReconnectMax, attempt)) {
		case waitCancelled:
			return
		case waitKicked:
			attempt = 0
		}
	}
}

// drain drops what is left in the queue.
func (p *peerConn) drain() {
	for {
		select {
		case f := <-p.queue:
			p.dequeued(f)
			p.c.drop(DropStopped, 1)
		default:
			return
		}
	}
}

// open connects to the peer if needed and opens the consensus stream. A
// kick aborts it with errKicked: the member's addresses changed, or it
// connected to us, while a dial to its old addresses (which may take until
// DialTimeout to fail) was under way.
func (p *peerConn) open(ctx context.Context) (network.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, p.t.params.DialTimeout)
	defer cancel()
	var kicked atomic.Bool
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-p.kick:
			kicked.Store(true)
			cancel()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	s, err := p.dial(ctx)
	if err != nil && kicked.Load() {
		return nil, errKicked
	}
	return s, err
}

// dial connects to the peer if needed and opens the consensus stream.
func (p *peerConn) dial(ctx context.Context) (network.Stream, error) {
	// Our own backoff paces the dials; the swarm's must not add to it (it
	// would keep a restarted peer unreachable for seconds).
	ctx = network.WithForceDirectDial(ctx, "mirsubnet consensus stream")
	if err := p.t.host.Connect(ctx, peer.AddrInfo{ID: p.pid}); err != nil {
		return nil, err
	}
	return p.t.host.NewStream(ctx, p.pid, ProtocolID)
}

// write writes queued frames to s until s breaks or ctx is cancelled, then
// resets s. The remote never writes on s: a read that returns means it
// closed or reset the stream, which ends write at once even while idle.
func (p *peerConn) write(ctx context.Context, s network.Stream) error {
	broken := make(chan struct{})
	go func() {
		defer close(broken)
		var b [1]byte
		_, _ = s.Read(b[:])
	}()
	// Cancellation must also unblock a Write stuck on a remote that does not
	// read (a write deadline alone would hold Run's teardown for up to
	// WriteTimeout).
	stopReset := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer func() {
		stopReset()
		_ = s.Reset()
		<-broken
	}()
	bw := bufio.NewWriterSize(s, 64<<10)
	timeout := p.t.params.WriteTimeout
	for {
		var f []byte
		select {
		case f = <-p.queue:
		case <-broken:
			return errRemoteClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		_ = s.SetWriteDeadline(time.Now().Add(timeout))
		frames, bytes := 0, 0
		for {
			p.dequeued(f)
			frames++
			bytes += len(f)
			if _, err := bw.Write(f); err != nil {
				p.c.drop(DropStreamError, frames)
				return err
			}
			if frames >= maxWriteBatch {
				break
			}
			select {
			case f = <-p.queue:
				continue
			default:
			}
			break
		}
		if err := bw.Flush(); err != nil {
			p.c.drop(DropStreamError, frames)
			return err
		}
		p.c.framesSent.Add(uint64(frames))
		p.c.bytesSent.Add(uint64(bytes))
	}
}

// wait outcomes.
const (
	waitElapsed = iota
	waitKicked
	waitCancelled
)

// wait waits for d, a kick or the end of ctx.
func (p *peerConn) wait(ctx context.Context, d time.Duration) int {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return waitElapsed
	case <-p.kick:
		return waitKicked
	case <-ctx.Done():
		return waitCancelled
	}
}

// backoff returns the delay before dial attempt number attempt (1, 2, ...):
// min doubled attempt-1 times, capped at max, with "equal jitter" (a uniform
// draw from the upper half) so that nodes restarted together do not dial in
// lockstep.
func backoff(min, max time.Duration, attempt int) time.Duration {
	d := max
	if attempt <= 1 {
		d = min
	} else if shift := attempt - 1; shift < 32 && min<<shift > 0 && min<<shift < max {
		d = min << shift
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}
