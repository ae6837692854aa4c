package sim_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

// The toy sequencer: a fixed leader assigns sequence numbers to submitted
// transactions, persists each assignment, has it signed and broadcasts it;
// replicas verify the leader's signature, persist the assignment and deliver
// in order. Replicas retransmit forwards and fetch missing assignments on a
// repeating timer. It is crash-fault tolerant (not Byzantine): a twin of the
// leader breaks it, which the checkers must notice.

const toyModule mir.ModuleID = "toy"

// toyVariant selects a correct or deliberately broken toy.
type toyVariant int

const (
	toyCorrect toyVariant = iota
	// toyNoWAL: the leader broadcasts an assignment without waiting for it
	// to be durable (fsync skipped); a crash makes it reassign.
	toyNoWAL
	// toyTwoLeaders: nodes 0 and 1 both assign sequence numbers.
	toyTwoLeaders
	// toyStall: the leader stops assigning after 20 transactions (a
	// liveness bug).
	toyStall
)

type toyConfig struct {
	Variant toyVariant
	Tick    time.Duration
}

// Payloads. Tags from the test range.
type (
	ToySubmit struct {
		_  struct{} `cbor:",toarray"`
		Tx []byte
	}
	ToyTick struct {
		_ struct{} `cbor:",toarray"`
	}
	ToyForward struct {
		_   struct{} `cbor:",toarray"`
		Txs [][]byte
	}
	ToyAssign struct {
		_   struct{} `cbor:",toarray"`
		Seq uint64
		Tx  []byte
		Sig []byte
	}
	ToyFetch struct {
		_    struct{} `cbor:",toarray"`
		Next uint64
	}
	// ToyEntry is the WAL entry: an assignment made as leader (Leader) or
	// accepted as replica.
	ToyEntry struct {
		_      struct{} `cbor:",toarray"`
		Leader bool
		Seq    uint64
		Tx     []byte
	}
	ToySignCtx struct {
		_   struct{} `cbor:",toarray"`
		Seq uint64
	}
	ToyDurable struct {
		_   struct{} `cbor:",toarray"`
		Seq uint64
		Tx  []byte
	}
)

func init() {
	b := mir.TagBaseTest + 300
	mir.RegisterPayload(b+0, ToySubmit{})
	mir.RegisterPayload(b+1, ToyTick{})
	mir.RegisterPayload(b+2, ToyForward{})
	mir.RegisterPayload(b+3, ToyAssign{})
	mir.RegisterPayload(b+4, ToyFetch{})
	mir.RegisterPayload(b+5, ToyEntry{})
	mir.RegisterPayload(b+6, ToySignCtx{})
	mir.RegisterPayload(b+7, ToyDurable{})
}

// toyFactory builds toy nodes of the given variant.
func toyFactory(v toyVariant) sim.Factory {
	return func(env sim.NodeEnv) (sim.NodeModules, error) {
		cfg := toyConfig{Variant: v, Tick: 50 * time.Millisecond}
		t := &toy{
			id: env.ID, nodes: env.Nodes, cfg: cfg, obs: env.Observer,
			assigned: map[string]bool{}, sigs: map[uint64][]byte{},
			durable: map[uint64][]byte{}, verifying: map[uint64]bool{}, delivered: map[string]bool{},
		}
		return sim.NodeModules{
			Passive:   map[mir.ModuleID]mir.PassiveModule{toyModule: t},
			WALOwners: []mir.ModuleID{toyModule},
			Submit:    func(tx []byte) mir.Event { return mir.NewEvent(toyModule, ToySubmit{Tx: tx}) },
		}, nil
	}
}

type toy struct {
	id    mir.NodeID
	nodes []mir.NodeID
	cfg   toyConfig
	obs   sim.Observer
	// recovered: the WAL was read; nothing is processed before.
	recovered bool
	// Leader state: log[s] is the transaction assigned to s.
	log      [][]byte
	assigned map[string]bool
	sigs     map[uint64][]byte
	// Replica state: durable accepted assignments; next to deliver.
	durable   map[uint64][]byte
	verifying map[uint64]bool
	next      uint64
	// pending are transactions submitted here and not yet delivered here.
	pending   [][]byte
	delivered map[string]bool
}

func (t *toy) leaders() []mir.NodeID {
	if t.cfg.Variant == toyTwoLeaders {
		return []mir.NodeID{"0", "1"}
	}
	return []mir.NodeID{"0"}
}

func (t *toy) isLeader() bool {
	for _, l := range t.leaders() {
		if l == t.id {
			return true
		}
	}
	return false
}

// myLeader is the leader this node forwards to.
func (t *toy) myLeader() mir.NodeID {
	ls := t.leaders()
	if len(ls) > 1 && (t.id == "1" || t.id == "3") {
		return ls[1]
	}
	return ls[0]
}

func send(to []mir.NodeID, msg any) mir.Event {
	return mir.NewEvent(sim.NetModule, events.SendMessage{Destinations: to, DestModule: toyModule, Msg: msg})
}

func signData(seq uint64, tx []byte) [][]byte {
	return [][]byte{binary.BigEndian.AppendUint64(nil, seq), tx}
}

func (t *toy) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, t.apply)
}

