package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// ProtocolID is the libp2p protocol of the consensus stream.
const ProtocolID protocol.ID = "/mirsubnet/consensus/1.0.0"

// Frame errors. ReadFrame and DecodeFrame return errors wrapping these.
var (
	// ErrFrameTooLarge: a frame's length prefix exceeds the maximum.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrFrameMalformed: a bad length prefix, or a body that is not a Frame.
	ErrFrameMalformed = errors.New("transport: malformed frame")
)

// Frame is the body of one frame of the consensus stream.
type Frame struct {
	_ struct{} `cbor:",toarray"`
	// DestModule is the module (path) on the receiving node the message is
	// for.
	DestModule mir.ModuleID
	// Msg is the message: a registered payload encoded by mir.EncodePayload.
	Msg []byte
}

// EncodeFrame returns the frame (length prefix and body) carrying msg, a
// registered payload, to dest. It fails with ErrFrameTooLarge if the body
// would exceed maxSize bytes.
func EncodeFrame(dest mir.ModuleID, msg any, maxSize int) ([]byte, error) {
	if !dest.Valid() {
		return nil, fmt.Errorf("%w: bad destination module %q", ErrFrameMalformed, dest)
	}
	p, err := mir.EncodePayload(msg)
	if err != nil {
		return nil, err
	}
	body, err := mir.Marshal(Frame{DestModule: dest, Msg: p})
	if err != nil {
		return nil, fmt.Errorf("transport: encode frame: %w", err)
	}
	if len(body) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, len(body), maxSize)
	}
	out := make([]byte, 0, binary.MaxVarintLen64+len(body))
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...), nil
}

// FrameReader is what ReadFrame reads from (a *bufio.Reader, say).
type FrameReader interface {
	io.Reader
	io.ByteReader
}

// ReadFrame reads one frame from r and returns its body. The body is read
// into buf if it fits in buf's capacity and into a new slice otherwise; the
// caller may reuse buf once it is done with the body. A length above maxSize
// is rejected with ErrFrameTooLarge before anything is allocated or read
// beyond the prefix (the stream is then out of step and must be dropped).
// At a clean end of stream (no byte of a new frame) it returns io.EOF; a
// frame cut short returns io.ErrUnexpectedEOF. It never panics.
func ReadFrame(r FrameReader, maxSize int, buf []byte) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrFrameMalformed)
	}
	if maxSize < 0 || n > uint64(maxSize) {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, n, maxSize)
	}
	if uint64(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// readUvarint is binary.ReadUvarint with this package's errors: io.EOF
// before the first byte, io.ErrUnexpectedEOF within the prefix, and
// ErrFrameMalformed for a prefix that overflows 64 bits.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	var s uint
	for i := range binary.MaxVarintLen64 {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, fmt.Errorf("%w: length prefix overflows 64 bits", ErrFrameMalformed)
}

// DecodeFrame decodes a frame body from untrusted bytes into its destination
// module and message (a value of a registered payload type). Errors wrap
// ErrFrameMalformed. It never panics.
func DecodeFrame(body []byte) (mir.ModuleID, any, error) {
	var f Frame
	if err := mir.Unmarshal(body, &f); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrFrameMalformed, err)
	}
	if !f.DestModule.Valid() {
		return "", nil, fmt.Errorf("%w: bad destination module %q", ErrFrameMalformed, f.DestModule)
	}
	msg, err := mir.DecodePayload(f.Msg)
	if err != nil {
		return "", nil, fmt.Errorf("%w: message for %s: %v", ErrFrameMalformed, f.DestModule, err)
	}
	return f.DestModule, msg, nil
}
