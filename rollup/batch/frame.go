package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// DerivationVersion0 is the first byte of every batcher transaction's data (calldata
	// or decoded blob) that carries frames.
	DerivationVersion0 = 0x00

	// MaxFrameLen bounds the data of one frame; a larger declared length makes the whole
	// transaction invalid.
	MaxFrameLen = 1_000_000

	// FrameOverhead is the fixed size of a frame around its data: channel id (16), frame
	// number (2), data length (4) and the is_last byte (1).
	FrameOverhead = 23
)

// ChannelID identifies a channel; the batcher picks it at random.
type ChannelID [16]byte

func (id ChannelID) String() string { return fmt.Sprintf("%x", id[:]) }

// Frame is one piece of a channel as carried by a batcher transaction.
type Frame struct {
	ID     ChannelID
	Number uint16
	Data   []byte
	IsLast bool
}

// ErrInvalidFrame is wrapped by every frame parse error.
var ErrInvalidFrame = errors.New("invalid frame")

// Size is the frame's encoded length.
func (f *Frame) Size() int { return FrameOverhead + len(f.Data) }

// MarshalBinary encodes the frame as id ‖ number u16 ‖ len u32 ‖ data ‖ is_last.
func (f *Frame) MarshalBinary() ([]byte, error) {
	if len(f.Data) > MaxFrameLen {
		return nil, fmt.Errorf("%w: %d data bytes, max %d", ErrInvalidFrame, len(f.Data), MaxFrameLen)
	}
	return f.AppendBinary(make([]byte, 0, f.Size()))
}

// AppendBinary appends the encoded frame to b. Unlike MarshalBinary it does not refuse
// oversized data, so tests can build frames a parser must reject.
func (f *Frame) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, f.ID[:]...)
	b = binary.BigEndian.AppendUint16(b, f.Number)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Data)))
	b = append(b, f.Data...)
	last := byte(0)
	if f.IsLast {
		last = 1
	}
	return append(b, last), nil
}

// parseFrame reads one frame from the front of data and returns the rest. The frame's
// Data aliases data.
func parseFrame(data []byte) (Frame, []byte, error) {
	var f Frame
	if len(data) < 16+2+4 {
		return f, nil, fmt.Errorf("%w: %d bytes cannot hold a frame header", ErrInvalidFrame, len(data))
	}
	copy(f.ID[:], data[:16])
	f.Number = binary.BigEndian.Uint16(data[16:18])
	n := binary.BigEndian.Uint32(data[18:22])
	if n > MaxFrameLen {
		return f, nil, fmt.Errorf("%w: frame data length %d exceeds %d", ErrInvalidFrame, n, MaxFrameLen)
	}
	rest := data[22:]
	// The is_last byte follows the data, so n+1 bytes must remain.
	if uint64(len(rest)) < uint64(n)+1 {
		return f, nil, fmt.Errorf("%w: frame declares %d data bytes, %d remain", ErrInvalidFrame, n, len(rest))
	}
	f.Data = rest[:n:n]
	switch rest[n] {
	case 0:
	case 1:
		f.IsLast = true
	default:
		return f, nil, fmt.Errorf("%w: is_last byte %d", ErrInvalidFrame, rest[n])
	}
	return f, rest[n+1:], nil
}

// ParseFrames parses the frames that follow the derivation version byte of a batcher
// transaction. Any malformed frame, or bytes left after the last frame, makes the whole
// transaction invalid: the error is returned and no frames. Data fields alias data.
func ParseFrames(data []byte) ([]Frame, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: no frames", ErrInvalidFrame)
	}
	// Each frame takes at least FrameOverhead bytes, which bounds the slice up front.
	frames := make([]Frame, 0, min(len(data)/FrameOverhead+1, 64))
	for len(data) > 0 {
		f, rest, err := parseFrame(data)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", len(frames), err)
		}
		frames = append(frames, f)
		data = rest
	}
	return frames, nil
}

// ParseTxData parses a batcher transaction's full data: the version byte, then frames.
func ParseTxData(data []byte) ([]Frame, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty batcher data", ErrInvalidFrame)
	}
	if data[0] != DerivationVersion0 {
		return nil, fmt.Errorf("%w: derivation version %d", ErrInvalidFrame, data[0])
	}
	return ParseFrames(data[1:])
}

// TxData encodes frames as a batcher transaction's data, version byte first.
func TxData(frames ...Frame) ([]byte, error) {
	n := 1
	for i := range frames {
		n += frames[i].Size()
	}
	b := make([]byte, 1, n)
	b[0] = DerivationVersion0
	for i := range frames {
		if len(frames[i].Data) > MaxFrameLen {
			return nil, fmt.Errorf("%w: %d data bytes, max %d", ErrInvalidFrame, len(frames[i].Data), MaxFrameLen)
		}
		b, _ = frames[i].AppendBinary(b)
	}
	return b, nil
}