func (t *toy) apply(e mir.Event) (mir.EventList, error) {
	switch p := e.Payload.(type) {
	case events.Init:
		return mir.EventList{mir.NewEvent(sim.TimerModule, events.TimerRepeat{
			Events: []mir.Event{mir.NewEvent(toyModule, ToyTick{})}, Period: t.cfg.Tick})}, nil
	case events.WALRecovered:
		if t.recovered {
			return nil, fmt.Errorf("second WALRecovered")
		}
		t.recovered = true
		var out mir.EventList
		for _, we := range p.Entries {
			en, ok := we.Entry.(ToyEntry)
			if !ok {
				return nil, fmt.Errorf("bad WAL entry %T", we.Entry)
			}
			if en.Leader {
				if en.Seq != uint64(len(t.log)) {
					return nil, fmt.Errorf("WAL hole: leader entry %d after %d", en.Seq, len(t.log))
				}
				t.log = append(t.log, en.Tx)
				t.assigned[string(en.Tx)] = true
				out = append(out, t.sign(en.Seq, en.Tx))
			} else {
				t.durable[en.Seq] = en.Tx
			}
		}
		t.deliverReady()
		return out, nil
	case ToySubmit:
		if t.delivered[string(p.Tx)] {
			return nil, nil
		}
		t.pending = append(t.pending, p.Tx)
		return mir.EventList{send([]mir.NodeID{t.myLeader()}, ToyForward{Txs: [][]byte{p.Tx}})}, nil
	case ToyTick:
		if !t.recovered {
			return nil, nil
		}
		out := mir.EventList{send(t.leaders(), ToyFetch{Next: t.next})}
		// A new slice: the last ToyForward still references the old one,
		// and emitted events must never change.
		var kept [][]byte
		for _, tx := range t.pending {
			if !t.delivered[string(tx)] {
				kept = append(kept, tx)
			}
		}
		t.pending = kept
		if len(kept) > 0 {
			out = append(out, send([]mir.NodeID{t.myLeader()}, ToyForward{Txs: kept[:min(len(kept), 64):min(len(kept), 64)]}))
		}
		return out, nil
	case events.MessageReceived:
		if !t.recovered {
			return nil, nil
		}
		return t.message(p.From, p.Msg)
	case events.SignResult:
		ctx := p.Context.(ToySignCtx)
		t.sigs[ctx.Seq] = p.Signature
		return mir.EventList{send(t.nodes, ToyAssign{Seq: ctx.Seq, Tx: t.log[ctx.Seq], Sig: p.Signature})}, nil
	case events.VerifyResult:
		a := p.Context.(ToyAssign)
		delete(t.verifying, a.Seq)
		if !p.AllOK || a.Seq < t.next || t.durable[a.Seq] != nil {
			return nil, nil
		}
		t.verifying[a.Seq] = true // until durable
		return mir.EventList{mir.NewEvent(sim.WALModule, events.WALAppend{Owner: toyModule, Entry: ToyEntry{Seq: a.Seq, Tx: a.Tx}}).
			WithNext(mir.NewEvent(toyModule, ToyDurable{Seq: a.Seq, Tx: a.Tx}))}, nil
	case ToyDurable:
		delete(t.verifying, p.Seq)
		if t.durable[p.Seq] == nil {
			t.durable[p.Seq] = p.Tx
		}
		t.deliverReady()
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %T", e.Payload)
}

func (t *toy) sign(seq uint64, tx []byte) mir.Event {
	return mir.NewEvent(sim.CryptoModule, events.SignRequest{Data: signData(seq, tx), ReplyTo: toyModule, Context: ToySignCtx{Seq: seq}})
}

func (t *toy) message(from mir.NodeID, msg any) (mir.EventList, error) {
	switch m := msg.(type) {
	case ToyForward:
		if !t.isLeader() {
			return nil, nil
		}
		var out mir.EventList
		for _, tx := range m.Txs {
			if t.assigned[string(tx)] || (t.cfg.Variant == toyStall && len(t.log) >= 20) {
				continue
			}
			seq := uint64(len(t.log))
			t.log = append(t.log, tx)
			t.assigned[string(tx)] = true
			app := mir.NewEvent(sim.WALModule, events.WALAppend{Owner: toyModule, Entry: ToyEntry{Leader: true, Seq: seq, Tx: tx}})
			if t.cfg.Variant == toyNoWAL {
				out = append(out, app, t.sign(seq, tx))
			} else {
				out = append(out, app.WithNext(t.sign(seq, tx)))
			}
		}
		return out, nil
	case ToyFetch:
		var out mir.EventList
		for s := m.Next; s < uint64(len(t.log)) && s < m.Next+64; s++ {
			if sig := t.sigs[s]; sig != nil {
				out = append(out, send([]mir.NodeID{from}, ToyAssign{Seq: s, Tx: t.log[s], Sig: sig}))
			}
		}
		return out, nil
	case ToyAssign:
		if m.Seq < t.next || t.durable[m.Seq] != nil || t.verifying[m.Seq] {
			return nil, nil
		}
		signer := t.leaders()[0]
		if t.cfg.Variant == toyTwoLeaders {
			signer = from
		}
		t.verifying[m.Seq] = true
		return mir.EventList{mir.NewEvent(sim.CryptoModule, events.VerifyRequest{
			Items:   []events.SigItem{{Data: signData(m.Seq, m.Tx), Signature: m.Sig, Signer: signer}},
			ReplyTo: toyModule, Context: m})}, nil
	}
	return nil, nil // drop unknown messages from peers
}

func (t *toy) deliverReady() {
	for {
		tx := t.durable[t.next]
		if tx == nil {
			return
		}
		d := sha256.Sum256(tx)
		t.obs.Deliver(t.next, d[:], [][]byte{tx})
		t.delivered[string(tx)] = true
		t.next++
	}
}
