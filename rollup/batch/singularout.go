package batch

import (
	"bytes"
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/opkit/opkit/rollup"
)

const (
	// shadowStartBound is the first upper bound on the compressed size: what a stream
	// header, a flush and the close add to an empty body.
	shadowStartBound = 51
	// shadowCloseOverhead is what closing a flushed zlib stream still adds.
	shadowCloseOverhead = 9
)

// SingularChannelOut builds a channel of singular batches, streaming each block's RLP
// into the compressor. Fullness is judged as op-batcher's shadow compressor does: a
// second compressor gets every block first; while its size bound stays under the
// target the block goes in, and once flushing it shows the target would be passed the
// channel is full and that block is refused (unless the channel is still empty).
type SingularChannelOut struct {
	cfg    ChannelOutConfig
	main   *compressor
	shadow *compressor
	bound  uint64
	rlpLen int
	blocks int
	full   error
	closed bool
	frames framer
	buf    bytes.Buffer
}

// NewSingularChannelOut starts an empty singular batch channel.
func NewSingularChannelOut(cfg ChannelOutConfig) (*SingularChannelOut, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m, err := newCompressor(cfg.Compression, cfg.Level)
	if err != nil {
		return nil, err
	}
	s, err := newCompressor(cfg.Compression, cfg.Level)
	if err != nil {
		return nil, err
	}
	return &SingularChannelOut{cfg: cfg, main: m, shadow: s, bound: shadowStartBound, frames: framer{id: cfg.ID}}, nil
}

func (c *SingularChannelOut) ID() ChannelID   { return c.cfg.ID }
func (c *SingularChannelOut) Blocks() int     { return c.blocks }
func (c *SingularChannelOut) FullErr() error  { return c.full }
func (c *SingularChannelOut) InputBytes() int { return c.rlpLen }

// ReadyBytes is the compressed output so far; the stream keeps unflushed data inside
// the compressor until Flush or Close.
func (c *SingularChannelOut) ReadyBytes() int { return c.main.out.Len() }

// Flush pushes buffered data out of the compressor so frames can be cut before Close.
func (c *SingularChannelOut) Flush() error { return c.main.w.Flush() }

// AddBlock adds the block's singular batch.
func (c *SingularChannelOut) AddBlock(block *types.Block) (*rollup.L1BlockInfo, error) {
	if c.closed {
		return nil, ErrChannelClosed
	}
	b, info, err := BlockToSingularBatch(block)
	if err != nil {
		return nil, err
	}
	if c.full != nil {
		return info, c.full
	}
	typed, err := b.AppendBinary(nil)
	if err != nil {
		return info, err
	}
	c.buf.Reset()
	if err := rlp.Encode(&c.buf, typed); err != nil {
		return info, err
	}
	p := c.buf.Bytes()
	if uint64(c.rlpLen+len(p)) > c.cfg.MaxRLPBytes {
		c.full = fmt.Errorf("%w: %w: %d bytes, max %d", ErrChannelFull, ErrTooManyRLPBytes, c.rlpLen+len(p), c.cfg.MaxRLPBytes)
		return info, c.full
	}
	if _, err := c.shadow.w.Write(p); err != nil {
		return info, err
	}
	bound := c.bound + uint64(len(p))
	if bound > c.cfg.TargetSize {
		if err := c.shadow.w.Flush(); err != nil {
			return info, err
		}
		bound = uint64(c.shadow.out.Len()) + shadowCloseOverhead
		if bound > c.cfg.TargetSize {
			c.full = ErrChannelFull
			if c.main.out.Len() > c.main.staticLen() {
				return info, c.full
			}
		}
	}
	c.bound = bound
	if _, err := c.main.w.Write(p); err != nil {
		return info, err
	}
	c.rlpLen += len(p)
	c.blocks++
	return info, nil
}

// Close ends the compressed stream.
func (c *SingularChannelOut) Close() error {
	if c.closed {
		return ErrChannelClosed
	}
	c.closed = true
	if err := c.shadow.w.Close(); err != nil {
		return err
	}
	return c.main.w.Close()
}

// OutputFrame takes the next frame of the compressed output.
func (c *SingularChannelOut) OutputFrame(maxSize int) (Frame, error) {
	return c.frames.next(&c.main.out, c.closed, maxSize)
}
