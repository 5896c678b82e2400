package derive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// Attributes are the payload attributes of one derived L2 block.
type Attributes struct {
	// Parent is the safe head the block builds on.
	Parent eth.L2BlockRef
	// Payload has NoTxPool set: a derived block holds exactly these transactions.
	Payload *engine.PayloadAttributes
	// DerivedFrom is the L1 block derivation was reading when it made them.
	DerivedFrom eth.L1BlockRef
	// IsLastInSpan: the batch was singular, the last block of a span batch, or forced
	// empty. It only says where a span batch ends; Concluding says when the block is
	// local-safe.
	IsLastInSpan bool
	// Concluding: the block becomes local-safe (and, without interop, safe) as soon as
	// the engine takes it. Under Holocene that is every derived block, each block of a
	// span batch included, as op-node's batch stage concludes every batch it accepts;
	// only the pre-Holocene batch queue held a span's blocks back as pending-safe until
	// its last one.
	Concluding bool
	// DepositsOnly: no batch arrived within the sequence window, so the block holds only
	// the L1-attributes deposit, the epoch's user deposits and upgrade transactions.
	DepositsOnly bool
}

// buildTimeout bounds the L1 and L2 reads of building one block's attributes.
const buildTimeout = 20 * time.Second

// buildAttributes builds the attributes of the block after parent in epoch, system
// transactions only, with the builder the sequencer uses, its error classes mapped to
// derivation's.
func buildAttributes(ctx context.Context, cfg *rollup.Config, l1 L1Source, l1Chain *params.ChainConfig, sys rollup.SystemConfig, parent eth.L2BlockRef, epoch eth.BlockID) (*engine.PayloadAttributes, error) {
	attrs, _, err := cfg.BuildAttributes(ctx, l1, l1Chain, sys, parent, epoch)
	switch {
	case err == nil:
		return attrs, nil
	case errors.Is(err, rollup.ErrResetAttrs):
		return nil, NewResetError(err)
	case errors.Is(err, rollup.ErrCriticalAttrs):
		return nil, NewCriticalError(err)
	default:
		return nil, NewTemporaryError(err)
	}
}

// readyBatches is what the attributes stage reads from: the batch stage.
type readyBatches interface {
	NextBatch(ctx context.Context, parent eth.L2BlockRef) (readyBatch, error)
	Origin() eth.L1BlockRef
	FlushChannel()
}

// attributesStage turns each accepted batch into payload attributes: the system
// transactions for the block after the safe head in the batch's epoch, then the batch's
// transactions.
type attributesStage struct {
	prev    readyBatches
	cfg     *rollup.Config
	l1Chain *params.ChainConfig
	l1      L1Source
	l2      L2Source
	log     *slog.Logger
	// pending holds a batch whose attributes failed to build, for the retry.
	pending *readyBatch
}

func newAttributesStage(prev readyBatches, cfg *rollup.Config, l1Chain *params.ChainConfig, l1 L1Source, l2 L2Source, log *slog.Logger) *attributesStage {
	return &attributesStage{prev: prev, cfg: cfg, l1Chain: l1Chain, l1: l1, l2: l2, log: log}
}

func (a *attributesStage) Origin() eth.L1BlockRef { return a.prev.Origin() }

func (a *attributesStage) NextAttributes(ctx context.Context, parent eth.L2BlockRef) (*Attributes, error) {
	if a.pending == nil {
		b, err := a.prev.NextBatch(ctx, parent)
		if err != nil {
			return nil, err
		}
		a.pending = &b
	}
	b := a.pending
	if b.ParentHash != parent.Hash {
		return nil, NewResetError(fmt.Errorf("accepted batch builds on %s, not the safe head %s", b.ParentHash, parent.ID()))
	}
	if want := parent.Time + a.cfg.BlockTime; b.Timestamp != want {
		return nil, NewResetError(fmt.Errorf("accepted batch has timestamp %d, the block after %s is at %d", b.Timestamp, parent.ID(), want))
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	sys, err := a.l2.SystemConfigByL2Hash(ctx, parent.Hash)
	if err != nil {
		return nil, NewTemporaryError(fmt.Errorf("system config of safe head %s: %w", parent.ID(), err))
	}
	attrs, err := buildAttributes(ctx, a.cfg, a.l1, a.l1Chain, sys, parent, eth.BlockID{Hash: b.EpochHash, Number: b.EpochNum})
	if err != nil {
		return nil, classify(err)
	}
	attrs.NoTxPool = true
	attrs.Transactions = append(attrs.Transactions, b.Transactions...)
	a.pending = nil
	from := a.Origin()
	return &Attributes{
		Parent:       parent,
		Payload:      attrs,
		DerivedFrom:  from,
		IsLastInSpan: b.lastInSpan,
		Concluding:   b.lastInSpan || a.cfg.IsHolocene(from.Time),
		DepositsOnly: b.forcedEmpty,
	}, nil
}

func (a *attributesStage) reset() { a.pending = nil }
