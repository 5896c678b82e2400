package managed

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// Backend is what a rollup node provides to be managed by a supervisor. Lookups of
// something the node does not have return an error wrapping interop.ErrNotFound; every
// other error is reported to the supervisor as an internal error.
type Backend interface {
	// LocalHeads are the node's local-unsafe head and local-safe head with the L1 block it
	// was derived from. A new subscriber is sent them first, so that a supervisor that
	// missed events (the node restarted, the connection dropped) learns where the node is.
	// It must not wait on a caller of the Server's event methods.
	LocalHeads(ctx context.Context) (LocalHeads, error)
	// ChainID is the L2 chain ID.
	ChainID() interop.ChainID
	// AnchorPoint is the L1 block the rollup starts after and the L2 genesis block.
	AnchorPoint(ctx context.Context) (eth.DerivedBlockRefPair, error)

	// L2BlockRefByNumber is the canonical block at number.
	L2BlockRefByNumber(ctx context.Context, number uint64) (eth.L2BlockRef, error)
	// L2BlockRefByHash is the block with hash, canonical or not.
	L2BlockRefByHash(ctx context.Context, hash common.Hash) (eth.L2BlockRef, error)
	// L2BlockRefByTimestamp is the canonical block with timestamp.
	L2BlockRefByTimestamp(ctx context.Context, timestamp uint64) (eth.L2BlockRef, error)
	// Receipts are the receipts of the block with hash.
	Receipts(ctx context.Context, hash common.Hash) (types.Receipts, error)
	// OutputV0 is the output of the block with hash.
	OutputV0(ctx context.Context, hash common.Hash) (*eth.OutputV0, error)
	// PendingOutputV0 is, for a block that replaced an invalidated one, the output the
	// invalidated block would have had; for any other block, its own output.
	PendingOutputV0(ctx context.Context, hash common.Hash) (*eth.OutputV0, error)

	// Reset rewinds the node's heads to the given blocks, which the server has checked
	// exist and are canonical.
	Reset(ctx context.Context, localUnsafe, crossUnsafe, localSafe, crossSafe, finalized eth.L2BlockRef) error
	// ResetPreInterop rewinds the node to before interop activation.
	ResetPreInterop(ctx context.Context) error
	// PromoteCrossUnsafe, PromoteCrossSafe and PromoteFinalized raise a head. They may be
	// called again with the same or an older block and must then do nothing.
	PromoteCrossUnsafe(ctx context.Context, ref eth.L2BlockRef) error
	PromoteCrossSafe(ctx context.Context, ref eth.L2BlockRef, source eth.BlockID) error
	PromoteFinalized(ctx context.Context, ref eth.L2BlockRef) error
	// InvalidateBlock replaces the block with a deposits-only block; the node then reports
	// the replacement with Server.ReplaceBlock.
	InvalidateBlock(ctx context.Context, seal eth.BlockSeal) error
	// ProvideL1 gives derivation the next L1 block after it reported ExhaustL1.
	ProvideL1(ctx context.Context, next eth.BlockRef) error
}

// LocalHeads are a node's own heads.
type LocalHeads struct {
	Unsafe eth.BlockRef
	Safe   eth.DerivedBlockRefPair
	// Exhausted, when set, says derivation used up every L1 block it was given and waits
	// for the next: an ExhaustL1 sent before the subscription would otherwise be lost,
	// since subscribing drops the pull queue, and a node does not repeat it.
	Exhausted *eth.DerivedBlockRefPair
}

// event is the event that reports the heads.
func (h LocalHeads) event() *interop.ManagedEvent {
	unsafe, safe := h.Unsafe, h.Safe
	ev := &interop.ManagedEvent{UnsafeBlock: &unsafe, DerivationUpdate: &safe}
	if h.Exhausted != nil {
		ex := *h.Exhausted
		ev.ExhaustL1 = &ex
	}
	return ev
}
