package eventlog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Options configure a Writer.
type Options struct {
	// NodeID is the recording node. Required.
	NodeID mir.NodeID
	// Meta is stored in every file header (membership, protocol parameters)
	// for tools that rebuild the node's modules.
	Meta map[string]string
	// Prefix names the files: <Prefix>-000001.mirlog. Default "events".
	Prefix string
	// MaxFileSize is the size in bytes above which the Writer starts a new
	// file. Default 64 MiB.
	MaxFileSize int64
	// QueueEvents bounds the events queued for the background goroutine;
	// Intercept blocks while the queue holds this many. Default 262144.
	QueueEvents int
	// WriteSize is how many encoded bytes the Writer gathers before it
	// hands them to the operating system. Default 256 KiB.
	WriteSize int
	// Linger is how long the background goroutine lets a few queued
	// records wait before it writes them, to write (and wake up) in bulk:
	// a process killed without Flush or Close loses at most the records of
	// the last Linger. Default 2ms.
	Linger time.Duration
	// Hash makes the Writer keep the running hash of its records (Sum).
	Hash bool
	// SyncOnRotate makes the Writer fsync each file it finishes. Without
	// it only Close syncs (the event log is evidence, not state: the OS
	// writes finished files back in the background, and a file a machine
	// crash truncates reads up to its last complete frame).
	SyncOnRotate bool

	// written, if set (tests only), is called on the writer goroutine after
	// each write of records to the file.
	written func()
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 64 << 20
	}
	if o.QueueEvents <= 0 {
		o.QueueEvents = 1 << 18
	}
	if o.WriteSize <= 0 {
		o.WriteSize = 256 << 10
	}
	if o.Linger <= 0 {
		o.Linger = 2 * time.Millisecond
	}
}

// wakeEvents is the number of queued events that wakes the background
// goroutine before its linger time is up.
func (o *Options) wakeEvents() int {
	return min(8192, max(1, o.QueueEvents/8))
}

// item is one intercepted batch waiting to be written.
type item struct {
	index  uint64
	kind   mir.RecordKind
	module mir.ModuleID
	events mir.EventList
}

// Writer records intercepted batches to a directory. It implements
// mir.Interceptor. Intercept, Flush, Err and Close may be called from any
// goroutine; records are numbered in the order Intercept is called.
type Writer struct {
	dir  string
	opts Options

	mu sync.Mutex
	// notFull wakes producers blocked on a full queue; progress wakes Flush.
	notFull, progress sync.Cond
	// wake wakes the background goroutine (capacity 1).
	wake chan struct{}
	// queue holds batches not yet taken by the background goroutine, in
	// index order.
	queue []item
	// spare is the recycled backing array of the previous queue.
	spare []item
	// queued is the number of events in queue and being encoded.
	queued int
	// nextIndex is the index the next record gets.
	nextIndex uint64
	// flushed is the index of the last record handed to the OS.
	flushed uint64
	// flushWaiters is the number of Flush calls waiting.
	flushWaiters int
	// idle is true while the background goroutine waits and nobody has
	// woken it yet.
	idle bool
	// deepSleep is true while the background goroutine waits with no
	// deadline (nothing was pending); the next batch wakes it so that it
	// sets one.
	deepSleep bool
	// closing is set by Close; no batch is accepted after it.
	closing bool
	// err is the first error of the background goroutine; it is sticky.
	err error
	// sum is the hash of all records written, updated after each write.
	sum []byte
	// done is closed when the background goroutine has returned.
	done chan struct{}

	// The fields below belong to the background goroutine.
	enc *encoder
	f   *os.File
	// seq is the sequence number of the current file.
	seq uint64
	// size is the size of the current file including buf.
	size int64
	// records is the number of records in the current file.
	records int
	// buf holds encoded frames not yet written.
	buf []byte
	// lastIndex is the index of the last record in buf or the file.
	lastIndex uint64
	// osIndex is the index of the last record handed to the OS.
	osIndex uint64
	h       hash.Hash
	resumed bool
}

