package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/eventlog"
	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// maxEventsPerInstant bounds the events one node may dispatch without virtual
// time passing; more means a livelock in the protocol.
const maxEventsPerInstant = 1_000_000

// MaxEndpoints is the largest number of endpoints (identities plus extra
// Twins copies) a scenario may have.
const MaxEndpoints = 64

// sim is the state of one run. Everything happens on the goroutine that
// called Run.
type sim struct {
	sc      *Scenario
	factory Factory
	// rng is the run's only source of randomness (besides node sources).
	rng *rand.Rand
	// now is the current virtual instant; it never decreases.
	now time.Duration
	// seq numbers scheduled items; it orders items of one instant.
	seq   uint64
	queue itemHeap
	// free holds recycled items.
	free []*item

	// slots are all endpoints, indexed as Scenario.Endpoints.
	slots []*slot
	// byID maps an identity to its slots (copy order).
	byID        map[mir.NodeID][]int
	ids         []mir.NodeID
	weights     []uint64
	totalWeight uint64
	secrets     map[mir.NodeID][]byte
	// latency[from][to] is the base latency of each directed link.
	latency [][]time.Duration

	healed   bool
	healAt   time.Duration
	endAt    time.Duration
	loadStop time.Duration
	loadDone bool
	txCount  int
	stopped  bool

	// hash covers when and where records happen and, as each incarnation
	// ends, its event-log hash.
	hash    hash.Hash
	scratch []byte

	check checker
	res   Result
}

// slot is one endpoint: it survives crashes (its WAL is its disk).
type slot struct {
	idx  int
	ep   Endpoint
	twin bool // the identity is a Twins identity (Byzantine)
	// inst is the running incarnation, nil while down.
	inst        *instance
	incarnation int
	// retired slots never restart (stopped twins, failed nodes).
	retired bool
	// group is the partition group; links between groups are cut.
	group   int
	clogged bool
	// held are messages waiting for the slot to be unclogged.
	held []*item
	wal  walStore
}

// instance is one incarnation of an endpoint.
type instance struct {
	s           *sim
	slot        *slot
	incarnation int
	disp        *mir.Dispatcher
	// dead is set when the incarnation crashed or stopped; items for it are
	// discarded.
	dead     bool
	submit   func([]byte) mir.Event
	walOwner map[mir.ModuleID]bool
	// walWaiters are follow-ups waiting for WAL durability, in position order.
	walWaiters []walWaiter
	// syncing: an fsync of this incarnation is in flight.
	syncing bool
	// timers are the pending timers (some may be done or cancelled).
	timers     []*timerRec
	liveTimers int
	extra      mir.Interceptor
	// hasher hashes the incarnation's records (nil with HashOff).
	hasher *eventlog.Hasher
	// next is the seqNr the checker expects this incarnation to deliver.
	next uint64
	// pendingTx are checkable transactions submitted to this incarnation
	// and not yet delivered by a strong quorum.
	pendingTx []*txRec
}

// Intercept feeds the batch into the incarnation's event-log hasher (the
// records consensus/eventlog would write for it) and the virtual instant,
// node and kind into the run's hash, then hands it to the extra
// interceptor, if any.
func (in *instance) Intercept(kind mir.RecordKind, module mir.ModuleID, evs mir.EventList) error {
	s := in.s
	switch s.sc.Hash {
	case HashOff:
		return in.interceptExtra(kind, module, evs)
	case HashEffects:
		if kind == mir.RecordDispatch && !isService(module) {
			return in.interceptExtra(kind, module, evs)
		}
	}
	if err := in.hasher.Intercept(kind, module, evs); err != nil {
		return err
	}
	b := binary.LittleEndian.AppendUint64(s.scratch[:0], uint64(s.now))
	b = binary.LittleEndian.AppendUint32(b, uint32(in.slot.idx))
	b = binary.LittleEndian.AppendUint32(b, uint32(in.incarnation))
	b = append(b, byte(kind))
	s.scratch = b
	s.hash.Write(b)
	return in.interceptExtra(kind, module, evs)
}

func (in *instance) interceptExtra(kind mir.RecordKind, module mir.ModuleID, evs mir.EventList) error {
	if in.extra != nil {
		return in.extra.Intercept(kind, module, evs)
	}
	return nil
}

// isService reports whether id is one of the simulated active modules.
func isService(id mir.ModuleID) bool {
	switch id {
	case NetModule, TimerModule, WALModule, CryptoModule, HasherModule:
		return true
	}
	return false
}

