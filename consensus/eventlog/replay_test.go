package eventlog

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// pinger bounces testMsgs with its peer until SeqNr reaches limit. Each
// message to the peer carries a follow-up back to itself (released by the
// dispatcher once the peer applied it) and every tenth one is also reported
// to the active module "net". If counter is set, it is read and bumped on
// every event: state outside the module, which breaks replay.
type pinger struct {
	self, peer mir.ModuleID
	limit      uint64
	counter    *uint64
}

func (p *pinger) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		m, ok := e.Payload.(testMsg)
		if !ok || m.SeqNr >= p.limit {
			return nil, nil
		}
		m.SeqNr++
		if p.counter != nil {
			*p.counter++
			m.View = *p.counter
		}
		out := mir.EventList{mir.NewEvent(p.peer, m).WithNext(mir.NewEvent(p.self, testMsg{View: 99, SeqNr: p.limit}))}
		if m.SeqNr%10 == 0 {
			out = append(out, mir.NewEvent("net", m))
		}
		return out, nil
	})
}

// runPingPong records a ping-pong run on a Dispatcher. It stops after
// rounds rounds (0: until idle).
func runPingPong(t *testing.T, dir string, counter *uint64, rounds int) {
	t.Helper()
	w, err := NewWriter(dir, Options{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	mods := map[mir.ModuleID]mir.PassiveModule{
		"ping": &pinger{self: "ping", peer: "pong", limit: 200, counter: counter},
		"pong": &pinger{self: "pong", peer: "ping", limit: 200, counter: counter},
	}
	d, err := mir.NewDispatcher(mods, []mir.ModuleID{"net"}, w)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		if err := d.Enqueue("net", mir.EventList{mir.NewEvent("ping", testMsg{SeqNr: i * 50})}); err != nil {
			t.Fatal(err)
		}
	}
	for n := 0; d.HasWork() && (rounds == 0 || n < rounds); n++ {
		if _, err := d.Round(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func replayDir(t *testing.T, dir string, mods map[mir.ModuleID]mir.PassiveModule) (Report, error) {
	t.Helper()
	r, err := Open(Filter{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return Replay(r, mods)
}

func TestReplayDeterministic(t *testing.T) {
	dir := t.TempDir()
	runPingPong(t, dir, nil, 0)
	rep, err := replayDir(t, dir, map[mir.ModuleID]mir.PassiveModule{
		"ping": &pinger{self: "ping", peer: "pong", limit: 200},
		"pong": &pinger{self: "pong", peer: "ping", limit: 200},
	})
	if err != nil || !rep.OK() {
		t.Fatalf("replay: %v %+v", err, rep.Mismatch)
	}
	if rep.Node != "n1" || rep.Batches["ping"] == 0 || rep.Outputs["pong"] == 0 || rep.Matched != rep.Outputs["ping"]+rep.Outputs["pong"] {
		t.Fatalf("report %+v", rep)
	}
	for d, n := range rep.Undispatched {
		if n != 0 {
			t.Fatalf("%d events for %s undispatched in a run that went idle", n, d)
		}
	}
	// Replaying one module alone works too.
	rep, err = replayDir(t, dir, map[mir.ModuleID]mir.PassiveModule{"pong": &pinger{self: "pong", peer: "ping", limit: 200}})
	if err != nil || rep.Matched != rep.Outputs["pong"] {
		t.Fatalf("replay of pong: %v %+v", err, rep)
	}
}

func TestReplayUndispatchedSuffix(t *testing.T) {
	dir := t.TempDir()
	runPingPong(t, dir, nil, 7)
	rep, err := replayDir(t, dir, map[mir.ModuleID]mir.PassiveModule{
		"ping": &pinger{self: "ping", peer: "pong", limit: 200},
		"pong": &pinger{self: "pong", peer: "ping", limit: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Undispatched["ping"]+rep.Undispatched["pong"] == 0 {
		t.Fatalf("a run stopped mid-way left nothing undispatched: %+v", rep)
	}
}

func TestReplayNondeterministic(t *testing.T) {
	dir := t.TempDir()
	var shared uint64
	runPingPong(t, dir, &shared, 0)
	// The replayed modules read the same counter, which has moved on.
	rep, err := replayDir(t, dir, map[mir.ModuleID]mir.PassiveModule{
		"ping": &pinger{self: "ping", peer: "pong", limit: 200, counter: &shared},
		"pong": &pinger{self: "pong", peer: "ping", limit: 200, counter: &shared},
	})
	if !errors.Is(err, ErrMismatch) || rep.OK() {
		t.Fatalf("nondeterministic module replayed without mismatch: %v", err)
	}
	m := rep.Mismatch
	if m.Module != "ping" || m.Dest != "pong" || m.Output != 0 || m.Position != 0 || m.Index == 0 {
		t.Fatalf("mismatch %+v", m)
	}
	var exp, act struct {
		Src, Dest string
		Type      string
		Payload   struct{ View, SeqNr uint64 }
	}
	if err := json.Unmarshal(m.Expected, &exp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m.Actual, &act); err != nil {
		t.Fatal(err)
	}
	if exp.Type != "eventlog.testMsg" || exp.Src != "ping" || exp.Dest != "pong" || exp.Payload.SeqNr != act.Payload.SeqNr || exp.Payload.View == act.Payload.View {
		t.Fatalf("expected %+v, actual %+v", exp, act)
	}
	if !strings.Contains(err.Error(), "expected:") {
		t.Fatalf("error does not show the events: %v", err)
	}
}

func TestReplayExtraEvent(t *testing.T) {
	dir := t.TempDir()
	runPingPong(t, dir, nil, 0)
	// A module that produces nothing cannot explain the log.
	rep, err := replayDir(t, dir, map[mir.ModuleID]mir.PassiveModule{"ping": &pinger{self: "ping", peer: "pong", limit: 0}})
	if !errors.Is(err, ErrMismatch) || len(rep.Mismatch.Expected) != 0 || len(rep.Mismatch.Actual) == 0 {
		t.Fatalf("%v %+v", err, rep.Mismatch)
	}
}

func TestReplayRejectsFilteredReader(t *testing.T) {
	dir := t.TempDir()
	runPingPong(t, dir, nil, 0)
	r, err := Open(Filter{Type: "testMsg"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Replay(r, map[mir.ModuleID]mir.PassiveModule{}); err == nil {
		t.Fatal("replay accepted a filtered reader")
	}
}

// registerTestPinger registers the "test-pinger" factory once per test
// binary (registration is global and refuses duplicates; -count=N reruns).
var registerTestPinger = sync.OnceFunc(func() {
	RegisterFactory("test-pinger", func(node mir.NodeID, meta map[string]string) (mir.PassiveModule, error) {
		if meta["peer"] == "" {
			return nil, errors.New("no peer in meta")
		}
		return &pinger{self: "ping", peer: mir.ModuleID(meta["peer"]), limit: 200}, nil
	})
})

func TestFactories(t *testing.T) {
	registerTestPinger()
	mods, err := BuildModules([]string{"ping=test-pinger", "test-pinger"}, "n1", map[string]string{"peer": "pong"})
	if err != nil || len(mods) != 2 || mods["ping"] == nil || mods["test-pinger"] == nil {
		t.Fatalf("%v %v", mods, err)
	}
	for _, bad := range [][]string{{"nope"}, {"a/b=test-pinger"}, {"ping=test-pinger", "ping=test-pinger"}} {
		if _, err := BuildModules(bad, "n1", map[string]string{"peer": "pong"}); err == nil {
			t.Fatalf("BuildModules(%v) succeeded", bad)
		}
	}
	if _, err := BuildModules([]string{"test-pinger"}, "n1", nil); err == nil {
		t.Fatal("factory error not returned")
	}
	found := false
	for _, n := range FactoryNames() {
		found = found || n == "test-pinger"
	}
	if !found {
		t.Fatal("FactoryNames misses a factory")
	}
}

func TestEventJSON(t *testing.T) {
	ev := mir.NewEvent("iss/pbft/2", testRich{Bs: []byte{0xde, 0xad}, Any: testMsg{SeqNr: 4}, M: map[string]uint64{"b": 2, "a": 1}, Dur: 1500000000}).WithNext(msgEvent("net", 1))
	ev.Src = "net"
	b, err := EventJSON(ev)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"src":"net"`, `"dest":"iss/pbft/2"`, `"type":"eventlog.testRich"`, `"Bs":"dead"`, `"Any":{"type":"eventlog.testMsg","value":{"View":0,"SeqNr":4,`, `"M":{"a":1,"b":2}`, `"Dur":"1.5s"`, `"next":[{"dest":"net","type":"eventlog.testMsg"`} {
		if !strings.Contains(s, want) {
			t.Errorf("EventJSON lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "hidden") {
		t.Errorf("EventJSON shows an unexported field: %s", s)
	}
}

// TestReplayStopsAtRestart checks that replay stops where a restarted node
// continued its log (its modules started afresh there).
func TestReplayStopsAtRestart(t *testing.T) {
	dir := t.TempDir()
	runPingPong(t, dir, nil, 0)
	first, _ := openAll(t, dir)
	runPingPong(t, dir, nil, 0)
	rep, err := replayDir(t, dir, map[mir.ModuleID]mir.PassiveModule{
		"ping": &pinger{self: "ping", peer: "pong", limit: 200},
		"pong": &pinger{self: "pong", peer: "ping", limit: 200},
	})
	if err != nil || rep.RestartAt != uint64(len(first))+1 || rep.Records != uint64(len(first)) {
		t.Fatalf("%v: restart at %d after %d records (first run wrote %d)", err, rep.RestartAt, rep.Records, len(first))
	}
}