// NewWriter starts a log in dir (created if needed) and the goroutine that
// writes it. If dir already holds a log with the same prefix, the Writer
// continues it: a new file, numbered after the last, whose first record
// follows the last complete record found (so a node that restarts keeps one
// log). The log must belong to the same node.
func NewWriter(dir string, opts Options) (*Writer, error) {
	opts.setDefaults()
	if opts.NodeID == "" {
		return nil, errors.New("eventlog: Options.NodeID is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	w := &Writer{
		dir:       dir,
		opts:      opts,
		nextIndex: 1,
		done:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
		enc:       newEncoder(),
		buf:       make([]byte, 0, opts.WriteSize+opts.WriteSize/4),
	}
	w.notFull.L, w.progress.L = &w.mu, &w.mu
	if opts.Hash {
		w.h = sha256.New()
	}
	lastSeq, lastIndex, err := scanExisting(dir, opts.Prefix, opts.NodeID)
	if err != nil {
		return nil, err
	}
	w.seq = lastSeq
	w.nextIndex = lastIndex + 1
	w.lastIndex, w.osIndex, w.flushed = lastIndex, lastIndex, lastIndex
	w.resumed = lastSeq > 0
	if err := w.openFile(w.nextIndex); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// scanExisting finds the last file and the last complete record of an
// existing log.
func scanExisting(dir, prefix string, node mir.NodeID) (lastSeq, lastIndex uint64, err error) {
	files, err := listLogFiles(dir)
	if err != nil {
		return 0, 0, err
	}
	group := files[prefix]
	if len(group) == 0 {
		return 0, 0, nil
	}
	lastSeq = group[len(group)-1].seq
	// The last file with a valid header determines where the log stands.
	for i := len(group) - 1; i >= 0; i-- {
		r, err := Open(Filter{}, group[i].path)
		if err != nil {
			return 0, 0, err
		}
		n, last := 0, uint64(0)
		for {
			rec, err := r.Next()
			if err != nil {
				if err != io.EOF {
					r.Close()
					return 0, 0, err
				}
				break
			}
			n, last = n+1, rec.Index
		}
		hdr, ok := peekHeader(group[i].path)
		r.Close()
		if !ok {
			continue
		}
		if hdr.NodeID != node {
			return 0, 0, fmt.Errorf("eventlog: %s holds the log of node %q, not %q", dir, hdr.NodeID, node)
		}
		if n == 0 {
			last = hdr.FirstIndex - 1
		}
		return lastSeq, last, nil
	}
	return lastSeq, 0, nil
}

// openFile starts file w.seq+1 whose first record has index first.
func (w *Writer) openFile(first uint64) error {
	w.seq++
	path := filepath.Join(w.dir, fileName(w.opts.Prefix, w.seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	hdr := Header{
		Version:    Version,
		NodeID:     w.opts.NodeID,
		Seq:        w.seq,
		FirstIndex: first,
		Resumed:    w.resumed,
		Created:    time.Now().UnixNano(),
		Meta:       w.opts.Meta,
	}
	w.resumed = false
	start, err := encodeFileStart(&hdr)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(start); err != nil {
		f.Close()
		return fmt.Errorf("eventlog: write %s: %w", path, err)
	}
	w.f, w.size, w.records = f, int64(len(start)), 0
	return nil
}

// Intercept queues a batch for writing. It blocks while the queue is full and
// returns the first error the Writer met, if any.
func (w *Writer) Intercept(kind mir.RecordKind, module mir.ModuleID, events mir.EventList) error {
	if len(events) == 0 {
		return nil
	}
	w.mu.Lock()
	for w.queued >= w.opts.QueueEvents && w.err == nil && !w.closing {
		w.notFull.Wait()
	}
	if w.err != nil || w.closing {
		err := w.err
		w.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return err
	}
	w.queue = append(w.queue, item{index: w.nextIndex, kind: kind, module: module, events: events})
	w.nextIndex++
	w.queued += len(events)
	if w.deepSleep || w.queued >= w.opts.wakeEvents() {
		w.wakeLocked()
	}
	w.mu.Unlock()
	return nil
}

// wakeLocked wakes the background goroutine if it sleeps.
func (w *Writer) wakeLocked() {
	if w.idle {
		w.idle, w.deepSleep = false, false
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Flush waits until every batch intercepted so far has been handed to the
// operating system (it survives the death of the process, not of the
// machine) and returns the Writer's error, if any.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.nextIndex - 1
	w.flushWaiters++
	w.wakeLocked()
	for w.flushed < target && w.err == nil && !w.closing {
		w.progress.Wait()
	}
	w.flushWaiters--
	if w.err != nil {
		return w.err
	}
	if w.flushed < target {
		return ErrClosed
	}
	return nil
}

// Err returns the first error the Writer met, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Records returns the number of records intercepted so far (including those
// of earlier runs the Writer continues).
func (w *Writer) Records() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextIndex - 1
}

// Sum returns the SHA-256 over the canonical encodings of the records this
// Writer wrote (see Hasher; a Writer that continues a log hashes only its
// own records); nil unless Options.Hash is set. Call it after Flush or
// Close.
func (w *Writer) Sum() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.sum...)
}

// Close writes everything queued, syncs the file to disk and closes it. It
// returns the first error the Writer met. Close may be called more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closing = true
	w.wakeLocked()
	w.notFull.Broadcast()
	w.progress.Broadcast()
	w.mu.Unlock()
	<-w.done
	return w.Err()
}

// run is the background goroutine. It sleeps until enough events are
// queued, Flush or Close asks, or the linger time of queued or buffered
// records is up; then it encodes everything queued and, unless more work is
// urgent, hands what it encoded to the OS.
func (w *Writer) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	expired := false
	for {
		w.mu.Lock()
		urgent := expired || w.closing || w.flushWaiters > 0
		if len(w.queue) > 0 && (urgent || w.queued >= w.opts.wakeEvents()) {
			w.drainLocked() // unlocks and relocks
			w.mu.Unlock()
			continue
		}
		if len(w.queue) == 0 && urgent && len(w.buf) > 0 && w.err == nil {
			w.mu.Unlock()
			err := w.writeOut()
			w.mu.Lock()
			w.setErrLocked(err)
			w.publishLocked()
			w.mu.Unlock()
			continue
		}
		if w.closing && len(w.queue) == 0 {
			w.mu.Unlock()
			break
		}
		// Nothing to do now: sleep, with a deadline if records wait.
		lingering := len(w.queue) > 0 || len(w.buf) > 0 && w.err == nil
		w.idle, w.deepSleep = true, !lingering
		w.mu.Unlock()
		expired = false
		if lingering {
			timer.Reset(w.opts.Linger)
			select {
			case <-w.wake:
				timer.Stop()
			case <-timer.C:
				expired = true
			}
		} else {
			<-w.wake
		}
		w.mu.Lock()
		w.idle, w.deepSleep = false, false
		w.mu.Unlock()
	}
	// Closing: flush, sync, close. After an error nothing more is written:
	// the file ends at the last frame written in full.
	var err error
	if w.Err() == nil {
		err = w.writeOut()
		if err == nil {
			err = w.f.Sync()
		}
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("eventlog: close: %w", cerr)
	}
	w.mu.Lock()
	w.setErrLocked(err)
	w.publishLocked()
	w.mu.Unlock()
}

