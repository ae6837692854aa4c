package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk format, version 1 (docs/adr/0003-wal-format.md). All integers are
// little-endian.
//
// Segment file "<first index as 16 hex digits>.wal":
//
//	header:  magic[8] "MIRSWSEG" | version u32 | flags u32 (0) | first index u64 | CRC32C(previous 24 bytes) u32
//	records: length u32 | CRC32C(payload) u32 | payload[length]
//	payload: index u64 | retention index u64 | data
//
// Metadata file "meta", replaced atomically on truncation:
//
//	magic[8] "MIRSWMET" | version u32 | flags u32 (0) | retention u64 | boundary u64 | keep-from u64 | CRC32C(previous 40 bytes) u32
const (
	// FormatVersion is the version written in segment and metadata headers.
	FormatVersion uint32 = 1

	// SegmentHeaderSize is the size of a segment header in bytes.
	SegmentHeaderSize = 28
	// FrameHeaderSize is the size of a record's length and checksum fields.
	FrameHeaderSize = 8
	// RecordHeaderSize is the size of the index and retention index that
	// start every record payload.
	RecordHeaderSize = 16
	// MaxRecordSizeLimit is the largest record data the format allows. A
	// length field above it is damage, whatever MaxRecordSize a log was
	// opened with, so lowering Options.MaxRecordSize never turns an intact
	// record into a "torn" one.
	MaxRecordSizeLimit = 64 << 20

	metaSize = 44
)

