package eventlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ErrCorrupt is wrapped by every CorruptionError.
var ErrCorrupt = errors.New("eventlog: corrupt log")

// CorruptionError describes the bad frame a log stops at.
type CorruptionError struct {
	// Path is the file holding the bad frame.
	Path string
	// Offset is the byte offset of the frame in the file.
	Offset int64
	// Reason says what is wrong with it.
	Reason string
	// Torn is true when the file ends inside the frame, as after a crash
	// in the middle of a write; false when the bytes themselves are wrong.
	Torn bool
}

// Error describes the corruption.
func (e *CorruptionError) Error() string {
	what := "corrupt frame"
	if e.Torn {
		what = "torn frame"
	}
	return fmt.Sprintf("%s at offset %d of %s: %s", what, e.Offset, e.Path, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// Filter selects records and events. The zero Filter selects everything.
// Node, Kind and the index range select whole records; Module and Type
// narrow a record to the events they select and drop records left empty.
type Filter struct {
	// Node keeps the records of this node only.
	Node mir.NodeID
	// Kind keeps the records of this kind only (0: both).
	Kind mir.RecordKind
	// Module is a module path prefix ("iss" covers "iss/pbft/3"). A record
	// dispatched to (or entering from) a module under it is kept whole;
	// from other records only the events whose destination or source is
	// under it are kept.
	Module mir.ModuleID
	// Type keeps events whose payload type, as named by mir.PayloadName
	// ("events.SendMessage"), or its part after the package ("SendMessage"),
	// equals it, or that carry a payload of that type in a field (the Msg
	// of an events.MessageReceived or events.SendMessage).
	Type string
	// From and To bound the record index range, inclusive; To 0 means no
	// upper bound.
	From, To uint64
}

func (f *Filter) narrows() bool { return f.Module != "" || f.Type != "" }

// underPath reports whether id is prefix or lies below it.
func underPath(id, prefix mir.ModuleID) bool {
	return id == prefix || strings.HasPrefix(string(id), string(prefix)+"/")
}

func (f *Filter) keepEvent(e *mir.Event, wholeModule bool) bool {
	if f.Module != "" && !wholeModule && !underPath(e.Dest, f.Module) && !underPath(e.Src, f.Module) {
		return false
	}
	if f.Type != "" && !f.typeMatches(e.Payload) {
		return false
	}
	return true
}

// typeMatches reports whether the payload, or a payload it carries in a
// field (the Msg of a events.MessageReceived, say), has the filter's type.
func (f *Filter) typeMatches(p any) bool {
	match := func(p any) bool {
		name := mir.PayloadName(p)
		return name == f.Type || name[strings.LastIndexByte(name, '.')+1:] == f.Type
	}
	if match(p) {
		return true
	}
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < v.NumField(); i++ {
		fv := v.Field(i)
		if fv.Kind() == reflect.Interface && !fv.IsNil() && v.Type().Field(i).IsExported() && match(fv.Elem().Interface()) {
			return true
		}
	}
	return false
}

// logFile is one file of a log.
type logFile struct {
	path string
	seq  uint64
}

// listLogFiles returns the log files in dir by prefix, sorted by sequence
// number.
func listLogFiles(dir string) (map[string][]logFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	groups := map[string][]logFile{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		prefix, seq, ok := parseFileName(e.Name())
		if !ok {
			continue
		}
		groups[prefix] = append(groups[prefix], logFile{path: filepath.Join(dir, e.Name()), seq: seq})
	}
	for _, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].seq < g[j].seq })
	}
	return groups, nil
}

