package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by operations on a closed Log.
var ErrClosed = errors.New("wal: log closed")

// ErrTooLarge is returned by Append for data above Options.MaxRecordSize.
var ErrTooLarge = errors.New("wal: record too large")

const (
	metaName      = "meta"
	segmentSuffix = ".wal"
	tmpSuffix     = ".tmp"
)

// Options are the Log's parameters.
type Options struct {
	// SegmentSize: once appending a record would grow the active segment
	// beyond this many bytes, a new segment is started (a segment holds at
	// least one record whatever its size).
	SegmentSize int64
	// MaxRecordSize is the largest record data Append accepts, at most
	// MaxRecordSizeLimit.
	MaxRecordSize int
	// SyncEvery, if positive, spaces group commits at least this far apart:
	// requests that arrive within it of the previous commit wait for the
	// next one. It trades acknowledgement latency for fewer fsyncs (each
	// costs CPU and device time), for logs whose appends are not on a
	// latency-critical path. Zero commits as soon as requests are queued.
	SyncEvery time.Duration

	// syncFile makes a segment file's data durable; nil means
	// (*os.File).Sync. Only tests set it (export_test.go).
	syncFile func(*os.File) error
	// queued, if set (tests only), is called with the number of requests
	// waiting for the writer each time one is queued.
	queued func(n int)
}

// DefaultOptions returns 64 MiB segments and records of up to 8 MiB.
func DefaultOptions() Options {
	return Options{SegmentSize: 64 << 20, MaxRecordSize: 8 << 20}
}

func (o Options) validate() error {
	if o.SegmentSize < SegmentHeaderSize {
		return fmt.Errorf("wal: SegmentSize %d is below the header size %d", o.SegmentSize, SegmentHeaderSize)
	}
	if o.MaxRecordSize <= 0 || o.MaxRecordSize > MaxRecordSizeLimit {
		return fmt.Errorf("wal: MaxRecordSize %d not in (0, %d]", o.MaxRecordSize, MaxRecordSizeLimit)
	}
	if o.SyncEvery < 0 || o.SyncEvery > time.Second {
		return fmt.Errorf("wal: SyncEvery %v not in [0, 1s]", o.SyncEvery)
	}
	return nil
}

// RecoveryReport says what Open found on disk and what it repaired.
type RecoveryReport struct {
	// Segments is the number of segment files kept.
	Segments int
	// Records is the number of records returned, Discarded the number of
	// intact records left out because a truncation discarded them.
	Records, Discarded int
	// FirstIndex and LastIndex are the indexes of the first and last intact
	// record on disk (both 0 if there is none); NextIndex is the index the
	// next append gets.
	FirstIndex, LastIndex, NextIndex uint64
	// RemovedSegments lists segment files deleted because a truncation had
	// discarded them before a crash interrupted their removal.
	RemovedSegments []string

	// TailTruncated is set when the final segment's tail was damaged and the
	// file was cut at TailOffset, the end of its last intact record.
	TailTruncated bool
	// TailSegment is the name of the segment whose tail was cut.
	TailSegment string
	TailOffset  int64
	// DroppedBytes is the number of bytes cut.
	DroppedBytes int64
	// DroppedRecords estimates the records lost in the cut tail: the
	// damaged frame (unless the tail is all zeros) plus the intact frames
	// found after it. Only records never acknowledged can be in a torn tail.
	DroppedRecords int
	// Reason says why the tail was cut (one of the Reason constants).
	Reason string
}

// String summarises the report in one line.
func (r RecoveryReport) String() string {
	s := fmt.Sprintf("%d segments, %d records [%d, %d], %d discarded by truncation, next index %d",
		r.Segments, r.Records, r.FirstIndex, r.LastIndex, r.Discarded, r.NextIndex)
	if len(r.RemovedSegments) > 0 {
		s += fmt.Sprintf(", removed %d truncated segments", len(r.RemovedSegments))
	}
	if r.TailTruncated {
		s += fmt.Sprintf(", cut %s at offset %d: %s, dropped %d bytes (~%d records)",
			r.TailSegment, r.TailOffset, r.Reason, r.DroppedBytes, r.DroppedRecords)
	}
	return s
}

