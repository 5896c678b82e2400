package sequencer

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// L1Source reads L1 headers.
type L1Source interface {
	HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error)
	HeaderByHash(ctx context.Context, h common.Hash) (*types.Header, error)
}

var (
	// ErrL1Reorg: the L2 head's L1 origin is no longer canonical on L1.
	ErrL1Reorg = errors.New("L1 origin is no longer canonical")
	// ErrPastDrift: the next block would run past the drift limit and the next L1 origin
	// is not available yet; wait for L1.
	ErrPastDrift = errors.New("next L2 block would exceed the sequencer drift and no next L1 origin is available")
	// ErrL1Unavailable: L1 could not be read; retry.
	ErrL1Unavailable = errors.New("L1 unavailable")
)

// OriginSelector picks the L1 origin of the next L2 block.
type OriginSelector struct {
	cfg   *rollup.Config
	l1    L1Source
	confs uint64
}

// NewOriginSelector picks origins at least confs blocks below the L1 head.
func NewOriginSelector(cfg *rollup.Config, l1 L1Source, confs uint64) *OriginSelector {
	return &OriginSelector{cfg: cfg, l1: l1, confs: confs}
}

// Selection is the chosen origin and whether the block must carry no mempool transactions
// because it runs past the drift limit.
type Selection struct {
	Origin    *types.Header
	PastDrift bool
}

// FindL1Origin returns the origin for the block after parent, given the L1 head. The
// origin stays the parent's until the next L1 block is confirmed and no later than the new
// block's timestamp; then it advances by exactly one. A block may run up to the drift
// limit ahead of its origin; past it the origin must advance, and until the next origin
// exists the sequencer waits (ErrPastDrift). If the next origin exists but is still later
// than the block, the block keeps its origin and must be empty of mempool transactions.
func (s *OriginSelector) FindL1Origin(ctx context.Context, parent eth.L2BlockRef, l1Head eth.L1BlockRef) (Selection, error) {
	current, err := s.l1.HeaderByHash(ctx, parent.L1Origin.Hash)
	if err != nil {
		return Selection{}, fmt.Errorf("read L1 origin %s: %w: %w", parent.L1Origin, ErrL1Unavailable, err)
	}
	canonical, err := s.l1.HeaderByNumber(ctx, current.Number)
	if errors.Is(err, ethereum.NotFound) {
		// L1 now ends below the origin: the origin's branch was dropped.
		return Selection{}, fmt.Errorf("origin %s of L2 block %s is above the L1 head: %w", parent.L1Origin, parent.ID(), ErrL1Reorg)
	}
	if err != nil {
		return Selection{}, fmt.Errorf("read L1 block %d: %w: %w", current.Number, ErrL1Unavailable, err)
	}
	if canonical.Hash() != current.Hash() {
		return Selection{}, fmt.Errorf("origin %s of L2 block %s: %w", parent.L1Origin, parent.ID(), ErrL1Reorg)
	}
	nextTime := parent.Time + s.cfg.BlockTime
	pastDrift := nextTime > current.Time+s.cfg.MaxSequencerDriftAt(current.Time)
	nextNum := current.Number.Uint64() + 1
	nextKnown := nextNum+s.confs <= l1Head.Number
	if nextKnown {
		next, err := s.l1.HeaderByNumber(ctx, new(big.Int).SetUint64(nextNum))
		if err != nil {
			return Selection{}, fmt.Errorf("read L1 block %d: %w: %w", nextNum, ErrL1Unavailable, err)
		}
		if next.ParentHash != current.Hash() {
			return Selection{}, fmt.Errorf("L1 block %d does not extend origin %s: %w", nextNum, parent.L1Origin, ErrL1Reorg)
		}
		if nextTime >= next.Time {
			return Selection{Origin: next}, nil
		}
	}
	if pastDrift && !nextKnown {
		return Selection{}, fmt.Errorf("block at %d, origin %d at %d: %w", nextTime, current.Number, current.Time, ErrPastDrift)
	}
	// Past the drift with a next origin whose time is still ahead of the block: the block
	// keeps the current origin but may carry no mempool transactions.
	return Selection{Origin: current, PastDrift: pastDrift}, nil
}

func bigU(n uint64) *big.Int { return new(big.Int).SetUint64(n) }
