package transport

import (
	"bufio"
	"encoding/binary"
	"errors"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// readBufReuse is the largest body buffer a reader keeps between frames.
const readBufReuse = 64 << 10

// handleStream serves an inbound consensus stream: it checks that the
// authenticated peer is a member (the gater already did, but membership may
// have changed since the connection was made) and reads frames until the
// stream ends or the transport stops.
func (t *Transport) handleStream(s network.Stream) {
	pid := s.Conn().RemotePeer()
	v, ok := t.gater.members.Load().ByPeerID(pid.String())
	if !ok || v.ID == t.self {
		t.reg.peer(UnknownPeer).drop(DropNotMember, 1)
		log.Warnw("consensus stream from a non-member refused", "peer", pid)
		_ = s.Reset()
		return
	}
	from := v.ID
	log.Debugw("inbound consensus stream", "node", t.self, "peer", from, "conn", s.Conn().ID(), "stream", s.ID())
	t.mu.Lock()
	if t.state == stateStopped {
		t.mu.Unlock()
		_ = s.Reset()
		return
	}
	old := t.inbound[from]
	t.inbound[from] = s
	pc := t.peers[from]
	t.readers.Add(1)
	t.mu.Unlock()
	defer t.readers.Done()
	if old != nil {
		_ = old.Reset()
	}
	if pc != nil && !pc.connected.Load() {
		pc.kickNow() // the peer is (back) up: dial it now
	}
	defer func() {
		t.mu.Lock()
		if t.inbound[from] == s {
			delete(t.inbound, from)
		}
		t.mu.Unlock()
		_ = s.Reset()
	}()
	t.read(s, from)
}

// read reads frames from s, which member from opened, and emits what they
// carry in batches until s fails or the transport stops.
func (t *Transport) read(s network.Stream, from mir.NodeID) {
	pidText := s.Conn().RemotePeer().String()
	c := t.reg.peer(from)
	br := bufio.NewReaderSize(s, 64<<10)
	var buf []byte
	for {
		var batch mir.EventList
		for {
			body, err := ReadFrame(br, t.params.MaxFrameSize, buf)
			if err != nil {
				switch {
				case errors.Is(err, ErrFrameTooLarge):
					c.drop(DropTooLarge, 1)
					log.Warnw("oversized frame; stream reset", "peer", from, "err", err)
				case errors.Is(err, ErrFrameMalformed):
					c.drop(DropDecodeError, 1)
					log.Warnw("malformed frame; stream reset", "peer", from, "err", err)
				}
				t.emit(batch)
				return
			}
			if cap(body) <= readBufReuse {
				buf = body[:0]
			}
			c.framesRecv.Add(1)
			c.bytesRecv.Add(uint64(len(body) + uvarintLen(uint64(len(body)))))
			if v, ok := t.gater.members.Load().ByPeerID(pidText); !ok || v.ID != from {
				c.drop(DropNotMember, 1)
				t.emit(batch)
				return
			}
			dest, msg, err := DecodeFrame(body)
			switch {
			case err != nil:
				c.drop(DropDecodeError, 1)
				log.Debugw("undecodable frame dropped", "peer", from, "err", err)
			case !t.allowed[dest.Top()]:
				c.drop(DropUnknownModule, 1)
				log.Debugw("frame for a module remotes may not address dropped", "peer", from, "module", dest)
			default:
				batch = append(batch, mir.NewEvent(dest, events.MessageReceived{From: from, Msg: msg}))
			}
			if br.Buffered() == 0 || len(batch) >= maxReadBatch {
				break
			}
		}
		if !t.emit(batch) {
			return
		}
	}
}

// emit hands a batch to the node, blocking while the node does not read
// (which stops this reader and pushes back on the sender). It returns false
// if the transport stopped.
func (t *Transport) emit(batch mir.EventList) bool {
	if len(batch) == 0 {
		return true
	}
	select {
	case t.out <- batch:
		return true
	case <-t.stopCh:
		return false
	}
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}
