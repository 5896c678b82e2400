package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
)

// Derived is a block the derivation pipeline wants on the safe chain.
type Derived struct {
	// Parent is the block the attributes build on; it must be the pending-safe head.
	Parent eth.L2BlockRef
	// Attrs are the full payload attributes (NoTxPool set).
	Attrs *engine.PayloadAttributes
	// DerivedFrom is the L1 block derivation had read when it made the attributes.
	DerivedFrom eth.L1BlockRef
	// Concluding: local-safe and safe move to this block; otherwise only pending-safe
	// does. Under Holocene derivation sets it on every block (derive.Attributes).
	Concluding bool
	// DepositsOnly marks attributes with nothing but deposits: a forced empty batch or
	// the replacement of an invalid payload. If these fail, nothing can replace them.
	DepositsOnly bool
}

// Outcome says how a derived block reached the chain.
type Outcome int

const (
	// Consolidated: the unsafe chain already had this block; only the safe heads moved.
	Consolidated Outcome = iota + 1
	// Appended: the block was built on the unsafe head (nothing was ahead of safe).
	Appended
	// Reorged: the unsafe block at that height differed; the derived block replaced it
	// and the unsafe blocks above it were dropped.
	Reorged
)

func (o Outcome) String() string {
	switch o {
	case Consolidated:
		return "consolidated"
	case Appended:
		return "appended"
	case Reorged:
		return "reorged"
	}
	return "none"
}

var (
	// ErrNotOnPendingSafe: the attributes do not build on the pending-safe head. The
	// pipeline and the engine disagree about the chain: reset.
	ErrNotOnPendingSafe = errors.New("derived attributes do not build on the pending-safe head")
	// ErrMissingUnsafe: the engine reports a longer unsafe chain than it can serve.
	ErrMissingUnsafe = errors.New("unsafe block to consolidate against is missing")
)

// ProcessDerived puts a derived block on the chain. When the unsafe chain already holds
// a block at that height it is compared with the attributes: a match only moves the
// safe heads (no execution); a mismatch rebuilds the block from the attributes, which
// reorgs the unsafe chain. With nothing ahead of pending-safe the block is built on top.
//
// Errors keep the engine's classes: ErrInvalid when the engine refused the attributes
// or the payload built from them (the caller applies Holocene's deposits-only rule),
// ErrSyncing, ErrTemporary, ErrUnsupported; ErrNotOnPendingSafe and ErrMissingUnsafe
// call for a pipeline reset.
func (e *Engine) ProcessDerived(ctx context.Context, d *Derived) (eth.L2BlockRef, Outcome, error) {
	h := e.State()
	if d.Parent != h.PendingSafe {
		return eth.L2BlockRef{}, 0, fmt.Errorf("%w: attributes on %s, pending-safe %s", ErrNotOnPendingSafe, d.Parent, h.PendingSafe)
	}
	if h.Unsafe.Number < h.PendingSafe.Number {
		return eth.L2BlockRef{}, 0, fmt.Errorf("%w: unsafe %s below pending-safe %s", ErrNotOnPendingSafe, h.Unsafe, h.PendingSafe)
	}
	if h.Unsafe.Number == h.PendingSafe.Number {
		ref, err := e.buildDerived(ctx, d)
		return ref, Appended, err
	}
	block, err := e.c.BlockByNumber(ctx, new(big.Int).SetUint64(d.Parent.Number+1))
	if errors.Is(err, ethereum.NotFound) {
		return eth.L2BlockRef{}, 0, fmt.Errorf("%w: block %d (unsafe head %s): %w", ErrMissingUnsafe, d.Parent.Number+1, h.Unsafe, err)
	}
	if err != nil {
		return eth.L2BlockRef{}, 0, fmt.Errorf("read unsafe block %d to consolidate: %w", d.Parent.Number+1, err)
	}
	if mismatch := AttributesMatchBlock(d.Attrs, d.Parent, block, e.cfg.ChainOpConfig); mismatch != nil {
		e.log.Warn("derived attributes differ from the unsafe block, replacing it", "number", block.NumberU64(), "unsafe", block.Hash(), "reason", mismatch)
		ref, err := e.buildDerived(ctx, d)
		return ref, Reorged, err
	}
	ref, err := e.blockRef(block)
	if err != nil {
		return eth.L2BlockRef{}, 0, err
	}
	if err := e.promoteSafe(ctx, ref, d.Concluding, h.Unsafe); err != nil {
		return eth.L2BlockRef{}, 0, err
	}
	return ref, Consolidated, nil
}