// Stats are counters of a Log since it was opened.
type Stats struct {
	// Appends is the number of records made durable.
	Appends uint64
	// Syncs is the number of fsyncs of segment data (one per group commit,
	// plus one per segment rotation).
	Syncs uint64
	// Batches is the number of group commits that wrote records.
	Batches uint64
	// Bytes is the number of record bytes written (frames included).
	Bytes uint64
	// Truncations counts effective truncations, SegmentsRemoved the segment
	// files they deleted.
	Truncations, SegmentsRemoved uint64
}

// Log is a segmented, group-committed write-ahead log in one directory. Its
// methods are safe for concurrent use. One writer goroutine, started by Open
// and stopped by Close, performs all writes.
type Log struct {
	// dir is the log's directory; opts its validated options (syncFile set).
	dir  string
	opts Options

	// mu protects queue, closing and err.
	mu sync.Mutex
	// cond is signalled when queue becomes non-empty or closing is set.
	cond *sync.Cond
	// queue holds the requests not yet taken by the writer, in submission
	// order.
	queue []*request
	// closing is set by Close; no request is accepted afterwards.
	closing bool
	// err is the first write error; once set every request fails with it.
	err error
	// done is closed when the writer goroutine has exited.
	done chan struct{}

	// The fields below are owned by the writer goroutine (and by Open
	// before the writer starts).

	// segs are the segment files on disk, oldest first, with contiguous
	// indexes; the last one is the active segment, open as f.
	segs []segment
	f    *os.File
	// size is the number of bytes of the active segment written to f.
	size int64
	// next is the index the next append gets: segs[last].first+segs[last].count.
	next uint64
	// meta is the last truncation point persisted (zero if none).
	meta meta
	// buf holds framed records not yet written to f.
	buf []byte
	// unsynced holds whether f has data written but not yet synced.
	unsynced bool
	// staged is the number of records written or staged since the last sync.
	staged uint64

	// stats are the counters behind Stats; they only grow.
	stats struct {
		appends, syncs, batches, bytes, truncations, removed atomic.Uint64
	}
}

// segment describes one segment file.
type segment struct {
	// first is the index of the segment's first record (from its name and
	// header, which agree).
	first uint64
	// count is the number of records in the segment (written or staged in
	// buf for the active one).
	count uint64
	// maxRetention is the largest retention index of its records.
	maxRetention uint64
}

func (s segment) name() string { return segmentName(s.first) }

func segmentName(first uint64) string { return fmt.Sprintf("%016x%s", first, segmentSuffix) }

// parseSegmentName returns the first index a segment file name states.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	return v, err == nil
}

type requestKind uint8

const (
	reqAppend requestKind = iota
	reqTruncate
	reqBarrier
)

// request is one queued operation; done is called by the writer once it is
// complete (durable, for an append) or failed.
type request struct {
	kind requestKind
	// data and retention are the record to append (retention is the
	// truncation point for reqTruncate).
	data      []byte
	retention uint64
	// index is the index the writer gave the appended record (0 until then).
	index uint64
	// done is called exactly once, by the writer (or by submit on refusal).
	done func(index uint64, err error)
}

