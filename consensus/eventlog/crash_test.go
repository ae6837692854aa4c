package eventlog

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// crashChildEnv names the directory a re-executed test binary writes a log
// to until it is killed (see TestMain).
const crashChildEnv = "EVENTLOG_CRASH_CHILD"

// crashChildLimit stops an orphaned child.
const crashChildLimit = 500_000

// crashBatch is the deterministic content of record index.
func crashBatch(index uint64) (mir.RecordKind, mir.ModuleID, mir.EventList) {
	evs := make(mir.EventList, 1+index%3)
	for i := range evs {
		evs[i] = msgEvent("iss", index)
		evs[i].Payload = testMsg{View: uint64(i), SeqNr: index, Digest: evs[i].Payload.(testMsg).Digest, From: "n1"}
	}
	if index%2 == 0 {
		return mir.RecordInbound, "net", evs
	}
	return mir.RecordDispatch, "iss", evs
}

// crashChild writes records to dir until killed, reporting on stdout the
// index of every record it knows was handed to the OS.
func crashChild(dir string) int {
	w, err := NewWriter(dir, Options{NodeID: "crash", MaxFileSize: 16 << 10, WriteSize: 2 << 10, Linger: 50 * time.Microsecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for i := w.Records() + 1; i < crashChildLimit; i++ {
		kind, mod, evs := crashBatch(i)
		if err := w.Intercept(kind, mod, evs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if i%16 == 0 {
			if err := w.Flush(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			if _, err := fmt.Fprintf(os.Stdout, "%d\n", i); err != nil {
				return 3
			}
		}
	}
	return 0
}

// TestCrashRecovery kills a writing child process with SIGKILL at random
// points and checks that the log reads as a prefix of exactly the records
// written, with consecutive indexes, including everything the child had
// flushed. Every fifth run starts a new directory; in between, the child
// continues the log of its killed predecessor.
func TestCrashRecovery(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	runs := 50
	rng := rand.New(rand.NewPCG(seed, 0))
	var dir string
	torn, extra := 0, 0
	defer func() {
		t.Logf("seed %d: %d runs, %d ended in a torn frame, %d records beyond the last flush", seed, runs, torn, extra)
	}()
	for run := 0; run < runs; run++ {
		if run%5 == 0 {
			dir = t.TempDir()
		}
		reports := 1 + rng.IntN(40)
		flushed := crashOnce(t, seed, run, dir, reports)
		r, err := Open(Filter{}, dir)
		if err != nil {
			t.Fatalf("seed %d run %d: %v", seed, run, err)
		}
		recs := readAll(t, r)
		r.Close()
		if uint64(len(recs)) < flushed {
			t.Fatalf("seed %d run %d: %d records readable, %d were flushed before the kill", seed, run, len(recs), flushed)
		}
		for i, rec := range recs {
			kind, mod, evs := crashBatch(uint64(i + 1))
			if rec.Index != uint64(i+1) || rec.NodeID != "crash" || rec.Kind != kind || rec.Module != mod || len(rec.Events) != len(evs) {
				t.Fatalf("seed %d run %d: record %d is %+v", seed, run, i+1, rec)
			}
			for j := range evs {
				if rec.Events[j].Payload.(testMsg).SeqNr != uint64(i+1) || rec.Events[j].Payload.(testMsg).View != uint64(j) {
					t.Fatalf("seed %d run %d: record %d event %d is %+v", seed, run, i+1, j, rec.Events[j])
				}
			}
		}
		if r.Tail() != nil {
			torn++
		}
		extra += len(recs) - int(flushed)
		for _, c := range append(r.Corruptions(), r.Recovered()...) {
			if !c.Torn {
				t.Fatalf("seed %d run %d: a killed writer left a bad frame, not a torn one: %v", seed, run, c)
			}
		}
	}
}

// crashOnce runs a child on dir, kills it after it reported reports
// flushes and returns the last index it reported.
func crashOnce(t *testing.T, seed uint64, run int, dir string, reports int) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var last uint64
	for n := 0; n < reports && sc.Scan(); n++ {
		v, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("seed %d run %d: child said %q", seed, run, sc.Text())
		}
		last = v
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("seed %d run %d: kill: %v", seed, run, err)
	}
	_ = cmd.Wait()
	if last == 0 {
		t.Fatalf("seed %d run %d: child reported nothing (exit %v)", seed, run, cmd.ProcessState)
	}
	return last
}