var (
	segmentMagic = [8]byte{'M', 'I', 'R', 'S', 'W', 'S', 'E', 'G'}
	metaMagic    = [8]byte{'M', 'I', 'R', 'S', 'W', 'M', 'E', 'T'}
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// ErrCorrupt is returned when data on disk is damaged in a way recovery must
// not repair silently: a bad segment or metadata header, a damaged record
// before the tail of the final segment, a missing segment.
var ErrCorrupt = errors.New("wal: corrupt log")

// Record is one entry of the log.
type Record struct {
	// Index is the record's position in the log: the first record ever
	// appended has index 1, every later one the previous index plus one.
	Index uint64
	// RetentionIndex decides truncation: Truncate(r) discards the records
	// appended before it whose RetentionIndex is below r.
	RetentionIndex uint64
	// Data is the record's content.
	Data []byte
}

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// segmentHeader is the decoded header of a segment file.
type segmentHeader struct {
	first uint64
}

func encodeSegmentHeader(first uint64) []byte {
	b := make([]byte, SegmentHeaderSize)
	copy(b, segmentMagic[:])
	binary.LittleEndian.PutUint32(b[8:], FormatVersion)
	binary.LittleEndian.PutUint32(b[12:], 0)
	binary.LittleEndian.PutUint64(b[16:], first)
	binary.LittleEndian.PutUint32(b[24:], checksum(b[:24]))
	return b
}

func decodeSegmentHeader(b []byte) (segmentHeader, error) {
	if len(b) < SegmentHeaderSize {
		return segmentHeader{}, fmt.Errorf("%w: segment header: %d bytes, need %d", ErrCorrupt, len(b), SegmentHeaderSize)
	}
	if !bytes.Equal(b[:8], segmentMagic[:]) {
		return segmentHeader{}, fmt.Errorf("%w: segment header: bad magic %q", ErrCorrupt, b[:8])
	}
	if got, want := binary.LittleEndian.Uint32(b[24:]), checksum(b[:24]); got != want {
		return segmentHeader{}, fmt.Errorf("%w: segment header: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return segmentHeader{}, fmt.Errorf("%w: segment header: unsupported version %d", ErrCorrupt, v)
	}
	if f := binary.LittleEndian.Uint32(b[12:]); f != 0 {
		return segmentHeader{}, fmt.Errorf("%w: segment header: unknown flags %#x", ErrCorrupt, f)
	}
	first := binary.LittleEndian.Uint64(b[16:])
	if first == 0 {
		return segmentHeader{}, fmt.Errorf("%w: segment header: first index 0", ErrCorrupt)
	}
	return segmentHeader{first: first}, nil
}

// appendFrame appends the framed record to buf.
func appendFrame(buf []byte, index, retention uint64, data []byte) []byte {
	n := RecordHeaderSize + len(data)
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
	buf = binary.LittleEndian.AppendUint32(buf, 0) // checksum, filled in below
	buf = binary.LittleEndian.AppendUint64(buf, index)
	buf = binary.LittleEndian.AppendUint64(buf, retention)
	buf = append(buf, data...)
	binary.LittleEndian.PutUint32(buf[start+4:], checksum(buf[start+FrameHeaderSize:]))
	return buf
}

// Reasons a segment's tail is damaged, as reported in RecoveryReport.Reason.
const (
	ReasonZeroTail      = "zero-filled tail"
	ReasonTornHeader    = "torn record header"
	ReasonTornRecord    = "torn record"
	ReasonBadLength     = "bad record length"
	ReasonChecksum      = "checksum mismatch"
	ReasonIndexSequence = "index out of sequence"
)

// damage describes where and why the records of a segment stop early.
type damage struct {
	// offset is the file offset of the first damaged byte (the start of the
	// first bad frame); everything before it is intact.
	offset int64
	reason string
	// frames is the number of frames started at or after offset: the damaged
	// one, if any byte of it is non-zero, plus the intact frames that follow
	// it by their length fields.
	frames int
}

// scanRecords parses the records of a segment body (the bytes after the
// header, starting at file offset SegmentHeaderSize) whose first record must
// have index first. It returns the intact records (Data aliases body), the
// length of the intact prefix of body, and the damage that stopped the scan
// (nil if body is entirely intact). It never panics.
func scanRecords(body []byte, first uint64) (recs []Record, good int, dmg *damage) {
	next := first
	off := 0
	for off < len(body) {
		rest := body[off:]
		reason := ""
		var n int
		switch {
		case allZero(rest):
			reason = ReasonZeroTail
		case len(rest) < FrameHeaderSize:
			reason = ReasonTornHeader
		default:
			n = int(binary.LittleEndian.Uint32(rest))
			switch {
			case n < RecordHeaderSize || n > RecordHeaderSize+MaxRecordSizeLimit:
				reason = ReasonBadLength
			case len(rest)-FrameHeaderSize < n:
				reason = ReasonTornRecord
			case binary.LittleEndian.Uint32(rest[4:]) != checksum(rest[FrameHeaderSize:FrameHeaderSize+n]):
				reason = ReasonChecksum
			case binary.LittleEndian.Uint64(rest[FrameHeaderSize:]) != next:
				reason = ReasonIndexSequence
			}
		}
		if reason != "" {
			d := &damage{offset: int64(SegmentHeaderSize + off), reason: reason}
			if reason != ReasonZeroTail {
				d.frames = 1 + countFrames(rest, n)
			}
			return recs, off, d
		}
		p := rest[FrameHeaderSize : FrameHeaderSize+n]
		recs = append(recs, Record{
			Index:          next,
			RetentionIndex: binary.LittleEndian.Uint64(p[8:]),
			Data:           p[RecordHeaderSize:],
		})
		next++
		off += FrameHeaderSize + n
	}
	return recs, off, nil
}

// countFrames counts the intact frames that follow a damaged frame of length
// n at the start of b, following length fields; it stops at the first frame
// that is not intact. It is only an estimate for the recovery report.
func countFrames(b []byte, n int) int {
	if n < RecordHeaderSize || n > RecordHeaderSize+MaxRecordSizeLimit || len(b)-FrameHeaderSize < n {
		return 0
	}
	count := 0
	off := FrameHeaderSize + n
	for len(b)-off >= FrameHeaderSize {
		m := int(binary.LittleEndian.Uint32(b[off:]))
		if m < RecordHeaderSize || m > RecordHeaderSize+MaxRecordSizeLimit || len(b)-off-FrameHeaderSize < m {
			break
		}
		if binary.LittleEndian.Uint32(b[off+4:]) != checksum(b[off+FrameHeaderSize:off+FrameHeaderSize+m]) {
			break
		}
		count++
		off += FrameHeaderSize + m
	}
	return count
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// meta is the persisted truncation point. Records with Index < boundary and
// RetentionIndex < retention are discarded; segments before keepFrom are
// deleted.
type meta struct {
	// retention is the highest retention index the log was truncated at.
	retention uint64
	// boundary is the index the next append would have got when the
	// truncation at retention happened.
	boundary uint64
	// keepFrom is the first index of the oldest segment kept.
	keepFrom uint64
}

func encodeMeta(m meta) []byte {
	b := make([]byte, metaSize)
	copy(b, metaMagic[:])
	binary.LittleEndian.PutUint32(b[8:], FormatVersion)
	binary.LittleEndian.PutUint32(b[12:], 0)
	binary.LittleEndian.PutUint64(b[16:], m.retention)
	binary.LittleEndian.PutUint64(b[24:], m.boundary)
	binary.LittleEndian.PutUint64(b[32:], m.keepFrom)
	binary.LittleEndian.PutUint32(b[40:], checksum(b[:40]))
	return b
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaSize {
		return meta{}, fmt.Errorf("%w: metadata: %d bytes, want %d", ErrCorrupt, len(b), metaSize)
	}
	if !bytes.Equal(b[:8], metaMagic[:]) {
		return meta{}, fmt.Errorf("%w: metadata: bad magic %q", ErrCorrupt, b[:8])
	}
	if got, want := binary.LittleEndian.Uint32(b[40:]), checksum(b[:40]); got != want {
		return meta{}, fmt.Errorf("%w: metadata: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return meta{}, fmt.Errorf("%w: metadata: unsupported version %d", ErrCorrupt, v)
	}
	if f := binary.LittleEndian.Uint32(b[12:]); f != 0 {
		return meta{}, fmt.Errorf("%w: metadata: unknown flags %#x", ErrCorrupt, f)
	}
	m := meta{
		retention: binary.LittleEndian.Uint64(b[16:]),
		boundary:  binary.LittleEndian.Uint64(b[24:]),
		keepFrom:  binary.LittleEndian.Uint64(b[32:]),
	}
	if m.keepFrom == 0 || m.boundary < m.keepFrom {
		return meta{}, fmt.Errorf("%w: metadata: keep-from %d, boundary %d", ErrCorrupt, m.keepFrom, m.boundary)
	}
	return m, nil
}