// Open opens the log in dir, creating it if needed, and recovers it: it
// returns the intact records that no truncation discarded, in index order,
// and a report of what it found and repaired. A damaged tail of the final
// segment is cut (the report says what was dropped); any other damage is an
// error wrapping ErrCorrupt and leaves the files as they are.
func Open(dir string, opts Options) (*Log, []Record, RecoveryReport, error) {
	var rep RecoveryReport
	if err := opts.validate(); err != nil {
		return nil, nil, rep, err
	}
	if opts.syncFile == nil {
		opts.syncFile = (*os.File).Sync
	}
	l := &Log{dir: dir, opts: opts, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	recs, err := l.recover(&rep)
	if err != nil {
		if l.f != nil {
			_ = l.f.Close()
		}
		return nil, nil, rep, err
	}
	go l.run()
	return l, recs, rep, nil
}

func (l *Log) recover(rep *RecoveryReport) ([]Record, error) {
	if err := os.MkdirAll(l.dir, 0o750); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var firsts []uint64
	dirty := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			// A segment or metadata file whose creation a crash interrupted.
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, fmt.Errorf("wal: %w", err)
			}
			dirty = true
			continue
		}
		if first, ok := parseSegmentName(name); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })

	hasMeta := false
	if b, err := os.ReadFile(filepath.Join(l.dir, metaName)); err == nil {
		if l.meta, err = decodeMeta(b); err != nil {
			return nil, err
		}
		hasMeta = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("wal: %w", err)
	}

	// Finish an interrupted truncation: segments before keepFrom are gone.
	if hasMeta {
		for len(firsts) > 0 && firsts[0] < l.meta.keepFrom {
			name := segmentName(firsts[0])
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, fmt.Errorf("wal: %w", err)
			}
			rep.RemovedSegments = append(rep.RemovedSegments, name)
			firsts = firsts[1:]
			dirty = true
		}
		if len(firsts) == 0 || firsts[0] != l.meta.keepFrom {
			return nil, fmt.Errorf("%w: metadata says the log starts at index %d but segment %s is missing", ErrCorrupt, l.meta.keepFrom, segmentName(l.meta.keepFrom))
		}
	}
	if dirty {
		if err := syncDir(l.dir); err != nil {
			return nil, err
		}
	}

	if len(firsts) == 0 {
		if err := l.createSegment(1); err != nil {
			return nil, err
		}
		rep.Segments, rep.NextIndex = 1, 1
		return nil, nil
	}

	var recs []Record
	for i, first := range firsts {
		last := i == len(firsts)-1
		name := segmentName(first)
		path := filepath.Join(l.dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		h, err := decodeSegmentHeader(b)
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", name, err)
		}
		if h.first != first {
			return nil, fmt.Errorf("%w: segment %s: header says first index %d", ErrCorrupt, name, h.first)
		}
		if i > 0 && first != l.next {
			return nil, fmt.Errorf("%w: segment %s: expected a segment starting at index %d", ErrCorrupt, name, l.next)
		}
		segRecs, good, dmg := scanRecords(b[SegmentHeaderSize:], first)
		if dmg != nil && !last {
			return nil, fmt.Errorf("%w: segment %s (not the last one): %s at offset %d", ErrCorrupt, name, dmg.reason, dmg.offset)
		}
		size := int64(SegmentHeaderSize + good)
		if dmg != nil {
			if err := cutTail(path, size, l.opts.syncFile); err != nil {
				return nil, err
			}
			rep.TailTruncated = true
			rep.TailSegment = name
			rep.TailOffset = size
			rep.DroppedBytes = int64(len(b)) - size
			rep.DroppedRecords = dmg.frames
			rep.Reason = dmg.reason
		}
		seg := segment{first: first, count: uint64(len(segRecs))}
		for _, r := range segRecs {
			seg.maxRetention = max(seg.maxRetention, r.RetentionIndex)
			if hasMeta && r.Index < l.meta.boundary && r.RetentionIndex < l.meta.retention {
				rep.Discarded++
				continue
			}
			r.Data = append([]byte(nil), r.Data...)
			recs = append(recs, r)
		}
		if len(segRecs) > 0 {
			if rep.FirstIndex == 0 {
				rep.FirstIndex = first
			}
			rep.LastIndex = segRecs[len(segRecs)-1].Index
		}
		l.segs = append(l.segs, seg)
		l.next = first + seg.count
		l.size = size
	}
	if hasMeta && l.next < l.meta.boundary {
		return nil, fmt.Errorf("%w: log ends before index %d, which a truncation found durable", ErrCorrupt, l.meta.boundary)
	}
	f, err := os.OpenFile(filepath.Join(l.dir, l.segs[len(l.segs)-1].name()), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	l.f = f
	rep.Segments = len(l.segs)
	rep.Records = len(recs)
	rep.NextIndex = l.next
	return recs, nil
}

// cutTail truncates the file at path to size and makes that durable.
func cutTail(path string, size int64, sync func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: cut damaged tail of %s: %w", path, err)
	}
	return nil
}

// syncDir makes the creation, renaming and removal of dir's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data: write a temporary file, sync
// it, rename it over name, sync the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		return fmt.Errorf("wal: write %s: %w", name, err)
	}
	return syncDir(dir)
}

// createSegment creates a segment starting at first (temporary file, header,
// sync, rename, directory sync) and makes it the active segment.
func (l *Log) createSegment(first uint64) error {
	name := segmentName(first)
	tmp := filepath.Join(l.dir, name+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	_, err = f.Write(encodeSegmentHeader(first))
	if err == nil {
		err = l.opts.syncFile(f)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(l.dir, name))
	}
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("wal: create segment %s: %w", name, err)
	}
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			_ = f.Close()
			return fmt.Errorf("wal: %w", err)
		}
	}
	l.f = f
	l.size = SegmentHeaderSize
	l.next = first
	l.segs = append(l.segs, segment{first: first})
	return nil
}

