package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/mirsubnet/mirsubnet/apps/kvstore"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/engine"
	"github.com/mirsubnet/mirsubnet/localnet"
	"github.com/mirsubnet/mirsubnet/mempool"
)

func init() { registerCommand(runCommand()) }

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run one validator from its home directory (config.toml, node.key, genesis.json)",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "home", Usage: "the node's home directory", Required: true, EnvVars: []string{"MIRSUBNET_HOME"}},
			&cli.BoolFlag{Name: "record-events", Usage: "record the event log (overrides config.toml)"},
			&cli.DurationFlag{Name: "status-every", Value: 0, Usage: "print a status line this often (0: never)"},
		},
		Action: func(c *cli.Context) error {
			home := c.String("home")
			cfg, err := localnet.LoadConfig(home)
			if err != nil {
				return cli.Exit(err.Error(), exitError)
			}
			if c.IsSet("record-events") {
				cfg.RecordEvents = c.Bool("record-events")
			}
			return runValidator(c, home, cfg)
		},
	}
}

// runValidator assembles and runs the validator until SIGINT/SIGTERM.
func runValidator(c *cli.Context, home string, cfg localnet.NodeConfig) error {
	g, set, err := localnet.LoadGenesis(home)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	key, err := localnet.LoadKey(home)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	store := kvstore.New()
	reg := prometheus.NewRegistry()
	mp := mempool.DefaultParams()
	if cfg.MempoolMaxTxs > 0 {
		mp.MaxTxs = cfg.MempoolMaxTxs
		mp.MaxGapped = min(mp.MaxGapped, mp.MaxTxs)
		mp.MaxLocalTxs = max(1, mp.MaxTxs/4) // the default's share
	}
	bt := 5 * time.Millisecond
	if cfg.BatchTimeoutMS > 0 {
		bt = time.Duration(cfg.BatchTimeoutMS) * time.Millisecond
	}
	eng, err := engine.New(engine.Config{
		Self: mir.NodeID(cfg.ID), Key: key, Members: set, ListenAddrs: cfg.Listen,
		DataDir: filepath.Join(home, localnet.DataDir), App: store, GenesisRoot: store.Root(),
		ConfigOffset: g.ConfigOffset, ISS: localnet.ISSParams(cfg), Mempool: mp, BatchTimeout: bt,
		TxValidator: kvstore.CheckTx, NonceSource: store, RecordEvents: cfg.RecordEvents,
		Metrics: reg, AllowClients: true,
	})
	if err != nil {
		return cli.Exit(fmt.Sprintf("node %s: %v", cfg.ID, err), exitError)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	eng.ServeClients()
	if cfg.MetricsAddr != "" {
		// The metrics address also serves the Go profiler (bind it to
		// 127.0.0.1 unless the network is trusted).
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Errorf("metrics: %v", err)
			}
		}()
		defer srv.Close()
	}
	if err := eng.Start(ctx); err != nil {
		return cli.Exit(fmt.Sprintf("node %s: start: %v", cfg.ID, err), exitError)
	}
	for _, a := range eng.Transport().Addrs() {
		fmt.Fprintf(c.App.Writer, "listening %s\n", a)
	}
	fmt.Fprintf(c.App.Writer, "ready %s\n", cfg.ID)
	var tick <-chan time.Time
	if d := c.Duration("status-every"); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			err := eng.Stop()
			if err != nil {
				return cli.Exit(fmt.Sprintf("node %s stopped: %v", cfg.ID, err), exitError)
			}
			fmt.Fprintf(c.App.Writer, "stopped %s\n", cfg.ID)
			return nil
		case <-eng.Done():
			return cli.Exit(fmt.Sprintf("node %s failed: %v", cfg.ID, eng.Err()), exitError)
		case <-tick:
			st := eng.Status()
			fmt.Fprintf(c.App.Writer, "status %s height=%d epoch=%d stable=%d txs=%d peers=%d pool=%d\n",
				st.Self, st.Height, st.Epoch, st.StableEpoch, st.Delivered, st.Peers, st.Mempool.Txs)
		}
	}
}
