package sample

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func nodeIDs(n int) []mir.NodeID {
	ids := make([]mir.NodeID, n)
	for i := range ids {
		ids[i] = mir.NodeID(fmt.Sprintf("n%d", i))
	}
	return ids
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deliverySet returns the deliveries as a sorted list of "origin/seq=data",
// failing on a broadcast delivered twice.
func deliverySet(t *testing.T, node mir.NodeID, ds []Delivered) []string {
	t.Helper()
	seen := map[string]bool{}
	var set []string
	for _, d := range ds {
		k := fmt.Sprintf("%s/%d", d.Origin, d.Seq)
		if seen[k] {
			t.Errorf("node %s delivered %s twice", node, k)
		}
		seen[k] = true
		set = append(set, fmt.Sprintf("%s=%s", k, d.Data))
	}
	sort.Strings(set)
	return set
}

// checkAgreement checks that all nodes delivered the same set, and that it is
// the broadcasts of the given origins.
func checkAgreement(t *testing.T, res Result, origins []mir.NodeID, broadcasts int) {
	t.Helper()
	var want []string
	for _, o := range origins {
		for i := 0; i < broadcasts; i++ {
			want = append(want, fmt.Sprintf("%s/%d=%s/%d", o, i, o, i))
		}
	}
	sort.Strings(want)
	if len(res.Deliveries) != len(origins) {
		t.Errorf("results for %d nodes, want %d", len(res.Deliveries), len(origins))
	}
	for id, ds := range res.Deliveries {
		if got := deliverySet(t, id, ds); !reflect.DeepEqual(got, want) {
			t.Errorf("node %s delivered %v,\nwant %v", id, got, want)
		}
	}
}

func TestRunLocalAllDeliver(t *testing.T) {
	cases := []struct {
		n          int
		broadcasts int
		seed       int64
		maxDelay   time.Duration
	}{
		{1, 3, 1, 0},
		{4, 20, 1, 0},
		{4, 5, 2, time.Millisecond},
		{7, 5, 3, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n=%d/seed=%d", tc.n, tc.seed), func(t *testing.T) {
			members := nodeIDs(tc.n)
			res, err := RunLocal(testCtx(t), LocalConfig{Members: members, Broadcasts: tc.broadcasts, Seed: tc.seed, MaxDelay: tc.maxDelay})
			if err != nil {
				t.Fatalf("seed %d: %v", tc.seed, err)
			}
			checkAgreement(t, res, members, tc.broadcasts)
			for id, st := range res.RBC {
				if st.Delivered != uint64(tc.n*tc.broadcasts) || st.DroppedBadMessage+st.DroppedUnknownOrigin+st.DroppedUnknownSender != 0 {
					t.Errorf("node %s: stats %+v", id, st)
				}
			}
		})
	}
}

// TestRunLocalSilent: with f members silent, the others still deliver all
// their broadcasts.
func TestRunLocalSilent(t *testing.T) {
	for _, tc := range []struct {
		n      int
		silent []mir.NodeID
	}{{4, []mir.NodeID{"n2"}}, {7, []mir.NodeID{"n0", "n6"}}} {
		members := nodeIDs(tc.n)
		res, err := RunLocal(testCtx(t), LocalConfig{Members: members, Broadcasts: 4, Seed: 42, Silent: tc.silent})
		if err != nil {
			t.Fatal(err)
		}
		var correct []mir.NodeID
		for _, id := range members {
			if !contains(tc.silent, id) {
				correct = append(correct, id)
			}
		}
		checkAgreement(t, res, correct, 4)
	}
}

