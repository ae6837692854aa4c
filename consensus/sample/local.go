package sample

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// LocalConfig configures RunLocal.
type LocalConfig struct {
	// Members are the nodes, all run in this process (except Silent ones).
	Members []mir.NodeID
	// Broadcasts is the number of values every running member broadcasts.
	// The i-th value of member m is the bytes of fmt.Sprintf("%s/%d", m, i).
	Broadcasts int
	// Interceptor, if set, returns the interceptor (an event-log recorder,
	// say) of each running node.
	Interceptor func(mir.NodeID) mir.Interceptor
	// Seed seeds the in-memory network's reordering (and delays).
	Seed int64
	// MaxDelay, if positive, delays every delivery batch of the network by a
	// random time up to MaxDelay.
	MaxDelay time.Duration
	// Silent members run no node at all (crashed from the start); at most f
	// of them.
	Silent []mir.NodeID
	// Params are the nodes' parameters; zero means mir.DefaultNodeParams().
	Params mir.NodeParams
}

// Result is what RunLocal observed.
type Result struct {
	// Deliveries holds, for each running node, what it delivered, in order.
	Deliveries map[mir.NodeID][]Delivered
	// Stats holds each running node's counters.
	Stats map[mir.NodeID]mir.Stats
	// RBC holds each running node's RBC counters.
	RBC map[mir.NodeID]RBCStats
}

// ErrConfig is returned by RunLocal for an unusable configuration.
var ErrConfig = errors.New("sample: bad configuration")

// RunLocal runs a node per member (except Silent ones) in this process,
// connected by an in-memory network, makes every running member broadcast
// cfg.Broadcasts values, and returns once every running node delivered every
// broadcast, or with an error when a node fails or ctx is done. Each node
// holds the modules ModRBC (NewRBC), ModApp (NewCollector) and ModNet (a
// NetModule of NewMemNet). Every goroutine it starts has ended when it
// returns. On error the Result holds what was observed until then.
func RunLocal(ctx context.Context, cfg LocalConfig) (Result, error) {
	if err := checkConfig(cfg); err != nil {
		return Result{}, err
	}
	silent := map[mir.NodeID]bool{}
	for _, id := range cfg.Silent {
		silent[id] = true
	}
	running := len(cfg.Members) - len(silent)
	var specs []nodeSpec
	for _, id := range cfg.Members {
		if silent[id] {
			continue
		}
		spec := nodeSpec{id: id, rbc: NewRBC(id, cfg.Members), want: running * cfg.Broadcasts}
		for i := 0; i < cfg.Broadcasts; i++ {
			spec.broadcasts = append(spec.broadcasts, []byte(fmt.Sprintf("%s/%d", id, i)))
		}
		specs = append(specs, spec)
	}
	opts := []MemNetOption{WithReorder(cfg.Seed)}
	if cfg.MaxDelay > 0 {
		opts = append(opts, WithMaxDelay(cfg.MaxDelay))
	}
	return runNodes(ctx, NewMemNet(cfg.Members, opts...), specs, cfg.Interceptor, cfg.Params)
}

func checkConfig(cfg LocalConfig) error {
	if len(cfg.Members) == 0 {
		return fmt.Errorf("%w: no members", ErrConfig)
	}
	seen := map[mir.NodeID]bool{}
	for _, id := range cfg.Members {
		if id == "" || seen[id] {
			return fmt.Errorf("%w: empty or duplicate member %q", ErrConfig, id)
		}
		seen[id] = true
	}
	if cfg.Broadcasts < 0 {
		return fmt.Errorf("%w: negative Broadcasts", ErrConfig)
	}
	silent := map[mir.NodeID]bool{}
	for _, id := range cfg.Silent {
		if !seen[id] || silent[id] {
			return fmt.Errorf("%w: silent node %q is not a member or given twice", ErrConfig, id)
		}
		silent[id] = true
	}
	if f := (len(cfg.Members) - 1) / 3; len(silent) > f {
		return fmt.Errorf("%w: %d silent members, at most f = %d allowed", ErrConfig, len(silent), f)
	}
	return nil
}

// nodeSpec describes one node run by runNodes.
type nodeSpec struct {
	id mir.NodeID
	// rbc is the module run as ModRBC (NewRBC, or a faulty variant in tests).
	rbc mir.PassiveModule
	// broadcasts are injected as Broadcast events when the node starts.
	broadcasts [][]byte
	// want is the number of deliveries runNodes waits for at this node.
	want int
}