// Append appends a record with data and the retention index and returns its
// index once it is durable. Concurrent appends are committed together.
func (l *Log) Append(data []byte, retention uint64) (uint64, error) {
	type result struct {
		index uint64
		err   error
	}
	ch := make(chan result, 1)
	l.AppendAsync(data, retention, func(index uint64, err error) { ch <- result{index, err} })
	r := <-ch
	return r.index, r.err
}

// AppendAsync queues an append and returns at once. done is called with the
// record's index once it is durable, or with an error; calls of done follow
// the order of submission (of appends, truncations and syncs alike). done
// runs on the writer goroutine and must not block for long; data must not be
// modified until done is called.
func (l *Log) AppendAsync(data []byte, retention uint64, done func(index uint64, err error)) {
	if len(data) > l.opts.MaxRecordSize {
		done(0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), l.opts.MaxRecordSize))
		return
	}
	l.submit(&request{kind: reqAppend, data: data, retention: retention, done: done})
}

// Truncate discards the records appended before it whose retention index is
// below retention, and deletes the segment files that hold only such records
// (oldest first: a segment is deleted only with all the segments before it).
// Discarded records are never returned by Open again. A retention index not
// above that of an earlier truncation changes nothing. Records appended
// before Truncate are durable when it returns.
func (l *Log) Truncate(retention uint64) error {
	return l.wait(func(done func(uint64, error)) { l.TruncateAsync(retention, func(err error) { done(0, err) }) })
}

// TruncateAsync queues a Truncate; done is called as for AppendAsync.
func (l *Log) TruncateAsync(retention uint64, done func(err error)) {
	l.submit(&request{kind: reqTruncate, retention: retention, done: func(_ uint64, err error) { done(err) }})
}

// Sync returns once every record appended before it is durable.
func (l *Log) Sync() error {
	return l.wait(func(done func(uint64, error)) { l.SyncAsync(func(err error) { done(0, err) }) })
}

// SyncAsync queues a Sync; done is called as for AppendAsync.
func (l *Log) SyncAsync(done func(err error)) {
	l.submit(&request{kind: reqBarrier, done: func(_ uint64, err error) { done(err) }})
}

func (l *Log) wait(start func(done func(uint64, error))) error {
	ch := make(chan error, 1)
	start(func(_ uint64, err error) { ch <- err })
	return <-ch
}

func (l *Log) submit(r *request) {
	l.mu.Lock()
	if l.closing || l.err != nil {
		err := l.err
		if err == nil {
			err = ErrClosed
		}
		l.mu.Unlock()
		r.done(0, err)
		return
	}
	l.queue = append(l.queue, r)
	if len(l.queue) == 1 {
		l.cond.Signal()
	}
	n := len(l.queue)
	l.mu.Unlock()
	if l.opts.queued != nil {
		l.opts.queued(n)
	}
}

// Close completes the requests already queued, stops the writer and closes
// the files. It returns the log's write error, if any.
func (l *Log) Close() error {
	l.mu.Lock()
	l.closing = true
	l.cond.Signal()
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Err returns the write error that made the log unusable, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Appends:         l.stats.appends.Load(),
		Syncs:           l.stats.syncs.Load(),
		Batches:         l.stats.batches.Load(),
		Bytes:           l.stats.bytes.Load(),
		Truncations:     l.stats.truncations.Load(),
		SegmentsRemoved: l.stats.removed.Load(),
	}
}

// run is the writer goroutine: it takes every queued request, processes them
// in order with one write and one fsync, and acknowledges them.
func (l *Log) run() {
	defer close(l.done)
	var spare []*request
	var last time.Time // end of the previous commit, with SyncEvery
	for {
		if l.opts.SyncEvery > 0 {
			// Let requests gather until the window since the last commit
			// is over (Close does not wait for it: closing is checked
			// below, and the queue is then committed at once).
			if wait := l.opts.SyncEvery - time.Since(last); wait > 0 {
				l.mu.Lock()
				closing := l.closing
				l.mu.Unlock()
				if !closing {
					time.Sleep(wait)
				}
			}
		}
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closing {
			l.cond.Wait()
		}
		if len(l.queue) == 0 {
			l.mu.Unlock()
			if err := l.f.Close(); err != nil {
				l.fail(fmt.Errorf("wal: close: %w", err))
			}
			return
		}
		batch := l.queue
		l.queue = spare[:0]
		l.mu.Unlock()
		l.process(batch)
		if l.opts.SyncEvery > 0 {
			last = time.Now()
		}
		clear(batch)
		spare = batch
	}
}

