// Package eventlog records what a mir node does and reads it back.
//
// A Writer is a mir.Interceptor: the node shows it every batch it dispatches
// and every batch entering it from an active module, and the Writer appends
// them, in that order, to a directory of files. Intercept only queues the
// batch (events are immutable, so the Writer keeps the slice); a background
// goroutine encodes and writes. The queue is bounded: when it is full
// Intercept blocks (backpressure), nothing is ever dropped. Errors of the
// background goroutine are returned by the next Intercept or by Close.
//
// File format (little-endian integers):
//
//	file   = magic "MIRLOG" | version u16 big-endian | frame(Header) | frame(Record)*
//	frame  = length u32 | CRC32C(payload) u32 | payload (Core Deterministic CBOR)
//
// Files are named <prefix>-<seq>.mirlog (events-000001.mirlog, ...) and
// rotate once they exceed a size; records never span files and each header
// holds the index of its first record, so a directory reads as one
// continuous sequence of records with consecutive indexes. A file cut short
// (the process was killed mid-write) stays readable up to its last complete
// frame: the Reader stops at the first bad frame and reports where and why
// (CorruptionError) instead of failing. A Writer opened on a directory that
// already holds a log continues it in a new file (Header.Resumed), and the
// Reader follows such a restart across the torn tail of the previous file.
//
// Replay feeds the dispatched batches of a log back into fresh passive
// modules and checks that they produce exactly the outputs the log shows,
// which is how a recorded run is checked for determinism. Factories
// registered with RegisterFactory let tools (mirsubnet mircat replay) build
// modules by name from a log's header metadata.
//
// Hasher computes a running SHA-256 over the canonical encoding of the
// records a node would write, without any I/O; the deterministic simulator
// compares runs with it.
package eventlog
