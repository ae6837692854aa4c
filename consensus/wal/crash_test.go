package wal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Environment of the crash child (see TestCrashRecovery).
const (
	crashDirEnv         = "MIRSUBNET_WAL_CRASH_DIR"
	crashIncarnationEnv = "MIRSUBNET_WAL_CRASH_INCARNATION"
	crashSeedEnv        = "MIRSUBNET_WAL_CRASH_SEED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// crashOpts are the options the crash child writes with: small segments, so
// rotation and segment deletion happen all the time.
func crashOpts() Options {
	o := DefaultOptions()
	o.SegmentSize = 8 << 10
	o.MaxRecordSize = 1 << 10
	return o
}

// crashData is the content of the record with tag: the tag, then a pattern
// derived from it.
func crashData(tag uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, tag)
	for j := 0; j < int(tag%151); j++ {
		b = append(b, byte(tag>>3)+byte(j*13))
	}
	return b
}

// crashChild appends records until it is killed. One goroutine submits
// appends (at most 64 in flight, so they are group-committed) with a
// retention index that grows over time, and every 100 submissions a
// truncation. Lines on stdout:
//
//	a <index> <tag> <retention>   record durable
//	T <retention>                 truncation submitted
//	t <retention>                 truncation done
func crashChild(dir string) {
	inc, _ := strconv.ParseUint(os.Getenv(crashIncarnationEnv), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	rng := rand.New(rand.NewPCG(seed, inc))
	l, _, _, err := Open(dir, crashOpts())
	if err != nil {
		fmt.Fprintf(os.Stderr, "open: %v\n", err)
		os.Exit(2)
	}
	var outMu sync.Mutex
	out := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := fmt.Fprintf(os.Stdout, format, args...); err != nil {
			os.Exit(3)
		}
	}
	fail := func(err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "wal: %v\n", err)
			os.Exit(4)
		}
	}
	sem := make(chan struct{}, 64)
	epoch := inc * 1_000_000
	for seq := uint64(0); ; seq++ {
		if seq%100 == 99 {
			r := epoch - 2
			out("T %d\n", r)
			l.TruncateAsync(r, func(err error) { fail(err); out("t %d\n", r) })
		}
		if rng.IntN(8) == 0 {
			epoch++
		}
		sem <- struct{}{}
		tag := inc<<32 | seq
		ret := epoch
		data := crashData(tag)[:8+rng.IntN(int(tag%151)+1)]
		l.AppendAsync(data, ret, func(idx uint64, err error) {
			fail(err)
			out("a %d %d %d\n", idx, tag, ret)
			<-sem
		})
	}
}

// crashState is what the parent learned from the children's output.
type crashState struct {
	// acked maps each acknowledged index to its tag and retention index.
	acked map[uint64][2]uint64
	// maxAcked is the largest acknowledged index.
	maxAcked uint64
	// truncDone is the largest retention index of a completed truncation,
	// truncSubmitted that of a submitted one (which may have happened).
	truncDone, truncSubmitted uint64
	// mustGone holds records acknowledged before a truncation was submitted
	// whose retention index is below it, once that truncation completed:
	// they must never come back.
	mustGone map[uint64]bool
	// goneIfDone maps the retention index of a submitted truncation to the
	// records it discards.
	goneIfDone map[uint64][]uint64
}

