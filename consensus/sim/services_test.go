package sim_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

// Probes are scripted passive modules that exercise one simulated service
// and record what they see. A probe counts 1ms ticks of a repeating timer,
// which gives tests a virtual clock with millisecond resolution.

const probeModule mir.ModuleID = "p"

type (
	ProbeTick struct {
		_ struct{} `cbor:",toarray"`
	}
	ProbeMark struct {
		_    struct{} `cbor:",toarray"`
		Text string
	}
	ProbeMsg struct {
		_    struct{} `cbor:",toarray"`
		Text string
		Tick int
	}
)

func init() {
	b := mir.TagBaseTest + 350
	mir.RegisterPayload(b+0, ProbeTick{})
	mir.RegisterPayload(b+1, ProbeMark{})
	mir.RegisterPayload(b+2, ProbeMsg{})
}

type probe struct {
	env   sim.NodeEnv
	log   *[]string
	ticks int
	fn    func(p *probe, e mir.Event) (mir.EventList, error)
}

func (p *probe) ep() string { return sim.Endpoint{ID: p.env.ID, Copy: p.env.Copy}.String() }

func (p *probe) rec(format string, args ...any) {
	*p.log = append(*p.log, fmt.Sprintf("%s/%d t=%d ", p.ep(), p.env.Incarnation, p.ticks)+fmt.Sprintf(format, args...))
}

func (p *probe) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		var out mir.EventList
		switch e.Payload.(type) {
		case events.Init:
			out = append(out, mir.NewEvent(sim.TimerModule, events.TimerRepeat{
				Events: []mir.Event{mir.NewEvent(probeModule, ProbeTick{})}, Period: time.Millisecond, RetentionIndex: 1 << 62}))
		case ProbeTick:
			p.ticks++
		}
		more, err := p.fn(p, e)
		return append(out, more...), err
	})
}

func probeFactory(log *[]string, fn func(p *probe, e mir.Event) (mir.EventList, error)) sim.Factory {
	return func(env sim.NodeEnv) (sim.NodeModules, error) {
		return sim.NodeModules{
			Passive:   map[mir.ModuleID]mir.PassiveModule{probeModule: &probe{env: env, log: log, fn: fn}},
			WALOwners: []mir.ModuleID{probeModule},
		}, nil
	}
}

func probeScenario(n int) sim.Scenario {
	return sim.Scenario{
		Name: "probe", Seed: 1, N: n,
		Net:           sim.Network{MinLatency: time.Millisecond, MaxLatency: time.Millisecond},
		Storage:       sim.Storage{MinSync: time.Millisecond, MaxSync: time.Millisecond},
		Load:          sim.Load{Interval: time.Hour},
		FaultDuration: 100 * time.Millisecond, HealedDuration: 100 * time.Millisecond,
		NoLiveness: true,
	}
}

func mark(text string) mir.Event { return mir.NewEvent(probeModule, ProbeMark{Text: text}) }

func appendEntry(text string, ret uint64) mir.Event {
	return mir.NewEvent(sim.WALModule, events.WALAppend{Owner: probeModule, Entry: ProbeMark{Text: text}, RetentionIndex: ret})
}

