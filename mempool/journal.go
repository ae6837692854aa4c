package mempool

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/wal"
)

// journalVersion is the first byte of every journal record; the rest is the
// transaction's CBOR encoding.
const journalVersion = 1

// JournalOptions are the journal's tunables.
type JournalOptions struct {
	// CompactAfter: once the oldest pending record is this many records
	// behind the newest, Maintain copies the oldest pending records forward
	// so that the log behind them can be deleted. It bounds the journal to
	// about CompactAfter records plus the pending ones, however long a
	// transaction stays pending.
	CompactAfter uint64
	// SegmentSize is the size of the journal's WAL segments.
	SegmentSize int64
	// SyncEvery spaces the journal's group commits (wal.Options.SyncEvery):
	// an acknowledgement waits up to this much longer, for far fewer
	// fsyncs under load. Commits do not wait for acknowledgements.
	SyncEvery time.Duration
}

// DefaultJournalOptions returns the defaults.
func DefaultJournalOptions() JournalOptions {
	return JournalOptions{CompactAfter: 1 << 18, SegmentSize: 16 << 20, SyncEvery: 5 * time.Millisecond}
}

// JournalReport says what OpenJournal found.
type JournalReport struct {
	// Records is the number of records recovered from disk; Pending of them
	// are transactions whose nonce the NonceSource does not report used.
	Records, Pending int
	// Undecodable counts records that are not journal records (skipped).
	Undecodable int
	// WAL is the underlying log's recovery report.
	WAL wal.RecoveryReport
}

// Journal makes locally admitted transactions survive a crash of the node:
// a transaction is acknowledged to its client only once its record is
// durable (Record), and a restarted node gives them back to its pool
// (OpenJournal). A record is kept until the NonceSource reports its
// sender's nonce used (Maintain): the transaction, or another with the same
// nonce, was committed. The journal is a wal.Log (CRC-checked records,
// group commit, torn-tail recovery) in its own directory.
//
// A Journal is safe for concurrent use.
type Journal struct {
	log    *wal.Log
	nonces NonceSource
	opts   JournalOptions

	mu sync.Mutex
	// next is the retention index of the next record (one per record).
	next uint64
	// live holds the records not yet known to be done, in retention order.
	live []journaled
	// truncated is the retention index of the last truncation.
	truncated uint64
	stats     JournalStats
}

type journaled struct {
	retention uint64
	tx        ordering.Tx
}

// JournalStats are the journal's counters since it was opened.
type JournalStats struct {
	// Recorded counts records appended (Compacted of them copies).
	Recorded, Compacted uint64
	// Done counts records dropped because their nonce was used.
	Done uint64
	// Live is the number of records not yet done.
	Live int
}

// OpenJournal opens (or creates) the journal in dir and returns the
// transactions it holds whose nonce nonces does not report used, in the
// order they were recorded. The caller adds them to its pool (without
// recording them again) once the node's state is recent enough for the
// pool to recognise the ones committed meanwhile.
func OpenJournal(dir string, nonces NonceSource, opts JournalOptions) (*Journal, []ordering.Tx, JournalReport, error) {
	if nonces == nil {
		return nil, nil, JournalReport{}, errors.New("mempool: journal needs a NonceSource")
	}
	if opts.CompactAfter == 0 {
		return nil, nil, JournalReport{}, errors.New("mempool: journal CompactAfter must be positive")
	}
	wopts := wal.DefaultOptions()
	if opts.SegmentSize > 0 {
		wopts.SegmentSize = opts.SegmentSize
	}
	wopts.SyncEvery = opts.SyncEvery
	log, recs, wrep, err := wal.Open(dir, wopts)
	if err != nil {
		return nil, nil, JournalReport{}, fmt.Errorf("mempool: open journal: %w", err)
	}
	j := &Journal{log: log, nonces: nonces, opts: opts}
	rep := JournalReport{Records: len(recs), WAL: wrep}
	var pending []ordering.Tx
	// A compaction copies records forward before it truncates; the
	// originals may survive in a segment that also holds newer records.
	// The newest copy counts: it is the one the log must keep.
	seen := map[ordering.TxID]int{}
	for _, r := range recs {
		j.next = max(j.next, r.RetentionIndex+1)
		tx, err := decodeJournalRecord(r.Data)
		if err != nil {
			rep.Undecodable++
			continue
		}
		if !j.pending(tx) {
			continue
		}
		id := tx.ID()
		if i, dup := seen[id]; dup {
			j.live[i].retention = r.RetentionIndex
			continue
		}
		seen[id] = len(j.live)
		j.live = append(j.live, journaled{retention: r.RetentionIndex, tx: tx})
		pending = append(pending, tx)
	}
	slices.SortFunc(j.live, func(a, b journaled) int { return cmp.Compare(a.retention, b.retention) })
	rep.Pending = len(pending)
	return j, pending, rep, nil
}

