package derive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// batchProvider is what the batch stage reads from: the channel reader.
type batchProvider interface {
	NextBatch(ctx context.Context) (decodedBatch, error)
	Origin() eth.L1BlockRef
	FlushChannel()
}

// l2Refs looks up safe L2 blocks a span batch overlaps.
type l2Refs interface {
	L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error)
}

// readyBatch is a batch the batch stage accepted (or made up) for the block after the
// safe head.
type readyBatch struct {
	*batch.SingularBatch
	// lastInSpan: the batch was singular, the last block of a span batch, or forced.
	lastInSpan bool
	// forcedEmpty: no batch arrived within the sequence window; the block has deposits only.
	forcedEmpty bool
}

// batchStage applies the Holocene batch rules: batches must arrive in order, each either
// extends the safe head (accept), is already covered by it (past: skipped) or is invalid
// (drop: the rest of its channel goes too). When the sequence window of the safe head's
// epoch passes with no batch, it makes empty batches so the chain keeps moving.
type batchStage struct {
	prev    batchProvider
	cfg     *rollup.Config
	log     *slog.Logger
	metrics Metrics
	l2      l2Refs

	origin eth.L1BlockRef
	// l1Blocks: consecutive L1 blocks from the safe head's epoch up to origin, the
	// epochs a batch may use.
	l1Blocks []eth.L1BlockRef
	// nextSpan: the blocks of the current span batch not yet handed out.
	nextSpan []*batch.SingularBatch
}

func newBatchStage(prev batchProvider, cfg *rollup.Config, l2 l2Refs, log *slog.Logger, m Metrics) *batchStage {
	return &batchStage{prev: prev, cfg: cfg, l2: l2, log: log, metrics: m}
}

func (s *batchStage) Origin() eth.L1BlockRef { return s.prev.Origin() }

func (s *batchStage) reset(base eth.L1BlockRef) {
	s.origin = base
	s.l1Blocks = append(s.l1Blocks[:0], base)
	s.nextSpan = nil
}

// FlushChannel drops the rest of the current span batch and channel.
func (s *batchStage) FlushChannel() {
	s.nextSpan = nil
	s.prev.FlushChannel()
}

func (s *batchStage) originBehind(parent eth.L2BlockRef) bool {
	return s.prev.Origin().Number < parent.L1Origin.Number
}

// updateOrigins records a new origin and forgets epochs before the parent's.
func (s *batchStage) updateOrigins(parent eth.L2BlockRef) {
	behind := s.originBehind(parent)
	if s.origin != s.prev.Origin() {
		s.origin = s.prev.Origin()
		if !behind {
			s.l1Blocks = append(s.l1Blocks, s.origin)
		} else {
			// Still catching up to the safe head's epoch: nothing here is usable.
			s.l1Blocks = s.l1Blocks[:0]
		}
	}
	if len(s.l1Blocks) > 0 && parent.L1Origin.Number > s.l1Blocks[0].Number {
		for i, b := range s.l1Blocks {
			if b.Number == parent.L1Origin.Number {
				s.l1Blocks = s.l1Blocks[i:]
				break
			}
		}
	}
}

// NextBatch returns the batch of the block after parent; ErrNotEnoughData when it read
// something that was not it, io.EOF when it needs the next L1 block.
func (s *batchStage) NextBatch(ctx context.Context, parent eth.L2BlockRef) (readyBatch, error) {
	s.updateOrigins(parent)
	// Until derivation passes the parent's epoch, every batch read is for blocks the safe
	// chain already has.
	if s.originBehind(parent) || parent.L1Origin.Number == s.origin.Number {
		b, err := s.prev.NextBatch(ctx)
		if err != nil {
			return readyBatch{}, err
		}
		s.log.Debug("skipped batch from before the safe head's epoch", "origin", s.origin.ID(), "parent", parent.ID())
		s.metrics.BatchVerdict(b.kind(), VerdictPast)
		return readyBatch{}, ErrNotEnoughData
	}
	if len(s.l1Blocks) < 2 {
		return readyBatch{}, NewCriticalError(fmt.Errorf("batch stage holds %d L1 blocks at origin %s with parent %s: derivation did not start at a safe head", len(s.l1Blocks), s.origin.ID(), parent.ID()))
	}
	// The epoch may be one ahead of the parent's after forced empty batches used it up.
	if epoch := s.l1Blocks[0]; parent.L1Origin != epoch.ID() && parent.L1Origin.Number != epoch.Number-1 {
		return readyBatch{}, NewResetError(fmt.Errorf("batch stage epoch %s does not match safe head origin %s", epoch.ID(), parent.L1Origin))
	}

	b, last, kind, err := s.nextCandidate(ctx, parent)
	if errors.Is(err, io.EOF) {
		return s.nextEmptyBatch(parent)
	} else if err != nil {
		return readyBatch{}, err
	}
	v, reason := checkSingular(s.cfg, s.l1Blocks, parent, b, s.origin)
	s.metrics.BatchVerdict(kind, v.String())
	lg := s.log.With("origin", s.origin.ID(), "kind", kind, "timestamp", b.Timestamp, "epoch", b.EpochNum, "parent", parent.ID())
	switch v {
	case verdictAccept:
		lg.Debug("accepted batch", "txs", len(b.Transactions))
		return readyBatch{SingularBatch: b, lastInSpan: last}, nil
	case verdictPast:
		lg.Warn("skipped past batch", "reason", reason)
	case verdictDrop:
		lg.Warn("dropped batch, flushing its channel", "reason", reason)
		s.FlushChannel()
	default:
		lg.Warn("dropped undecided batch", "reason", reason)
	}
	return readyBatch{}, ErrNotEnoughData
}

