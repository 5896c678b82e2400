package managed

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// API is the interop namespace. Its exported methods are the protocol's methods: the RPC
// server names them interop_<lowerCamelName>.
type API struct {
	s *Server
}

// rpcError turns a backend error into the error the supervisor receives.
func rpcError(err error, what string) error {
	if err == nil {
		return nil
	}
	var rpcErr rpc.Error
	switch {
	case errors.Is(err, interop.ErrNotFound):
		return interop.NotFoundError(what)
	case errors.As(err, &rpcErr):
		return err
	default:
		return &interop.Error{Code: interop.CodeInternal, Message: fmt.Sprintf("%s: %v", what, err)}
	}
}

func invalidParams(format string, args ...any) error {
	return &interop.Error{Code: interop.CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

// PullEvent is interop_pullEvent: the oldest queued event; -39001 when there is none.
func (a *API) PullEvent() (*interop.ManagedEvent, error) {
	ev := a.s.events.pull()
	if ev == nil {
		return nil, &interop.Error{Code: interop.CodeOutOfEvents, Message: "out of events"}
	}
	return ev, nil
}

// Events is interop_subscribe("events").
func (a *API) Events(ctx context.Context) (*rpc.Subscription, error) {
	notifier, ok := rpc.NotifierFromContext(ctx)
	if !ok {
		return &rpc.Subscription{}, rpc.ErrNotificationsUnsupported
	}
	return a.s.events.subscribe(notifier, func() (*interop.ManagedEvent, error) {
		h, err := a.s.backend.LocalHeads(ctx)
		if err != nil {
			return nil, rpcError(err, "local heads")
		}
		return h.event(), nil
	})
}

// ChainID is interop_chainID, a decimal string.
func (a *API) ChainID(ctx context.Context) (interop.ChainID, error) {
	return a.s.backend.ChainID(), nil
}

// AnchorPoint is interop_anchorPoint.
func (a *API) AnchorPoint(ctx context.Context) (eth.DerivedBlockRefPair, error) {
	p, err := a.s.backend.AnchorPoint(ctx)
	return p, rpcError(err, "anchor point")
}

// L2BlockRefByNumber is interop_l2BlockRefByNumber.
func (a *API) L2BlockRefByNumber(ctx context.Context, number uint64) (eth.L2BlockRef, error) {
	ref, err := a.s.backend.L2BlockRefByNumber(ctx, number)
	return ref, rpcError(err, fmt.Sprintf("L2 block %d", number))
}

// BlockRefByNumber is interop_blockRefByNumber, the name the protocol's first draft used.
func (a *API) BlockRefByNumber(ctx context.Context, number uint64) (eth.L2BlockRef, error) {
	return a.L2BlockRefByNumber(ctx, number)
}

// L2BlockRefByTimestamp is interop_l2BlockRefByTimestamp.
func (a *API) L2BlockRefByTimestamp(ctx context.Context, timestamp uint64) (eth.L2BlockRef, error) {
	ref, err := a.s.backend.L2BlockRefByTimestamp(ctx, timestamp)
	return ref, rpcError(err, fmt.Sprintf("L2 block at timestamp %d", timestamp))
}

// FetchReceipts is interop_fetchReceipts.
func (a *API) FetchReceipts(ctx context.Context, hash common.Hash) (types.Receipts, error) {
	r, err := a.s.backend.Receipts(ctx, hash)
	if err != nil {
		return nil, rpcError(err, "receipts of L2 block "+hash.Hex())
	}
	if r == nil {
		r = types.Receipts{}
	}
	return r, nil
}

func (a *API) outputAt(ctx context.Context, timestamp uint64, get func(context.Context, common.Hash) (*eth.OutputV0, error)) (*eth.OutputV0, error) {
	ref, err := a.s.backend.L2BlockRefByTimestamp(ctx, timestamp)
	if err != nil {
		return nil, rpcError(err, fmt.Sprintf("L2 block at timestamp %d", timestamp))
	}
	out, err := get(ctx, ref.Hash)
	return out, rpcError(err, "output of L2 block "+ref.Hash.Hex())
}

// OutputV0AtTimestamp is interop_outputV0AtTimestamp.
func (a *API) OutputV0AtTimestamp(ctx context.Context, timestamp uint64) (*eth.OutputV0, error) {
	return a.outputAt(ctx, timestamp, a.s.backend.OutputV0)
}

// PendingOutputV0AtTimestamp is interop_pendingOutputV0AtTimestamp.
func (a *API) PendingOutputV0AtTimestamp(ctx context.Context, timestamp uint64) (*eth.OutputV0, error) {
	return a.outputAt(ctx, timestamp, a.s.backend.PendingOutputV0)
}

// blockByID finds the block id names, checking the number matches the hash.
func (a *API) blockByID(ctx context.Context, id eth.BlockID, what string) (eth.L2BlockRef, error) {
	ref, err := a.s.backend.L2BlockRefByHash(ctx, id.Hash)
	if err != nil {
		return eth.L2BlockRef{}, rpcError(err, what+" "+id.String())
	}
	if ref.Number != id.Number {
		return eth.L2BlockRef{}, invalidParams("%s %s: the block with that hash is number %d", what, id, ref.Number)
	}
	return ref, nil
}

// UpdateCrossUnsafe is interop_updateCrossUnsafe.
func (a *API) UpdateCrossUnsafe(ctx context.Context, id eth.BlockID) error {
	ref, err := a.blockByID(ctx, id, "cross-unsafe block")
	if err != nil {
		return err
	}
	return rpcError(a.s.backend.PromoteCrossUnsafe(ctx, ref), "promote cross-unsafe")
}

// UpdateCrossSafe is interop_updateCrossSafe.
func (a *API) UpdateCrossSafe(ctx context.Context, derived, source eth.BlockID) error {
	ref, err := a.blockByID(ctx, derived, "cross-safe block")
	if err != nil {
		return err
	}
	return rpcError(a.s.backend.PromoteCrossSafe(ctx, ref, source), "promote cross-safe")
}

// UpdateFinalized is interop_updateFinalized.
func (a *API) UpdateFinalized(ctx context.Context, id eth.BlockID) error {
	ref, err := a.blockByID(ctx, id, "finalized block")
	if err != nil {
		return err
	}
	return rpcError(a.s.backend.PromoteFinalized(ctx, ref), "promote finalized")
}

// InvalidateBlock is interop_invalidateBlock.
func (a *API) InvalidateBlock(ctx context.Context, seal eth.BlockSeal) error {
	if _, err := a.blockByID(ctx, seal.ID(), "invalidated block"); err != nil {
		return err
	}
	return rpcError(a.s.backend.InvalidateBlock(ctx, seal), "invalidate block")
}

// ProvideL1 is interop_provideL1.
func (a *API) ProvideL1(ctx context.Context, next eth.BlockRef) error {
	return rpcError(a.s.backend.ProvideL1(ctx, next), "provide L1 block")
}

// ResetPreInterop is interop_resetPreInterop.
func (a *API) ResetPreInterop(ctx context.Context) error {
	a.s.forgetSent()
	return rpcError(a.s.backend.ResetPreInterop(ctx), "reset pre-interop")
}

// Reset is interop_reset. Every target must be canonical on this node: a missing one is
// answered -39001, a different block at its height -39002 with the node's block as data.
// A zero cross-unsafe, cross-safe or finalized target means "not known yet" and resets
// that head to the anchor block, where older supervisors would have made the reset fail.
func (a *API) Reset(ctx context.Context, lUnsafe, xUnsafe, lSafe, xSafe, finalized eth.BlockID) error {
	verify := func(id eth.BlockID, name string, zeroIsAnchor bool) (eth.L2BlockRef, error) {
		if id.IsZero() && zeroIsAnchor {
			anchor, err := a.s.backend.AnchorPoint(ctx)
			if err != nil {
				return eth.L2BlockRef{}, rpcError(err, "anchor point")
			}
			id = anchor.Derived.ID()
		}
		ref, err := a.s.backend.L2BlockRefByNumber(ctx, id.Number)
		if errors.Is(err, interop.ErrNotFound) {
			return eth.L2BlockRef{}, &interop.Error{
				Code:    interop.CodeResetTargetNotFound,
				Message: fmt.Sprintf("%s reset target %s: block not found", name, id),
			}
		}
		if err != nil {
			return eth.L2BlockRef{}, rpcError(err, name+" reset target")
		}
		if ref.Hash != id.Hash {
			return eth.L2BlockRef{}, &interop.Error{
				Code:    interop.CodeConflictingBlock,
				Message: fmt.Sprintf("%s reset target %s conflicts with block %s", name, id, ref.Hash),
				Data:    ref,
			}
		}
		return ref, nil
	}
	var refs [5]eth.L2BlockRef
	for i, t := range []struct {
		id     eth.BlockID
		name   string
		anchor bool
	}{{lUnsafe, "local-unsafe", false}, {xUnsafe, "cross-unsafe", true}, {lSafe, "local-safe", false}, {xSafe, "cross-safe", true}, {finalized, "finalized", true}} {
		ref, err := verify(t.id, t.name, t.anchor)
		if err != nil {
			a.s.log.Warn("Refusing reset", "err", err)
			return err
		}
		refs[i] = ref
	}
	a.s.log.Info("Resetting", "localUnsafe", refs[0], "crossUnsafe", refs[1], "localSafe", refs[2], "crossSafe", refs[3], "finalized", refs[4])
	a.s.forgetSent()
	return rpcError(a.s.backend.Reset(ctx, refs[0], refs[1], refs[2], refs[3], refs[4]), "reset")
}