func contains(ids []mir.NodeID, id mir.NodeID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// countingInterceptor counts records.
type countingInterceptor struct{ dispatch, inbound *atomic.Int64 }

func (c countingInterceptor) Intercept(kind mir.RecordKind, _ mir.ModuleID, evs mir.EventList) error {
	if kind == mir.RecordDispatch {
		c.dispatch.Add(int64(len(evs)))
	} else {
		c.inbound.Add(int64(len(evs)))
	}
	return nil
}

func TestRunLocalInterceptor(t *testing.T) {
	var dispatch, inbound atomic.Int64
	called := map[mir.NodeID]bool{}
	res, err := RunLocal(testCtx(t), LocalConfig{
		Members:    nodeIDs(4),
		Broadcasts: 2,
		Interceptor: func(id mir.NodeID) mir.Interceptor {
			called[id] = true
			return countingInterceptor{&dispatch, &inbound}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(called) != 4 {
		t.Errorf("interceptor built for %v", called)
	}
	var total uint64
	for _, st := range res.Stats {
		total += st.Dispatched
	}
	if uint64(dispatch.Load()) != total || inbound.Load() == 0 {
		t.Errorf("interceptor saw %d dispatched and %d inbound events; nodes dispatched %d", dispatch.Load(), inbound.Load(), total)
	}
}

func TestRunLocalConfigErrors(t *testing.T) {
	bad := []LocalConfig{
		{},
		{Members: []mir.NodeID{"a", "a"}},
		{Members: []mir.NodeID{"a", ""}},
		{Members: nodeIDs(4), Broadcasts: -1},
		{Members: nodeIDs(4), Silent: []mir.NodeID{"n0", "n1"}},
		{Members: nodeIDs(4), Silent: []mir.NodeID{"x"}},
	}
	for _, cfg := range bad {
		if _, err := RunLocal(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("RunLocal(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestRunLocalContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunLocal(ctx, LocalConfig{Members: nodeIDs(4), Broadcasts: 1}); err == nil {
		t.Error("RunLocal with a cancelled context succeeded")
	}
}

// equivocator is a Byzantine RBC module. On Broadcast it sends one of its
// scripted messages per entry of script. It ignores what it receives.
type equivocator struct {
	script []scripted
}

type scripted struct {
	to  []mir.NodeID
	msg any
}

func (q *equivocator) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	var out mir.EventList
	for _, e := range evs {
		if _, ok := e.Payload.(Broadcast); !ok {
			continue
		}
		for _, s := range q.script {
			out = append(out, mir.NewEvent(ModNet, events.SendMessage{Destinations: s.to, DestModule: ModRBC, Msg: s.msg}))
		}
	}
	return out, nil
}

// byzantineRun runs the correct members n0..n2 (each broadcasting 3 values)
// and n3 running the equivocator script. It waits for extra deliveries per
// correct node besides the correct broadcasts.
func byzantineRun(t *testing.T, seed int64, script []scripted, extra int, opts ...MemNetOption) Result {
	t.Helper()
	members := nodeIDs(4)
	correct := members[:3]
	var specs []nodeSpec
	for _, id := range correct {
		spec := nodeSpec{id: id, rbc: NewRBC(id, members), want: len(correct)*3 + extra}
		for i := 0; i < 3; i++ {
			spec.broadcasts = append(spec.broadcasts, []byte(fmt.Sprintf("%s/%d", id, i)))
		}
		specs = append(specs, spec)
	}
	specs = append(specs, nodeSpec{id: "n3", rbc: &equivocator{script: script}, broadcasts: [][]byte{[]byte("go")}})
	res, err := runNodes(testCtx(t), NewMemNet(members, opts...), specs, nil, mir.NodeParams{})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return res
}

// TestByzantineSenderHelpsOneValue: the equivocator sends A to n0 and n1, B
// to n2, echoes A (twice) and readies B at n2 only. A reaches the echo quorum
// at every correct node whatever the message order; B cannot. Every correct
// node delivers A, none B, and the duplicates are dropped and counted.
func TestByzantineSenderHelpsOneValue(t *testing.T) {
	members := nodeIDs(4)
	correct := members[:3]
	a, b := []byte("A"), []byte("B")
	script := []scripted{
		// Garbage first: with FIFO delivery (seed -1) every correct node
		// processes it before it can deliver.
		{correct, Echo{Origin: "stranger", Seq: 0, Data: a}}, // unknown origin
		{correct, Delivered{Origin: "n3", Seq: 0, Data: a}},  // wrong type
		{members[:2], Send{Seq: 0, Data: a}},
		{members[2:3], Send{Seq: 0, Data: b}},
		{correct, Echo{Origin: "n3", Seq: 0, Data: a}},
		{correct, Echo{Origin: "n3", Seq: 0, Data: a}}, // duplicate vote
		{members[2:3], Ready{Origin: "n3", Seq: 0, Data: b}},
	}
	for seed := int64(-1); seed < 5; seed++ {
		var opts []MemNetOption
		if seed >= 0 {
			opts = append(opts, WithReorder(seed))
		}
		res := byzantineRun(t, seed, script, 1, opts...)
		var first []string
		for _, id := range correct {
			set := deliverySet(t, id, res.Deliveries[id])
			if !contains2(set, "n3/0=A") {
				t.Errorf("seed %d: node %s did not deliver A from the equivocator: %v", seed, id, set)
			}
			if first == nil {
				first = set
			} else if !reflect.DeepEqual(set, first) {
				t.Errorf("seed %d: node %s delivered %v, node %s %v", seed, id, set, correct[0], first)
			}
			st := res.RBC[id]
			if seed < 0 && (st.DroppedUnknownOrigin != 1 || st.DroppedBadMessage != 1 || st.DroppedDuplicate < 1) {
				t.Errorf("seed %d: node %s did not count the equivocator's bad messages: %+v", seed, id, st)
			}
		}
	}
}

// TestByzantineSenderEquivocates: the equivocator sends conflicting SENDs,
// echoes and readies in every order the seeded network makes. Whether its
// broadcast is delivered depends on the order; no two correct nodes may
// deliver different values for it.
func TestByzantineSenderEquivocates(t *testing.T) {
	members := nodeIDs(4)
	correct := members[:3]
	a, b := []byte("A"), []byte("B")
	script := []scripted{
		{members[:1], Send{Seq: 0, Data: a}},
		{members[1:3], Send{Seq: 0, Data: b}},
		{correct, Send{Seq: 0, Data: a}},
		{correct, Echo{Origin: "n3", Seq: 0, Data: a}},
		{correct, Echo{Origin: "n3", Seq: 0, Data: b}},
		{members[:1], Ready{Origin: "n3", Seq: 0, Data: a}},
		{members[1:2], Ready{Origin: "n3", Seq: 0, Data: b}},
	}
	for seed := int64(0); seed < 10; seed++ {
		res := byzantineRun(t, seed, script, 0, WithReorder(seed))
		values := map[string]mir.NodeID{}
		for _, id := range correct {
			for _, d := range res.Deliveries[id] {
				if d.Origin == "n3" {
					values[string(d.Data)] = id
				}
			}
		}
		if len(values) > 1 {
			t.Errorf("seed %d: correct nodes delivered different values for n3/0: %v", seed, values)
		}
	}
}

func contains2(set []string, s string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}
