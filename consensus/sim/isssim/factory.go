package isssim

import (
	"fmt"
	"time"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/sim"
)

// Config parameterises the simulated ISS nodes (Scenario.Config).
type Config struct {
	Params iss.Params
	// Offset is the reconfiguration offset (validator sets fixed ahead).
	Offset int
	// BatchTimeout is the pool's batch timeout.
	BatchTimeout time.Duration
	// KeySeed seeds the validators' keys.
	KeySeed int64
	// Forgers lists identities whose ISS module is wrapped in a Forger
	// (Byzantine nodes: list only Twins identities, which checkers ignore).
	Forgers []mir.NodeID
	// Built, if set, is told about every ISS module the factory builds
	// (tests use it to describe node state in failure reports).
	Built func(env sim.NodeEnv, iss *iss.ISS)
}

// DefaultConfig returns parameters that make epochs short and faults
// visible within seconds of virtual time.
func DefaultConfig() Config {
	p := iss.DefaultParams()
	p.SegmentLength = 4
	p.NumBuckets = 8
	p.MaxInFlight = 2
	p.MaxBatchTxs = 16
	p.EmptyProposalPeriod = 100 * time.Millisecond
	p.ViewChangeTimeout = 800 * time.Millisecond
	p.MaxViewChangeTimeout = 3200 * time.Millisecond
	p.ResendPeriod = 300 * time.Millisecond
	return Config{Params: p, Offset: 2, BatchTimeout: 10 * time.Millisecond, KeySeed: 1}
}

// keyCache avoids re-deriving Ed25519 keys for every node of every run. It is
// only touched from the simulation goroutine of one test at a time.
type keyCache struct {
	seed int64
	n    int
	keys []crypto.KeyPair
}

var cache keyCache

func keysFor(seed int64, n int) []crypto.KeyPair {
	if cache.keys == nil || cache.seed != seed || cache.n < n {
		cache = keyCache{seed: seed, n: n, keys: crypto.TestKeys(seed, n)}
	}
	return cache.keys[:n]
}

// Factory returns the simulator factory for ISS nodes.
func Factory() sim.Factory {
	return func(env sim.NodeEnv) (sim.NodeModules, error) {
		cfg, ok := env.Config.(Config)
		if !ok {
			return sim.NodeModules{}, fmt.Errorf("isssim: scenario config is %T, want isssim.Config", env.Config)
		}
		set := membership.TestSet(env.Nodes, env.Weights)
		keys := keysFor(cfg.KeySeed, len(env.Nodes))
		pubs := map[mir.NodeID]ic.PubKey{}
		var self *crypto.KeyPair
		for i, id := range env.Nodes {
			pubs[id] = keys[i].Pub
			if id == env.ID {
				self = &keys[i]
			}
		}
		if self == nil {
			return sim.NodeModules{}, fmt.Errorf("isssim: node %s not in membership", env.ID)
		}
		reg, err := crypto.NewRegistry(pubs)
		if err != nil {
			return sim.NodeModules{}, err
		}
		signer, err := crypto.NewSigner(self.Priv)
		if err != nil {
			return sim.NodeModules{}, err
		}
		genesis := checkpoint.Genesis(set, new(iss.HashChainApp).Root(), cfg.Offset)
		w := iss.DefaultWiring()
		w.Net, w.Timer, w.WAL = sim.NetModule, sim.TimerModule, sim.WALModule
		core, err := iss.New(iss.Config{Self: env.ID, Genesis: genesis, Params: cfg.Params, Wiring: w, Signer: signer, Verifier: reg})
		if err != nil {
			return sim.NodeModules{}, err
		}
		if cfg.Built != nil {
			cfg.Built(env, core)
		}
		var issMod mir.PassiveModule = core
		for _, f := range cfg.Forgers {
			if f == env.ID {
				issMod = NewForger(core, env.ID, set, cfg.Offset)
			}
		}
		var peers []mir.NodeID
		for _, id := range env.Nodes {
			if id != env.ID {
				peers = append(peers, id)
			}
		}
		pool := iss.NewPool(w.Mempool, w.Timer, iss.PoolParams{BatchTimeout: cfg.BatchTimeout, NumBuckets: cfg.Params.NumBuckets,
			Gossip: true, Net: w.Net, Peers: peers})
		app := iss.NewAppModule(new(iss.HashChainApp), w.Self, observer{o: env.Observer, set: set, verifier: reg})
		return sim.NodeModules{
			Passive:   map[mir.ModuleID]mir.PassiveModule{w.Self: issMod, w.App: app, w.Mempool: pool},
			WALOwners: []mir.ModuleID{w.Self},
			Submit: func(tx []byte) mir.Event {
				return mir.NewEvent(w.Mempool, iss.SubmitTx{Tx: TxOf(tx)})
			},
		}, nil
	}
}

// TxOf turns a simulated client transaction into an ordering.Tx; the first
// byte chooses one of 32 senders so that transactions spread over buckets.
func TxOf(data []byte) ordering.Tx {
	s := 0
	if len(data) > 0 {
		s = int(data[0]) % 32
	}
	return ordering.Tx{Sender: fmt.Sprintf("client-%02d", s), Data: data}
}

// observer adapts the simulator's Observer to iss.AppObserver. It checks
// every certificate the node accepts on its own (signatures and a strong
// quorum of weight, independently of the protocol code's quorum rule).
type observer struct {
	o        sim.Observer
	set      *membership.Set
	verifier ordering.Verifier
}

func (o observer) checkCert(what string, cert checkpoint.Certificate) {
	data := cert.Checkpoint.SignedData()
	t := o.set.NewTally()
	for _, s := range cert.Sigs {
		if o.verifier.Verify(s.Signer, data, s.Sig) == nil {
			t.Add(s.Signer)
		}
	}
	if !t.Strong() {
		o.o.Invalid(fmt.Sprintf("%s checkpoint of epoch %d accepted with valid signatures of only %v", what, cert.Checkpoint.Epoch, t.Voters()))
	}
}

func (o observer) Delivered(del iss.Deliver) {
	d := del.Proposal.Digest()
	txs := make([][]byte, len(del.Proposal.Batch.Txs))
	for i, tx := range del.Proposal.Batch.Txs {
		txs[i] = tx.Data
	}
	o.o.Deliver(del.SeqNr, d[:], txs)
}

func (o observer) Stable(cert checkpoint.Certificate) {
	if cert.Checkpoint.Epoch > 0 {
		o.checkCert("stable", cert)
	}
	h := cert.Checkpoint.Hash()
	o.o.StableCheckpoint(cert.Checkpoint.Epoch, h[:])
}

func (o observer) Restored(cert checkpoint.Certificate) {
	o.checkCert("restored", cert)
	o.o.Restore(cert.Checkpoint.SeqNr)
}