// promoteSafe records ref as pending-safe and, when concluding, as local-safe and safe,
// telling the execution client the new safe head.
func (e *Engine) promoteSafe(ctx context.Context, ref eth.L2BlockRef, concluding bool, unsafe eth.L2BlockRef) error {
	if concluding && !e.Interop() {
		h := e.State()
		fc := engine.ForkchoiceStateV1{HeadBlockHash: unsafe.Hash, SafeBlockHash: ref.Hash, FinalizedBlockHash: h.Finalized.Hash}
		if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
			return fmt.Errorf("promote %s to safe: %w", ref, err)
		}
	}
	e.mu.Lock()
	e.h.PendingSafe = ref
	if concluding {
		e.h.LocalSafe = ref
		if !e.interop {
			e.h.Safe = ref
		}
	}
	e.mu.Unlock()
	return nil
}

// buildDerived builds the block of d on its parent and makes it the unsafe head (and the
// pending/local/safe head as Concluding says) in the same forkchoice update.
func (e *Engine) buildDerived(ctx context.Context, d *Derived) (eth.L2BlockRef, error) {
	id, err := e.c.ForkchoiceUpdated(ctx, e.forkchoice(d.Parent.Hash), d.Attrs)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("build derived block on %s: %w", d.Parent, err)
	}
	env, err := e.c.GetPayload(ctx, *id)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("build derived block on %s: %w", d.Parent, err)
	}
	ref, err := e.newPayload(ctx, env)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("insert derived block on %s: %w", d.Parent, err)
	}
	fc := e.forkchoice(ref.Hash)
	if d.Concluding && !e.Interop() {
		fc.SafeBlockHash = ref.Hash
	}
	if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("make derived block %s the head: %w", ref, err)
	}
	e.mu.Lock()
	e.h.Unsafe, e.h.PendingSafe = ref, ref
	e.followUnsafeLocked(ref)
	if d.Concluding {
		e.h.LocalSafe = ref
		if !e.interop {
			e.h.Safe = ref
		}
	}
	e.mu.Unlock()
	e.notifyUnsafe(ref)
	return ref, nil
}

// DepositsOnly returns a copy of attrs keeping only the deposit transactions: Holocene's
// replacement for a derived payload the engine found invalid.
func DepositsOnly(attrs *engine.PayloadAttributes) *engine.PayloadAttributes {
	out := *attrs
	out.Transactions = nil
	for _, tx := range attrs.Transactions {
		if len(tx) > 0 && tx[0] == types.DepositTxType {
			out.Transactions = append(out.Transactions, tx)
		}
	}
	return &out
}

