package derive

import (
	"context"
	"log/slog"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// Channel limits of the protocol.
const (
	// MaxRLPBytesPerChannel bounds a channel's frames and its decompressed body before Fjord.
	MaxRLPBytesPerChannel = 10_000_000
	// MaxRLPBytesPerChannelFjord is the bound from Fjord on.
	MaxRLPBytesPerChannelFjord = 100_000_000
	// GraniteChannelTimeout replaces rollup.json's channel_timeout from Granite on (L1 blocks).
	GraniteChannelTimeout = 50
	// frameOverhead is what each frame adds to a channel's size for the size limit.
	frameOverhead = 200
)

// MaxRLPBytes is the channel size limit in force at L1 time t.
func MaxRLPBytes(cfg *rollup.Config, t uint64) uint64 {
	if cfg.IsFjord(t) {
		return MaxRLPBytesPerChannelFjord
	}
	return MaxRLPBytesPerChannel
}

// ChannelTimeout is the channel timeout in L1 blocks in force at L1 time t.
func ChannelTimeout(cfg *rollup.Config, t uint64) uint64 {
	if cfg.GraniteTime != nil && t >= *cfg.GraniteTime {
		return GraniteChannelTimeout
	}
	return cfg.ChannelTimeout
}

// frameProvider is what the channel assembler reads from: the frame queue.
type frameProvider interface {
	NextFrame(ctx context.Context) (batch.Frame, error)
	Origin() eth.L1BlockRef
}

// stagingChannel is the one channel being assembled.
type stagingChannel struct {
	id        batch.ChannelID
	openBlock eth.L1BlockRef // where its first frame was seen
	data      [][]byte       // frame data in frame order
	size      uint64
}

// channelAssembler builds the Holocene single staging channel: a frame 0 starts a new
// channel (dropping an incomplete one), later frames must follow in order, and the last
// frame emits the channel's body. A channel that grows past the size limit or is not
// complete within the channel timeout is dropped.
type channelAssembler struct {
	prev    frameProvider
	cfg     *rollup.Config
	log     *slog.Logger
	metrics Metrics
	ch      *stagingChannel
}

func newChannelAssembler(prev frameProvider, cfg *rollup.Config, log *slog.Logger, m Metrics) *channelAssembler {
	return &channelAssembler{prev: prev, cfg: cfg, log: log, metrics: m}
}

func (a *channelAssembler) Origin() eth.L1BlockRef { return a.prev.Origin() }

func (a *channelAssembler) dropChannel(reason, msg string, args ...any) {
	a.log.Warn(msg, append([]any{"origin", a.Origin().ID(), "channel", a.ch.id, "opened", a.ch.openBlock.ID(),
		"frames", len(a.ch.data), "size", a.ch.size}, args...)...)
	a.metrics.ChannelDropped(reason)
	a.ch = nil
}

func (a *channelAssembler) dropFrame(f batch.Frame, reason, msg string) {
	a.log.Warn(msg, "origin", a.Origin().ID(), "channel", f.ID, "frame", f.Number, "last", f.IsLast, "reason", reason)
	a.metrics.FrameDropped(reason)
}

// NextRawChannel returns the next complete channel's body (its frames' data joined).
func (a *channelAssembler) NextRawChannel(ctx context.Context) ([]byte, error) {
	origin := a.Origin()
	if a.ch != nil && a.ch.openBlock.Number+ChannelTimeout(a.cfg, origin.Time) < origin.Number {
		a.dropChannel(DropChannelTimeout, "dropped channel: timed out")
	}
	for {
		f, err := a.prev.NextFrame(ctx)
		if err != nil {
			return nil, err
		}
		if f.Number == 0 {
			if a.ch != nil {
				a.dropChannel(DropChannelReplaced, "dropped channel: a new channel started before it was complete", "new", f.ID)
			}
			a.ch = &stagingChannel{id: f.ID, openBlock: origin}
		}
		switch {
		case a.ch == nil:
			a.dropFrame(f, DropFrameNoChannel, "dropped frame: no channel is open")
			continue
		case f.ID != a.ch.id:
			a.dropFrame(f, DropFrameOtherID, "dropped frame: not of the open channel")
			continue
		case int(f.Number) < len(a.ch.data):
			a.dropFrame(f, DropFrameDuplicate, "dropped frame: already held")
			continue
		case int(f.Number) > len(a.ch.data):
			a.dropFrame(f, DropFrameOutOfOrder, "dropped frame: out of order")
			continue
		}
		a.ch.data = append(a.ch.data, f.Data)
		a.ch.size += uint64(len(f.Data)) + frameOverhead
		if limit := MaxRLPBytes(a.cfg, origin.Time); a.ch.size > limit {
			a.dropChannel(DropChannelTooBig, "dropped channel: over the size limit", "limit", limit)
			continue
		}
		if f.IsLast {
			body := make([]byte, 0, a.ch.size)
			for _, d := range a.ch.data {
				body = append(body, d...)
			}
			a.ch = nil
			return body, nil
		}
	}
}

// FlushChannel drops the staging channel.
func (a *channelAssembler) FlushChannel() {
	if a.ch != nil {
		a.dropChannel(DropChannelFlushed, "dropped channel: flushed")
	}
}

func (a *channelAssembler) reset() { a.ch = nil }