// parseFileName splits "<prefix>-<seq>.mirlog".
func parseFileName(name string) (prefix string, seq uint64, ok bool) {
	base, found := strings.CutSuffix(name, FileExt)
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(base[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return base[:i], seq, true
}

// stream is the files of one log, in order.
type stream struct {
	files []logFile
}

// Reader reads records from one or more logs in order: the records of each
// log by index, the logs one after another. It stops reading a log at its
// first bad frame (see Corruptions) unless the next file continues the log
// right after the last good record (the node restarted after a crash; see
// Recovered). A Reader is not safe for concurrent use.
type Reader struct {
	filter  Filter
	streams []*stream
	// si and fi locate the current stream and file.
	si, fi int
	// f is the open file, nil between files.
	f    *os.File
	br   *bufio.Reader
	path string
	// size is the size of f; off the offset of the next frame.
	size, off int64
	// hdr is the header of the current file.
	hdr Header
	// node is the node of the current stream ("" until a header was read).
	node mir.NodeID
	// expect is the index the next record must have; 0 until known.
	expect uint64
	// bad is the bad frame that ended the previous file, pending until the
	// next file shows whether the log continues after it.
	bad     *CorruptionError
	payload []byte
	// onRaw, if set, sees the encoding of every record read, before
	// filtering.
	onRaw func(payload []byte)

	corruptions []*CorruptionError
	recovered   []*CorruptionError
}

// Open returns a Reader over the logs at paths. A path is a log file, or a
// directory holding the files of one or more logs (one per file name
// prefix), or a directory whose subdirectories hold logs (one per node, as
// mirsubnet sample writes them). Files given one by one are grouped into
// logs by directory and prefix.
func Open(f Filter, paths ...string) (*Reader, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no path given", ErrNoLog)
	}
	r := &Reader{filter: f}
	type key struct{ dir, prefix string }
	loose := map[key]*stream{}
	addGroups := func(groups map[string][]logFile) {
		prefixes := make([]string, 0, len(groups))
		for p := range groups {
			prefixes = append(prefixes, p)
		}
		sort.Strings(prefixes)
		for _, p := range prefixes {
			r.streams = append(r.streams, &stream{files: groups[p]})
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("eventlog: %w", err)
		}
		if !st.IsDir() {
			prefix, seq, ok := parseFileName(filepath.Base(p))
			if !ok {
				prefix, seq = filepath.Base(p), 0
			}
			k := key{filepath.Dir(p), prefix}
			s := loose[k]
			if s == nil {
				s = &stream{}
				loose[k] = s
				r.streams = append(r.streams, s)
			}
			s.files = append(s.files, logFile{path: p, seq: seq})
			continue
		}
		groups, err := listLogFiles(p)
		if err != nil {
			return nil, err
		}
		if len(groups) > 0 {
			addGroups(groups)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("eventlog: %w", err)
		}
		found := false
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			groups, err := listLogFiles(filepath.Join(p, e.Name()))
			if err != nil {
				return nil, err
			}
			found = found || len(groups) > 0
			addGroups(groups)
		}
		if !found {
			return nil, fmt.Errorf("%w (*%s) in %s", ErrNoLog, FileExt, p)
		}
	}
	for _, s := range loose {
		sort.SliceStable(s.files, func(i, j int) bool { return s.files[i].seq < s.files[j].seq })
	}
	return r, nil
}

// Header returns the header of the file the last record came from.
func (r *Reader) Header() Header { return r.hdr }

// Corruptions returns the bad frames at which logs stopped early, one per
// log at most.
func (r *Reader) Corruptions() []*CorruptionError { return r.corruptions }

// Tail returns the first of Corruptions, or nil.
func (r *Reader) Tail() *CorruptionError {
	if len(r.corruptions) == 0 {
		return nil
	}
	return r.corruptions[0]
}

// Recovered returns the torn or bad file ends the Reader read past because
// the next file continued the log (a restart after a crash).
func (r *Reader) Recovered() []*CorruptionError { return r.recovered }

// Close closes the open file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Next returns the next record that passes the filter, or io.EOF after the
// last. A bad frame ends its log without an error (see Corruptions); an
// error is returned only when a file cannot be read at all.
func (r *Reader) Next() (Record, error) {
	for {
		if r.si >= len(r.streams) {
			return Record{}, io.EOF
		}
		if r.f == nil {
			if err := r.openNext(); err != nil {
				return Record{}, err
			}
			continue
		}
		rec, ok, err := r.readRecord()
		if err != nil {
			return Record{}, err
		}
		if ok {
			return rec, nil
		}
	}
}

// endStream moves to the next stream, reporting c if non-nil.
func (r *Reader) endStream(c *CorruptionError) {
	r.Close()
	if c != nil {
		r.corruptions = append(r.corruptions, c)
	}
	r.si++
	r.fi = 0
	r.node, r.expect, r.bad = "", 0, nil
}

// fileBad ends the current file at a bad frame; whether the stream goes on
// is decided by the next file's header.
func (r *Reader) fileBad(c *CorruptionError) {
	r.Close()
	if r.bad == nil {
		r.bad = c
	}
	if r.expect == 0 {
		// A log whose first file is bad can only continue from its start.
		r.expect = 1
	}
	r.fi++
}

