package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirsubnet/mirsubnet/consensus/checkpoint"
	"github.com/mirsubnet/mirsubnet/consensus/crypto"
	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/iss"
	"github.com/mirsubnet/mirsubnet/consensus/membership"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/timer"
	"github.com/mirsubnet/mirsubnet/consensus/wal"
	"github.com/mirsubnet/mirsubnet/mempool"
	"github.com/mirsubnet/mirsubnet/transport"
)

var log = logging.Logger("engine")

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("engine: bad configuration")

// ErrStopped is returned by calls on a stopped engine.
var ErrStopped = errors.New("engine: stopped")

// Config assembles a validator.
type Config struct {
	// Self is the validator's ID in Members; Key its libp2p identity key.
	Self mir.NodeID
	Key  ic.PrivKey
	// Members is the genesis validator set (strict: peer IDs and addresses).
	Members *membership.Set
	// ListenAddrs are the transport's listen multiaddrs.
	ListenAddrs []string
	// DataDir holds the WAL (wal/) and the event log (eventlog/).
	DataDir string
	// App is the replicated application; GenesisRoot its initial state root.
	App         iss.App
	GenesisRoot []byte
	// ConfigOffset is the number of epochs validator sets are fixed ahead.
	ConfigOffset int
	// ISS, Mempool, BatchTimeout and Node are the protocol's tunables.
	ISS          iss.Params
	Mempool      mempool.Params
	BatchTimeout time.Duration
	Node         mir.NodeParams
	// TxValidator checks transactions at admission (nil: shape only).
	TxValidator mempool.Validator
	// NonceSource gives senders' next nonces from committed state.
	NonceSource mempool.NonceSource
	// DisableJournal turns off the mempool journal (DataDir/mempool). With
	// it (the default whenever NonceSource is set; the journal needs it to
	// tell which records are done), a locally submitted transaction is
	// acknowledged only once it is durable, and a restarted node gives the
	// ones not yet committed back to its pool.
	DisableJournal bool
	// RecordEvents records every dispatched event in DataDir/eventlog.
	RecordEvents bool
	// Metrics receives the transport's and the engine's metrics.
	Metrics prometheus.Registerer
	// Transport tunables.
	Transport transport.Params
	// AllowClients lets peers outside the membership connect (to the client
	// protocol only).
	AllowClients bool
}

// Delivered is a batch the node delivered.
type Delivered struct {
	SeqNr   ordering.SeqNr
	Epoch   ordering.Epoch
	Txs     []ordering.Tx
	Aborted bool
	At      time.Time
}

// Status summarises the engine's progress.
type Status struct {
	Self        mir.NodeID
	Height      ordering.SeqNr // next sequence number to deliver
	Epoch       ordering.Epoch // epoch of the last delivered batch
	StableEpoch ordering.Epoch // epoch of the last stable checkpoint
	Delivered   uint64         // transactions delivered since start
	Peers       int
	Mempool     mempool.Stats
}

