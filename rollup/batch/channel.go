package batch

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
)

const (
	// MaxRLPBytesPerChannel bounds the decompressed bytes read from one channel before
	// Fjord.
	MaxRLPBytesPerChannel = 10_000_000
	// MaxRLPBytesPerChannelFjord is the bound from Fjord on.
	MaxRLPBytesPerChannelFjord = 100_000_000

	// ChannelVersionBrotli is the first byte of a brotli channel body; zlib bodies are
	// recognised by their CMF byte instead.
	ChannelVersionBrotli = 0x01

	// readChunk is how much of a declared batch is allocated before its bytes arrive, so
	// a short stream that declares a huge batch costs what it delivers.
	readChunk = 1 << 20
)

// Compression names a channel body compression.
type Compression int

const (
	Zlib Compression = iota
	Brotli
)

func (c Compression) String() string {
	switch c {
	case Zlib:
		return "zlib"
	case Brotli:
		return "brotli"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// Channel reader errors.
var (
	ErrUnknownCompression = errors.New("unknown channel compression")
	ErrBrotliBeforeFjord  = errors.New("brotli channel before Fjord")
	ErrBatchTooLarge      = errors.New("channel exceeds its decompressed size bound")
	ErrChannelRLP         = errors.New("invalid channel RLP")
)

// ChannelReader decodes the batches of one channel body: a compressed stream of RLP
// byte strings, each a typed batch. Reading stops at the first error; batches returned
// before it stand, which is how op-node treats a channel whose tail is corrupt.
type ChannelReader struct {
	r         *bufio.Reader
	algo      Compression
	remaining uint64 // decompressed bytes still allowed
	err       error
}

// NewChannelReader starts reading a channel body. maxRLPBytes is the decompressed bound
// (MaxRLPBytesPerChannel or MaxRLPBytesPerChannelFjord); fjord admits brotli bodies. An
// error means the channel is unusable as a whole.
func NewChannelReader(body io.Reader, maxRLPBytes uint64, fjord bool) (*ChannelReader, error) {
	if maxRLPBytes == 0 {
		// op-node's rlp.Stream would read without limit here; never do that.
		return nil, errors.New("channel reader needs a decompressed size bound")
	}
	br := bufio.NewReader(body)
	first, err := br.Peek(1)
	if err != nil {
		return nil, fmt.Errorf("reading channel compression byte: %w", err)
	}
	var dec io.Reader
	var algo Compression
	switch {
	case first[0]&0x0F == 8 || first[0]&0x0F == 15:
		// The low nibble of a zlib CMF byte is the method: 8 deflate; op-node also lets
		// 15 through to the zlib reader, which then refuses it.
		zr, err := zlib.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening zlib channel: %w", err)
		}
		dec, algo = zr, Zlib
	case first[0] == ChannelVersionBrotli:
		if !fjord {
			return nil, ErrBrotliBeforeFjord
		}
		_, _ = br.Discard(1)
		dec, algo = brotli.NewReader(br), Brotli
	default:
		return nil, fmt.Errorf("%w: first byte %#x", ErrUnknownCompression, first[0])
	}
	return &ChannelReader{r: bufio.NewReader(dec), algo: algo, remaining: maxRLPBytes}, nil
}

// Compression is the channel's compression.
func (c *ChannelReader) Compression() Compression { return c.algo }

// Next returns the next batch, io.EOF at the clean end of the channel, or the error that
// ended it; after any error it keeps returning that error. A batch whose payload fails
// to decode ends the channel too.
func (c *ChannelReader) Next() (Batch, error) {
	if c.err != nil {
		return nil, c.err
	}
	data, err := c.nextString()
	if err != nil {
		c.err = err
		return nil, err
	}
	b, err := UnmarshalBatch(data)
	if err != nil {
		c.err = err
		return nil, err
	}
	return b, nil
}

// NextData returns the next batch's undecoded bytes (batch type first).
func (c *ChannelReader) NextData() ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	data, err := c.nextString()
	if err != nil {
		c.err = err
	}
	return data, err
}

// readByte reads one decompressed byte within the bound. At the bound it reports
// ErrBatchTooLarge.
func (c *ChannelReader) readByte() (byte, error) {
	if c.remaining == 0 {
		return 0, ErrBatchTooLarge
	}
	b, err := c.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	c.remaining--
	return b, nil
}

// nextString reads one top-level RLP byte string. The rules are go-ethereum's rlp.Stream
// with an input limit, as op-node uses it: a stream that ends (or reaches the bound)
// exactly between values is a clean end; headers must be canonical; a declared size
// past the bound is refused before anything is allocated for it.
func (c *ChannelReader) nextString() ([]byte, error) {
	b, err := c.readByte()
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrBatchTooLarge) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("reading channel: %w", err)
	}
	var size uint64
	switch {
	case b < 0x80:
		// A lone byte is its own string.
		return []byte{b}, nil
	case b < 0xB8:
		size = uint64(b - 0x80)
	case b < 0xC0:
		n := int(b - 0xB7)
		var buf [8]byte
		for i := 8 - n; i < 8; i++ {
			if buf[i], err = c.readByte(); err != nil {
				return nil, fmt.Errorf("%w: size: %w", ErrChannelRLP, err)
			}
		}
		if n > 1 && buf[8-n] == 0 {
			return nil, fmt.Errorf("%w: size has a leading zero", ErrChannelRLP)
		}
		size = binary.BigEndian.Uint64(buf[:])
		if size < 56 {
			return nil, fmt.Errorf("%w: non-canonical size %d", ErrChannelRLP, size)
		}
	default:
		return nil, fmt.Errorf("%w: expected a byte string, got a list", ErrChannelRLP)
	}
	if size > c.remaining {
		return nil, fmt.Errorf("%w: batch of %d bytes, %d left", ErrBatchTooLarge, size, c.remaining)
	}
	out := make([]byte, 0, min(size, readChunk))
	for uint64(len(out)) < size {
		need := int(size - uint64(len(out)))
		if cap(out) == len(out) {
			grown := make([]byte, len(out), len(out)+min(need, max(len(out), readChunk)))
			copy(grown, out)
			out = grown
		}
		k := min(need, cap(out)-len(out))
		m, err := io.ReadFull(c.r, out[len(out):len(out)+k])
		out = out[:len(out)+m]
		c.remaining -= uint64(m)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading batch: %w", err)
		}
	}
	if size == 1 && out[0] < 0x80 {
		return nil, fmt.Errorf("%w: single byte %#x encoded as a string", ErrChannelRLP, out[0])
	}
	return out, nil
}
