package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sample"
)

// runCLI runs the app in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"mirsubnet"}, args...), &out, &errOut)
	if strings.Contains(errOut.String(), "goroutine ") || strings.Contains(errOut.String(), "panic") {
		t.Fatalf("mirsubnet %v printed a stack trace:\n%s", args, errOut.String())
	}
	return code, out.String(), errOut.String()
}

// recordSample runs the sample command with an event log and returns its
// directory.
func recordSample(t *testing.T, nodes, broadcasts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "logs")
	code, out, errOut := runCLI(t, "sample", "--nodes", nodes, "--broadcasts", broadcasts, "--eventlog", dir, "--seed", "7")
	if code != 0 {
		t.Fatalf("sample exited %d: %s%s", code, out, errOut)
	}
	return dir
}

// TestSampleRecordAndReplay is the acceptance test of the event log: a
// recorded run of the sample protocol replays into fresh RBC modules, built
// from the log headers, with every output event reproduced exactly.
func TestSampleRecordAndReplay(t *testing.T) {
	dir := recordSample(t, "4", "50")
	logs, err := eventlog.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 4 {
		t.Fatalf("%d logs, want one per node", len(logs))
	}
	for _, l := range logs {
		mods, err := eventlog.BuildModules([]string{"rbc", "app"}, l.Node, l.Header.Meta)
		if err != nil {
			t.Fatal(err)
		}
		r, err := eventlog.Open(eventlog.Filter{}, l.Files...)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := eventlog.Replay(r, mods)
		r.Close()
		if err != nil {
			t.Fatalf("node %s: %v", l.Node, err)
		}
		if rep.Tail != nil || rep.Batches["rbc"] == 0 || rep.Outputs["rbc"] == 0 {
			t.Fatalf("node %s: report %+v", l.Node, rep)
		}
		undispatched := 0
		for _, n := range rep.Undispatched {
			undispatched += n
		}
		if rep.Matched+undispatched != rep.Outputs["rbc"]+rep.Outputs["app"] {
			t.Fatalf("node %s: %d matched + %d undispatched != %d produced", l.Node, rep.Matched, undispatched, rep.Outputs["rbc"]+rep.Outputs["app"])
		}
		// Every value broadcast was delivered: 4 nodes x 50.
		delivered := 0
		rd, err := eventlog.Open(eventlog.Filter{Kind: mir.RecordDispatch, Module: "app", Type: "Delivered"}, l.Files...)
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := rd.Next()
			if err != nil {
				break
			}
			delivered += len(rec.Events)
		}
		rd.Close()
		if delivered != 200 {
			t.Fatalf("node %s: log shows %d deliveries, want 200", l.Node, delivered)
		}
	}

	code, out, errOut := runCLI(t, "mircat", "replay", "--modules", "rbc,app", dir)
	if code != 0 || !strings.Contains(out, "all 4 logs match") {
		t.Fatalf("replay exited %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "mircat", "hash", dir)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 4 || len(strings.Fields(lines[0])[0]) != 64 {
		t.Fatalf("hash exited %d:\n%s%s", code, out, errOut)
	}
}

// flakyRBC is an RBC that drops one output now and then: replay must catch
// it.
type flakyRBC struct {
	inner mir.PassiveModule
	calls int
}

func (f *flakyRBC) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	out, err := f.inner.ApplyEvents(evs)
	f.calls++
	if f.calls%3 == 0 && len(out) > 0 {
		out = out[1:]
	}
	return out, err
}

func init() {
	eventlog.RegisterFactory("test-flaky-rbc", func(node mir.NodeID, meta map[string]string) (mir.PassiveModule, error) {
		members, err := membersFromMeta(meta)
		if err != nil {
			return nil, err
		}
		return &flakyRBC{inner: sample.NewRBC(node, members)}, nil
	})
}

func TestReplayMismatchExitCode(t *testing.T) {
	dir := recordSample(t, "4", "20")
	code, out, errOut := runCLI(t, "mircat", "replay", "--modules", "rbc=test-flaky-rbc", "--node", "n1", dir)
	if code != exitMismatch || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, "expected:") || !strings.Contains(errOut, "do not match") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
}

func TestMircatListing(t *testing.T) {
	dir := recordSample(t, "4", "10")
	code, out, errOut := runCLI(t, "mircat", "--node", "n2", "--type", "Echo", "--json", dir)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 {
		t.Fatal("no Echo messages listed")
	}
	for _, l := range lines {
		var v struct {
			Node  string
			Index uint64
			Event struct {
				Type    string
				Payload struct{ Msg struct{ Type string } }
			}
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		if v.Node != "n2" || v.Index == 0 || v.Event.Payload.Msg.Type != "sample.Echo" {
			t.Fatalf("unexpected line %s", l)
		}
	}
	code, out, _ = runCLI(t, "mircat", "--node", "n0", "--from", "2", "--to", "3", dir)
	if code != 0 || !strings.HasPrefix(out, "n0 #2 ") || !strings.Contains(out, "\nn0 #3 ") || strings.Contains(out, "#4 ") {
		t.Fatalf("range listing exit %d:\n%.500s", code, out)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mirlog")
	if err := os.WriteFile(garbage, []byte("definitely not an event log"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := recordSample(t, "4", "5")
	files, _ := filepath.Glob(filepath.Join(logs, "n0", "*.mirlog"))
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "torn-000001.mirlog")
	if err := os.WriteFile(torn, data[:len(data)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"mircat", filepath.Join(dir, "missing")}, exitError, "no such file"},
		{[]string{"mircat"}, exitError, "give the event log"},
		{[]string{"mircat", garbage}, exitError, "bad magic"},
		{[]string{"mircat", dir + "/"}, exitOK, "incomplete record"},
		{[]string{"mircat", torn}, exitOK, "incomplete record"},
		{[]string{"mircat", "--kind", "sideways", logs}, exitError, "bad --kind"},
		{[]string{"mircat", "--from", "9", "--to", "3", logs}, exitError, "before --from"},
		{[]string{"mircat", "replay", logs}, exitError, "modules"},
		{[]string{"mircat", "replay", "--modules", "nosuch", logs}, exitError, "no module factory"},
		{[]string{"mircat", "replay", "--modules", "rbc", garbage}, exitError, "no readable event log"},
		{[]string{"mircat", "replay", "--modules", "rbc", "--node", "n9", logs}, exitError, `no log of node "n9"`},
		{[]string{"sample", "--nodes", "0"}, exitError, "--nodes"},
		{[]string{"sample", "--nodes", "4", "--broadcasts", "1", "--eventlog", logs}, exitError, "already holds an event log"},
		{[]string{"--log-level", "loud", "mircat", logs}, exitError, "log-level"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.wantErr) {
			t.Errorf("mirsubnet %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.wantErr)
		}
	}
}

func TestMembersMeta(t *testing.T) {
	ms := []mir.NodeID{"a", "b", "c"}
	got, err := membersFromMeta(map[string]string{metaMembers: membersMeta(ms)})
	if err != nil || len(got) != 3 || got[2] != "c" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "a,,b", ","} {
		if _, err := membersFromMeta(map[string]string{metaMembers: bad}); err == nil {
			t.Fatalf("membersFromMeta(%q) succeeded", bad)
		}
	}
	if _, err := membersFromMeta(nil); err == nil {
		t.Fatal("missing members accepted")
	}
}