func encodeJournalRecord(tx ordering.Tx) ([]byte, error) {
	b, err := mir.Marshal(tx)
	if err != nil {
		return nil, err
	}
	return append([]byte{journalVersion}, b...), nil
}

func decodeJournalRecord(data []byte) (ordering.Tx, error) {
	if len(data) == 0 || data[0] != journalVersion {
		return ordering.Tx{}, errors.New("mempool: not a journal record")
	}
	var tx ordering.Tx
	if err := mir.Unmarshal(data[1:], &tx); err != nil {
		return ordering.Tx{}, fmt.Errorf("mempool: journal record: %w", err)
	}
	if err := tx.Check(); err != nil {
		return ordering.Tx{}, fmt.Errorf("mempool: journal record: %w", err)
	}
	// Only what encodeJournalRecord writes is a record (the decoder also
	// takes, say, an array of small integers for a byte string).
	if b, err := encodeJournalRecord(tx); err != nil || !bytes.Equal(b, data) {
		return ordering.Tx{}, errors.New("mempool: journal record: not in canonical form")
	}
	return tx, nil
}

// pending reports whether tx's nonce is not yet used.
func (j *Journal) pending(tx ordering.Tx) bool {
	return j.nonces.NextNonce(tx.Sender) <= tx.Nonce
}

// Record appends tx and calls done once its record is durable (nil) or
// could not be written. done runs on the journal's writer goroutine and must
// not block.
func (j *Journal) Record(tx ordering.Tx, done func(error)) {
	data, err := encodeJournalRecord(tx)
	if err != nil {
		done(fmt.Errorf("mempool: journal: %w", err))
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	r := j.next
	j.next++
	j.live = append(j.live, journaled{retention: r, tx: tx})
	j.stats.Recorded++
	// Queued under mu, so records reach the log in retention order.
	j.log.AppendAsync(data, r, func(_ uint64, err error) { done(err) })
}

// Maintain drops the records whose nonce is used, copies the oldest pending
// records forward once they are CompactAfter records old, and truncates the
// log below the oldest record still needed. Call it periodically, from one
// goroutine at a time; it costs one NonceSource lookup per live record,
// made without holding up Record.
func (j *Journal) Maintain() error {
	j.mu.Lock()
	n := len(j.live)
	check := slices.Clone(j.live)
	j.mu.Unlock()
	done := make([]bool, n)
	for i, e := range check {
		done[i] = !j.pending(e.tx)
	}
	j.mu.Lock()
	// Only Maintain removes records, so the first n are still check; the
	// ones recorded meanwhile follow them.
	live := j.live[:0]
	for i, e := range j.live {
		if i < n && done[i] {
			j.stats.Done++
			continue
		}
		live = append(live, e)
	}
	clear(j.live[len(live):])
	j.live = live
	// Copy forward what is too old, so that it stops holding the log.
	var copies []journaled
	for len(j.live) > 0 && j.next-j.live[0].retention >= j.opts.CompactAfter {
		copies = append(copies, j.live[0])
		j.live = j.live[1:]
	}
	var data [][]byte
	for i := range copies {
		d, err := encodeJournalRecord(copies[i].tx)
		if err != nil {
			j.mu.Unlock()
			return fmt.Errorf("mempool: journal compaction: %w", err)
		}
		copies[i].retention = j.next
		j.next++
		data = append(data, d)
	}
	j.live = append(j.live, copies...)
	j.stats.Compacted += uint64(len(copies))
	j.stats.Recorded += uint64(len(copies))
	low := j.next
	if len(j.live) > 0 {
		low = j.live[0].retention
	}
	results := make(chan error, len(copies)+1)
	for i := range copies {
		j.log.AppendAsync(data[i], copies[i].retention, func(_ uint64, err error) { results <- err })
	}
	var truncate bool
	if low > j.truncated {
		j.truncated, truncate = low, true
		j.log.TruncateAsync(low, func(err error) { results <- err })
	}
	j.mu.Unlock()
	// The copies are appended (and durable) before the truncation that
	// drops their originals: the writer runs requests in order.
	waits := len(copies)
	if truncate {
		waits++
	}
	var errs []error
	for range waits {
		if err := <-results; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("mempool: journal maintenance: %w", errors.Join(errs...))
	}
	return nil
}

// Stats returns the journal's counters.
func (j *Journal) Stats() JournalStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.Live = len(j.live)
	return s
}

// Close waits for the queued records and closes the log.
func (j *Journal) Close() error { return j.log.Close() }
