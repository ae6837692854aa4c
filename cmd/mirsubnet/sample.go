package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/sample"
)

func init() { registerCommand(sampleCommand()) }

func sampleCommand() *cli.Command {
	return &cli.Command{
		Name:  "sample",
		Usage: "run the sample protocol (Bracha reliable broadcast) on n nodes in this process",
		Description: "Every node broadcasts --broadcasts values; the command returns once every node\n" +
			"delivered all of them. With --eventlog DIR each node records its event log in\n" +
			"DIR/<node>; check it with `mirsubnet mircat replay --modules rbc DIR`.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 4, Usage: "number of nodes"},
			&cli.IntFlag{Name: "broadcasts", Value: 100, Usage: "values each node broadcasts"},
			&cli.StringFlag{Name: "eventlog", Usage: "directory to record one event log per node in (must not hold logs yet)"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the in-memory network's reordering"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "give up after this long"},
		},
		Action: runSample,
	}
}

func runSample(c *cli.Context) error {
	n, broadcasts := c.Int("nodes"), c.Int("broadcasts")
	if n < 1 || n > 1000 {
		return cli.Exit(fmt.Sprintf("--nodes %d: want 1 to 1000", n), exitError)
	}
	if broadcasts < 0 {
		return cli.Exit(fmt.Sprintf("--broadcasts %d: want 0 or more", broadcasts), exitError)
	}
	members := make([]mir.NodeID, n)
	for i := range members {
		members[i] = mir.NodeID("n" + strconv.Itoa(i))
	}
	cfg := sample.LocalConfig{Members: members, Broadcasts: broadcasts, Seed: c.Int64("seed")}

	writers := map[mir.NodeID]*eventlog.Writer{}
	closeAll := func() error {
		var first error
		for id, w := range writers {
			if err := w.Close(); err != nil && first == nil {
				first = fmt.Errorf("event log of %s: %w", id, err)
			}
		}
		return first
	}
	if dir := c.String("eventlog"); dir != "" {
		meta := map[string]string{
			metaMembers:  membersMeta(members),
			metaProtocol: "sample-rbc",
			"seed":       strconv.FormatInt(cfg.Seed, 10),
			"broadcasts": strconv.Itoa(broadcasts),
		}
		for _, id := range members {
			nodeDir := filepath.Join(dir, string(id))
			if logs, err := eventlog.List(nodeDir); err == nil && len(logs) > 0 {
				closeAll()
				return cli.Exit(fmt.Sprintf("%s already holds an event log; give an empty --eventlog directory", nodeDir), exitError)
			}
			w, err := eventlog.NewWriter(nodeDir, eventlog.Options{NodeID: id, Meta: meta})
			if err != nil {
				closeAll()
				return cli.Exit(err.Error(), exitError)
			}
			writers[id] = w
		}
		cfg.Interceptor = func(id mir.NodeID) mir.Interceptor {
			if w, ok := writers[id]; ok {
				return w
			}
			return nil
		}
	}

	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	start := time.Now()
	res, err := sample.RunLocal(ctx, cfg)
	elapsed := time.Since(start)
	cerr := closeAll()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return cli.Exit(fmt.Sprintf("sample run did not finish within %v: %v", c.Duration("timeout"), err), exitError)
		}
		return cli.Exit(fmt.Sprintf("sample run failed: %v", err), exitError)
	}
	if cerr != nil {
		return cli.Exit(cerr.Error(), exitError)
	}
	w := c.App.Writer
	var dispatched uint64
	for _, id := range members {
		st := res.Stats[id]
		dispatched += st.Dispatched
		line := fmt.Sprintf("%s: delivered %d values, dispatched %d events", id, len(res.Deliveries[id]), st.Dispatched)
		if lw := writers[id]; lw != nil {
			line += fmt.Sprintf(", %d records logged", lw.Records())
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "%d nodes, %d broadcasts each: done in %v (%.0f events/s)\n", n, broadcasts, elapsed.Round(time.Millisecond), float64(dispatched)/elapsed.Seconds())
	if dir := c.String("eventlog"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			abs = dir
		}
		fmt.Fprintf(w, "event logs in %s; check them with: %s mircat replay --modules rbc %s\n", abs, filepath.Base(os.Args[0]), abs)
	}
	return nil
}
