package derive

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// openChannel opens a channel body with rollup/batch's reader and expands span batches
// for the chain.
func openChannel(cfg *rollup.Config, body []byte, maxRLP uint64, fjord bool) (batchSource, error) {
	r, err := batch.NewChannelReader(bytes.NewReader(body), maxRLP, fjord)
	if err != nil {
		return nil, err
	}
	return func() (decodedBatch, error) {
		b, err := r.Next()
		if err != nil {
			return decodedBatch{}, err
		}
		switch b := b.(type) {
		case *batch.SingularBatch:
			return decodedBatch{singular: b}, nil
		case *batch.RawSpanBatch:
			span, err := expandSpan(cfg, b)
			if err != nil {
				return decodedBatch{}, fmt.Errorf("%w: %w", errMalformedSpan, err)
			}
			return decodedBatch{span: span}, nil
		default:
			return decodedBatch{}, fmt.Errorf("batch type %d is not singular or span", b.BatchType())
		}
	}, nil
}

// expandSpan derives a span batch's blocks for the chain.
func expandSpan(cfg *rollup.Config, b *batch.RawSpanBatch) (*spanBatch, error) {
	s, err := b.Derive(cfg.Genesis.L2Time, cfg.BlockTime, cfg.L2ChainID)
	if err != nil {
		return nil, err
	}
	if len(s.Elements) == 0 {
		return nil, errors.New("span batch without blocks")
	}
	span := &spanBatch{parentCheck: s.ParentCheck, originCheck: s.L1OriginCheck, blocks: make([]*batch.SingularBatch, len(s.Elements))}
	for i, e := range s.Elements {
		span.blocks[i] = &batch.SingularBatch{EpochNum: e.EpochNum, Timestamp: e.Timestamp, Transactions: e.Transactions}
	}
	return span, nil
}
