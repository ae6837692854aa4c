// Package wal is mirsubnet's write-ahead log: what a node votes or signs is
// made durable here before it is sent, and is read back after a crash.
//
// The package has two layers.
//
// Log is the storage layer: segmented append-only files in one directory.
// Each record is framed as [u32 length][u32 CRC32C of payload][payload] and
// carries a monotonically increasing index and a retention index. Appends are
// group-committed: one writer goroutine takes every append waiting, writes
// them with one write call, fsyncs once and then acknowledges them all, in
// order. Truncate discards the records below a retention index (after a stable
// checkpoint): the truncation point is persisted in an atomically replaced
// metadata file and whole segments are deleted, so discarded records never come
// back after a restart. Open recovers: it validates every segment, cuts a torn
// or corrupt tail of the final segment at the last good record and reports
// what it dropped in a RecoveryReport; damage anywhere else is an error.
//
// Module is the active mir module on top of a Log. It appends the entries of
// events.WALAppend, releases the follow-ups (Event.Next) of each event only
// once it is durable, in the order the events arrived, truncates on
// events.WALTruncate and, before anything else, emits one events.WALRecovered
// to each owner with the entries that survived the last run.
//
// The on-disk format and the reasons for it are in
// docs/adr/0003-wal-format.md.
package wal
