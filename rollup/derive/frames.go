package derive

import (
	"context"
	"log/slog"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// dataProvider is what the frame queue reads from: retrieval.
type dataProvider interface {
	NextData(ctx context.Context) ([]byte, error)
	Origin() eth.L1BlockRef
}

// frameQueue splits batcher data items into frames. An item that is not version 0 or
// whose frames do not all parse is dropped whole. Under Holocene the frames of one item
// are pruned to sequences that can still form a channel, so a channel is only ever built
// from consecutive frames.
type frameQueue struct {
	prev    dataProvider
	cfg     *rollup.Config
	log     *slog.Logger
	metrics Metrics
	frames  []batch.Frame
}

func newFrameQueue(prev dataProvider, cfg *rollup.Config, log *slog.Logger, m Metrics) *frameQueue {
	return &frameQueue{prev: prev, cfg: cfg, log: log, metrics: m}
}

func (q *frameQueue) Origin() eth.L1BlockRef { return q.prev.Origin() }

// NextFrame returns the next frame; ErrNotEnoughData after an item that gave none.
func (q *frameQueue) NextFrame(ctx context.Context) (batch.Frame, error) {
	if len(q.frames) == 0 {
		if err := q.load(ctx); err != nil {
			return batch.Frame{}, err
		}
		if len(q.frames) == 0 {
			return batch.Frame{}, ErrNotEnoughData
		}
	}
	f := q.frames[0]
	q.frames = q.frames[1:]
	return f, nil
}

func (q *frameQueue) load(ctx context.Context) error {
	data, err := q.prev.NextData(ctx)
	if err != nil {
		return err
	}
	if len(data) == 0 || data[0] != batch.DerivationVersion0 {
		version := -1
		if len(data) > 0 {
			version = int(data[0])
		}
		q.log.Warn("dropped batcher data: not derivation version 0", "origin", q.Origin().ID(), "version", version, "len", len(data))
		q.metrics.DataDropped(DropDataVersion)
		return nil
	}
	frames, err := batch.ParseFrames(data[1:])
	if err != nil {
		q.log.Warn("dropped batcher data: frames do not parse", "origin", q.Origin().ID(), "len", len(data), "err", err)
		q.metrics.DataDropped(DropDataMalformed)
		return nil
	}
	if q.cfg.IsHolocene(q.Origin().Time) {
		frames = pruneFrames(frames, func(f batch.Frame) {
			q.log.Warn("dropped frame: cannot form a channel with its neighbours", "origin", q.Origin().ID(),
				"channel", f.ID, "frame", f.Number, "last", f.IsLast)
			q.metrics.FrameDropped(DropFramePruned)
		})
	}
	q.frames = append(q.frames, frames...)
	return nil
}

// pruneFrames applies the Holocene rules to each pair of neighbours (cur, next), left to
// right, calling drop for every frame it removes:
//   - same channel: next goes if cur is the last frame or next does not follow cur;
//   - new channel starting at 0: cur goes if it was not the last of its channel (its
//     channel can no longer complete), and the pair before it is looked at again;
//   - new channel not starting at 0: next goes.
func pruneFrames(frames []batch.Frame, drop func(batch.Frame)) []batch.Frame {
	out := make([]batch.Frame, 0, len(frames))
	for _, next := range frames {
		for {
			if len(out) == 0 {
				out = append(out, next)
				break
			}
			cur := out[len(out)-1]
			if cur.ID == next.ID {
				if cur.IsLast || next.Number != cur.Number+1 {
					drop(next)
				} else {
					out = append(out, next)
				}
				break
			}
			if next.Number != 0 {
				drop(next)
				break
			}
			if cur.IsLast {
				out = append(out, next)
				break
			}
			// cur's channel is cut off by a new one: drop cur and compare next with the
			// frame before it.
			drop(cur)
			out = out[:len(out)-1]
		}
	}
	return out
}

func (q *frameQueue) reset() { q.frames = nil }