// drainLocked takes the queue and encodes it (without the lock). Called and
// returns with w.mu held.
func (w *Writer) drainLocked() {
	batch := w.queue
	w.queue = w.spare[:0]
	failed := w.err != nil
	w.mu.Unlock()

	var err error
	n := 0
	for i := range batch {
		n += len(batch[i].events)
		if err == nil && !failed {
			err = w.writeItem(&batch[i])
		}
	}
	clear(batch)

	w.mu.Lock()
	w.spare = batch[:0]
	w.queued -= n
	w.setErrLocked(err)
	w.publishLocked()
	w.notFull.Broadcast()
}

func (w *Writer) setErrLocked(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.notFull.Broadcast()
		w.progress.Broadcast()
	}
}

// publishLocked announces that everything up to osIndex reached the OS.
func (w *Writer) publishLocked() {
	if w.err == nil {
		w.flushed = w.osIndex
		if w.h != nil {
			w.sum = w.h.Sum(w.sum[:0])
		}
	}
	w.progress.Broadcast()
}

// writeItem encodes one record into buf, rotating files as needed.
func (w *Writer) writeItem(it *item) error {
	start := len(w.buf)
	w.buf = append(w.buf, make([]byte, frameHeaderSize)...)
	var err error
	w.buf, err = w.enc.appendRecord(w.buf, it.index, w.opts.NodeID, it.kind, it.module, it.events)
	if err != nil {
		w.buf = w.buf[:start]
		return fmt.Errorf("eventlog: record %d: %w", it.index, err)
	}
	payload := w.buf[start+frameHeaderSize:]
	if len(payload) > MaxFrameSize {
		w.buf = w.buf[:start]
		return fmt.Errorf("eventlog: record %d: %d bytes exceed the maximum frame size", it.index, len(payload))
	}
	putFrameHeader(w.buf[start:], payload)
	if w.h != nil {
		w.h.Write(payload)
	}
	frameLen := int64(len(w.buf) - start)
	if w.records > 0 && w.size+frameLen > w.opts.MaxFileSize {
		if err := w.rotate(start, it.index); err != nil {
			return err
		}
	}
	w.size += frameLen
	w.records++
	w.lastIndex = it.index
	if len(w.buf) >= w.opts.WriteSize {
		return w.writeOut()
	}
	return nil
}

// rotate writes buf[:split] to the current file, closes it, and
// starts a new file whose first record is first (the frame in buf[split:]).
func (w *Writer) rotate(split int, first uint64) error {
	if _, err := w.f.Write(w.buf[:split]); err != nil {
		return fmt.Errorf("eventlog: write: %w", err)
	}
	w.osIndex = first - 1
	n := copy(w.buf, w.buf[split:])
	w.buf = w.buf[:n]
	if w.opts.SyncOnRotate {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("eventlog: sync: %w", err)
		}
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("eventlog: close: %w", err)
	}
	return w.openFile(first)
}

// writeOut hands buf to the operating system.
func (w *Writer) writeOut() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return fmt.Errorf("eventlog: write: %w", err)
	}
	w.osIndex = w.lastIndex
	if w.opts.written != nil {
		w.opts.written()
	}
	return nil
}