// Run simulates the scenario with nodes built by factory and returns what the
// checkers found. It is deterministic: the same scenario and factory give the
// same Result, including Hash.
func Run(sc Scenario, factory Factory) Result {
	s := &sim{sc: &sc, factory: factory}
	s.res.Seed = sc.Seed
	s.res.Scenario = sc.String()
	s.res.Repro = sc.repro()
	if err := sc.validate(); err != nil {
		s.violate(KindConfig, Endpoint{}, err.Error())
		return s.res
	}
	s.setup()
	s.loop()
	s.finish()
	return s.res
}

func (s *sim) setup() {
	sc := s.sc
	s.rng = rand.New(rand.NewPCG(sc.Seed, 0x6d69727375626e65))
	s.hash = sha256.New()
	s.ids = NodeIDs(sc.N)
	s.weights = make([]uint64, sc.N)
	for i := range s.weights {
		s.weights[i] = 1
		if sc.Weights != nil {
			s.weights[i] = sc.Weights[i]
		}
		s.totalWeight += s.weights[i]
	}
	s.byID = map[mir.NodeID][]int{}
	s.secrets = map[mir.NodeID][]byte{}
	twin := map[mir.NodeID]bool{}
	for _, id := range sc.Twins {
		twin[id] = true
	}
	for i, ep := range sc.Endpoints() {
		s.slots = append(s.slots, &slot{idx: i, ep: ep, twin: twin[ep.ID]})
		s.byID[ep.ID] = append(s.byID[ep.ID], i)
	}
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], sc.Seed)
	for _, id := range s.ids {
		h := sha256.New()
		h.Write([]byte("mirsubnet/sim/secret\x00"))
		h.Write(seed[:])
		h.Write([]byte(id))
		s.secrets[id] = h.Sum(nil)
	}
	s.latency = make([][]time.Duration, len(s.slots))
	for i := range s.latency {
		s.latency[i] = make([]time.Duration, len(s.slots))
		for j := range s.latency[i] {
			s.latency[i][j] = s.uniform(sc.Net.MinLatency, sc.Net.MaxLatency)
		}
	}
	s.check.init(s)
	s.healAt = sc.FaultDuration
	s.endAt = sc.FaultDuration + sc.HealedDuration
	s.loadStop = s.endAt
	if !sc.NoLiveness {
		s.loadStop = s.endAt - sc.LivenessBound
	}
	// Actions first: a partition at instant 0 is in place before any node
	// sends.
	for i, a := range sc.Schedule {
		if a.At >= sc.FaultDuration {
			continue
		}
		it := s.newItem(max(a.At, 0), itemAction)
		it.action = i
		s.queue.push(it)
	}
	for i := range s.slots {
		it := s.newItem(0, itemStart)
		it.slot = i
		s.queue.push(it)
	}
	s.queue.push(s.newItem(sc.FaultDuration, itemHeal))
	s.queue.push(s.newItem(s.endAt, itemEnd))
	s.scheduleSubmit()
}

// newItem returns a cleared item for instant at with the next sequence number.
func (s *sim) newItem(at time.Duration, kind itemKind) *item {
	var it *item
	if n := len(s.free); n > 0 {
		it = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		it = new(item)
	}
	s.seq++
	it.at, it.seq, it.kind = at, s.seq, kind
	return it
}

func (s *sim) recycle(it *item) {
	*it = item{}
	s.free = append(s.free, it)
}

// uniform returns a duration drawn uniformly from [lo, hi].
func (s *sim) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *sim) loop() {
	for len(s.queue) > 0 && !s.stopped {
		it := s.queue.pop()
		s.now = it.at
		s.res.Stats.Steps++
		if s.step(it) {
			s.recycle(it)
		}
		if s.healed && s.loadDone && !s.sc.NoLiveness && s.check.pending == 0 {
			break // every checked transaction reached its quorum
		}
	}
	s.res.Stats.VirtualTime = s.now
}

// step runs one item and reports whether it may be recycled.
func (s *sim) step(it *item) bool {
	if it.inst != nil && it.inst.dead {
		if it.kind == itemMessage {
			s.res.Stats.MsgToDown++
		}
		return true
	}
	switch it.kind {
	case itemStart:
		s.start(s.slots[it.slot])
	case itemEvents:
		s.inject(it.inst, it.src, it.events)
		s.drain(it.inst)
	case itemMessage:
		return s.deliver(it)
	case itemTimer:
		s.fire(it)
	case itemSync:
		s.synced(it.inst, it.target)
	case itemAction:
		s.act(s.sc.Schedule[it.action])
	case itemSubmit:
		s.submitTx()
	case itemHeal:
		s.heal()
	case itemEnd:
		s.stopped = true
	}
	return true
}

