package engine

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
)

// SetInterop puts the engine in managed mode: a supervisor decides which blocks are
// cross-unsafe and cross-safe, so the node's own blocks raise only the local heads, and
// the safe hash the execution client is told is the cross-safe head. Cross-unsafe starts
// at the cross-safe head, the last block the supervisor is known to have accepted (the
// execution client keeps no cross-unsafe label to restore it from).
func (e *Engine) SetInterop(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.interop = on
	if on {
		e.h.CrossUnsafe = e.h.Safe
	}
}

// Interop reports whether the engine is in managed mode.
func (e *Engine) Interop() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.interop
}

// OnUnsafe sets fn to hear of every new unsafe block (sequenced, inserted or derived),
// called outside the engine's lock. Set it before the driver starts.
func (e *Engine) OnUnsafe(fn func(eth.L2BlockRef)) { e.onUnsafe = fn }

func (e *Engine) notifyUnsafe(ref eth.L2BlockRef) {
	if e.onUnsafe != nil {
		e.onUnsafe(ref)
	}
}

// followUnsafeLocked keeps cross-unsafe consistent with a new unsafe head ref: without
// interop it is ref; with interop it stays, unless ref replaced the block it named (or one
// below it), in which case it falls back to the cross-safe head, an ancestor of ref.
func (e *Engine) followUnsafeLocked(ref eth.L2BlockRef) {
	switch {
	case !e.interop:
		e.h.CrossUnsafe = ref
	case e.h.CrossUnsafe.Number >= ref.Number:
		e.h.CrossUnsafe = e.h.Safe
		if e.h.Safe.Number >= ref.Number {
			e.h.CrossUnsafe = ref
		}
	}
}

// PromoteCrossUnsafe raises cross-unsafe to ref, which must not be above the unsafe head.
// An older or equal ref changes nothing: promotions are repeated by the supervisor.
func (e *Engine) PromoteCrossUnsafe(ref eth.L2BlockRef) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ref.Number <= e.h.CrossUnsafe.Number {
		return nil
	}
	if ref.Number > e.h.Unsafe.Number {
		return fmt.Errorf("promote %s to cross-unsafe: %w: above the unsafe head %s", ref, ErrInvalid, e.h.Unsafe)
	}
	e.h.CrossUnsafe = ref
	return nil
}

// PromoteCrossSafe raises the cross-safe head (forkchoice safe) to ref, which must not be
// above the local-safe head; cross-unsafe follows it if it was lower.
func (e *Engine) PromoteCrossSafe(ctx context.Context, ref eth.L2BlockRef) error {
	h := e.State()
	if ref.Number <= h.Safe.Number {
		return nil
	}
	if ref.Number > h.LocalSafe.Number {
		return fmt.Errorf("promote %s to cross-safe: %w: above the local-safe head %s", ref, ErrInvalid, h.LocalSafe)
	}
	fc := engine.ForkchoiceStateV1{HeadBlockHash: h.Unsafe.Hash, SafeBlockHash: ref.Hash, FinalizedBlockHash: h.Finalized.Hash}
	if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return fmt.Errorf("promote %s to cross-safe: %w", ref, err)
	}
	e.mu.Lock()
	e.h.Safe = ref
	if e.h.CrossUnsafe.Number < ref.Number {
		e.h.CrossUnsafe = ref
	}
	e.mu.Unlock()
	return nil
}

// ForceReset installs all five heads at once (a supervisor's reset, or the chain after a
// replacement block): pending-safe restarts at local-safe.
func (e *Engine) ForceReset(ctx context.Context, localUnsafe, crossUnsafe, localSafe, crossSafe, finalized eth.L2BlockRef) error {
	if finalized.Number > crossSafe.Number || crossSafe.Number > localSafe.Number || localSafe.Number > localUnsafe.Number ||
		crossSafe.Number > crossUnsafe.Number || crossUnsafe.Number > localUnsafe.Number {
		return fmt.Errorf("reset heads out of order: unsafe %d, cross-unsafe %d, local-safe %d, cross-safe %d, finalized %d: %w",
			localUnsafe.Number, crossUnsafe.Number, localSafe.Number, crossSafe.Number, finalized.Number, ErrInvalid)
	}
	fc := engine.ForkchoiceStateV1{HeadBlockHash: localUnsafe.Hash, SafeBlockHash: crossSafe.Hash, FinalizedBlockHash: finalized.Hash}
	if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return fmt.Errorf("reset forkchoice to unsafe %s, safe %s, finalized %s: %w", localUnsafe, crossSafe, finalized, err)
	}
	e.mu.Lock()
	e.h = Heads{Unsafe: localUnsafe, CrossUnsafe: crossUnsafe, PendingSafe: localSafe, LocalSafe: localSafe, Safe: crossSafe, Finalized: finalized}
	e.mu.Unlock()
	return nil
}

// BuildReplacement builds the block of attrs on parent and makes it every head but
// finalized: the replacement of a block the supervisor invalidated is as safe as the
// block it replaces was meant to be, and the chain continues from it.
func (e *Engine) BuildReplacement(ctx context.Context, parent eth.L2BlockRef, attrs *engine.PayloadAttributes) (*engine.ExecutionPayloadEnvelope, eth.L2BlockRef, error) {
	id, err := e.c.ForkchoiceUpdated(ctx, e.forkchoice(parent.Hash), attrs)
	if err != nil {
		return nil, eth.L2BlockRef{}, fmt.Errorf("build replacement on %s: %w", parent, err)
	}
	env, err := e.c.GetPayload(ctx, *id)
	if err != nil {
		return nil, eth.L2BlockRef{}, fmt.Errorf("build replacement on %s: %w", parent, err)
	}
	ref, err := e.newPayload(ctx, env)
	if err != nil {
		return nil, eth.L2BlockRef{}, fmt.Errorf("insert replacement on %s: %w", parent, err)
	}
	_, _, finalized := e.Heads()
	if finalized.Number >= ref.Number {
		return nil, eth.L2BlockRef{}, fmt.Errorf("replacement %s: %w: at or below the finalized head %s", ref, ErrInvalid, finalized)
	}
	if err := e.ForceReset(ctx, ref, ref, ref, ref, finalized); err != nil {
		return nil, eth.L2BlockRef{}, err
	}
	return env, ref, nil
}

// BlockReceipts reads the receipts of the block with hash h, with the call deadline; the
// supervisor indexes a managed node's logs from them.
func (c *Client) BlockReceipts(ctx context.Context, h common.Hash) (types.Receipts, error) {
	return ethCall(ctx, c, "eth_getBlockReceipts "+h.Hex(), func(ctx context.Context) (types.Receipts, error) {
		r, err := c.Eth.BlockReceipts(ctx, rpc.BlockNumberOrHashWithHash(h, false))
		return types.Receipts(r), err
	})
}