// Engine is a running validator.
type Engine struct {
	cfg   Config
	node  *mir.Node
	tr    *transport.Transport
	pool  *mempool.FIFO
	elog  *eventlog.Writer
	start sync.Once

	// journal is nil when disabled. replay holds the transactions it
	// recovered until the node delivers a batch of an epoch after
	// replayAfter, the last epoch it voted in before it stopped, if any (see
	// observer.Delivered). Both are used on the node's goroutine only.
	journal     *mempool.Journal
	replay      []ordering.Tx
	replayAfter *ordering.Epoch

	mu     sync.Mutex
	subs   map[int]*subscriber
	ckSubs map[int]chan checkpoint.Certificate
	nextID int
	// height is the next sequence number to deliver; txs counts delivered
	// transactions; stable is the last stable checkpoint's epoch.
	height atomic.Uint64
	txs    atomic.Uint64
	stable atomic.Uint64
	epoch  atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// New assembles the validator; Start runs it.
func New(cfg Config) (*Engine, error) {
	if cfg.Key == nil || cfg.Members == nil || cfg.App == nil || cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: key, members, app and data directory are required", ErrConfig)
	}
	if !cfg.Members.Contains(cfg.Self) {
		return nil, fmt.Errorf("%w: %s is not in the validator set", ErrConfig, cfg.Self)
	}
	if cfg.ConfigOffset <= 0 {
		cfg.ConfigOffset = 2
	}
	if cfg.ISS == (iss.Params{}) {
		cfg.ISS = iss.DefaultParams()
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 5 * time.Millisecond
	}
	if cfg.Node == (mir.NodeParams{}) {
		cfg.Node = mir.DefaultNodeParams()
	}
	e := &Engine{cfg: cfg, subs: map[int]*subscriber{}, ckSubs: map[int]chan checkpoint.Certificate{}, done: make(chan struct{})}

	keys := map[mir.NodeID]ic.PubKey{}
	for _, v := range cfg.Members.Validators() {
		pid, err := peer.Decode(v.PeerID)
		if err != nil {
			return nil, fmt.Errorf("%w: validator %s: %v", ErrConfig, v.ID, err)
		}
		pub, err := pid.ExtractPublicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: validator %s: peer ID does not embed its key: %v", ErrConfig, v.ID, err)
		}
		keys[v.ID] = pub
	}
	registry, err := crypto.NewRegistry(keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	signer, err := crypto.NewSigner(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}

	w := iss.DefaultWiring()
	genesis := checkpoint.Genesis(cfg.Members, cfg.GenesisRoot, cfg.ConfigOffset)
	core, err := iss.New(iss.Config{Self: cfg.Self, Genesis: genesis, Params: cfg.ISS, Wiring: w, Signer: signer, Verifier: registry})
	if err != nil {
		return nil, err
	}

	mp := cfg.Mempool
	mp.NumBuckets = cfg.ISS.NumBuckets
	opts := []mempool.Option{mempool.WithGossiper(&gossiper{e: e})}
	if cfg.TxValidator != nil {
		opts = append(opts, mempool.WithValidator(cfg.TxValidator))
	}
	if cfg.NonceSource != nil {
		opts = append(opts, mempool.WithNonceSource(cfg.NonceSource))
	}
	pool, err := mempool.New(mp, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: mempool: %v", ErrConfig, err)
	}
	e.pool = pool

	tr, err := transport.New(transport.Config{
		Self: cfg.Self, PrivKey: cfg.Key, ListenAddrs: cfg.ListenAddrs, Members: cfg.Members,
		AllowedModules: []mir.ModuleID{w.Self},
		AllowNonMember: func(peer.ID) bool { return cfg.AllowClients },
		OnTx:           e.onGossipTx,
		Metrics:        cfg.Metrics,
		Params:         cfg.Transport,
	})
	if err != nil {
		return nil, err
	}
	e.tr = tr

	// Stable-checkpoint entries carry the application's snapshot; allow the
	// largest record the WAL supports until snapshots live outside it.
	walParams := wal.DefaultParams()
	walParams.Log.MaxRecordSize = wal.MaxRecordSizeLimit
	walMod, err := wal.NewModule(filepath.Join(cfg.DataDir, "wal"), walParams, []mir.ModuleID{w.Self})
	if err != nil {
		_ = tr.Close()
		return nil, err
	}
	modules := map[mir.ModuleID]mir.Module{
		w.Self:    core,
		w.App:     iss.NewAppModule(cfg.App, w.Self, observer{e}),
		w.Mempool: mempool.NewModule(pool, mempool.ModuleParams{BatchTimeout: cfg.BatchTimeout}, mempool.WithClock(timer.RealClock{})),
		w.Net:     tr,
		w.Timer:   timer.New(timer.RealClock{}),
		w.WAL:     walMod,
	}
	var icpt mir.Interceptor
	if cfg.RecordEvents {
		e.elog, err = eventlog.NewWriter(filepath.Join(cfg.DataDir, "eventlog"), eventlog.Options{NodeID: cfg.Self})
		if err != nil {
			_ = tr.Close()
			_ = walMod.Close()
			return nil, err
		}
		icpt = e.elog
	}
	node, err := mir.NewNode(cfg.Self, cfg.Node, modules, icpt)
	if err != nil {
		_ = tr.Close()
		_ = walMod.Close()
		return nil, err
	}
	e.node = node
	if cfg.NonceSource != nil && !cfg.DisableJournal {
		j, txs, rep, err := mempool.OpenJournal(filepath.Join(cfg.DataDir, "mempool"), cfg.NonceSource, mempool.DefaultJournalOptions())
		if err != nil {
			_ = tr.Close()
			_ = walMod.Close()
			return nil, err
		}
		if rep.Records > 0 {
			log.Infof("mempool journal: %d records, %d transactions to give back to the pool, %d undecodable records skipped; %s",
				rep.Records, rep.Pending, rep.Undecodable, rep.WAL)
		}
		e.journal, e.replay = j, txs
		if ep, ok := iss.LastVotedEpoch(walMod.Recovered(w.Self)); ok {
			e.replayAfter = &ep
		}
	}
	return e, nil
}

