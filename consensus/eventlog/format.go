package eventlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/fxamacker/cbor/v2"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Version is the version of the file format written by this package.
const Version uint16 = 1

// FileExt is the extension of event log files.
const FileExt = ".mirlog"

// DefaultPrefix is the file name prefix used when Options.Prefix is empty.
const DefaultPrefix = "events"

// MaxFrameSize bounds the payload of one frame. A longer length field marks
// a corrupt frame.
const MaxFrameSize = 1 << 30

const (
	fileMagic       = "MIRLOG"
	magicSize       = len(fileMagic) + 2
	frameHeaderSize = 8
	// maxHeaderSize bounds the header frame.
	maxHeaderSize = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by Intercept and Flush after Close.
var ErrClosed = errors.New("eventlog: writer closed")

// ErrNoLog is returned by Open when a path holds no event log file.
var ErrNoLog = errors.New("eventlog: no event log files")

// Header opens every file of a log.
type Header struct {
	_ struct{} `cbor:",toarray"`
	// Version is the file format version.
	Version uint16
	// NodeID is the node whose events the file holds.
	NodeID mir.NodeID
	// Seq is the file's sequence number in its log, starting at 1.
	Seq uint64
	// FirstIndex is the index of the file's first record.
	FirstIndex uint64
	// Resumed is set on the first file a Writer writes when it continues an
	// existing log (the node restarted): modules start afresh at FirstIndex.
	Resumed bool
	// Created is the file's creation time in Unix nanoseconds (information
	// only, never compared).
	Created int64
	// Meta is creation metadata given by the recording program, such as the
	// membership, so that tools can rebuild the node's modules.
	Meta map[string]string
}

// Record is one intercepted batch.
type Record struct {
	_ struct{} `cbor:",toarray"`
	// Index numbers the node's records consecutively from 1.
	Index uint64
	// NodeID is the node that recorded the batch.
	NodeID mir.NodeID
	// Kind says whether the batch was dispatched to Module or entered the
	// node from it.
	Kind mir.RecordKind
	// Module is the top-level module the batch was dispatched to
	// (RecordDispatch) or came from (RecordInbound; empty for events
	// injected from outside the node).
	Module mir.ModuleID
	// Events is the batch, in order.
	Events mir.EventList
}

// recordHead is a Record whose events are left encoded, for filtering
// without decoding every payload.
type recordHead struct {
	_      struct{} `cbor:",toarray"`
	Index  uint64
	NodeID mir.NodeID
	Kind   mir.RecordKind
	Module mir.ModuleID
	Events cbor.RawMessage
}

func (h *recordHead) check(hdr *Header) error {
	if h.Kind != mir.RecordDispatch && h.Kind != mir.RecordInbound {
		return fmt.Errorf("record %d has unknown kind %d", h.Index, h.Kind)
	}
	if h.NodeID != hdr.NodeID {
		return fmt.Errorf("record %d belongs to node %q in a file of node %q", h.Index, h.NodeID, hdr.NodeID)
	}
	if h.Kind == mir.RecordDispatch && !h.Module.Valid() || h.Module != "" && !h.Module.Valid() {
		return fmt.Errorf("record %d names invalid module %q", h.Index, h.Module)
	}
	return nil
}

// putFrameHeader writes the length and checksum of payload into dst[0:8].
func putFrameHeader(dst []byte, payload []byte) {
	binary.LittleEndian.PutUint32(dst[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[4:8], crc32.Checksum(payload, castagnoli))
}

// encodeFileStart returns the magic and the header frame.
func encodeFileStart(h *Header) ([]byte, error) {
	payload, err := mir.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("eventlog: encode header: %w", err)
	}
	b := make([]byte, magicSize+frameHeaderSize, magicSize+frameHeaderSize+len(payload))
	copy(b, fileMagic)
	binary.BigEndian.PutUint16(b[len(fileMagic):], Version)
	putFrameHeader(b[magicSize:], payload)
	return append(b, payload...), nil
}

// fileName returns the name of file seq of a log with the given prefix.
func fileName(prefix string, seq uint64) string {
	return fmt.Sprintf("%s-%06d%s", prefix, seq, FileExt)
}
