package batch

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
)

// Default compression levels, as op-batcher uses them.
const (
	DefaultZlibLevel   = zlib.BestCompression
	DefaultBrotliLevel = 10
)

// compressor writes one channel body into out: a zlib stream, or the brotli version
// byte then a brotli stream.
type compressor struct {
	algo Compression
	out  bytes.Buffer
	w    interface {
		io.WriteCloser
		Flush() error
	}
	zw *zlib.Writer
	bw *brotli.Writer
}

func newCompressor(algo Compression, level int) (*compressor, error) {
	c := &compressor{algo: algo}
	switch algo {
	case Zlib:
		if level == 0 {
			level = DefaultZlibLevel
		}
		zw, err := zlib.NewWriterLevel(&c.out, level)
		if err != nil {
			return nil, fmt.Errorf("zlib level %d: %w", level, err)
		}
		c.zw, c.w = zw, zw
	case Brotli:
		if level == 0 {
			level = DefaultBrotliLevel
		}
		if level < brotli.BestSpeed || level > brotli.BestCompression {
			return nil, fmt.Errorf("brotli level %d out of range", level)
		}
		c.bw = brotli.NewWriterLevel(&c.out, level)
		c.w = c.bw
		c.out.WriteByte(ChannelVersionBrotli)
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnknownCompression, algo)
	}
	return c, nil
}

// staticLen is what an empty body holds before any data: the brotli version byte.
func (c *compressor) staticLen() int {
	if c.algo == Brotli {
		return 1
	}
	return 0
}

func (c *compressor) reset() {
	c.out.Reset()
	if c.algo == Brotli {
		c.out.WriteByte(ChannelVersionBrotli)
		c.bw.Reset(&c.out)
	} else {
		c.zw.Reset(&c.out)
	}
}

// compressAll replaces the body with data compressed and closed.
func (c *compressor) compressAll(data []byte) error {
	c.reset()
	if _, err := c.w.Write(data); err != nil {
		return fmt.Errorf("compressing channel: %w", err)
	}
	if err := c.w.Close(); err != nil {
		return fmt.Errorf("closing compressed channel: %w", err)
	}
	return nil
}
