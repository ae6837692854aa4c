package transport

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// DropReason says why a frame was dropped.
type DropReason int

// Drop reasons. Every dropped frame is counted under exactly one.
const (
	// DropQueueFull: the peer's send queue was full.
	DropQueueFull DropReason = iota
	// DropTooLarge: a frame above Params.MaxFrameSize (sent or received).
	DropTooLarge
	// DropDecodeError: a received frame that did not decode.
	DropDecodeError
	// DropUnknownModule: a received frame for a module outside
	// Config.AllowedModules.
	DropUnknownModule
	// DropNotMember: a stream or frame from a peer outside the membership.
	DropNotMember
	// DropUnknownDestination: a message to a node outside the membership.
	DropUnknownDestination
	// DropEncodeError: a message that did not encode (an unregistered
	// payload type, a bad destination module).
	DropEncodeError
	// DropStreamError: a frame being written when its stream broke.
	DropStreamError
	// DropStopped: a message handed over after the transport stopped, or
	// still queued when it stopped.
	DropStopped

	numDropReasons
)

var dropNames = [numDropReasons]string{
	"queue_full", "too_large", "decode_error", "unknown_module", "not_member",
	"unknown_destination", "encode_error", "stream_error", "stopped",
}

// String returns the reason's metric label, such as "queue_full".
func (r DropReason) String() string {
	if r < 0 || r >= numDropReasons {
		return "invalid"
	}
	return dropNames[r]
}

// UnknownPeer is the label under which traffic that cannot be attributed to
// a member is counted.
const UnknownPeer mir.NodeID = "unknown"

// PeerStats are the counters of one peer.
type PeerStats struct {
	// BytesSent and FramesSent count frames written to the peer's stream
	// (length prefix included).
	BytesSent, FramesSent uint64
	// BytesReceived and FramesReceived count frames read from the peer's
	// streams, accepted or not.
	BytesReceived, FramesReceived uint64
	// Drops counts dropped frames by reason.
	Drops [numDropReasons]uint64
	// Reconnects counts streams opened to the peer after the first.
	Reconnects uint64
	// Queued is the number of frames in the peer's send queue now, and
	// MaxQueued the largest number seen.
	Queued, MaxQueued int
	// Connected reports whether the outbound stream is up.
	Connected bool
}

// Dropped returns the total number of frames dropped for any reason.
func (s PeerStats) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}

// Stats are the transport's counters.
type Stats struct {
	// Peers holds the counters of every node that ever was a member while
	// the transport ran, and of UnknownPeer.
	Peers map[mir.NodeID]PeerStats
	// Local counts messages delivered to this node itself.
	Local uint64
	// Refused counts connections the gater refused (peers outside the
	// membership).
	Refused uint64
	// TxPublished, TxReceived and TxRejected count gossiped transactions:
	// published here, received from others (and handed to Config.OnTx), and
	// rejected by validation (oversized or empty).
	TxPublished, TxReceived, TxRejected uint64
}