// Start runs the validator until Stop or ctx is cancelled.
func (e *Engine) Start(ctx context.Context) error {
	started := false
	e.start.Do(func() {
		started = true
		ctx, e.cancel = context.WithCancel(ctx)
		maintained := make(chan struct{})
		if e.journal != nil {
			go func() {
				defer close(maintained)
				e.maintainJournal(ctx)
			}()
		} else {
			close(maintained)
		}
		go func() {
			defer close(e.done)
			err := e.node.Run(ctx)
			<-maintained // ctx is done: no Maintain after Close
			if e.journal != nil {
				if cerr := e.journal.Close(); cerr != nil {
					log.Errorf("closing the mempool journal: %v", cerr)
				}
			}
			if e.elog != nil {
				if cerr := e.elog.Close(); cerr != nil && !errors.Is(err, mir.ErrStopped) {
					log.Errorf("closing the event log: %v", cerr)
				}
			}
			if !errors.Is(err, mir.ErrStopped) {
				log.Errorf("node stopped: %v", err)
				e.err = err
			}
			e.closeSubs()
		}()
	})
	if !started {
		return errors.New("engine: started twice")
	}
	w := iss.DefaultWiring()
	init := mir.EventList{mir.NewEvent(w.Self, events.Init{}), mir.NewEvent(w.App, events.Init{})}
	return e.node.InjectEvents(ctx, init)
}

// Stop stops the validator and waits for it; it returns the error that
// stopped the node, if any.
func (e *Engine) Stop() error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	<-e.done
	return e.err
}

// Done is closed once the node stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err returns why the node stopped (nil after Stop).
func (e *Engine) Err() error {
	select {
	case <-e.done:
		return e.err
	default:
		return nil
	}
}

// Transport returns the node's transport (its libp2p host serves clients).
func (e *Engine) Transport() *transport.Transport { return e.tr }

