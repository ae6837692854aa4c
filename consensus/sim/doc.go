// Package sim is the deterministic simulator: it runs the real passive
// modules of n nodes on one goroutine in virtual time, over a simulated
// network, timers, WAL, crypto and hasher, injects faults, and checks
// safety, liveness and determinism.
//
// # Nodes
//
// Each endpoint (a node identity, or one copy of a Twins identity) runs a
// mir.Dispatcher over the passive modules a Factory builds, plus simulated
// active modules with fixed IDs: NetModule, TimerModule, WALModule,
// CryptoModule and HasherModule. Protocol modules talk to them with the
// events of consensus/events, exactly as to the real active modules. At
// start (and at each restart, a new incarnation) every passive module gets
// events.Init, and each of NodeModules.WALOwners gets exactly one
// events.WALRecovered with its durable entries, before any other WAL event.
// The node's application reports deliveries and stable checkpoints through
// the Observer it finds in NodeEnv.
//
// # Scheduling and determinism
//
// Everything happens at virtual instants taken from one priority queue
// ordered by (virtual time, scheduling sequence number). To process an item
// the simulator enqueues events into one dispatcher and runs Round until it
// has no work, serving the batches for the simulated active modules as they
// come out (their answers are new queue items, released follow-ups are
// enqueued at once). All randomness comes from one PCG source seeded by
// Scenario.Seed; each incarnation gets its own source (NodeEnv.Rand) derived
// from the seed, the endpoint and the incarnation. No map iteration order
// and no wall clock influence a run: Run(scenario, factory) is a function.
//
// # Services
//
//   - net: SendMessage becomes MessageReceived at each destination after the
//     link's latency (base per link, jitter, slow tail), From being the
//     sender's identity. Messages to self take 1µs and are never lost. The
//     message is CBOR-encoded once and decoded per delivery (unless
//     Scenario.SkipEncoding), so receivers never share values with the
//     sender. A message to an identity goes to every copy of it whose link
//     from the sender is not cut (Twins routing).
//   - timer: TimerDelay, TimerRepeat, TimerGarbageCollect in virtual time.
//   - wal: WALAppend stores the (encoded) entry; an fsync takes
//     uniform[MinSync, MaxSync]. Group commit: an fsync covers the appends
//     made before it started; appends made meanwhile wait for the next one.
//     Follow-ups of an event given to the WAL are released, in order, once
//     everything appended before it is durable. WALTruncate drops entries
//     below its retention index at once. A crash loses the unsynced tail and
//     the pending follow-ups.
//   - crypto: the signature of node X over data is SHA-256(secret(X) || for
//     each part: 8-byte length || part), secrets derived from the seed;
//     Twins copies share their identity's secret. Answers come after a
//     random delay up to Services.CryptoDelay (and may be reordered).
//   - hasher: SHA-256 over the concatenated parts of each entry.
//
// Follow-ups of events for net, timer, crypto and hasher are released as
// soon as the batch is accepted.
//
// # Faults and phases
//
// A run has a fault phase (Scenario.FaultDuration) and a healed phase. In
// the fault phase messages are dropped (Network.DropProb), duplicated
// (DupProb) and reordered (jitter); Scenario.Schedule crashes and restarts
// endpoints, changes the partition (links across groups are cut: messages
// on them are dropped at send and at delivery) and swizzle-clogs endpoints
// (a clogged endpoint's messages are held, not lost, until it is
// unclogged). At the heal all links are restored, clogs released, Twins
// copies handled per Scenario.TwinsAtHeal and every crashed endpoint
// restarted; random drops stop. Client transactions are submitted to random
// live endpoints throughout (Scenario.Load) until LivenessBound before the
// end. RandomScenario draws a scenario from a seed and a set of Faults;
// TwinsScenario and TwinsScenarioAt sample or enumerate Twins scenarios
// (n=4, one twinned identity, up to 8 rounds, each round a partition into at
// most two groups that separates the copies, or none).
//
// # Checkers
//
// Twins identities are Byzantine and not checked; every other endpoint is
// correct, including those that crash and recover.
//
//   - agreement: for each seqNr, all correct deliveries carry the digest of
//     the first one;
//   - gap-free: each correct incarnation delivers FirstSeqNr (or its last
//     Observer.Restore point) first and then consecutive seqNrs, so with
//     agreement every correct log is a range of one global log and logs
//     from FirstSeqNr are prefixes of one another;
//   - restore: Restore(n) requires every seqNr below n to have been
//     delivered by a correct node;
//   - checkpoints: correct nodes agree on each epoch's stable checkpoint;
//   - liveness: every transaction submitted to a correct incarnation is
//     delivered by correct nodes holding more than 2/3 of the weight within
//     LivenessBound of max(submission, heal); transactions at an
//     incarnation that crashed first are excused. The report names the
//     transactions and the nodes that missed them;
//   - determinism: Result.Hash covers every record each dispatcher's
//     interceptor sees (consensus/eventlog's canonical record encoding,
//     NodeHashes per incarnation) with its virtual instant and endpoint; the
//     same scenario must give the same hash.
//
// The first violation other than liveness stops the run. Result.Err lists
// violations with the seed, the scenario and the command that reproduces
// the run (Scenario.Repro, see ReproCommand). Scenario.Interceptor plugs an
// event log (eventlog.Writer) into every incarnation; the tests do that
// with -eventlog=DIR together with -seed=N.
//
// # Plugging in a protocol
//
// Write a Factory that builds a node's passive modules from NodeEnv
// (membership, weights, Config, Rand), addressing the service modules by
// the IDs above, and whose application calls NodeEnv.Observer; return the
// WAL owners and the event that submits a client transaction. Then run
// Run(RandomScenario(seed, Options{N: 4, Faults: AllFaults}), factory) over
// many seeds and fail on Result.Err. RegisterFlags gives tests -seed,
// -seeds and -eventlog.
package sim
