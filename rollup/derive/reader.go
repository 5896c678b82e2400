package derive

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// rawChannelProvider is what the channel reader reads from: the channel assembler.
type rawChannelProvider interface {
	NextRawChannel(ctx context.Context) ([]byte, error)
	Origin() eth.L1BlockRef
	FlushChannel()
}

// decodedBatch is one batch read from a channel: singular, or a span batch already
// expanded into its blocks.
type decodedBatch struct {
	singular *batch.SingularBatch
	span     *spanBatch
}

// spanBatch is a span batch as the batch stage checks it. Its blocks carry timestamps,
// epoch numbers and transactions; parent and epoch hashes are filled in when a block is
// accepted.
type spanBatch struct {
	parentCheck [20]byte
	originCheck [20]byte
	blocks      []*batch.SingularBatch
}

func (s *spanBatch) firstTime() uint64  { return s.blocks[0].Timestamp }
func (s *spanBatch) lastTime() uint64   { return s.blocks[len(s.blocks)-1].Timestamp }
func (s *spanBatch) startEpoch() uint64 { return s.blocks[0].EpochNum }
func (s *spanBatch) lastEpoch() uint64  { return s.blocks[len(s.blocks)-1].EpochNum }

// errMalformedSpan marks a span batch whose wire form decoded but whose blocks could not
// be derived from it (bad transactions, counts over the limits).
var errMalformedSpan = errors.New("malformed span batch")

// batchSource yields the batches of one channel body; io.EOF at its end.
type batchSource func() (decodedBatch, error)

// channelReader decompresses each channel and decodes its batches. A body that does not
// open (unknown compression) is dropped; a batch that fails to decode drops the rest of
// its channel, as does the decompressed-size limit.
type channelReader struct {
	prev    rawChannelProvider
	cfg     *rollup.Config
	log     *slog.Logger
	metrics Metrics
	open    func(cfg *rollup.Config, body []byte, maxRLP uint64, fjord bool) (batchSource, error)
	next    batchSource
}

func newChannelReader(prev rawChannelProvider, cfg *rollup.Config, log *slog.Logger, m Metrics) *channelReader {
	return &channelReader{prev: prev, cfg: cfg, log: log, metrics: m, open: openChannel}
}

func (r *channelReader) Origin() eth.L1BlockRef { return r.prev.Origin() }

// NextBatch returns the next batch; ErrNotEnoughData when a channel ended or was dropped.
func (r *channelReader) NextBatch(ctx context.Context) (decodedBatch, error) {
	if r.next == nil {
		body, err := r.prev.NextRawChannel(ctx)
		if err != nil {
			return decodedBatch{}, err
		}
		t := r.Origin().Time
		next, err := r.open(r.cfg, body, MaxRLPBytes(r.cfg, t), r.cfg.IsFjord(t))
		if err != nil {
			r.log.Warn("dropped channel: body does not open", "origin", r.Origin().ID(), "len", len(body), "err", err)
			r.metrics.ChannelDropped(DropChannelCompression)
			return decodedBatch{}, ErrNotEnoughData
		}
		r.next = next
	}
	b, err := r.next()
	if errors.Is(err, errMalformedSpan) {
		// The span batch's wire form decoded but its blocks do not: only it goes.
		r.log.Warn("dropped span batch: malformed", "origin", r.Origin().ID(), "err", err)
		r.metrics.BatchVerdict(KindSpan, VerdictDrop)
		return decodedBatch{}, ErrNotEnoughData
	} else if errors.Is(err, io.EOF) {
		r.next = nil
		return decodedBatch{}, ErrNotEnoughData
	} else if errors.Is(err, batch.ErrBatchTooLarge) {
		r.log.Warn("dropped rest of channel: decompresses past the limit", "origin", r.Origin().ID(), "err", err)
		r.metrics.ChannelDropped(DropChannelOutputLimit)
		r.next = nil
		return decodedBatch{}, ErrNotEnoughData
	} else if err != nil {
		r.log.Warn("dropped rest of channel: batch does not decode", "origin", r.Origin().ID(), "err", err)
		r.metrics.ChannelDropped(DropChannelRead)
		r.next = nil
		return decodedBatch{}, ErrNotEnoughData
	}
	return b, nil
}

// FlushChannel drops what is left of the current channel and the one being assembled.
func (r *channelReader) FlushChannel() {
	if r.next != nil {
		r.metrics.ChannelDropped(DropChannelFlushed)
		r.next = nil
	}
	r.prev.FlushChannel()
}

func (r *channelReader) reset() { r.next = nil }
