package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBenchJSON runs a tiny bench against three validator processes and
// checks that its last line is the JSON result with the documented fields
// and that it cleans up after itself.
func TestBenchJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mirsubnet and starts validator processes")
	}
	// The test binary cannot act as a validator: build the real one (an
	// ordinary build, also when this test runs under -race).
	bin := filepath.Join(t.TempDir(), "mirsubnet")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, "github.com/mirsubnet/mirsubnet/cmd/mirsubnet").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// Without --dir the homes go to a temporary directory that the run
	// removes.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, out, errOut := runCLI(t, "bench", "--bin", bin, "--nodes", "3",
		"--clients", "2", "--conns", "1", "--tx-size", "32", "--duration", "1500ms", "--warmup", "500ms", "--every", "0", "--json")
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s%s", code, out, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "mirsubnet-bench-*")); len(left) != 0 {
		t.Errorf("the run left its temporary homes behind: %v", left)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"committed_tps", "p50_ms", "p95_ms", "p99_ms", "cpu_ms_per_tx", "rejected",
		"offered_tps", "submitted", "committed", "duration_s", "nodes", "rss_max_mb"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	if res["nodes"] != float64(3) || res["committed"].(float64) <= 0 || res["rss_max_mb"].(float64) <= 0 {
		t.Errorf("implausible result: %s", lines[len(lines)-1])
	}
}

// TestBenchBadFlags checks that bad flags are refused with a clear error.
func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--tx-size", "0"},
		{"bench", "--rate", "-1"},
		{"bench", "--targets", "/ip4/127.0.0.1/tcp/1/p2p/x", "--pids", "1", "--pids", "2"},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != exitError || !strings.Contains(errOut, "--") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