// Submit admits a transaction into the mempool; the error says why not
// (a *mempool.Rejection for a refusal). With the journal, it returns once
// the transaction is durable.
func (e *Engine) Submit(ctx context.Context, tx ordering.Tx) error {
	res := make(chan error, 1)
	e.submitAsync(ctx, tx, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// submitAsync admits tx and calls done with the outcome: nil once the
// transaction is admitted and (with the journal) durable. ctx bounds the
// admission decision only. done may run on another goroutine and must not
// block.
func (e *Engine) submitAsync(ctx context.Context, tx ordering.Tx, done func(error)) {
	select {
	case <-e.done:
		done(ErrStopped)
		return
	default:
	}
	if err := e.pool.Add(ctx, tx, mempool.OriginLocal); err != nil || e.journal == nil {
		done(err)
		return
	}
	e.journal.Record(tx, func(err error) {
		if err != nil {
			err = fmt.Errorf("engine: admitted but not journaled: %w", err)
		}
		done(err)
	})
}

// maintainJournal drops the journal's committed records every second
// until ctx ends.
func (e *Engine) maintainJournal(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.journal.Maintain(); err != nil {
			log.Errorf("mempool journal: %v", err)
		}
	}
}

// replayJournal gives the journal's recovered transactions back to the
// pool (gossiping them again); the ones committed meanwhile are refused.
func (e *Engine) replayJournal(txs []ordering.Tx) {
	var admitted, refused int
	for _, tx := range txs {
		if err := e.pool.Add(context.Background(), tx, mempool.OriginLocal); err == nil {
			admitted++
		} else {
			refused++
		}
	}
	log.Infof("mempool journal: %d transactions back in the pool, %d refused (committed or already there)", admitted, refused)
}

// Status returns the engine's progress.
func (e *Engine) Status() Status {
	return Status{Self: e.cfg.Self, Height: e.height.Load(), Epoch: e.epoch.Load(), StableEpoch: e.stable.Load(),
		Delivered: e.txs.Load(), Peers: len(e.tr.Host().Network().Peers()), Mempool: e.pool.Stats()}
}

// Subscribe returns a channel of delivered batches and a cancel function.
// Batches queue for the subscriber without limit in count, but a subscriber
// whose queue holds more than maxBytes of transaction data falls too far
// behind and is dropped (its channel is closed) rather than slowing the node
// down or growing its memory without bound.
func (e *Engine) Subscribe(maxBytes int) (<-chan Delivered, func()) {
	sub := &subscriber{maxBytes: maxBytes, signal: make(chan struct{}, 1), out: make(chan Delivered), stop: make(chan struct{})}
	e.mu.Lock()
	id := e.nextID
	e.nextID++
	e.subs[id] = sub
	e.mu.Unlock()
	go sub.run()
	return sub.out, func() {
		e.mu.Lock()
		if s, ok := e.subs[id]; ok {
			delete(e.subs, id)
			s.close()
		}
		e.mu.Unlock()
	}
}

// subscriber queues delivered batches for one consumer.
type subscriber struct {
	maxBytes int
	mu       sync.Mutex
	// queue holds batches not yet handed to the consumer; bytes is the size
	// of their transactions' data.
	queue  []Delivered
	bytes  int
	closed bool
	signal chan struct{}
	out    chan Delivered
	stop   chan struct{}
}

// push queues d; it returns false if the subscriber fell too far behind.
func (s *subscriber) push(d Delivered) bool {
	n := 64
	for _, tx := range d.Txs {
		n += len(tx.Data) + len(tx.Sender) + 48
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.bytes+n > s.maxBytes {
		return false
	}
	s.queue = append(s.queue, d)
	s.bytes += n
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return true
}

func (s *subscriber) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
}

// run hands queued batches to the consumer until closed.
func (s *subscriber) run() {
	defer close(s.out)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue, s.bytes = nil, 0
		s.mu.Unlock()
		for _, d := range q {
			select {
			case s.out <- d:
			case <-s.stop:
				return
			}
		}
		select {
		case <-s.signal:
		case <-s.stop:
			return
		}
	}
}

// SubscribeCheckpoints returns a channel of stable checkpoint certificates.
func (e *Engine) SubscribeCheckpoints(size int) (<-chan checkpoint.Certificate, func()) {
	ch := make(chan checkpoint.Certificate, size)
	e.mu.Lock()
	id := e.nextID
	e.nextID++
	e.ckSubs[id] = ch
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		if c, ok := e.ckSubs[id]; ok {
			delete(e.ckSubs, id)
			close(c)
		}
		e.mu.Unlock()
	}
}

func (e *Engine) closeSubs() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, sub := range e.subs {
		sub.close()
		delete(e.subs, id)
	}
	for id, c := range e.ckSubs {
		close(c)
		delete(e.ckSubs, id)
	}
}

func (e *Engine) publish(d Delivered) {
	e.height.Store(d.SeqNr + 1)
	e.epoch.Store(d.Epoch)
	e.txs.Add(uint64(len(d.Txs)))
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, sub := range e.subs {
		if !sub.push(d) {
			sub.close()
			delete(e.subs, id)
			log.Warnf("dropped a subscriber that fell behind by more than %d bytes", sub.maxBytes)
		}
	}
}