// runCrashChild starts a child on dir, kills it with SIGKILL after killAfter
// acknowledgements (at once if killAfter is 0) and folds its output into st.
func runCrashChild(t *testing.T, dir string, seed, inc uint64, killAfter int, st *crashState) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashDirEnv+"="+dir,
		crashIncarnationEnv+"="+strconv.FormatUint(inc, 10),
		crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if killAfter == 0 {
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	acks := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		num := func(i int) uint64 {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("child output %q: %v", sc.Text(), err)
			}
			return v
		}
		switch f[0] {
		case "a":
			idx, tag, ret := num(1), num(2), num(3)
			st.acked[idx] = [2]uint64{tag, ret}
			st.maxAcked = max(st.maxAcked, idx)
			acks++
			if acks == killAfter {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		case "T":
			r := num(1)
			st.truncSubmitted = max(st.truncSubmitted, r)
			for idx, v := range st.acked {
				if v[1] < r {
					st.goneIfDone[r] = append(st.goneIfDone[r], idx)
				}
			}
		case "t":
			r := num(1)
			st.truncDone = max(st.truncDone, r)
			for _, idx := range st.goneIfDone[r] {
				st.mustGone[idx] = true
			}
			delete(st.goneIfDone, r)
		default:
			t.Fatalf("child output %q", sc.Text())
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("child did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	return nil
}

// checkCrashRecovery reopens dir and checks it against what the children
// acknowledged.
func checkCrashRecovery(dir string, st *crashState) (RecoveryReport, error) {
	l, recs, rep, err := Open(dir, crashOpts())
	if err != nil {
		return rep, fmt.Errorf("reopen: %w", err)
	}
	defer l.Close()
	return rep, checkCrashRecords(recs, rep, st)
}

func checkCrashRecords(recs []Record, rep RecoveryReport, st *crashState) error {
	for k, r := range recs {
		if k > 0 && r.Index != recs[k-1].Index+1 {
			return fmt.Errorf("gap: record %d follows %d", r.Index, recs[k-1].Index)
		}
		if len(r.Data) < 8 {
			return fmt.Errorf("record %d: %d bytes", r.Index, len(r.Data))
		}
		tag := binary.LittleEndian.Uint64(r.Data)
		if !bytes.Equal(r.Data, crashData(tag)[:len(r.Data)]) {
			return fmt.Errorf("record %d: content damaged", r.Index)
		}
		if v, ok := st.acked[r.Index]; ok && (v[0] != tag || v[1] != r.RetentionIndex) {
			return fmt.Errorf("record %d: tag %d retention %d, acknowledged tag %d retention %d", r.Index, tag, r.RetentionIndex, v[0], v[1])
		}
		if r.RetentionIndex < st.truncDone {
			return fmt.Errorf("record %d: retention %d came back after truncation at %d", r.Index, r.RetentionIndex, st.truncDone)
		}
		if st.mustGone[r.Index] {
			return fmt.Errorf("record %d came back after its truncation", r.Index)
		}
	}
	present := map[uint64]bool{}
	for _, r := range recs {
		present[r.Index] = true
	}
	for idx, v := range st.acked {
		if v[1] >= st.truncSubmitted && !present[idx] {
			return fmt.Errorf("acknowledged record %d (retention %d) lost; report: %v", idx, v[1], rep)
		}
	}
	if rep.NextIndex <= st.maxAcked || (len(recs) > 0 && rep.NextIndex != recs[len(recs)-1].Index+1) {
		return fmt.Errorf("next index %d, max acknowledged %d; report %v", rep.NextIndex, st.maxAcked, rep)
	}
	if rep.TailTruncated != (rep.DroppedBytes > 0) || (rep.TailTruncated && (rep.Reason == "" || rep.TailOffset < SegmentHeaderSize)) {
		return fmt.Errorf("inconsistent report %+v", rep)
	}
	return nil
}

// TestCrashRecovery kills a writing child process with SIGKILL at random
// points, over one to three incarnations per directory, and checks after each
// kill that every acknowledged record is present and intact, that the log is
// a gap-free sequence and that truncated records stay gone. The seed is
// printed on failure; set MIRSUBNET_WAL_CRASH_SEED to reproduce.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	iters := 50
	if s := os.Getenv("MIRSUBNET_WAL_CRASH_ITERS"); s != "" {
		iters, _ = strconv.Atoi(s)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	kills, tails := 0, 0
	var dropped int64
	for it := 0; it < iters; it++ {
		dir := t.TempDir()
		st := &crashState{acked: map[uint64][2]uint64{}, mustGone: map[uint64]bool{}, goneIfDone: map[uint64][]uint64{}}
		incarnations := 1 + rng.IntN(3)
		for inc := 1; inc <= incarnations; inc++ {
			killAfter := 1 + rng.IntN(400)
			if rng.IntN(10) == 0 {
				killAfter = 0
			}
			if err := runCrashChild(t, dir, seed+uint64(it), uint64(inc), killAfter, st); err != nil {
				t.Fatalf("seed %d, iteration %d, incarnation %d: %v", seed, it, inc, err)
			}
			kills++
			rep, err := checkCrashRecovery(dir, st)
			if rep.TailTruncated {
				tails++
				dropped += rep.DroppedBytes
			}
			if err != nil {
				t.Fatalf("seed %d, iteration %d, incarnation %d (killed after %d acks): %v", seed, it, inc, killAfter, err)
			}
		}
		// The recovered log is clean and usable: a second recovery repairs
		// nothing, and appends continue where it ended.
		l, _, rep, err := Open(dir, crashOpts())
		if err != nil {
			t.Fatalf("seed %d, iteration %d: reopen: %v", seed, it, err)
		}
		if rep.TailTruncated {
			t.Fatalf("seed %d, iteration %d: second recovery cut again: %v", seed, it, rep)
		}
		if idx, err := l.Append([]byte("after"), 1<<62); err != nil || idx != rep.NextIndex {
			t.Fatalf("seed %d, iteration %d: append after recovery: %d, %v (report %v)", seed, it, idx, err, rep)
		}
		mustClose(t, l)
	}
	t.Logf("seed %d: %d kills over %d directories, %d torn tails cut (%d bytes)", seed, kills, iters, tails, dropped)
}