// process performs a batch of requests in order: appends are staged, and
// committed (write, fsync, acknowledge) before a truncation and at the end.
func (l *Log) process(batch []*request) {
	var acks []*request
	ack := func(err error) {
		for _, r := range acks {
			r.done(r.index, err)
		}
		acks = acks[:0]
	}
	for _, r := range batch {
		if err := l.Err(); err != nil {
			ack(err)
			r.done(0, err)
			continue
		}
		switch r.kind {
		case reqAppend:
			if err := l.stage(r); err != nil {
				l.fail(err)
				ack(err)
				r.done(0, err)
				continue
			}
			acks = append(acks, r)
		case reqBarrier:
			acks = append(acks, r)
		case reqTruncate:
			err := l.commit()
			if err != nil {
				l.fail(err)
				ack(err)
				r.done(0, err)
				continue
			}
			ack(nil)
			if err := l.truncate(r.retention); err != nil {
				l.fail(err)
				r.done(0, err)
				continue
			}
			r.done(0, nil)
		}
	}
	err := l.commit()
	if err != nil {
		l.fail(err)
	}
	ack(err)
}

// fail records the log's first write error.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// stage frames r into buf, first rotating to a new segment if the record
// does not fit into the active one.
func (l *Log) stage(r *request) error {
	frame := int64(FrameHeaderSize + RecordHeaderSize + len(r.data))
	active := &l.segs[len(l.segs)-1]
	if active.count > 0 && l.size+int64(len(l.buf))+frame > l.opts.SegmentSize {
		if err := l.rotate(); err != nil {
			return err
		}
		active = &l.segs[len(l.segs)-1]
	}
	r.index = l.next
	l.buf = appendFrame(l.buf, r.index, r.retention, r.data)
	l.next++
	l.staged++
	active.count++
	active.maxRetention = max(active.maxRetention, r.retention)
	return nil
}

// commit writes the staged records and syncs the active segment.
func (l *Log) commit() error {
	if len(l.buf) > 0 {
		n, err := l.f.Write(l.buf)
		l.size += int64(n)
		if err != nil {
			return fmt.Errorf("wal: write %s: %w", l.segs[len(l.segs)-1].name(), err)
		}
		l.stats.bytes.Add(uint64(n))
		l.stats.batches.Add(1)
		l.unsynced = true
		if cap(l.buf) > 4<<20 {
			l.buf = nil
		} else {
			l.buf = l.buf[:0]
		}
	}
	if !l.unsynced {
		return nil
	}
	if err := l.opts.syncFile(l.f); err != nil {
		return fmt.Errorf("wal: sync %s: %w", l.segs[len(l.segs)-1].name(), err)
	}
	l.stats.syncs.Add(1)
	l.unsynced = false
	l.stats.appends.Add(l.staged)
	l.staged = 0
	return nil
}

// rotate commits the active segment and starts a new one.
func (l *Log) rotate() error {
	if err := l.commit(); err != nil {
		return err
	}
	return l.createSegment(l.next)
}

// truncate persists the truncation point and deletes the segments holding
// only discarded records. Staged records must have been committed.
func (l *Log) truncate(retention uint64) error {
	if retention <= l.meta.retention {
		return nil
	}
	boundary := l.next
	k := 0
	for k < len(l.segs) && l.segs[k].maxRetention < retention {
		k++
	}
	if k == len(l.segs) {
		if l.segs[k-1].count > 0 {
			// Every record is discarded: start a new segment so that the
			// active one can go too.
			if err := l.createSegment(l.next); err != nil {
				return err
			}
		} else {
			k-- // keep the empty active segment
		}
	}
	m := meta{retention: retention, boundary: boundary, keepFrom: l.segs[k].first}
	if err := writeFileAtomic(l.dir, metaName, encodeMeta(m)); err != nil {
		return err
	}
	l.meta = m
	for _, s := range l.segs[:k] {
		if err := os.Remove(filepath.Join(l.dir, s.name())); err != nil {
			return fmt.Errorf("wal: remove truncated segment: %w", err)
		}
	}
	l.segs = append(l.segs[:0], l.segs[k:]...)
	if k > 0 {
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	l.stats.truncations.Add(1)
	l.stats.removed.Add(uint64(k))
	return nil
}
