package derive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// NoL1Limit lets traversal read L1 up to its head.
const NoL1Limit = math.MaxUint64

// applyConfigUpdates applies an L1 block's SystemConfig ConfigUpdate logs.
func applyConfigUpdates(cfg *rollup.Config, sys rollup.SystemConfig, receipts types.Receipts, l1Time uint64) (rollup.SystemConfig, error) {
	return rollup.ParseConfigUpdates(sys, receipts, cfg.L1SystemConfigAddress, l1Time, cfg)
}

// l1Traversal walks L1 one block at a time by parent hash from its origin, keeping the
// system config in force after each block's own ConfigUpdate logs. It hands each block
// once to the stage above (NextL1Block) and moves on only when asked (advance), which
// derivation does once everything read from the current block is used up.
type l1Traversal struct {
	cfg *rollup.Config
	l1  L1Source
	log *slog.Logger

	block eth.L1BlockRef
	done  bool // block was handed out
	sys   rollup.SystemConfig
	limit uint64
}

func newL1Traversal(cfg *rollup.Config, l1 L1Source, log *slog.Logger) *l1Traversal {
	return &l1Traversal{cfg: cfg, l1: l1, log: log, limit: NoL1Limit}
}

func (t *l1Traversal) Origin() eth.L1BlockRef { return t.block }

func (t *l1Traversal) SystemConfig() rollup.SystemConfig { return t.sys }

// NextL1Block returns the current block once, then io.EOF until advance.
func (t *l1Traversal) NextL1Block(context.Context) (eth.L1BlockRef, error) {
	if t.done {
		return eth.L1BlockRef{}, io.EOF
	}
	t.done = true
	return t.block, nil
}

// advance moves to the next L1 block: io.EOF when it is not there yet (or past the
// limit), a reset error when it does not build on the current block.
func (t *l1Traversal) advance(ctx context.Context) error {
	n := t.block.Number + 1
	if n > t.limit {
		return io.EOF
	}
	next, err := t.l1.L1BlockRefByNumber(ctx, n)
	if errors.Is(err, ethereum.NotFound) {
		return io.EOF
	} else if err != nil {
		return NewTemporaryError(fmt.Errorf("L1 block %d after origin %s: %w", n, t.block, err))
	}
	if next.ParentHash != t.block.Hash {
		return NewResetError(fmt.Errorf("L1 reorg: block %s has parent %s, not the origin %s", next, next.ParentHash, t.block))
	}
	_, receipts, err := t.l1.FetchReceipts(ctx, next.Hash)
	if err != nil {
		return NewTemporaryError(fmt.Errorf("receipts of L1 block %s: %w", next, err))
	}
	sys, err := applyConfigUpdates(t.cfg, t.sys, receipts, next.Time)
	if err != nil {
		// A malformed update is skipped, as the L1 contract cannot be made to undo it.
		t.log.Warn("ignored malformed system config update", "l1", next, "err", err)
	}
	t.sys = sys
	t.block = next
	t.done = false
	return nil
}

func (t *l1Traversal) reset(base eth.L1BlockRef, sys rollup.SystemConfig) {
	t.block = base
	t.done = false
	t.sys = sys
}