// counters are one peer's counters. Updated with atomics.
type counters struct {
	bytesSent, framesSent atomic.Uint64
	bytesRecv, framesRecv atomic.Uint64
	reconnects            atomic.Uint64
	drops                 [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r DropReason, n int) { c.drops[r].Add(uint64(n)) }

func (c *counters) snapshot() PeerStats {
	s := PeerStats{
		BytesSent:      c.bytesSent.Load(),
		FramesSent:     c.framesSent.Load(),
		BytesReceived:  c.bytesRecv.Load(),
		FramesReceived: c.framesRecv.Load(),
		Reconnects:     c.reconnects.Load(),
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	return s
}

// registry holds every peer's counters and the transport-wide ones; it is
// also the Prometheus collector.
type registry struct {
	mu sync.Mutex
	// peers holds counters per node ID; entries are never removed, so
	// counters stay monotonic across membership changes.
	peers map[mir.NodeID]*counters
	// queues reports the queue lengths of current members (set by the
	// transport; called without mu held).
	queues func() map[mir.NodeID][2]int

	local, refused                    atomic.Uint64
	txPublished, txReceived, txReject atomic.Uint64

	descs struct {
		bytesSent, bytesRecv, framesSent, framesRecv, drops, reconnects, queued *prometheus.Desc
		local, refused, txPublished, txReceived, txRejected                     *prometheus.Desc
	}
}

func newRegistry(self mir.NodeID) *registry {
	r := &registry{peers: map[mir.NodeID]*counters{}}
	cl := prometheus.Labels{"node": string(self)}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("mirsubnet", "transport", name), help, labels, cl)
	}
	r.descs.bytesSent = d("bytes_sent_total", "Bytes of consensus frames written to a peer.", "peer")
	r.descs.bytesRecv = d("bytes_received_total", "Bytes of consensus frames read from a peer.", "peer")
	r.descs.framesSent = d("frames_sent_total", "Consensus frames written to a peer.", "peer")
	r.descs.framesRecv = d("frames_received_total", "Consensus frames read from a peer.", "peer")
	r.descs.drops = d("frames_dropped_total", "Consensus frames dropped, by peer and reason.", "peer", "reason")
	r.descs.reconnects = d("reconnects_total", "Consensus streams reopened to a peer.", "peer")
	r.descs.queued = d("send_queue_frames", "Frames waiting in a peer's send queue.", "peer")
	r.descs.local = d("local_messages_total", "Messages delivered to the node itself.")
	r.descs.refused = d("connections_refused_total", "Connections refused because the peer is not a member.")
	r.descs.txPublished = d("txs_published_total", "Transactions published over gossip.")
	r.descs.txReceived = d("txs_received_total", "Transactions received over gossip from other nodes.")
	r.descs.txRejected = d("txs_rejected_total", "Gossiped transactions rejected by validation.")
	return r
}

// peer returns the counters of id, creating them.
func (r *registry) peer(id mir.NodeID) *counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.peers[id]
	if c == nil {
		c = &counters{}
		r.peers[id] = c
	}
	return c
}

func (r *registry) stats() Stats {
	var queues map[mir.NodeID][2]int
	if r.queues != nil {
		queues = r.queues()
	}
	st := Stats{
		Peers:       map[mir.NodeID]PeerStats{},
		Local:       r.local.Load(),
		Refused:     r.refused.Load(),
		TxPublished: r.txPublished.Load(),
		TxReceived:  r.txReceived.Load(),
		TxRejected:  r.txReject.Load(),
	}
	r.mu.Lock()
	for id, c := range r.peers {
		st.Peers[id] = c.snapshot()
	}
	r.mu.Unlock()
	for id, q := range queues {
		ps := st.Peers[id]
		ps.Queued, ps.MaxQueued = q[0], q[1]
		st.Peers[id] = ps
	}
	return st
}

// Describe implements prometheus.Collector.
func (r *registry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		r.descs.bytesSent, r.descs.bytesRecv, r.descs.framesSent, r.descs.framesRecv,
		r.descs.drops, r.descs.reconnects, r.descs.queued, r.descs.local, r.descs.refused,
		r.descs.txPublished, r.descs.txReceived, r.descs.txRejected,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *registry) Collect(ch chan<- prometheus.Metric) {
	st := r.stats()
	ids := make([]mir.NodeID, 0, len(st.Peers))
	for id := range st.Peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, id := range ids {
		p, l := st.Peers[id], string(id)
		counter(r.descs.bytesSent, p.BytesSent, l)
		counter(r.descs.bytesRecv, p.BytesReceived, l)
		counter(r.descs.framesSent, p.FramesSent, l)
		counter(r.descs.framesRecv, p.FramesReceived, l)
		counter(r.descs.reconnects, p.Reconnects, l)
		for reason, n := range p.Drops {
			counter(r.descs.drops, n, l, DropReason(reason).String())
		}
		ch <- prometheus.MustNewConstMetric(r.descs.queued, prometheus.GaugeValue, float64(p.Queued), l)
	}
	counter(r.descs.local, st.Local)
	counter(r.descs.refused, st.Refused)
	counter(r.descs.txPublished, st.TxPublished)
	counter(r.descs.txReceived, st.TxReceived)
	counter(r.descs.txRejected, st.TxRejected)
}