// openNext opens the next file of the current stream, or ends the stream.
func (r *Reader) openNext() error {
	s := r.streams[r.si]
	if r.fi >= len(s.files) {
		r.endStream(r.bad)
		return nil
	}
	lf := s.files[r.fi]
	f, err := os.Open(lf.path)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("eventlog: %w", err)
	}
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 256<<10)
	} else {
		r.br.Reset(f)
	}
	r.f, r.path, r.size, r.off = f, lf.path, st.Size(), 0
	hdr, c := r.readHeader()
	if c != nil {
		r.fileBad(c)
		return nil
	}
	if r.filter.Node != "" && hdr.NodeID != r.filter.Node {
		r.endStream(nil)
		return nil
	}
	if r.node != "" && hdr.NodeID != r.node {
		r.endStream(r.firstBad(&CorruptionError{Path: lf.path, Reason: fmt.Sprintf("file belongs to node %q, the log to %q", hdr.NodeID, r.node)}))
		return nil
	}
	if r.expect != 0 && hdr.FirstIndex != r.expect {
		r.endStream(r.firstBad(&CorruptionError{Path: lf.path, Reason: fmt.Sprintf("file starts at record %d, the log continues at %d", hdr.FirstIndex, r.expect)}))
		return nil
	}
	if r.bad != nil {
		r.recovered = append(r.recovered, r.bad)
		r.bad = nil
	}
	r.node, r.hdr, r.expect = hdr.NodeID, hdr, hdr.FirstIndex
	// Skip files that end before the index range starts.
	if r.filter.From > 0 && r.fi+1 < len(s.files) {
		if next, ok := peekHeader(s.files[r.fi+1].path); ok && next.FirstIndex <= r.filter.From && next.NodeID == hdr.NodeID && next.FirstIndex > hdr.FirstIndex {
			r.Close()
			r.fi++
			r.expect = next.FirstIndex
		}
	}
	return nil
}

func (r *Reader) firstBad(c *CorruptionError) *CorruptionError {
	if r.bad != nil {
		return r.bad
	}
	return c
}

// peekHeader reads the header of a file.
func peekHeader(path string) (Header, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, false
	}
	r := &Reader{f: f, br: bufio.NewReader(f), path: path, size: st.Size()}
	hdr, c := r.readHeader()
	return hdr, c == nil
}

// readFull reads n bytes at the current offset into r.payload.
func (r *Reader) readFull(n int) ([]byte, error) {
	if cap(r.payload) < n {
		r.payload = make([]byte, n)
	}
	b := r.payload[:n]
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readFrame reads the frame at the current offset. A nil frame with a nil
// CorruptionError means the file ended cleanly.
func (r *Reader) readFrame(limit int) ([]byte, *CorruptionError, error) {
	left := r.size - r.off
	if left == 0 {
		return nil, nil, nil
	}
	bad := func(torn bool, format string, args ...any) ([]byte, *CorruptionError, error) {
		return nil, &CorruptionError{Path: r.path, Offset: r.off, Reason: fmt.Sprintf(format, args...), Torn: torn}, nil
	}
	if left < frameHeaderSize {
		return bad(true, "file ends %d bytes into a frame header", left)
	}
	h, err := r.readFull(frameHeaderSize)
	if err != nil {
		return bad(true, "reading frame header: %v", err)
	}
	length := binary.LittleEndian.Uint32(h[0:4])
	sum := binary.LittleEndian.Uint32(h[4:8])
	switch {
	case length == 0:
		return bad(false, "zero-length frame")
	case int64(length) > int64(limit):
		return bad(false, "frame length %d exceeds the limit %d", length, limit)
	case int64(length) > left-frameHeaderSize:
		return bad(true, "frame of %d bytes but only %d left in the file", length, left-frameHeaderSize)
	}
	payload, err := r.readFull(int(length))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return bad(true, "file shorter than expected: %v", err)
		}
		return nil, nil, fmt.Errorf("eventlog: read %s: %w", r.path, err)
	}
	if got := crc32.Checksum(payload, castagnoli); got != sum {
		return bad(false, "checksum mismatch (stored %08x, computed %08x)", sum, got)
	}
	return payload, nil, nil
}

