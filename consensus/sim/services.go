package sim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// selfDelay is the latency of a message a node sends to itself.
const selfDelay = time.Microsecond

// ---- network ----

// net serves a batch for the network module: every SendMessage becomes
// MessageReceived items at the destinations; follow-ups are released at once.
func (s *sim) net(in *instance, evs mir.EventList) {
	var next mir.EventList
	for i := range evs {
		p, ok := evs[i].Payload.(events.SendMessage)
		if !ok {
			s.fail(in.slot, fmt.Errorf("net: unexpected %s", mir.PayloadName(evs[i].Payload)))
			return
		}
		s.send(in, p)
		if in.dead {
			return
		}
		next = append(next, evs[i].Next...)
	}
	s.inject(in, NetModule, next)
}

func (s *sim) send(in *instance, p events.SendMessage) {
	from := in.slot
	if s.sc.SentCheck != nil && !from.twin {
		if msg := s.sc.SentCheck(from.ep, p.Msg); msg != "" {
			s.violate(KindEquivocation, from.ep, msg)
			return
		}
	}
	var wire []byte
	if !s.sc.SkipEncoding {
		var err error
		if wire, err = mir.EncodePayload(p.Msg); err != nil {
			s.fail(from, fmt.Errorf("net: encode %s: %w", mir.PayloadName(p.Msg), err))
			return
		}
	}
	net := &s.sc.Net
	for _, dst := range p.Destinations {
		idxs, ok := s.byID[dst]
		if !ok {
			s.res.Stats.MsgUnknownDest++
			continue
		}
		// Twins routing: every copy of dst whose link is not cut.
		for _, di := range idxs {
			to := s.slots[di]
			s.res.Stats.MsgSent++
			self := to == from
			if !self && to.group != from.group {
				s.res.Stats.MsgCut++
				continue
			}
			if to.inst == nil {
				s.res.Stats.MsgToDown++
				continue
			}
			if !self && !s.healed && net.DropProb > 0 && s.rng.Float64() < net.DropProb {
				s.res.Stats.MsgDropped++
				continue
			}
			copies := 1
			if !self && net.DupProb > 0 && s.rng.Float64() < net.DupProb {
				copies = 2
				s.res.Stats.MsgDuplicated++
			}
			for range copies {
				it := s.newItem(s.now+s.delay(from, to), itemMessage)
				it.inst, it.slot, it.from = to.inst, to.idx, from.idx
				it.dest, it.msg, it.wire = p.DestModule, p.Msg, wire
				s.queue.push(it)
			}
		}
	}
}

// delay draws the latency of one message on the link from -> to.
func (s *sim) delay(from, to *slot) time.Duration {
	if from == to {
		return selfDelay
	}
	net := &s.sc.Net
	d := s.latency[from.idx][to.idx]
	if net.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(net.Jitter) + 1))
	}
	if net.TailProb > 0 && net.TailFactor > 1 && s.rng.Float64() < net.TailProb {
		d *= time.Duration(net.TailFactor)
	}
	return max(d, selfDelay)
}

// deliver hands a message to its destination incarnation unless the link is
// cut or clogged meanwhile. It reports whether the item may be recycled.
func (s *sim) deliver(it *item) bool {
	to, from := s.slots[it.slot], s.slots[it.from]
	in := it.inst
	if to != from {
		if to.group != from.group {
			s.res.Stats.MsgCut++
			return true
		}
		if to.clogged || from.clogged {
			s.res.Stats.MsgHeld++
			if to.clogged {
				to.held = append(to.held, it)
			} else {
				from.held = append(from.held, it)
			}
			return false
		}
	}
	if !in.disp.Has(it.dest) {
		s.res.Stats.MsgNoModule++
		return true
	}
	msg := it.msg
	if it.wire != nil {
		var err error
		if msg, err = mir.DecodePayload(it.wire); err != nil {
			s.violate(KindCodec, from.ep, fmt.Sprintf("message %s for %s does not decode: %v",
				mir.PayloadName(it.msg), it.dest, err))
			return true
		}
	}
	s.res.Stats.MsgDelivered++
	s.inject(in, NetModule, mir.EventList{{Dest: it.dest, Payload: events.MessageReceived{From: from.ep.ID, Msg: msg}}})
	s.drain(in)
	return true
}

// requeue schedules a held message again with a fresh delay.
func (s *sim) requeue(it *item) {
	it.at = s.now + s.delay(s.slots[it.from], s.slots[it.slot])
	s.seq++
	it.seq = s.seq
	s.queue.push(it)
}

// ---- timers ----

// timerRec is one pending timer of an incarnation.
type timerRec struct {
	events    mir.EventList
	period    time.Duration // 0 for a delay
	retention uint64
	// done: fired (delay) or cancelled; a done timer never fires again.
	done bool
}