// runningNode is a node started by runNodes.
type runningNode struct {
	spec      nodeSpec
	node      *mir.Node
	collector *Collector
	watcher   *deliveryWatcher
}

func runNodes(ctx context.Context, net map[mir.NodeID]*NetModule, specs []nodeSpec,
	interceptor func(mir.NodeID) mir.Interceptor, params mir.NodeParams) (Result, error) {
	if params == (mir.NodeParams{}) {
		params = mir.DefaultNodeParams()
	}
	var nodes []*runningNode
	for _, spec := range specs {
		rn := &runningNode{spec: spec, collector: NewCollector()}
		var next mir.Interceptor
		if interceptor != nil {
			next = interceptor(spec.id)
		}
		rn.watcher = &deliveryWatcher{next: next, want: spec.want, done: make(chan struct{})}
		if spec.want <= 0 {
			close(rn.watcher.done)
		}
		mods := map[mir.ModuleID]mir.Module{ModRBC: spec.rbc, ModApp: rn.collector, ModNet: net[spec.id]}
		n, err := mir.NewNode(spec.id, params, mods, rn.watcher)
		if err != nil {
			return Result{}, err
		}
		rn.node = n
		nodes = append(nodes, rn)
	}

	// Every node runs until all are stopped; failed collects the first
	// node that stopped on its own.
	failed := make(chan error, len(nodes))
	var wg sync.WaitGroup
	for _, rn := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rn.node.Run(ctx); !errors.Is(err, mir.ErrStopped) {
				failed <- fmt.Errorf("node %s: %w", rn.spec.id, err)
			}
		}()
	}
	stopAll := func() {
		for _, rn := range nodes {
			rn.node.Stop()
		}
		wg.Wait()
	}

	err := func() error {
		for _, rn := range nodes {
			if len(rn.spec.broadcasts) == 0 {
				continue
			}
			evs := make(mir.EventList, len(rn.spec.broadcasts))
			for i, data := range rn.spec.broadcasts {
				evs[i] = mir.NewEvent(ModRBC, Broadcast{Data: data})
			}
			if err := rn.node.InjectEvents(ctx, evs); err != nil {
				return fmt.Errorf("node %s: inject broadcasts: %w", rn.spec.id, err)
			}
		}
		for _, rn := range nodes {
			select {
			case <-rn.watcher.done:
			case err := <-failed:
				return err
			case <-ctx.Done():
				return fmt.Errorf("sample: waiting for node %s to deliver %d values: %w", rn.spec.id, rn.spec.want, ctx.Err())
			}
		}
		return nil
	}()
	stopAll()
	if err == nil {
		select {
		case err = <-failed:
		default:
		}
	}

	res := Result{
		Deliveries: map[mir.NodeID][]Delivered{},
		Stats:      map[mir.NodeID]mir.Stats{},
		RBC:        map[mir.NodeID]RBCStats{},
	}
	for _, rn := range nodes { // safe: every node's Run has returned
		res.Deliveries[rn.spec.id] = rn.collector.Deliveries()
		res.Stats[rn.spec.id] = rn.node.Stats()
		if r, ok := rn.spec.rbc.(*RBC); ok {
			res.RBC[rn.spec.id] = r.Stats()
		}
	}
	return res, err
}

// deliveryWatcher is the interceptor of a node run by runNodes: it passes
// every record on to next and closes done once want Delivered events were
// dispatched to ModApp. It runs on the node's loop goroutine.
type deliveryWatcher struct {
	next mir.Interceptor
	want int
	// seen counts Delivered events dispatched to ModApp.
	seen int
	done chan struct{}
}

// Intercept implements mir.Interceptor.
func (w *deliveryWatcher) Intercept(kind mir.RecordKind, module mir.ModuleID, evs mir.EventList) error {
	if w.next != nil {
		if err := w.next.Intercept(kind, module, evs); err != nil {
			return err
		}
	}
	if kind != mir.RecordDispatch || module != ModApp || w.seen >= w.want {
		return nil
	}
	for _, e := range evs {
		if _, ok := e.Payload.(Delivered); ok {
			w.seen++
		}
	}
	if w.seen >= w.want {
		close(w.done)
	}
	return nil
}