func mustOK(t *testing.T, res sim.Result) {
	t.Helper()
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestWALTailLossAndGroupCommit: an append made while an fsync is in flight
// waits for the next fsync; a crash before it loses the entry and its
// follow-ups are never released; recovery returns only durable entries,
// exactly once, before any other WAL event; truncation drops old entries.
func TestWALTailLossAndGroupCommit(t *testing.T) {
	var log []string
	sc := probeScenario(1)
	sc.Storage = sim.Storage{MinSync: 10 * time.Millisecond, MaxSync: 10 * time.Millisecond}
	sc.Schedule = []sim.Action{
		{At: 12 * time.Millisecond, Kind: sim.ActionCrash, Endpoint: sim.Endpoint{ID: "0"}},
		{At: 30 * time.Millisecond, Kind: sim.ActionRestart, Endpoint: sim.Endpoint{ID: "0"}},
		{At: 80 * time.Millisecond, Kind: sim.ActionCrash, Endpoint: sim.Endpoint{ID: "0"}},
	}
	recovered := false
	res := sim.Run(sc, probeFactory(&log, func(p *probe, e mir.Event) (mir.EventList, error) {
		switch pl := e.Payload.(type) {
		case events.Init:
			recovered = false
			if p.env.Incarnation == 1 {
				return mir.EventList{
					appendEntry("c", 5),
					mir.NewEvent(sim.WALModule, events.WALTruncate{RetentionIndex: 3}).WithNext(mark("truncated")),
				}, nil
			}
		case events.WALRecovered:
			if recovered {
				return nil, errors.New("second WALRecovered")
			}
			recovered = true
			var texts []string
			for _, en := range pl.Entries {
				texts = append(texts, en.Entry.(ProbeMark).Text)
			}
			p.rec("recovered %v", texts)
			if p.env.Incarnation == 0 {
				return mir.EventList{appendEntry("a", 0).WithNext(mark("a durable"))}, nil
			}
		case ProbeTick:
			if p.env.Incarnation == 0 && p.ticks == 5 {
				return mir.EventList{appendEntry("b", 0).WithNext(mark("b durable"))}, nil
			}
		case ProbeMark:
			if e.Src == sim.WALModule && !recovered {
				return nil, errors.New("WAL follow-up before WALRecovered")
			}
			p.rec("%s", pl.Text)
		}
		return nil, nil
	}))
	mustOK(t, res)
	want := []string{
		"0/0 t=0 recovered []",
		"0/0 t=9 a durable", // the fsync started at 0 ends at 10ms, before tick 10
		"0/1 t=0 recovered [a]",
		"0/1 t=9 truncated", // after the append before it
		"0/2 t=0 recovered [c]",
	}
	if !slices.Equal(log, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	if res.Stats.WALLost != 1 || res.Stats.Crashes != 2 || res.Stats.Restarts != 2 {
		t.Fatalf("stats %+v", res.Stats)
	}
}

// TestTwinsRouting: a message to an identity reaches every copy whose link
// is not cut, and carries the shared identity as From.
func TestTwinsRouting(t *testing.T) {
	var log []string
	sc := probeScenario(4)
	sc.Twins = []mir.NodeID{"3"}
	a := []sim.Endpoint{{ID: "3"}, {ID: "0"}, {ID: "1"}}
	b := []sim.Endpoint{{ID: "3", Copy: 1}, {ID: "2"}}
	sc.Schedule = []sim.Action{{Kind: sim.ActionPartition, Groups: [][]sim.Endpoint{a, b}}}
	res := sim.Run(sc, probeFactory(&log, func(p *probe, e mir.Event) (mir.EventList, error) {
		switch pl := e.Payload.(type) {
		case ProbeTick:
			if p.ticks == 1 { // every node has started
				return mir.EventList{mir.NewEvent(sim.NetModule, events.SendMessage{
					Destinations: p.env.Nodes, DestModule: probeModule, Msg: ProbeMsg{Text: p.ep()}})}, nil
			}
		case events.MessageReceived:
			p.rec("from %s (%s)", pl.From, pl.Msg.(ProbeMsg).Text)
		}
		return nil, nil
	}))
	mustOK(t, res)
	group := map[string]int{}
	for _, ep := range a {
		group[ep.String()] = 1
	}
	for _, ep := range b {
		group[ep.String()] = 2
	}
	var want []string
	for _, to := range []string{"0", "1", "2", "3", "3#1"} {
		for _, from := range []string{"0", "1", "2", "3", "3#1"} {
			if group[from] == group[to] {
				want = append(want, fmt.Sprintf("%s/0 from %s (%s)", to, strings.TrimSuffix(from, "#1"), from))
			}
		}
	}
	for i, l := range log { // drop the tick
		f := strings.Fields(l)
		log[i] = strings.Join(append(f[:1:1], f[2:]...), " ")
	}
	slices.Sort(want)
	slices.Sort(log)
	if !slices.Equal(log, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}

// pinger sends its tick number to the other nodes every tick and records
// what it receives.
func pinger(p *probe, e mir.Event) (mir.EventList, error) {
	switch pl := e.Payload.(type) {
	case ProbeTick:
		var to []mir.NodeID
		for _, id := range p.env.Nodes {
			if id != p.env.ID {
				to = append(to, id)
			}
		}
		return mir.EventList{mir.NewEvent(sim.NetModule, events.SendMessage{
			Destinations: to, DestModule: probeModule, Msg: ProbeMsg{Tick: p.ticks}})}, nil
	case events.MessageReceived:
		p.rec("got %d", pl.Msg.(ProbeMsg).Tick)
	}
	return nil, nil
}

type reception struct{ at, sent int }

func receptions(t *testing.T, log []string, who string) []reception {
	var rs []reception
	for _, l := range log {
		var ep string
		var r reception
		if _, err := fmt.Sscanf(l, "%s t=%d got %d", &ep, &r.at, &r.sent); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		if ep == who {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestPartitionAndHeal(t *testing.T) {
	var log []string
	sc := probeScenario(2)
	sc.Schedule = []sim.Action{
		{At: 20 * time.Millisecond, Kind: sim.ActionPartition, Groups: [][]sim.Endpoint{{{ID: "0"}}}},
		{At: 60 * time.Millisecond, Kind: sim.ActionPartition}, // healed early
		{At: 80 * time.Millisecond, Kind: sim.ActionPartition, Groups: [][]sim.Endpoint{{{ID: "1"}}}},
	}
	res := sim.Run(sc, probeFactory(&log, pinger))
	mustOK(t, res)
	rs := receptions(t, log, "1/0")
	var seen []int
	for _, r := range rs {
		if (r.at > 20 && r.at < 60) || (r.at > 80 && r.at < 100) {
			t.Fatalf("received %d at %dms across a partition", r.sent, r.at)
		}
		seen = append(seen, r.sent)
	}
	for _, want := range []int{5, 50, 70, 150} {
		if slices.Contains(seen, want) == (want == 50) {
			t.Fatalf("ping %d: received=%v", want, slices.Contains(seen, want))
		}
	}
	if res.Stats.MsgCut == 0 {
		t.Fatal("no message counted as cut")
	}
}

func TestSwizzleClogHoldsMessages(t *testing.T) {
	var log []string
	sc := probeScenario(2)
	sc.Schedule = []sim.Action{
		{At: 10 * time.Millisecond, Kind: sim.ActionClog, Endpoint: sim.Endpoint{ID: "1"}},
		{At: 50 * time.Millisecond, Kind: sim.ActionUnclog, Endpoint: sim.Endpoint{ID: "1"}},
	}
	res := sim.Run(sc, probeFactory(&log, pinger))
	mustOK(t, res)
	sent := map[int]bool{}
	late := 0
	for _, r := range receptions(t, log, "1/0") {
		if r.at > 10 && r.at < 49 { // ticks lag the virtual time by up to 1ms
			t.Fatalf("received %d at %dms while clogged", r.sent, r.at)
		}
		if r.sent >= 10 && r.sent < 49 && r.at >= 50 {
			late++
		}
		sent[r.sent] = true
	}
	for i := 1; i < 190; i++ {
		if !sent[i] {
			t.Fatalf("ping %d was lost; clogs must hold, not drop", i)
		}
	}
	if late < 35 || res.Stats.MsgHeld == 0 {
		t.Fatalf("%d held pings delivered after the unclog, stats %+v", late, res.Stats)
	}
}

func TestTimers(t *testing.T) {
	var log []string
	sc := probeScenario(1)
	res := sim.Run(sc, probeFactory(&log, func(p *probe, e mir.Event) (mir.EventList, error) {
		switch pl := e.Payload.(type) {
		case events.Init:
			return mir.EventList{
				mir.NewEvent(sim.TimerModule, events.TimerDelay{Events: []mir.Event{mark("d10")}, After: 10 * time.Millisecond, RetentionIndex: 1}),
				mir.NewEvent(sim.TimerModule, events.TimerDelay{Events: []mir.Event{mark("d20")}, After: 20 * time.Millisecond, RetentionIndex: 5}),
				mir.NewEvent(sim.TimerModule, events.TimerRepeat{Events: []mir.Event{mark("rep")}, Period: 7 * time.Millisecond, RetentionIndex: 2}),
				mir.NewEvent(sim.TimerModule, events.TimerDelay{Events: []mir.Event{
					mir.NewEvent(sim.TimerModule, events.TimerGarbageCollect{RetentionIndex: 3}).WithNext(mark("gc"))},
					After: 15 * time.Millisecond}),
			}, nil
		case ProbeMark:
			p.rec("%s", pl.Text)
		}
		return nil, nil
	}))
	mustOK(t, res)
	want := []string{"0/0 t=6 rep", "0/0 t=9 d10", "0/0 t=13 rep", "0/0 t=14 gc", "0/0 t=19 d20"}
	if !slices.Equal(log, want) {
		t.Fatalf("got %q\nwant %q", log, want)
	}
}

// TestCryptoAndHasher: signatures verify for their signer only, twins share
// keys, hashes are SHA-256 over the concatenated parts.
func TestCryptoAndHasher(t *testing.T) {
	var log []string
	sc := probeScenario(2)
	sc.Twins = []mir.NodeID{"1"}
	sc.TwinsAtHeal = sim.TwinsKeep
	sc.Services = sim.Services{CryptoDelay: time.Millisecond, HashDelay: time.Millisecond}
	data := [][]byte{[]byte("ab"), []byte("c")}
	res := sim.Run(sc, probeFactory(&log, func(p *probe, e mir.Event) (mir.EventList, error) {
		switch pl := e.Payload.(type) {
		case events.Init:
			return mir.EventList{
				mir.NewEvent(sim.CryptoModule, events.SignRequest{Data: data, ReplyTo: probeModule}),
				mir.NewEvent(sim.HasherModule, events.HashRequest{Data: [][][]byte{data, {}}, ReplyTo: probeModule}),
			}, nil
		case events.SignResult:
			p.rec("sig %x", pl.Signature[:4])
			other := [][]byte{[]byte("a"), []byte("bc")} // same concatenation, other framing
			return mir.EventList{mir.NewEvent(sim.CryptoModule, events.VerifyRequest{ReplyTo: probeModule, Items: []events.SigItem{
				{Data: data, Signature: pl.Signature, Signer: p.env.ID},
				{Data: data, Signature: pl.Signature, Signer: "0"},
				{Data: other, Signature: pl.Signature, Signer: p.env.ID},
				{Data: data, Signature: pl.Signature, Signer: "9"},
			}})}, nil
		case events.VerifyResult:
			p.rec("verify %v %v %q", pl.AllOK, pl.Valid, pl.Errors)
		case events.HashResult:
			want := sha256.Sum256([]byte("abc"))
			empty := sha256.Sum256(nil)
			p.rec("hash ok=%v", string(pl.Digests[0]) == string(want[:]) && string(pl.Digests[1]) == string(empty[:]))
		}
		return nil, nil
	}))
	mustOK(t, res)
	sigs := map[string]string{}
	verifies := 0
	for _, l := range log {
		f := strings.Fields(l)
		switch f[2] {
		case "sig":
			sigs[f[0]] = f[3]
		case "hash":
			if f[3] != "ok=true" {
				t.Fatal(l)
			}
		case "verify":
			verifies++
			own := strings.HasPrefix(l, "0/")
			want := fmt.Sprintf("verify false [true %v false false] [\"\" %q \"invalid signature\" \"unknown signer 9\"]",
				own, map[bool]string{true: "", false: "invalid signature"}[own])
			if strings.Join(f[2:], " ") != want {
				t.Fatalf("%s\nwant %s", l, want)
			}
		}
	}
	if verifies != 3 || sigs["1/0"] != sigs["1#1/0"] || sigs["0/0"] == sigs["1/0"] {
		t.Fatalf("signatures %v, %d verifications", sigs, verifies)
	}
}

// TestObserverRules: the gap, restore and checkpoint rules fire.
func TestObserverRules(t *testing.T) {
	cases := []struct {
		kind string
		fn   func(p *probe) // called once at Init
	}{
		{sim.KindGap, func(p *probe) { p.env.Observer.Deliver(0, []byte{1}, nil); p.env.Observer.Deliver(2, []byte{2}, nil) }},
		{sim.KindGap, func(p *probe) { p.env.Observer.Deliver(0, []byte{1}, nil); p.env.Observer.Deliver(0, []byte{1}, nil) }},
		{sim.KindRestore, func(p *probe) { p.env.Observer.Restore(3) }},
		{sim.KindAgreement, func(p *probe) { p.env.Observer.Deliver(0, []byte(p.env.ID), nil) }},
		{sim.KindCheckpoint, func(p *probe) { p.env.Observer.StableCheckpoint(1, []byte(p.env.ID)) }},
		{"", func(p *probe) { // fine: restore to what was delivered, then go on
			p.env.Observer.Deliver(0, []byte{1}, nil)
			p.env.Observer.Deliver(1, []byte{2}, nil)
			p.env.Observer.Restore(2)
			p.env.Observer.Deliver(2, []byte{3}, nil)
			p.env.Observer.StableCheckpoint(0, []byte{9})
		}},
	}
	for i, c := range cases {
		var log []string
		res := sim.Run(probeScenario(2), probeFactory(&log, func(p *probe, e mir.Event) (mir.EventList, error) {
			if _, ok := e.Payload.(events.Init); ok {
				c.fn(p)
			}
			return nil, nil
		}))
		if c.kind == "" {
			mustOK(t, res)
			continue
		}
		if len(res.Violations) != 1 || res.Violations[0].Kind != c.kind {
			t.Fatalf("case %d: want one %s violation, got %v", i, c.kind, res.Err())
		}
	}
}

func TestNodeErrorReported(t *testing.T) {
	var log []string
	sc := probeScenario(2)
	sc.Repro = sim.ReproCommand(pkg, t.Name(), sc.Seed)
	res := sim.Run(sc, probeFactory(&log, func(p *probe, e mir.Event) (mir.EventList, error) {
		if _, ok := e.Payload.(ProbeTick); ok && p.env.ID == "1" && p.ticks == 3 {
			return nil, errors.New("boom")
		}
		return nil, nil
	}))
	err := res.Err()
	if err == nil || !res.HasKind(sim.KindNodeError) || !strings.Contains(err.Error(), "boom") ||
		!strings.Contains(err.Error(), "-run '^TestNodeErrorReported$' -seed=1") || res.Violations[0].At != 3*time.Millisecond {
		t.Fatalf("got %v", err)
	}
}