func (s *sim) timer(in *instance, evs mir.EventList) {
	var next mir.EventList
	for i := range evs {
		var rec *timerRec
		at := s.now
		switch p := evs[i].Payload.(type) {
		case events.TimerDelay:
			rec = &timerRec{events: p.Events, retention: p.RetentionIndex}
			at += max(p.After, 0)
		case events.TimerRepeat:
			if p.Period <= 0 {
				s.fail(in.slot, fmt.Errorf("timer: non-positive period %v", p.Period))
				return
			}
			rec = &timerRec{events: p.Events, period: p.Period, retention: p.RetentionIndex}
			at += p.Period
		case events.TimerGarbageCollect:
			s.collectTimers(in, p.RetentionIndex)
		default:
			s.fail(in.slot, fmt.Errorf("timer: unexpected %s", mir.PayloadName(evs[i].Payload)))
			return
		}
		if rec != nil {
			in.timers = append(in.timers, rec)
			in.liveTimers++
			it := s.newItem(at, itemTimer)
			it.inst, it.timer = in, rec
			s.queue.push(it)
		}
		next = append(next, evs[i].Next...)
	}
	if len(in.timers) > 64 && in.liveTimers < len(in.timers)/2 {
		s.collectTimers(in, 0)
	}
	s.inject(in, TimerModule, next)
}

// collectTimers cancels the timers retained below index and forgets done ones.
func (s *sim) collectTimers(in *instance, index uint64) {
	kept := in.timers[:0]
	for _, t := range in.timers {
		if !t.done && t.retention < index {
			t.done = true
			in.liveTimers--
		}
		if !t.done {
			kept = append(kept, t)
		}
	}
	clear(in.timers[len(kept):])
	in.timers = kept
}

func (s *sim) fire(it *item) {
	in, t := it.inst, it.timer
	if t.done {
		return
	}
	if t.period > 0 {
		again := s.newItem(s.now+t.period, itemTimer)
		again.inst, again.timer = in, t
		s.queue.push(again)
	} else {
		t.done = true
		in.liveTimers--
	}
	s.inject(in, TimerModule, append(mir.EventList(nil), t.events...))
	s.drain(in)
}

// ---- WAL ----

// walStore is an endpoint's disk: it survives crashes, minus its unsynced tail.
type walStore struct {
	// entries are the stored entries in append order (pos increasing).
	entries []walRec
	// appended is the number of appends since the log began (minus lost ones).
	appended uint64
	// durable <= appended: entries at positions below it survive a crash.
	durable uint64
}

type walRec struct {
	pos       uint64
	owner     mir.ModuleID
	retention uint64
	entry     any    // SkipEncoding
	wire      []byte // encoded entry
}

// walWaiter holds follow-ups released once the WAL is durable up to pos.
type walWaiter struct {
	pos    uint64
	events mir.EventList
}

// crash drops the unsynced tail and returns the number of entries lost.
func (w *walStore) crash() int {
	kept := w.entries[:0]
	for _, e := range w.entries {
		if e.pos < w.durable {
			kept = append(kept, e)
		}
	}
	lost := len(w.entries) - len(kept)
	clear(w.entries[len(kept):])
	w.entries = kept
	w.appended = w.durable
	return lost
}

func (s *sim) wal(in *instance, evs mir.EventList) {
	w := &in.slot.wal
	for i := range evs {
		switch p := evs[i].Payload.(type) {
		case events.WALAppend:
			if !in.walOwner[p.Owner] {
				s.fail(in.slot, fmt.Errorf("wal: append for %q, which is not a WAL owner", p.Owner))
				return
			}
			rec := walRec{pos: w.appended, owner: p.Owner, retention: p.RetentionIndex, entry: p.Entry}
			if !s.sc.SkipEncoding {
				var err error
				if rec.wire, err = mir.EncodePayload(p.Entry); err != nil {
					s.fail(in.slot, fmt.Errorf("wal: encode %s: %w", mir.PayloadName(p.Entry), err))
					return
				}
				rec.entry = nil
			}
			w.entries = append(w.entries, rec)
			w.appended++
			s.res.Stats.WALAppends++
		case events.WALTruncate:
			kept := w.entries[:0]
			for _, e := range w.entries {
				if e.retention >= p.RetentionIndex {
					kept = append(kept, e)
				}
			}
			clear(w.entries[len(kept):])
			w.entries = kept
		default:
			s.fail(in.slot, fmt.Errorf("wal: unexpected %s", mir.PayloadName(evs[i].Payload)))
			return
		}
		if len(evs[i].Next) > 0 {
			in.walWaiters = append(in.walWaiters, walWaiter{pos: w.appended, events: evs[i].Next})
		}
	}
	s.walKick(in)
}

// walKick releases what is durable and starts an fsync if entries wait.
func (s *sim) walKick(in *instance) {
	w := &in.slot.wal
	s.walRelease(in)
	if in.syncing || w.appended == w.durable {
		return
	}
	in.syncing = true
	s.res.Stats.WALSyncs++
	it := s.newItem(s.now+s.uniform(s.sc.Storage.MinSync, s.sc.Storage.MaxSync), itemSync)
	it.inst, it.target = in, w.appended
	s.queue.push(it)
}

