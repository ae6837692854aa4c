package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/urfave/cli/v2"

	"github.com/mirsubnet/mirsubnet/apps/kvstore"
	"github.com/mirsubnet/mirsubnet/client"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/localnet"
)

func init() { registerCommand(benchCommand()) }

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure a subnet: committed tx/s, commit latency, CPU and memory per validator, rejections",
		Description: `Starts --nodes validator processes on 127.0.0.1 (or targets running ones with
--targets) and drives key-value transactions through the client protocol:
closed loop (--clients per node, each keeping one transaction in flight until
it commits) or open loop (--rate transactions per second offered, whatever
the answers). Commits are observed on the first node's commit stream. Figures
cover the window after --warmup: committed tx/s, latency from submit to the
first commit notice (p50/p95/p99), validator CPU per committed transaction
(utime+stime from /proc), peak resident memory (VmHWM), rejections by reason.
With --json the last line of output is one JSON object.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 4, Usage: "validators to start (ignored with --targets)"},
			&cli.StringFlag{Name: "dir", Usage: "directory for the nodes' homes, kept (default: a new temporary directory, removed at the end unless --keep)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the temporary directory of the nodes' homes (logs, WAL) after the run"},
			&cli.StringFlag{Name: "bin", Usage: "mirsubnet binary for the validators (default: this executable)"},
			&cli.StringSliceFlag{Name: "targets", Usage: "client multiaddrs (/ip4/.../tcp/.../p2p/...) of running validators"},
			&cli.IntSliceFlag{Name: "pids", Usage: "process IDs of the --targets validators (for CPU and memory figures)"},
			&cli.IntFlag{Name: "clients", Value: 64, Usage: "closed-loop clients per node (ignored with --rate)"},
			&cli.Float64Flag{Name: "rate", Usage: "open loop: offered transactions per second over all nodes (0: closed loop)"},
			&cli.IntFlag{Name: "workers", Value: 512, Usage: "open loop: concurrent submitters over all nodes"},
			&cli.IntFlag{Name: "conns", Value: 16, Usage: "client streams per node (a stream's submits are answered in order)"},
			&cli.IntFlag{Name: "tx-size", Value: 512, Usage: "transaction size in bytes (the value is padded)"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "measurement window"},
			&cli.DurationFlag{Name: "warmup", Value: 2 * time.Second, Usage: "load before the measurement window"},
			&cli.DurationFlag{Name: "every", Value: time.Second, Usage: "progress line period (0: none)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as one JSON object on the last line"},
			&cli.IntFlag{Name: "batch-timeout-ms", Usage: "validators' batch_timeout_ms (0: default)"},
			&cli.IntFlag{Name: "segment-length", Usage: "validators' segment_length (0: default)"},
			&cli.IntFlag{Name: "max-batch-txs", Usage: "validators' max_batch_txs (0: default)"},
			&cli.IntFlag{Name: "max-in-flight", Usage: "validators' max_in_flight (0: default)"},
			&cli.IntFlag{Name: "mempool-max-txs", Usage: "validators' mempool_max_txs (0: default)"},
			&cli.IntFlag{Name: "empty-proposal-ms", Usage: "validators' empty_proposal_ms (0: default)"},
			&cli.BoolFlag{Name: "debug-http", Usage: "serve /metrics and /debug/pprof on each started validator (OS-assigned 127.0.0.1 ports, printed)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the bench process itself (the load generator) to this file"},
		},
		Action: func(c *cli.Context) error {
			cfg := benchConfig{
				Nodes: c.Int("nodes"), Dir: c.String("dir"), Keep: c.Bool("keep"), Bin: c.String("bin"), Targets: c.StringSlice("targets"), PIDs: c.IntSlice("pids"),
				Clients: c.Int("clients"), Rate: c.Float64("rate"), Workers: c.Int("workers"), Conns: c.Int("conns"),
				TxSize: c.Int("tx-size"), Duration: c.Duration("duration"), Warmup: c.Duration("warmup"), Every: c.Duration("every"),
				Tune: func(nc *localnet.NodeConfig) {
					nc.BatchTimeoutMS = c.Int("batch-timeout-ms")
					nc.SegmentLength = c.Int("segment-length")
					nc.MaxBatchTxs = c.Int("max-batch-txs")
					nc.MaxInFlight = c.Int("max-in-flight")
					nc.MempoolMaxTxs = c.Int("mempool-max-txs")
					nc.EmptyProposalMS = c.Int("empty-proposal-ms")
				},
				DebugHTTP: c.Bool("debug-http"),
			}
			if err := cfg.check(); err != nil {
				return cli.Exit(err.Error(), exitError)
			}
			if os.Getenv("GOGC") == "" {
				// The load generator shares the machine with the
				// validators it measures: trade its memory (thousands of
				// clients' garbage) for less collector CPU.
				debug.SetGCPercent(400)
			}
			if path := c.String("cpuprofile"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return cli.Exit("bench: "+err.Error(), exitError)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return cli.Exit("bench: cpu profile: "+err.Error(), exitError)
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := runBench(ctx, c.App.Writer, cfg)
			if err != nil {
				return cli.Exit("bench: "+err.Error(), exitError)
			}
			res.print(c.App.Writer)
			if c.Bool("json") {
				b, err := json.Marshal(res)
				if err != nil {
					return cli.Exit(err.Error(), exitInternal)
				}
				fmt.Fprintf(c.App.Writer, "%s\n", b)
			}
			return nil
		},
	}
}

// benchConfig is what one bench run does.
type benchConfig struct {
	Nodes    int
	Dir, Bin string
	// Keep keeps the temporary homes directory (unused with Dir).
	Keep     bool
	Targets  []string
	PIDs     []int
	Clients  int
	Rate     float64
	Workers  int
	Conns    int
	TxSize   int
	Duration time.Duration
	Warmup   time.Duration
	Every    time.Duration
	Tune     func(*localnet.NodeConfig)
	// DebugHTTP gives every started validator a metrics_addr (which also
	// serves /debug/pprof).
	DebugHTTP bool
}

func (c benchConfig) check() error {
	switch {
	case len(c.Targets) == 0 && c.Nodes < 1:
		return fmt.Errorf("--nodes must be at least 1")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("--rate must be a non-negative number")
	case c.Rate == 0 && c.Clients < 1:
		return fmt.Errorf("--clients must be at least 1")
	case c.Rate > 0 && c.Workers < 1:
		return fmt.Errorf("--workers must be at least 1")
	case c.Conns < 1:
		return fmt.Errorf("--conns must be at least 1")
	case c.TxSize < 1 || c.TxSize > kvstore.MaxValueLen:
		return fmt.Errorf("--tx-size must be in [1, %d]", kvstore.MaxValueLen)
	case c.Duration <= 0 || c.Warmup < 0:
		return fmt.Errorf("--duration must be positive and --warmup not negative")
	case len(c.PIDs) > 0 && len(c.PIDs) != len(c.Targets):
		return fmt.Errorf("--pids needs one process ID per --targets address")
	}
	return nil
}

// benchResult is the outcome of a run (its JSON form is the --json line).
type benchResult struct {
	Mode        string            `json:"mode"`
	Nodes       int               `json:"nodes"`
	TxSize      int               `json:"tx_size"`
	DurationS   float64           `json:"duration_s"`
	OfferedTPS  float64           `json:"offered_tps"`
	Submitted   uint64            `json:"submitted"`
	Admitted    uint64            `json:"admitted"`
	Committed   uint64            `json:"committed"`
	CommittedTP float64           `json:"committed_tps"`
	P50ms       float64           `json:"p50_ms"`
	P95ms       float64           `json:"p95_ms"`
	P99ms       float64           `json:"p99_ms"`
	Latencies   int               `json:"latency_samples"`
	CPUmsPerTx  float64           `json:"cpu_ms_per_tx"`
	CPUCores    float64           `json:"validator_cpu_cores"`
	Rejected    map[string]uint64 `json:"rejected"`
	Errors      uint64            `json:"errors"`
	NotOffered  uint64            `json:"not_offered"`
	RSSMaxMB    float64           `json:"rss_max_mb"`
	RSSMB       []float64         `json:"rss_hwm_mb"`
}

func (r benchResult) print(w io.Writer) {
	fmt.Fprintf(w, "bench: %s, %d validators, %d-byte txs, %.1fs measured\n", r.Mode, r.Nodes, r.TxSize, r.DurationS)
	fmt.Fprintf(w, "  offered    %.0f tx/s (submitted %d, admitted %d, not offered %d, errors %d)\n", r.OfferedTPS, r.Submitted, r.Admitted, r.NotOffered, r.Errors)
	fmt.Fprintf(w, "  committed  %.0f tx/s (%d txs)\n", r.CommittedTP, r.Committed)
	fmt.Fprintf(w, "  latency    p50 %.1f ms  p95 %.1f ms  p99 %.1f ms (%d samples)\n", r.P50ms, r.P95ms, r.P99ms, r.Latencies)
	fmt.Fprintf(w, "  cpu        %.3f ms per committed tx (validators used %.2f cores)\n", r.CPUmsPerTx, r.CPUCores)
	fmt.Fprintf(w, "  memory     peak RSS (VmHWM) %v MB, max %.0f MB\n", r.RSSMB, r.RSSMaxMB)
	var rs []string
	for k, v := range r.Rejected {
		rs = append(rs, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(rs)
	fmt.Fprintf(w, "  rejected   %s\n", strings.Join(rs, " "))
}

// benchRun is the shared state of a run's load generators and observer.
type benchRun struct {
	cfg     benchConfig
	value   []byte
	clients [][]*client.Client // clients[node][conn]

	// measureFrom/measureTo bound the window (set before load starts).
	measureFrom, measureTo time.Time

	mu sync.Mutex
	// pending maps submitted, admitted, not yet committed txs to their
	// submit time and (closed loop) the channel closed at their commit.
	pending map[ordering.TxID]*pendingTx
	// latencies are submit-to-commit times of txs submitted in the window.
	latencies []time.Duration
	rejected  map[string]uint64

	submitted, admitted, errs, notOffered atomic.Uint64
	committedAll, committedWindow         atomic.Uint64
}

type pendingTx struct {
	at   time.Time
	done chan struct{}
}

func runBench(ctx context.Context, w io.Writer, cfg benchConfig) (benchResult, error) {
	addrs, pids := cfg.Targets, cfg.PIDs
	if len(addrs) == 0 {
		stopNodes, a, p, err := startBenchNodes(ctx, w, cfg)
		if err != nil {
			return benchResult{}, err
		}
		defer stopNodes()
		addrs, pids = a, p
	}
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		return benchResult{}, err
	}
	defer h.Close()
	r := &benchRun{cfg: cfg, value: bytes.Repeat([]byte{'x'}, cfg.TxSize), pending: map[ordering.TxID]*pendingTx{}, rejected: map[string]uint64{}}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, a := range addrs {
		var cs []*client.Client
		for k := 0; k < cfg.Conns; k++ {
			cl, err := client.Dial(dctx, a, h)
			if err != nil {
				return benchResult{}, err
			}
			defer cl.Close()
			cs = append(cs, cl)
		}
		r.clients = append(r.clients, cs)
	}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	commits, err := r.clients[0][0].Follow(lctx, 0)
	if err != nil {
		return benchResult{}, fmt.Errorf("follow %s: %w", addrs[0], err)
	}
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		r.observe(commits)
	}()
	go r.sweepLost(lctx)

	start := time.Now()
	r.measureFrom = start.Add(cfg.Warmup)
	r.measureTo = r.measureFrom.Add(cfg.Duration)
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		r.openLoop(lctx, &wg)
	} else {
		r.closedLoop(lctx, &wg)
	}

	// Progress, CPU and memory samples until the window closes.
	var cpuFrom, cpuTo []uint64
	var sampleErr error
	tick := time.NewTicker(max(cfg.Every, 100*time.Millisecond))
	defer tick.Stop()
	lastCommitted, lastAt := uint64(0), start
	measuring := false
	if cfg.Warmup == 0 {
		cpuFrom, sampleErr = cpuTicks(pids)
		measuring = true
	}
loop:
	for {
		now := time.Now()
		if !measuring && !now.Before(r.measureFrom) {
			cpuFrom, sampleErr = cpuTicks(pids)
			measuring = true
		}
		if !now.Before(r.measureTo) {
			cpuTo, _ = cpuTicks(pids)
			break
		}
		wait := time.Until(r.measureTo)
		if !measuring {
			wait = time.Until(r.measureFrom)
		}
		select {
		case <-ctx.Done():
			return benchResult{}, ctx.Err()
		case <-followDone:
			return benchResult{}, errors.New("the commit stream of the first node ended (node down, or it fell behind)")
		case <-time.After(wait):
			continue loop
		case <-tick.C:
			if cfg.Every <= 0 {
				continue
			}
			c := r.committedAll.Load()
			rss, _ := memKB(pids, "VmRSS:")
			hwm, _ := memKB(pids, "VmHWM:")
			r.mu.Lock()
			rej := sumValues(r.rejected)
			inflight := len(r.pending)
			r.mu.Unlock()
			fmt.Fprintf(w, "%6.1fs  %7.0f tx/s committed  submitted=%d rejected=%d pending=%d  rss=%s MB  hwm=%s MB  %s\n",
				time.Since(start).Seconds(), float64(c-lastCommitted)/time.Since(lastAt).Seconds(),
				r.submitted.Load(), rej, inflight, mbList(rss), mbList(hwm), r.heights(ctx))
			lastCommitted, lastAt = c, time.Now()
		}
	}
	stopLoad()
	wg.Wait()
	<-followDone

	res := benchResult{Mode: "closed loop", Nodes: len(addrs), TxSize: cfg.TxSize, DurationS: cfg.Duration.Seconds(),
		Submitted: r.submitted.Load(), Admitted: r.admitted.Load(), Committed: r.committedWindow.Load(),
		Errors: r.errs.Load(), NotOffered: r.notOffered.Load(), Rejected: r.rejected}
	if cfg.Rate > 0 {
		res.Mode, res.OfferedTPS = "open loop", cfg.Rate
	} else {
		res.OfferedTPS = float64(res.Submitted) / time.Since(start).Seconds()
	}
	res.CommittedTP = float64(res.Committed) / cfg.Duration.Seconds()
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	res.Latencies = len(r.latencies)
	res.P50ms, res.P95ms, res.P99ms = pct(r.latencies, 0.50), pct(r.latencies, 0.95), pct(r.latencies, 0.99)
	if sampleErr == nil && len(cpuFrom) > 0 && len(cpuTo) == len(cpuFrom) {
		var d uint64
		for i := range cpuTo {
			d += cpuTo[i] - cpuFrom[i]
		}
		ms := float64(d) * 1000 / clockTicks
		res.CPUCores = ms / 1000 / cfg.Duration.Seconds()
		if res.Committed > 0 {
			res.CPUmsPerTx = ms / float64(res.Committed)
		}
	}
	if hwm, err := memKB(pids, "VmHWM:"); err == nil {
		for _, kb := range hwm {
			mb := math.Round(float64(kb)/1024*10) / 10
			res.RSSMB = append(res.RSSMB, mb)
			res.RSSMaxMB = max(res.RSSMaxMB, mb)
		}
	}
	return res, nil
}

// startBenchNodes generates and starts the validators; it returns a
// function that stops them, their client addresses and process IDs.
func startBenchNodes(ctx context.Context, w io.Writer, cfg benchConfig) (func(), []string, []int, error) {
	dir := cfg.Dir
	removeDir := func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "mirsubnet-bench-")
		if err != nil {
			return nil, nil, nil, err
		}
		dir = d
		if cfg.Keep {
			fmt.Fprintf(w, "bench: homes in %s (kept)\n", dir)
		} else {
			// A run writes hundreds of megabytes of WAL: a temporary
			// directory goes with the run.
			removeDir = func() {
				if err := os.RemoveAll(dir); err != nil {
					fmt.Fprintf(w, "bench: removing %s: %v\n", dir, err)
				}
			}
		}
	}
	bin := cfg.Bin
	if bin == "" {
		b, err := os.Executable()
		if err != nil {
			removeDir()
			return nil, nil, nil, err
		}
		bin = b
	}
	tune := cfg.Tune
	if cfg.DebugHTTP {
		ports, err := localnet.FreePorts(cfg.Nodes)
		if err != nil {
			removeDir()
			return nil, nil, nil, err
		}
		k := 0
		tune = func(nc *localnet.NodeConfig) {
			if cfg.Tune != nil {
				cfg.Tune(nc)
			}
			nc.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[k])
			fmt.Fprintf(w, "bench: %s serves http://%s/metrics and /debug/pprof/\n", nc.ID, nc.MetricsAddr)
			k++
		}
	}
	nw, err := localnet.Generate(localnet.NetworkSpec{Dir: dir, Nodes: cfg.Nodes, Tune: tune})
	if err != nil {
		removeDir()
		return nil, nil, nil, err
	}
	var procs []*localnet.Proc
	stop := func() {
		for _, p := range procs {
			_ = p.Stop(10 * time.Second)
		}
		removeDir()
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var pids []int
	for i := range nw.Homes {
		p, err := localnet.Start(sctx, bin, nw.IDs[i], nw.Homes[i], nil)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		procs = append(procs, p)
		pids = append(pids, p.Cmd.Process.Pid)
	}
	fmt.Fprintf(w, "bench: %d validators started, homes in %s\n", cfg.Nodes, dir)
	return stop, nw.Addrs, pids, nil
}

// observe reads commit notices: it counts committed txs, records the
// latency of txs submitted in the window, and wakes closed-loop clients.
func (r *benchRun) observe(commits <-chan client.Commit) {
	for cm := range commits {
		now := time.Now()
		inWindow := !now.Before(r.measureFrom) && now.Before(r.measureTo)
		r.committedAll.Add(uint64(len(cm.TxIDs)))
		if inWindow {
			r.committedWindow.Add(uint64(len(cm.TxIDs)))
		}
		r.mu.Lock()
		for _, id := range cm.TxIDs {
			p := r.pending[id]
			if p == nil {
				continue
			}
			delete(r.pending, id)
			if inWindow && !p.at.Before(r.measureFrom) {
				r.latencies = append(r.latencies, now.Sub(p.at))
			}
			if p.done != nil {
				close(p.done)
			}
		}
		r.mu.Unlock()
	}
}

// submit sends tx through conn, tracking it if admitted; it returns the
// rejection reason ("" if admitted) or an error.
func (r *benchRun) submit(ctx context.Context, cl *client.Client, tx ordering.Tx, done chan struct{}) (string, error) {
	id := tx.ID()
	p := &pendingTx{at: time.Now(), done: done}
	// Track before submitting: the commit notice may overtake the reply.
	r.mu.Lock()
	r.pending[id] = p
	r.mu.Unlock()
	r.submitted.Add(1)
	err := cl.Submit(ctx, tx)
	if err == nil {
		r.admitted.Add(1)
		return "", nil
	}
	r.mu.Lock()
	if r.pending[id] == p {
		delete(r.pending, id)
	}
	var rej *client.Rejection
	isRej := errors.As(err, &rej)
	if isRej {
		r.rejected[rej.Reason]++
	}
	r.mu.Unlock()
	if isRej {
		return rej.Reason, nil
	}
	if ctx.Err() == nil {
		r.errs.Add(1)
	}
	return "", err
}

func (r *benchRun) tx(sender string, nonce uint64) ordering.Tx {
	return ordering.Tx{Sender: sender, Nonce: nonce, Data: kvstore.Command{Op: kvstore.OpSet, Key: sender, Value: r.value}.Encode()}
}

// lostAfter is how long a closed-loop client waits for the commit of an
// admitted transaction before it moves on to its next nonce.
const lostAfter = 30 * time.Second

// sweepLost gives up, every second until ctx ends, on the admitted
// transactions not committed within lostAfter: their clients move on. (One
// sweeper instead of a timer per transaction.)
func (r *benchRun) sweepLost(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		r.mu.Lock()
		for id, p := range r.pending {
			if now.Sub(p.at) > lostAfter {
				delete(r.pending, id)
				if p.done != nil {
					close(p.done)
				}
			}
		}
		r.mu.Unlock()
	}
}

// closedLoop starts Clients clients per node; each submits a tx, waits for
// its commit notice, then submits the next. A refused tx is retried after a
// short pause with the same nonce.
func (r *benchRun) closedLoop(ctx context.Context, wg *sync.WaitGroup) {
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	for n, conns := range r.clients {
		for k := 0; k < r.cfg.Clients; k++ {
			cl := conns[k%len(conns)]
			sender := fmt.Sprintf("b%s-%d-%d", run, n, k)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A context of its own: thousands of clients selecting on
				// one Done channel contend for its lock.
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				data := r.tx(sender, 0).Data // the same command every time
				for nonce := uint64(0); ctx.Err() == nil; {
					done := make(chan struct{})
					reason, err := r.submit(ctx, cl, ordering.Tx{Sender: sender, Nonce: nonce, Data: data}, done)
					switch {
					case err != nil:
						pause(ctx, 100*time.Millisecond)
						continue
					case reason == "nonce too low", reason == "duplicate":
						nonce++
						continue
					case reason != "":
						pause(ctx, 20*time.Millisecond)
						continue
					}
					nonce++
					select {
					case <-done: // committed, or given up as lost (sweepLost)
					case <-ctx.Done():
					}
				}
			}()
		}
	}
}

// openLoop offers Rate tx/s: a pacer hands out tokens, Workers submitters
// take them; a token that finds every worker busy is counted as not offered.
// A refused tx's nonce is reused by its sender's next tx.
func (r *benchRun) openLoop(ctx context.Context, wg *sync.WaitGroup) {
	tokens := make(chan struct{}, r.cfg.Workers)
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		sent := uint64(0)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			due := uint64(time.Since(start).Seconds() * r.cfg.Rate)
			for ; sent < due; sent++ {
				select {
				case tokens <- struct{}{}:
				default:
					r.notOffered.Add(1)
				}
			}
		}
	}()
	run := fmt.Sprintf("%x", time.Now().UnixNano())
	nodes := len(r.clients)
	for k := 0; k < r.cfg.Workers; k++ {
		n := k % nodes
		cl := r.clients[n][(k/nodes)%len(r.clients[n])]
		sender := fmt.Sprintf("o%s-%d", run, k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var nonce uint64
			for {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
				}
				reason, err := r.submit(ctx, cl, r.tx(sender, nonce), nil)
				if err == nil && (reason == "" || reason == "nonce too low" || reason == "duplicate") {
					nonce++
				}
			}
		}()
	}
}

// heights describes each node's height and pool size (progress lines).
func (r *benchRun) heights(ctx context.Context) string {
	var out []string
	for _, cs := range r.clients {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cs[0].Status(sctx)
		cancel()
		if err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, fmt.Sprintf("%s:h=%d,pool=%d", st.Node, st.Height, st.PoolTxs))
	}
	return strings.Join(out, " ")
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pct returns the q-quantile of sorted durations in milliseconds.
func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

func sumValues(m map[string]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s += v
	}
	return s
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// cpuTicks returns utime+stime of each process from /proc/<pid>/stat.
func cpuTicks(pids []int) ([]uint64, error) {
	out := make([]uint64, 0, len(pids))
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, err
		}
		// Fields after the command name (which may contain spaces) start
		// at field 3; utime and stime are fields 14 and 15.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
		}
		ut, err1 := strconv.ParseUint(f[11], 10, 64)
		st, err2 := strconv.ParseUint(f[12], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		out = append(out, ut+st)
	}
	return out, nil
}

// memKB returns a /proc/<pid>/status field (VmRSS:, VmHWM:) of each process
// in kB.
func memKB(pids []int, field string) ([]uint64, error) {
	out := make([]uint64, 0, len(pids))
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return nil, err
		}
		var v uint64
		found := false
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
				fs := strings.Fields(rest)
				if len(fs) > 0 {
					v, err = strconv.ParseUint(fs[0], 10, 64)
					found = err == nil
				}
				break
			}
		}
		f.Close()
		if !found {
			return nil, fmt.Errorf("/proc/%d/status: no %s", pid, field)
		}
		out = append(out, v)
	}
	return out, nil
}

func mbList(kbs []uint64) string {
	s := make([]string, len(kbs))
	for i, kb := range kbs {
		s[i] = strconv.FormatUint(kb/1024, 10)
	}
	return "[" + strings.Join(s, " ") + "]"
}
