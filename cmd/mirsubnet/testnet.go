package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mirsubnet/mirsubnet/apps/kvstore"
	"github.com/mirsubnet/mirsubnet/client"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/localnet"
)

func init() { registerCommand(testnetCommand()) }

func testnetCommand() *cli.Command {
	return &cli.Command{
		Name:  "testnet",
		Usage: "start a local subnet (validator processes on 127.0.0.1), drive a light load and show progress until Ctrl-C",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 4, Usage: "number of validators"},
			&cli.StringFlag{Name: "dir", Usage: "directory for the nodes' homes (default: a new temporary directory)"},
			&cli.Float64Flag{Name: "rate", Value: 200, Usage: "transactions per second of the sample load (0: none)"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: run until Ctrl-C)"},
			&cli.BoolFlag{Name: "record-events", Usage: "record every node's event log"},
		},
		Action: func(c *cli.Context) error {
			dir := c.String("dir")
			if dir == "" {
				d, err := os.MkdirTemp("", "mirsubnet-testnet-")
				if err != nil {
					return cli.Exit(err.Error(), exitError)
				}
				dir = d
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if d := c.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			return runTestnet(ctx, c.App.Writer, dir, c.Int("nodes"), c.Float64("rate"), c.Bool("record-events"))
		},
	}
}

func runTestnet(ctx context.Context, w io.Writer, dir string, n int, rate float64, record bool) error {
	nw, err := localnet.Generate(localnet.NetworkSpec{Dir: dir, Nodes: n, RecordEvents: record})
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	bin, err := os.Executable()
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	fmt.Fprintf(w, "testnet: %d validators, homes in %s\n", n, dir)
	var procs []*localnet.Proc
	defer func() {
		for _, p := range procs {
			if err := p.Stop(10 * time.Second); err != nil {
				fmt.Fprintf(w, "stopping %s: %v\n", p.ID, err)
			}
		}
		fmt.Fprintf(w, "testnet: stopped; homes (logs, WAL, event logs) kept in %s\n", dir)
	}()
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i := range nw.Homes {
		p, err := localnet.Start(startCtx, bin, nw.IDs[i], nw.Homes[i], nil)
		if err != nil {
			return cli.Exit(err.Error(), exitError)
		}
		procs = append(procs, p)
		fmt.Fprintf(w, "testnet: %s ready at %s\n", nw.IDs[i], nw.Addrs[i])
	}
	clients := make([]*client.Client, n)
	for i, a := range nw.Addrs {
		cl, err := client.Dial(startCtx, a, nil)
		if err != nil {
			return cli.Exit(fmt.Sprintf("connect to %s: %v", nw.IDs[i], err), exitError)
		}
		defer cl.Close()
		clients[i] = cl
	}
	fmt.Fprintln(w, "testnet: running; Ctrl-C stops it")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, rejected uint64
	if rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer t.Stop()
			nonces := map[string]uint64{}
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				sender := fmt.Sprintf("client-%d", i%16)
				tx := ordering.Tx{Sender: sender, Nonce: nonces[sender], Data: kvstore.Command{Op: kvstore.OpSet, Key: fmt.Sprintf("key-%d", i%1000), Value: []byte(fmt.Sprintf("v%d", i))}.Encode()}
				nonces[sender]++
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				err := clients[i%n].Submit(sctx, tx)
				scancel()
				mu.Lock()
				if err == nil {
					sent++
				} else {
					rejected++
				}
				mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastDelivered uint64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
		}
		var line []string
		var maxDelivered uint64
		for i, cl := range clients {
			sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := cl.Status(sctx)
			scancel()
			if err != nil {
				line = append(line, fmt.Sprintf("%s: unreachable", nw.IDs[i]))
				continue
			}
			line = append(line, fmt.Sprintf("%s h=%d ckpt=%d peers=%d", st.Node, st.Height, st.StableEpoch, st.Peers))
			maxDelivered = max(maxDelivered, st.Delivered)
		}
		now := time.Now()
		tps := float64(maxDelivered-lastDelivered) / now.Sub(last).Seconds()
		lastDelivered, last = maxDelivered, now
		mu.Lock()
		fmt.Fprintf(w, "%s  %.0f tx/s  submitted=%d rejected=%d  |  %s\n", now.Format("15:04:05"), tps, sent, rejected, strings.Join(line, "  "))
		mu.Unlock()
	}
}