// synced completes an fsync that covered every append before target (group
// commit: appends made while it ran wait for the next one).
func (s *sim) synced(in *instance, target uint64) {
	in.syncing = false
	w := &in.slot.wal
	if target > w.durable {
		w.durable = target
	}
	s.walKick(in)
	s.drain(in)
}

// walRelease enqueues, in order, the follow-ups whose entries are durable.
func (s *sim) walRelease(in *instance) {
	w := &in.slot.wal
	n := 0
	var evs mir.EventList
	for n < len(in.walWaiters) && in.walWaiters[n].pos <= w.durable {
		evs = append(evs, in.walWaiters[n].events...)
		n++
	}
	if n == 0 {
		return
	}
	clear(in.walWaiters[:n])
	in.walWaiters = in.walWaiters[n:]
	s.inject(in, WALModule, evs)
}

// recovered returns one WALRecovered per owner with its durable entries.
func (s *sim) recovered(in *instance, owners []mir.ModuleID) mir.EventList {
	w := &in.slot.wal
	out := make(mir.EventList, 0, len(owners))
	for _, o := range owners {
		var entries []events.WALEntry
		for _, e := range w.entries {
			if e.owner != o {
				continue
			}
			entry := e.entry
			if e.wire != nil {
				var err error
				if entry, err = mir.DecodePayload(e.wire); err != nil {
					s.violate(KindCodec, in.slot.ep, fmt.Sprintf("WAL entry for %s does not decode: %v", o, err))
					continue
				}
			}
			entries = append(entries, events.WALEntry{RetentionIndex: e.retention, Entry: entry})
		}
		out = append(out, mir.NewEvent(o, events.WALRecovered{Entries: entries}))
	}
	return out
}

// ---- crypto and hashing ----

// signature computes the simulated signature of signer over data:
// SHA-256(secret(signer) || for each part: uint64 length || part).
func (s *sim) signature(signer mir.NodeID, data [][]byte) []byte {
	h := sha256.New()
	h.Write(s.secrets[signer])
	var l [8]byte
	for _, d := range data {
		binary.BigEndian.PutUint64(l[:], uint64(len(d)))
		h.Write(l[:])
		h.Write(d)
	}
	return h.Sum(nil)
}

func (s *sim) crypto(in *instance, evs mir.EventList) {
	var next mir.EventList
	for i := range evs {
		var out mir.Event
		switch p := evs[i].Payload.(type) {
		case events.SignRequest:
			out = mir.NewEvent(p.ReplyTo, events.SignResult{Signature: s.signature(in.slot.ep.ID, p.Data), Context: p.Context})
		case events.VerifyRequest:
			res := events.VerifyResult{Valid: make([]bool, len(p.Items)), Errors: make([]string, len(p.Items)), AllOK: true, Context: p.Context}
			for j, item := range p.Items {
				switch {
				case s.secrets[item.Signer] == nil:
					res.Errors[j] = "unknown signer " + string(item.Signer)
				case subtle.ConstantTimeCompare(item.Signature, s.signature(item.Signer, item.Data)) != 1:
					res.Errors[j] = "invalid signature"
				default:
					res.Valid[j] = true
				}
				res.AllOK = res.AllOK && res.Valid[j]
			}
			out = mir.NewEvent(p.ReplyTo, res)
		default:
			s.fail(in.slot, fmt.Errorf("crypto: unexpected %s", mir.PayloadName(evs[i].Payload)))
			return
		}
		s.answer(in, CryptoModule, out, s.sc.Services.CryptoDelay)
		next = append(next, evs[i].Next...)
	}
	s.inject(in, CryptoModule, next)
}

func (s *sim) hasher(in *instance, evs mir.EventList) {
	var next mir.EventList
	for i := range evs {
		p, ok := evs[i].Payload.(events.HashRequest)
		if !ok {
			s.fail(in.slot, fmt.Errorf("hasher: unexpected %s", mir.PayloadName(evs[i].Payload)))
			return
		}
		res := events.HashResult{Digests: make([][]byte, len(p.Data)), Context: p.Context}
		for j, parts := range p.Data {
			h := sha256.New()
			for _, b := range parts {
				h.Write(b)
			}
			res.Digests[j] = h.Sum(nil)
		}
		s.answer(in, HasherModule, mir.NewEvent(p.ReplyTo, res), s.sc.Services.HashDelay)
		next = append(next, evs[i].Next...)
	}
	s.inject(in, HasherModule, next)
}

// answer schedules an event from a service module after up to maxDelay.
func (s *sim) answer(in *instance, src mir.ModuleID, e mir.Event, maxDelay time.Duration) {
	it := s.newItem(s.now+s.uniform(0, maxDelay), itemEvents)
	it.inst, it.src, it.events = in, src, mir.EventList{e}
	s.queue.push(it)
}