// AttributesMatchBlock compares derived attributes with an existing block at the same
// height: the parent, timestamp, prevRandao, fee recipient, every transaction byte for
// byte, the gas limit, the (empty) withdrawals, the parent beacon root and the EIP-1559
// parameters and minimum base fee in extraData. It returns why they differ, or nil.
func AttributesMatchBlock(a *engine.PayloadAttributes, parent eth.L2BlockRef, block *types.Block, op *params.OptimismConfig) error {
	hdr := block.Header()
	if hdr.ParentHash != parent.Hash {
		return fmt.Errorf("parent %s, attributes build on %s", hdr.ParentHash, parent.Hash)
	}
	if hdr.Time != a.Timestamp {
		return fmt.Errorf("timestamp %d, attributes %d", hdr.Time, a.Timestamp)
	}
	if hdr.MixDigest != a.Random {
		return fmt.Errorf("prevRandao %s, attributes %s", hdr.MixDigest, a.Random)
	}
	if hdr.Coinbase != a.SuggestedFeeRecipient {
		return fmt.Errorf("fee recipient %s, attributes %s", hdr.Coinbase, a.SuggestedFeeRecipient)
	}
	txs := block.Transactions()
	if len(txs) != len(a.Transactions) {
		return fmt.Errorf("%d transactions, attributes %d", len(txs), len(a.Transactions))
	}
	for i, tx := range txs {
		enc, err := tx.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode transaction %d: %w", i, err)
		}
		if !bytes.Equal(enc, a.Transactions[i]) {
			return fmt.Errorf("transaction %d is %s, attributes differ", i, tx.Hash())
		}
	}
	if a.GasLimit == nil {
		return errors.New("attributes carry no gas limit")
	}
	if hdr.GasLimit != *a.GasLimit {
		return fmt.Errorf("gas limit %d, attributes %d", hdr.GasLimit, *a.GasLimit)
	}
	if a.Withdrawals == nil || len(a.Withdrawals) != 0 {
		return errors.New("attributes must carry an empty withdrawals list")
	}
	if w := block.Withdrawals(); w == nil || len(w) != 0 {
		return errors.New("block must carry an empty withdrawals list")
	}
	if hdr.WithdrawalsHash == nil {
		return errors.New("block has no withdrawals root")
	}
	switch {
	case (hdr.ParentBeaconRoot == nil) != (a.BeaconRoot == nil):
		return fmt.Errorf("parent beacon root set in only one of block (%v) and attributes (%v)", hdr.ParentBeaconRoot, a.BeaconRoot)
	case hdr.ParentBeaconRoot != nil && *hdr.ParentBeaconRoot != *a.BeaconRoot:
		return fmt.Errorf("parent beacon root %s, attributes %s", *hdr.ParentBeaconRoot, *a.BeaconRoot)
	}
	return extraDataMatches(a, hdr.Extra, op)
}

// extraDataMatches checks the block's extraData against the attributes' EIP-1559
// parameters (zero means the chain's defaults, as the execution client applies them)
// and, with Jovian (attributes carrying a minimum base fee), the minimum base fee.
func extraDataMatches(a *engine.PayloadAttributes, extra []byte, op *params.OptimismConfig) error {
	if len(a.EIP1559Params) != 8 {
		return fmt.Errorf("attributes EIP-1559 params are %d bytes, want 8", len(a.EIP1559Params))
	}
	denom := uint64(binary.BigEndian.Uint32(a.EIP1559Params[:4]))
	elast := uint64(binary.BigEndian.Uint32(a.EIP1559Params[4:]))
	if denom == 0 && elast != 0 {
		return fmt.Errorf("attributes EIP-1559 params: zero denominator with elasticity %d", elast)
	}
	if denom == 0 {
		if op == nil || op.EIP1559DenominatorCanyon == nil {
			return errors.New("zero EIP-1559 params in the attributes, and the chain config has no Canyon denominator to stand for them")
		}
		denom, elast = *op.EIP1559DenominatorCanyon, op.EIP1559Elasticity
	}
	wantLen, version := 9, byte(0)
	if a.MinBaseFee != nil {
		wantLen, version = 17, 1
	}
	if len(extra) != wantLen || extra[0] != version {
		return fmt.Errorf("extraData %x: want version %d, %d bytes", extra, version, wantLen)
	}
	bd := uint64(binary.BigEndian.Uint32(extra[1:5]))
	be := uint64(binary.BigEndian.Uint32(extra[5:9]))
	if bd != denom || be != elast {
		return fmt.Errorf("EIP-1559 params %d/%d in extraData, attributes %d/%d", bd, be, denom, elast)
	}
	if a.MinBaseFee != nil {
		if m := binary.BigEndian.Uint64(extra[9:17]); m != *a.MinBaseFee {
			return fmt.Errorf("minimum base fee %d in extraData, attributes %d", m, *a.MinBaseFee)
		}
	}
	return nil
}