func (e *Engine) publishCheckpoint(cert checkpoint.Certificate) {
	e.stable.Store(cert.Checkpoint.Epoch)
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, c := range e.ckSubs {
		select {
		case c <- cert:
		default:
			close(c)
			delete(e.ckSubs, id)
		}
	}
}

// gossipBatch is the payload of one gossip message: transactions admitted
// locally within a few milliseconds travel together (one message, one
// validation and one delivery per batch instead of per transaction).
type gossipBatch struct {
	_   struct{} `cbor:",toarray"`
	Txs []ordering.Tx
}

// Gossip batching limits.
const (
	gossipMaxTxs   = 256
	gossipMaxBytes = 256 << 10
	gossipLinger   = 2 * time.Millisecond
)

func (e *Engine) onGossipTx(t transport.Tx) {
	var b gossipBatch
	if err := mir.Unmarshal(t.Data, &b); err != nil || len(b.Txs) > gossipMaxTxs {
		return
	}
	for _, tx := range b.Txs {
		_ = e.pool.Add(context.Background(), tx, mempool.OriginGossip)
	}
}

// gossiper publishes admitted local transactions on gossipsub, in batches
// flushed after gossipLinger or when full.
type gossiper struct {
	e  *Engine
	mu sync.Mutex
	// buf holds transactions not yet published (bytes: their size); armed
	// says a flush is scheduled.
	buf   []ordering.Tx
	bytes int
	armed bool
}

func (g *gossiper) Publish(tx ordering.Tx) {
	g.mu.Lock()
	g.buf = append(g.buf, tx)
	g.bytes += tx.Size()
	full := len(g.buf) >= gossipMaxTxs || g.bytes >= gossipMaxBytes
	var batch []ordering.Tx
	if full {
		batch, g.buf, g.bytes = g.buf, nil, 0
	} else if !g.armed {
		g.armed = true
		time.AfterFunc(gossipLinger, g.flush)
	}
	g.mu.Unlock()
	if batch != nil {
		g.publish(batch)
	}
}

func (g *gossiper) flush() {
	g.mu.Lock()
	batch := g.buf
	g.buf, g.bytes, g.armed = nil, 0, false
	g.mu.Unlock()
	if len(batch) > 0 {
		g.publish(batch)
	}
}

func (g *gossiper) publish(txs []ordering.Tx) {
	if g.e.tr == nil {
		return
	}
	select {
	case <-g.e.done:
		return
	default:
	}
	data, err := mir.Marshal(gossipBatch{Txs: txs})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.e.tr.PublishTx(ctx, data); err != nil {
		log.Debugf("gossip: %v", err)
	}
}

// observer receives the application module's reports.
type observer struct{ e *Engine }

func (o observer) Delivered(del iss.Deliver) {
	o.e.publish(Delivered{SeqNr: del.SeqNr, Epoch: del.Epoch, Txs: del.Proposal.Batch.Txs,
		Aborted: del.Proposal.Aborted, At: time.Now()})
	o.e.maybeReplay(del.Epoch)
}

func (o observer) Stable(cert checkpoint.Certificate) { o.e.publishCheckpoint(cert) }

func (o observer) Restored(cert checkpoint.Certificate) {
	o.e.height.Store(cert.Checkpoint.SeqNr)
	o.e.publishCheckpoint(cert)
	o.e.maybeReplay(cert.Checkpoint.Epoch) // the node continues at that epoch
}

// maybeReplay hands the journal's transactions to replayJournal, once,
// when the node works in epoch: only once it is past the last epoch it
// voted in before it stopped. In that epoch its own segment may hold
// proposals it made before the crash and has not delivered yet; with the
// journal's transactions back in its pool it could propose one of them
// again, and order it twice. In any later epoch the pool has learnt, at the
// epoch's start, what every earlier batch committed (or, after state
// transfer, what nonces the state has used), and the only leader that may
// propose a transaction in an epoch is the one of its bucket.
func (e *Engine) maybeReplay(epoch ordering.Epoch) {
	if len(e.replay) == 0 || (e.replayAfter != nil && epoch <= *e.replayAfter) {
		return
	}
	txs := e.replay
	e.replay = nil
	go e.replayJournal(txs)
}
