package sample

import (
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// RBC is Bracha's reliable broadcast as a passive module. Every correct
// member delivers the same value for a broadcast (origin, sequence number),
// or none; if the origin is correct, all correct members deliver its value.
// With n members it tolerates f = (n-1)/3 Byzantine ones.
//
// The handlers follow the textbook:
//
//	on Broadcast(v):          send SEND(seq, v) to all; seq++
//	on SEND(s, v) from o:     once per (o, s): send ECHO(o, s, v) to all
//	on ECHO(o, s, v) from j:  if ceil((n+f+1)/2) echoes for v: send READY(o, s, v) once
//	on READY(o, s, v) from j: if f+1 readies for v: send READY(o, s, v) once
//	                          if 2f+1 readies for v: deliver (o, s, v) once
//
// Messages that cannot be valid (unknown sender or origin, wrong type, a
// second vote of a sender for one broadcast) are dropped and counted in
// Stats; no peer input makes the module fail.
//
// TODO(sample): garbage-collect delivered instances and bound the instances
// per origin (a window of sequence numbers) before this module faces
// untrusted peers: a Byzantine member can make it allocate an instance per
// sequence number it invents.
type RBC struct {
	self mir.NodeID
	// members is the membership in the order given; read-only.
	members []mir.NodeID
	// isMember holds exactly the members.
	isMember map[mir.NodeID]bool
	// f is the number of faults tolerated: (n-1)/3.
	f int
	// nextSeq is the sequence number of this node's next broadcast.
	nextSeq uint64
	// instances holds the state of every broadcast heard of.
	instances map[instanceID]*instance
	stats     RBCStats
}

// instanceID names one broadcast.
type instanceID struct {
	origin mir.NodeID
	seq    uint64
}

// instance is the state of one broadcast at this node. Values are keyed by
// their bytes as a string.
type instance struct {
	// echoed: this node sent its ECHO (it accepts one SEND).
	echoed bool
	// readied: this node sent its READY.
	readied bool
	// delivered: this node delivered the broadcast.
	delivered bool
	// echoes and readies map each voter to the value it voted for (its
	// first vote; later ones are dropped).
	echoes, readies map[mir.NodeID]string
	// echoCount and readyCount count the votes per value.
	echoCount, readyCount map[string]int
}

// RBCStats counts what an RBC module did and dropped.
type RBCStats struct {
	Broadcasts uint64
	Delivered  uint64
	// DroppedUnknownSender counts messages whose sender is not a member.
	DroppedUnknownSender uint64
	// DroppedUnknownOrigin counts votes for a broadcast of a non-member.
	DroppedUnknownOrigin uint64
	// DroppedBadMessage counts messages of a type the protocol does not use.
	DroppedBadMessage uint64
	// DroppedDuplicate counts second SENDs and second votes of one sender
	// for one broadcast (equal or conflicting).
	DroppedDuplicate uint64
}

// NewRBC returns the reliable broadcast module of node self among members
// (which must include self and hold no duplicates). Its ID is ModRBC; it
// sends to ModNet and delivers to ModApp.
func NewRBC(self mir.NodeID, members []mir.NodeID) mir.PassiveModule {
	r := &RBC{
		self:      self,
		members:   append([]mir.NodeID(nil), members...),
		isMember:  make(map[mir.NodeID]bool, len(members)),
		f:         (len(members) - 1) / 3,
		instances: map[instanceID]*instance{},
	}
	for _, m := range members {
		r.isMember[m] = true
	}
	return r
}

// Stats returns the module's counters. Like the module's state, it must be
// read from the goroutine that applies events, or after the node stopped.
func (r *RBC) Stats() RBCStats { return r.stats }

// echoQuorum is the number of matching echoes that makes a node ready:
// ceil((n+f+1)/2), so that two echo quorums share a correct node.
func (r *RBC) echoQuorum() int { return (len(r.members)+r.f)/2 + 1 }

// ApplyEvents implements mir.PassiveModule.
func (r *RBC) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, r.apply)
}

func (r *RBC) apply(e mir.Event) (mir.EventList, error) {
	switch p := e.Payload.(type) {
	case Broadcast:
		return r.broadcast(p.Data), nil
	case events.MessageReceived:
		return r.receive(p.From, p.Msg), nil
	case events.Init:
		return nil, nil
	default:
		// A local event of an unexpected type is a wiring bug.
		return nil, fmt.Errorf("sample: rbc: unexpected event %s", mir.PayloadName(e.Payload))
	}
}

func (r *RBC) broadcast(data []byte) mir.EventList {
	seq := r.nextSeq
	r.nextSeq++
	r.stats.Broadcasts++
	return mir.EventList{r.sendAll(Send{Seq: seq, Data: data})}
}

func (r *RBC) receive(from mir.NodeID, msg any) mir.EventList {
	if !r.isMember[from] {
		r.stats.DroppedUnknownSender++
		return nil
	}
	switch m := msg.(type) {
	case Send:
		// The origin is the authenticated sender.
		inst := r.instance(instanceID{from, m.Seq})
		if inst.echoed {
			r.stats.DroppedDuplicate++
			return nil
		}
		inst.echoed = true
		return mir.EventList{r.sendAll(Echo{Origin: from, Seq: m.Seq, Data: m.Data})}
	case Echo:
		return r.vote(from, m.Origin, m.Seq, m.Data, false)
	case Ready:
		return r.vote(from, m.Origin, m.Seq, m.Data, true)
	default:
		r.stats.DroppedBadMessage++
		return nil
	}
}

// vote records from's ECHO (ready false) or READY vote for value data of
// broadcast (origin, seq) and returns what it triggers.
func (r *RBC) vote(from, origin mir.NodeID, seq uint64, data []byte, ready bool) mir.EventList {
	if !r.isMember[origin] {
		r.stats.DroppedUnknownOrigin++
		return nil
	}
	inst := r.instance(instanceID{origin, seq})
	votes, count := inst.echoes, inst.echoCount
	if ready {
		votes, count = inst.readies, inst.readyCount
	}
	if _, voted := votes[from]; voted {
		r.stats.DroppedDuplicate++
		return nil
	}
	v := string(data)
	votes[from] = v
	count[v]++

	var out mir.EventList
	if !inst.readied && (inst.echoCount[v] >= r.echoQuorum() || inst.readyCount[v] >= r.f+1) {
		inst.readied = true
		out = append(out, r.sendAll(Ready{Origin: origin, Seq: seq, Data: data}))
	}
	if !inst.delivered && inst.readyCount[v] >= 2*r.f+1 {
		inst.delivered = true
		r.stats.Delivered++
		out = append(out, mir.NewEvent(ModApp, Delivered{Origin: origin, Seq: seq, Data: []byte(v)}))
	}
	return out
}

func (r *RBC) instance(id instanceID) *instance {
	inst := r.instances[id]
	if inst == nil {
		inst = &instance{
			echoes:     map[mir.NodeID]string{},
			readies:    map[mir.NodeID]string{},
			echoCount:  map[string]int{},
			readyCount: map[string]int{},
		}
		r.instances[id] = inst
	}
	return inst
}

// sendAll returns the event sending msg to the RBC modules of all members,
// this node included.
func (r *RBC) sendAll(msg any) mir.Event {
	return mir.NewEvent(ModNet, events.SendMessage{Destinations: r.members, DestModule: ModRBC, Msg: msg})
}
