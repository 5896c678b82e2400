package derive

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// verdict is the batch stage's decision on a batch.
type verdict int

const (
	// verdictDrop: invalid for good (short of an L1 reorg); its channel is flushed.
	verdictDrop verdict = iota
	// verdictAccept: the batch of the next block.
	verdictAccept
	// verdictUndecided: L1 or L2 data to decide is missing; the batch is skipped.
	verdictUndecided
	// verdictPast: the safe chain already covers it; skipped.
	verdictPast
)

func (v verdict) String() string {
	switch v {
	case verdictDrop:
		return VerdictDrop
	case verdictAccept:
		return VerdictAccept
	case verdictUndecided:
		return VerdictUndecided
	case verdictPast:
		return VerdictPast
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

func forkActive(fork *uint64, t uint64) bool { return fork != nil && t >= *fork }

// isActivationBlock: the L2 block at t is the first with the fork active.
func isActivationBlock(cfg *rollup.Config, fork *uint64, t uint64) bool {
	return forkActive(fork, t) && t >= cfg.BlockTime && !forkActive(fork, t-cfg.BlockTime)
}

// upgradeBlock: blocks that carry network-upgrade transactions may hold no others.
func upgradeBlock(cfg *rollup.Config, t uint64) bool {
	return cfg.IsJovianActivationBlock(t) || isActivationBlock(cfg, cfg.KarstTime, t) ||
		isActivationBlock(cfg, cfg.InteropTime, t)
}

// checkTxs refuses batch transactions a sequencer may not include.
func checkTxs(cfg *rollup.Config, t uint64, txs [][]byte) string {
	isthmus := cfg.IsIsthmus(t)
	for i, tx := range txs {
		switch {
		case len(tx) == 0:
			return fmt.Sprintf("transaction %d is empty", i)
		case tx[0] == types.DepositTxType:
			return fmt.Sprintf("transaction %d is a deposit", i)
		case !isthmus && tx[0] == types.SetCodeTxType:
			return fmt.Sprintf("transaction %d is a set-code transaction before Isthmus", i)
		}
	}
	return ""
}

// checkSingular decides on a singular batch (or one block of a span batch) for the
// block after safe, included in L1 block inclusion; l1Blocks starts at the safe head's
// epoch. It returns the verdict and, unless accepted, why.
func checkSingular(cfg *rollup.Config, l1Blocks []eth.L1BlockRef, safe eth.L2BlockRef, b *batch.SingularBatch, inclusion eth.L1BlockRef) (verdict, string) {
	if len(l1Blocks) == 0 {
		return verdictUndecided, "no L1 blocks to check the epoch against"
	}
	epoch := l1Blocks[0]
	next := safe.Time + cfg.BlockTime
	if b.Timestamp > next {
		return verdictDrop, fmt.Sprintf("future batch: timestamp %d, next block's is %d", b.Timestamp, next)
	}
	if b.Timestamp < next {
		return verdictPast, fmt.Sprintf("timestamp %d is before the next block's %d", b.Timestamp, next)
	}
	if b.ParentHash != safe.Hash {
		return verdictDrop, fmt.Sprintf("parent %s is not the safe head %s", b.ParentHash, safe.Hash)
	}
	if b.EpochNum+cfg.SeqWindowSize < inclusion.Number {
		return verdictDrop, fmt.Sprintf("included at L1 %d, after epoch %d's sequence window", inclusion.Number, b.EpochNum)
	}
	origin := epoch
	switch {
	case b.EpochNum < epoch.Number:
		return verdictDrop, fmt.Sprintf("epoch %d is before the current %d", b.EpochNum, epoch.Number)
	case b.EpochNum == epoch.Number:
	case b.EpochNum == epoch.Number+1:
		if len(l1Blocks) < 2 {
			return verdictUndecided, "advances the epoch, but the next L1 block is not read yet"
		}
		origin = l1Blocks[1]
	default:
		return verdictDrop, fmt.Sprintf("epoch %d is more than one after the current %d", b.EpochNum, epoch.Number)
	}
	if b.EpochHash != origin.Hash {
		return verdictDrop, fmt.Sprintf("epoch hash %s is not L1 block %s", b.EpochHash, origin.ID())
	}
	if b.Timestamp < origin.Time {
		return verdictDrop, fmt.Sprintf("timestamp %d is before its L1 origin's %d", b.Timestamp, origin.Time)
	}
	if upgradeBlock(cfg, b.Timestamp) && len(b.Transactions) > 0 {
		return verdictDrop, "transactions in a fork activation block"
	}
	if limit := origin.Time + cfg.MaxSequencerDriftAt(origin.Time); b.Timestamp > limit {
		if len(b.Transactions) > 0 {
			return verdictDrop, fmt.Sprintf("transactions past the sequencer drift limit %d", limit)
		}
		// An empty batch past the drift is allowed only while the next L1 block is
		// still ahead of it in time (or when it advances the epoch).
		if epoch.Number == origin.Number {
			if len(l1Blocks) < 2 {
				return verdictUndecided, "empty batch past the drift limit, next L1 block not read yet"
			}
			if b.Timestamp >= l1Blocks[1].Time {
				return verdictDrop, "empty batch past the drift limit did not adopt the next L1 origin"
			}
		}
	}
	if reason := checkTxs(cfg, b.Timestamp, b.Transactions); reason != "" {
		return verdictDrop, reason
	}
	return verdictAccept, ""
}

// checkSpanPrefix decides on a span batch as a whole before its blocks are checked one
// by one as singular batches.
func checkSpanPrefix(ctx context.Context, cfg *rollup.Config, l1Blocks []eth.L1BlockRef, safe eth.L2BlockRef, span *spanBatch, inclusion eth.L1BlockRef, l2 l2Refs) (verdict, string) {
	if len(l1Blocks) == 0 {
		return verdictUndecided, "no L1 blocks to check the epoch against"
	}
	epoch := l1Blocks[0]
	start := span.startEpoch()
	origin := epoch
	if start == epoch.Number+1 {
		if len(l1Blocks) < 2 {
			return verdictUndecided, "advances the epoch, but the next L1 block is not read yet"
		}
		origin = l1Blocks[1]
	}
	if !forkActive(cfg.DeltaTime, origin.Time) {
		return verdictDrop, "span batch with an L1 origin before Delta"
	}
	next := safe.Time + cfg.BlockTime
	if span.firstTime() > next {
		return verdictDrop, fmt.Sprintf("future span batch: starts at %d, next block's is %d", span.firstTime(), next)
	}
	if span.lastTime() < next {
		return verdictPast, fmt.Sprintf("ends at %d, before the next block's %d", span.lastTime(), next)
	}
	parent := safe
	if span.firstTime() < next {
		// Overlaps the safe chain: its parent is the safe block before its first.
		if span.firstTime() > safe.Time {
			return verdictDrop, "starts between the safe head and the next block"
		}
		if (safe.Time-span.firstTime())%cfg.BlockTime != 0 {
			return verdictDrop, "overlap is not aligned to the block time"
		}
		n := safe.Number - (safe.Time-span.firstTime())/cfg.BlockTime - 1
		var err error
		if parent, err = l2.L2BlockRefByNumber(ctx, n); err != nil {
			return verdictUndecided, fmt.Sprintf("L2 block %d: %v", n, err)
		}
	}
	if !hashPrefixIs(span.parentCheck, parent.Hash) {
		return verdictDrop, fmt.Sprintf("parent check %x does not match L2 block %s", span.parentCheck, parent.ID())
	}
	if start+cfg.SeqWindowSize < inclusion.Number {
		return verdictDrop, fmt.Sprintf("included at L1 %d, after epoch %d's sequence window", inclusion.Number, start)
	}
	if start > parent.L1Origin.Number+1 {
		return verdictDrop, fmt.Sprintf("start epoch %d is more than one after the parent's %d", start, parent.L1Origin.Number)
	}
	checked := false
	for _, b := range l1Blocks {
		if b.Number == span.lastEpoch() {
			if !hashPrefixIs(span.originCheck, b.Hash) {
				return verdictDrop, fmt.Sprintf("L1 origin check %x does not match L1 block %s", span.originCheck, b.ID())
			}
			checked = true
			break
		}
	}
	if !checked {
		return verdictUndecided, fmt.Sprintf("last epoch %d is not among the L1 blocks read", span.lastEpoch())
	}
	if start < parent.L1Origin.Number {
		return verdictDrop, fmt.Sprintf("start epoch %d is before the parent's %d", start, parent.L1Origin.Number)
	}
	return verdictAccept, ""
}