// readHeader reads the magic and the header frame of the current file.
func (r *Reader) readHeader() (Header, *CorruptionError) {
	bad := func(torn bool, format string, args ...any) (Header, *CorruptionError) {
		return Header{}, &CorruptionError{Path: r.path, Offset: 0, Reason: fmt.Sprintf(format, args...), Torn: torn}
	}
	if r.size < int64(magicSize) {
		want := binary.BigEndian.AppendUint16([]byte(fileMagic), Version)
		if strings.HasPrefix(string(want), string(r.peekAll())) {
			return bad(true, "file ends inside its header (%d bytes)", r.size)
		}
		return bad(false, "not an event log file (bad magic)")
	}
	m, err := r.readFull(magicSize)
	if err != nil {
		return bad(true, "reading magic: %v", err)
	}
	if string(m[:len(fileMagic)]) != fileMagic {
		return bad(false, "not an event log file (bad magic)")
	}
	if v := binary.BigEndian.Uint16(m[len(fileMagic):]); v != Version {
		return bad(false, "unsupported format version %d (this build reads %d)", v, Version)
	}
	r.off = int64(magicSize)
	payload, c, err := r.readFrame(maxHeaderSize)
	if err != nil {
		return bad(true, "%v", err)
	}
	if c != nil {
		c.Offset = 0
		c.Reason = "header: " + c.Reason
		return Header{}, c
	}
	if payload == nil {
		return bad(true, "file ends after its magic")
	}
	var hdr Header
	if err := mir.Unmarshal(payload, &hdr); err != nil {
		return bad(false, "undecodable header: %v", err)
	}
	if hdr.Version != Version || hdr.NodeID == "" || hdr.FirstIndex == 0 {
		return bad(false, "invalid header (version %d, node %q, first index %d)", hdr.Version, hdr.NodeID, hdr.FirstIndex)
	}
	r.off += frameHeaderSize + int64(len(payload))
	return hdr, nil
}

// peekAll returns the (short) rest of the current file.
func (r *Reader) peekAll() []byte {
	b, _ := r.br.Peek(int(r.size))
	return b
}

// readRecord reads the next record of the current file. ok is false when
// the record was filtered out or the file ended.
func (r *Reader) readRecord() (rec Record, ok bool, err error) {
	payload, c, err := r.readFrame(MaxFrameSize)
	if err != nil {
		return Record{}, false, err
	}
	if c != nil {
		r.fileBad(c)
		return Record{}, false, nil
	}
	if payload == nil {
		r.Close()
		r.fi++
		return Record{}, false, nil
	}
	frameOff := r.off
	r.off += frameHeaderSize + int64(len(payload))
	corrupt := func(format string, args ...any) (Record, bool, error) {
		r.off = frameOff
		r.fileBad(&CorruptionError{Path: r.path, Offset: frameOff, Reason: fmt.Sprintf(format, args...)})
		return Record{}, false, nil
	}
	var head recordHead
	if err := mir.Unmarshal(payload, &head); err != nil {
		return corrupt("undecodable record: %v", err)
	}
	if err := head.check(&r.hdr); err != nil {
		return corrupt("%v", err)
	}
	if head.Index != r.expect {
		return corrupt("record has index %d, expected %d", head.Index, r.expect)
	}
	r.expect++
	if r.onRaw != nil {
		r.onRaw(payload)
	}
	f := &r.filter
	if f.To != 0 && head.Index > f.To {
		r.endStream(nil)
		return Record{}, false, nil
	}
	if head.Index < f.From || f.Kind != 0 && head.Kind != f.Kind {
		return Record{}, false, nil
	}
	var evs mir.EventList
	if err := mir.Unmarshal(head.Events, &evs); err != nil {
		return corrupt("undecodable events in record %d: %v", head.Index, err)
	}
	rec = Record{Index: head.Index, NodeID: head.NodeID, Kind: head.Kind, Module: head.Module, Events: evs}
	if f.narrows() {
		whole := f.Module != "" && head.Module != "" && underPath(head.Module, f.Module)
		kept := evs[:0:0]
		for i := range evs {
			if f.keepEvent(&evs[i], whole) {
				kept = append(kept, evs[i])
			}
		}
		if len(kept) == 0 {
			return Record{}, false, nil
		}
		rec.Events = kept
	}
	return rec, true, nil
}

// Log describes one log found by List.
type Log struct {
	// Node is the node the log belongs to.
	Node mir.NodeID
	// Files are the log's files in order.
	Files []string
	// Header is the header of the log's first readable file.
	Header Header
}

// List returns the logs at paths (as Open finds them), one per node and
// prefix, in the order Open reads them. Logs whose files have no readable
// header are left out.
func List(paths ...string) ([]Log, error) {
	r, err := Open(Filter{}, paths...)
	if err != nil {
		return nil, err
	}
	var logs []Log
	for _, s := range r.streams {
		l := Log{}
		found := false
		for _, f := range s.files {
			l.Files = append(l.Files, f.path)
			if !found {
				l.Header, found = peekHeader(f.path)
			}
		}
		if found {
			l.Node = l.Header.NodeID
			logs = append(logs, l)
		}
	}
	return logs, nil
}
