package batcher

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"

	"github.com/opkit/opkit/batcher/channels"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// DefaultCodec builds span-batch or singular-batch channels and blobs with package
// rollup/batch.
func DefaultCodec() Codec {
	return Codec{NewChannelOut: newChannelOut, EncodeBlob: encodeBlob}
}

// Batch types, as --batch-type numbers them (op-batcher's numbering).
const (
	SingularBatchType = 0
	SpanBatchType     = 1
)

// ChannelSettings are the channel-building settings of the Config.
type ChannelSettings struct {
	TargetNumFrames int
	Compression     string
	// BatchType is SpanBatchType or SingularBatchType.
	BatchType             int
	MaxBlocksPerSpanBatch int
}

// parseCompression reads --compression-algo: zlib, brotli, or brotli-<level>.
func parseCompression(s string) (batch.Compression, int, error) {
	switch {
	case s == "zlib":
		return batch.Zlib, 0, nil
	case s == "brotli":
		return batch.Brotli, 0, nil
	case strings.HasPrefix(s, "brotli-"):
		lvl, err := strconv.Atoi(strings.TrimPrefix(s, "brotli-"))
		if err != nil || lvl < 0 || lvl > 11 {
			return 0, 0, fmt.Errorf("%q: bad brotli level", s)
		}
		return batch.Brotli, lvl, nil
	}
	return 0, 0, fmt.Errorf("%q is not zlib or brotli", s)
}

func newChannelOut(rcfg *rollup.Config, p channels.Plan, s ChannelSettings) (channels.ChannelOut, error) {
	algo, level, err := parseCompression(s.Compression)
	if err != nil {
		return nil, err
	}
	cfg := batch.ChannelOutConfig{
		TargetSize:  uint64(s.TargetNumFrames) * uint64(p.MaxFrameSize-batch.FrameOverhead),
		Compression: algo, Level: level,
		GenesisTime: rcfg.Genesis.L2Time, ChainID: rcfg.L2ChainID,
		MaxBlocksPerSpanBatch: s.MaxBlocksPerSpanBatch,
	}
	var out batch.ChannelOut
	switch s.BatchType {
	case SpanBatchType:
		out, err = batch.NewSpanChannelOut(cfg)
	case SingularBatchType:
		out, err = batch.NewSingularChannelOut(cfg)
	default:
		return nil, fmt.Errorf("batch type %d is not 0 (singular) or 1 (span)", s.BatchType)
	}
	if err != nil {
		return nil, err
	}
	return &channelOut{out: out}, nil
}

// channelOut adapts batch.ChannelOut to what the channel manager takes.
type channelOut struct{ out batch.ChannelOut }

func (c *channelOut) ID() [16]byte    { return c.out.ID() }
func (c *channelOut) InputBytes() int { return c.out.InputBytes() }
func (c *channelOut) ReadyBytes() int { return c.out.ReadyBytes() }
func (c *channelOut) Close() error    { return c.out.Close() }

func (c *channelOut) AddBlock(b *types.Block) error {
	if _, err := c.out.AddBlock(b); err != nil {
		if errors.Is(err, batch.ErrChannelFull) {
			return fmt.Errorf("%w: %w", channels.ErrFull, err)
		}
		return err
	}
	return nil
}

func (c *channelOut) OutputFrame(maxSize int) (channels.Frame, error) {
	f, err := c.out.OutputFrame(maxSize)
	if err != nil {
		return channels.Frame{}, err
	}
	enc, err := f.MarshalBinary()
	if err != nil {
		return channels.Frame{}, err
	}
	return channels.Frame{Channel: f.ID, Number: f.Number, IsLast: f.IsLast, Bytes: enc}, nil
}

func encodeBlob(data []byte) (kzg4844.Blob, error) {
	var b batch.Blob
	if err := b.FromData(data); err != nil {
		return kzg4844.Blob{}, err
	}
	return kzg4844.Blob(b), nil
}