// nodeSeed derives a node's random seed from the scenario seed, the
// endpoint and the incarnation.
func (s *sim) nodeSeed(sl *slot, incarnation int) (uint64, uint64) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d#%d", sl.ep.ID, sl.ep.Copy, incarnation)
	return s.sc.Seed, h.Sum64()
}

// start builds and initialises a new incarnation of sl.
func (s *sim) start(sl *slot) {
	in := &instance{s: s, slot: sl, incarnation: sl.incarnation, next: s.sc.FirstSeqNr}
	s1, s2 := s.nodeSeed(sl, sl.incarnation)
	env := NodeEnv{
		ID: sl.ep.ID, Copy: sl.ep.Copy, Incarnation: sl.incarnation,
		Nodes: s.ids, Weights: s.weights, Config: s.sc.Config,
		Rand: rand.New(rand.NewPCG(s1, s2)), Observer: observer{in},
	}
	mods, err := s.factory(env)
	if err != nil {
		s.fail(sl, fmt.Errorf("factory: %w", err))
		return
	}
	for _, id := range ServiceModules {
		if _, ok := mods.Passive[id]; ok {
			s.fail(sl, fmt.Errorf("factory: passive module uses the reserved ID %q", id))
			return
		}
	}
	if s.sc.Interceptor != nil {
		in.extra, err = s.sc.Interceptor(sl.ep, sl.incarnation)
		if err != nil {
			s.fail(sl, fmt.Errorf("interceptor: %w", err))
			return
		}
	}
	var icpt mir.Interceptor = in
	if s.sc.Hash != HashOff {
		in.hasher = eventlog.NewHasher(sl.ep.ID)
	} else if in.extra == nil {
		icpt = nil // lets the dispatcher recycle its batches
	}
	in.disp, err = mir.NewDispatcher(mods.Passive, ServiceModules, icpt)
	if err != nil {
		s.fail(sl, err)
		return
	}
	in.submit = mods.Submit
	in.walOwner = map[mir.ModuleID]bool{}
	for _, o := range mods.WALOwners {
		in.walOwner[o] = true
	}
	sl.inst = in
	ids := make([]mir.ModuleID, 0, len(mods.Passive))
	for id := range mods.Passive {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	inits := make(mir.EventList, len(ids))
	for i, id := range ids {
		inits[i] = mir.NewEvent(id, events.Init{})
	}
	s.inject(in, "", inits)
	if rec := s.recovered(in, mods.WALOwners); len(rec) > 0 {
		s.inject(in, WALModule, rec)
	}
	s.drain(in)
}

// fail reports a node error and stops the endpoint for good.
func (s *sim) fail(sl *slot, err error) {
	s.violate(KindNodeError, sl.ep, err.Error())
	if sl.inst != nil {
		s.stop(sl, false)
	}
	sl.retired = true
}

// inject hands events to an incarnation without dispatching them.
func (s *sim) inject(in *instance, src mir.ModuleID, evs mir.EventList) {
	if in.dead || len(evs) == 0 {
		return
	}
	if err := in.disp.Enqueue(src, evs); err != nil {
		s.fail(in.slot, err)
	}
}

// drain dispatches until the incarnation has no work, serving the batches
// for the simulated active modules.
func (s *sim) drain(in *instance) {
	start := in.disp.Dispatched()
	for !in.dead && in.disp.HasWork() {
		before := in.disp.Dispatched()
		batches, err := in.disp.Round()
		s.res.Stats.Events += in.disp.Dispatched() - before
		if err != nil {
			s.fail(in.slot, err)
			return
		}
		for _, b := range batches {
			if in.dead {
				return
			}
			s.serve(in, b)
		}
		if in.disp.Dispatched()-start > maxEventsPerInstant {
			s.fail(in.slot, fmt.Errorf("livelock: more than %d events at one instant", maxEventsPerInstant))
			return
		}
	}
}

func (s *sim) serve(in *instance, b mir.ActiveBatch) {
	switch b.Module {
	case NetModule:
		s.net(in, b.Events)
	case TimerModule:
		s.timer(in, b.Events)
	case WALModule:
		s.wal(in, b.Events)
	case CryptoModule:
		s.crypto(in, b.Events)
	case HasherModule:
		s.hasher(in, b.Events)
	}
}

// stop ends the running incarnation of sl. With crash, the unsynced WAL tail
// is lost (a clean stop of a retired twin loses it too: it never runs again).
func (s *sim) stop(sl *slot, crash bool) {
	in := sl.inst
	if in == nil {
		return
	}
	in.dead = true
	sl.inst = nil
	s.closeInstance(in)
	s.res.Stats.WALLost += uint64(sl.wal.crash())
	s.check.stopped(in)
	if crash {
		s.res.Stats.Crashes++
	}
}

func (s *sim) restart(sl *slot) {
	if sl.inst != nil || sl.retired {
		return
	}
	sl.incarnation++
	s.res.Stats.Restarts++
	s.start(sl)
}

func (s *sim) slotOf(ep Endpoint) *slot {
	for _, i := range s.byID[ep.ID] {
		if s.slots[i].ep.Copy == ep.Copy {
			return s.slots[i]
		}
	}
	return nil
}

func (s *sim) act(a Action) {
	if s.healed {
		return
	}
	if a.Kind == ActionPartition {
		s.partition(a.Groups)
		return
	}
	sl := s.slotOf(a.Endpoint)
	if sl == nil {
		s.violate(KindConfig, a.Endpoint, "action "+a.String()+" names an unknown endpoint")
		return
	}
	switch a.Kind {
	case ActionCrash:
		s.stop(sl, true)
	case ActionRestart:
		s.restart(sl)
	case ActionClog:
		sl.clogged = true
	case ActionUnclog:
		s.unclog(sl)
	}
}

func (s *sim) partition(groups [][]Endpoint) {
	for _, sl := range s.slots {
		sl.group = len(groups)
	}
	for g, eps := range groups {
		for _, ep := range eps {
			if sl := s.slotOf(ep); sl != nil {
				sl.group = g
			}
		}
	}
}

func (s *sim) unclog(sl *slot) {
	sl.clogged = false
	held := sl.held
	sl.held = nil
	for _, it := range held {
		s.requeue(it)
	}
}

// heal ends the fault phase: links restored, clogs released, twins handled,
// crashed endpoints restarted.
func (s *sim) heal() {
	s.healed = true
	s.partition(nil)
	for _, sl := range s.slots {
		if sl.clogged {
			s.unclog(sl)
		}
	}
	for _, sl := range s.slots {
		if !sl.twin {
			continue
		}
		if s.sc.TwinsAtHeal == TwinsStopAll || (s.sc.TwinsAtHeal == TwinsStopExtra && sl.ep.Copy > 0) {
			s.stop(sl, false)
			sl.retired = true
		}
	}
	for _, sl := range s.slots {
		s.restart(sl)
	}
}

func (s *sim) scheduleSubmit() {
	l := s.sc.Load
	at := s.now + l.Interval/2 + time.Duration(s.rng.Int64N(int64(l.Interval)+1))
	if at >= s.loadStop {
		s.loadDone = true
		return
	}
	s.queue.push(s.newItem(at, itemSubmit))
}

// submitTx submits one transaction to a random live endpoint.
func (s *sim) submitTx() {
	var live []*instance
	for _, sl := range s.slots {
		if sl.inst != nil && sl.inst.submit != nil {
			live = append(live, sl.inst)
		}
	}
	if len(live) > 0 {
		in := live[s.rng.IntN(len(live))]
		tx := fmt.Appendf(nil, "tx/%d/%s/", s.txCount, in.slot.ep)
		for len(tx) < s.sc.Load.Size {
			tx = append(tx, byte('a'+s.rng.IntN(26)))
		}
		s.txCount++
		s.res.Stats.TxSubmitted++
		s.check.submitted(in, tx)
		s.inject(in, "", mir.EventList{in.submit(tx)})
		s.drain(in)
	}
	s.scheduleSubmit()
}

func (s *sim) finish() {
	for _, sl := range s.slots {
		if sl.inst != nil {
			s.closeInstance(sl.inst)
		}
	}
	s.check.finish()
	if s.sc.Hash != HashOff {
		copy(s.res.Hash[:], s.hash.Sum(nil))
	}
}

// closeInstance folds an ended incarnation's hash into the run's and closes
// its extra interceptor.
func (s *sim) closeInstance(in *instance) {
	if in.hasher != nil {
		nh := NodeHash{Endpoint: in.slot.ep, Incarnation: in.incarnation, Records: in.hasher.Records()}
		copy(nh.Sum[:], in.hasher.Sum())
		s.res.NodeHashes = append(s.res.NodeHashes, nh)
		s.hash.Write(nh.Sum[:])
	}
	if c, ok := in.extra.(io.Closer); ok {
		if err := c.Close(); err != nil {
			s.violate(KindNodeError, in.slot.ep, "closing interceptor: "+err.Error())
		}
	}
}