// nextCandidate returns the next block of the current span batch, or reads the next
// batch: a singular one as it is, a span batch checked as a whole and then expanded.
func (s *batchStage) nextCandidate(ctx context.Context, parent eth.L2BlockRef) (*batch.SingularBatch, bool, string, error) {
	if len(s.nextSpan) > 0 {
		if s.nextSpan[0].Timestamp == parent.Time+s.cfg.BlockTime {
			b := s.popSpan(parent)
			return b, len(s.nextSpan) == 0, KindSpanBlock, nil
		}
		// The block built from the previous span block is not the safe head: the rest
		// of the span cannot apply.
		s.log.Warn("dropped rest of span batch: safe head moved elsewhere", "parent", parent.ID(), "next_timestamp", s.nextSpan[0].Timestamp)
		s.nextSpan = nil
	}
	d, err := s.prev.NextBatch(ctx)
	if err != nil {
		return nil, false, "", err
	}
	if d.singular != nil {
		return d.singular, true, KindSingular, nil
	}
	span := d.span
	if span == nil || len(span.blocks) == 0 {
		return nil, false, "", NewCriticalError(errors.New("channel reader returned an empty batch"))
	}
	v, reason := checkSpanPrefix(ctx, s.cfg, s.l1Blocks, parent, span, s.origin, s.l2)
	lg := s.log.With("origin", s.origin.ID(), "kind", KindSpan, "first", span.firstTime(), "last", span.lastTime(),
		"blocks", len(span.blocks), "parent", parent.ID())
	if v == verdictAccept {
		blocks, err := spanBlocks(span, s.l1Blocks, parent)
		if err != nil {
			v, reason = verdictDrop, err.Error()
		} else {
			s.metrics.BatchVerdict(KindSpan, v.String())
			lg.Debug("accepted span batch")
			s.nextSpan = blocks
			b := s.popSpan(parent)
			return b, len(s.nextSpan) == 0, KindSpanBlock, nil
		}
	}
	s.metrics.BatchVerdict(KindSpan, v.String())
	switch v {
	case verdictPast:
		lg.Warn("skipped past span batch", "reason", reason)
	case verdictDrop:
		lg.Warn("dropped span batch, flushing its channel", "reason", reason)
		s.FlushChannel()
	default:
		lg.Warn("dropped undecided span batch", "reason", reason)
	}
	return nil, false, "", ErrNotEnoughData
}

func (s *batchStage) popSpan(parent eth.L2BlockRef) *batch.SingularBatch {
	b := s.nextSpan[0]
	s.nextSpan = s.nextSpan[1:]
	// The span's parent check covered the first block; each later one builds on the
	// block made from the one before.
	b.ParentHash = parent.Hash
	return b
}

// nextEmptyBatch makes the empty batch the sequence window forces, or io.EOF when none
// is due yet.
func (s *batchStage) nextEmptyBatch(parent eth.L2BlockRef) (readyBatch, error) {
	epoch := s.l1Blocks[0]
	expiry := epoch.Number + s.cfg.SeqWindowSize
	// The window expired once derivation is past its last block, or at its last block
	// with nothing more to read there.
	if expiry > s.origin.Number {
		return readyBatch{}, io.EOF
	}
	if len(s.l1Blocks) < 2 {
		return readyBatch{}, io.EOF
	}
	next := parent.Time + s.cfg.BlockTime
	nextEpoch := s.l1Blocks[1]
	// Empty blocks stay in the epoch until L2 time reaches the next L1 block's, so L2
	// time never falls behind its origin; an epoch gets at least one block.
	if next < nextEpoch.Time || epoch.Number == parent.L1Origin.Number+1 {
		s.metrics.BatchVerdict(KindSingular, VerdictForcedEmpty)
		s.log.Info("sequence window passed: deriving an empty batch", "epoch", epoch.ID(), "timestamp", next, "parent", parent.ID(), "origin", s.origin.ID())
		return readyBatch{
			SingularBatch: &batch.SingularBatch{ParentHash: parent.Hash, EpochNum: epoch.Number, EpochHash: epoch.Hash, Timestamp: next},
			lastInSpan:    true, forcedEmpty: true,
		}, nil
	}
	s.l1Blocks = s.l1Blocks[1:]
	return readyBatch{}, io.EOF
}

// spanBlocks expands an accepted span batch into the blocks after parent, with their
// epoch hashes from l1Blocks.
func spanBlocks(span *spanBatch, l1Blocks []eth.L1BlockRef, parent eth.L2BlockRef) ([]*batch.SingularBatch, error) {
	var out []*batch.SingularBatch
	idx := 0
	for _, b := range span.blocks {
		if b.Timestamp <= parent.Time {
			continue
		}
		if b.EpochNum < parent.L1Origin.Number {
			return nil, fmt.Errorf("block at %d has epoch %d before the safe head's %d", b.Timestamp, b.EpochNum, parent.L1Origin.Number)
		}
		found := false
		for ; idx < len(l1Blocks); idx++ {
			if l1Blocks[idx].Number == b.EpochNum {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("block at %d has epoch %d, not among the L1 blocks read", b.Timestamp, b.EpochNum)
		}
		out = append(out, &batch.SingularBatch{EpochNum: b.EpochNum, EpochHash: l1Blocks[idx].Hash, Timestamp: b.Timestamp, Transactions: b.Transactions})
	}
	if len(out) == 0 {
		return nil, errors.New("no block after the safe head")
	}
	return out, nil
}

// kind names a decoded batch for counters.
func (d decodedBatch) kind() string {
	if d.span != nil {
		return KindSpan
	}
	return KindSingular
}

func hashPrefixIs(check [20]byte, h common.Hash) bool { return [20]byte(h[:20]) == check }
