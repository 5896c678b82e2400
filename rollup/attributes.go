package rollup

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
)

// BlobBaseFee is an L1 block's blob base fee under the L1 chain's blob schedule, or nil
// when the block predates blobs.
func BlobBaseFee(l1 *params.ChainConfig, h *types.Header) *big.Int {
	if h.ExcessBlobGas == nil || l1 == nil {
		return nil
	}
	return eip4844.CalcBlobFee(l1, h)
}

// L1ReceiptsFetcher gives BuildAttributes an L1 block's header and receipts. An
// implementation may also offer HeaderByHash(ctx, hash) (*types.Header, error), which is
// then used for blocks whose receipts are not needed (not the first block of an epoch).
type L1ReceiptsFetcher interface {
	FetchReceipts(ctx context.Context, hash common.Hash) (*types.Header, types.Receipts, error)
}

type l1HeaderFetcher interface {
	HeaderByHash(ctx context.Context, hash common.Hash) (*types.Header, error)
}

// The classes of BuildAttributes errors, so callers can map them to their own: a failed
// fetch is worth retrying, an origin that does not follow the parent's means the caller's
// view of L1 is stale (reset), and bad L1 content cannot be built past at all.
var (
	ErrFetch         = errors.New("fetching L1 input for attributes failed")
	ErrResetAttrs    = errors.New("L1 origin inconsistent with the L2 parent")
	ErrCriticalAttrs = errors.New("cannot build attributes from L1 input")
)

// BuildAttributes builds the attributes of the L2 block after parent with L1 origin epoch,
// exactly as op-node's attributes builder: the L1-attributes deposit, then (first block of
// an epoch) the origin's user deposits, then the network-upgrade deposits of an activation
// block; NoTxPool set, gas limit, EIP-1559 parameters and from Jovian the minimum base fee
// taken from the system config. sys must be the config parent was built with
// (SystemConfigFromL2Block of parent); in a new epoch the origin's ConfigUpdate events are
// applied to it first. The returned SystemConfig is the one in force for the new block.
// Errors wrap ErrFetch, ErrResetAttrs or ErrCriticalAttrs.
func (c *Config) BuildAttributes(ctx context.Context, l1 L1ReceiptsFetcher, l1ChainCfg *params.ChainConfig, sys SystemConfig, parent eth.L2BlockRef, epoch eth.BlockID) (*engine.PayloadAttributes, SystemConfig, error) {
	var (
		header   *types.Header
		deposits []*types.DepositTx
		seq      uint64
	)
	if parent.L1Origin.Number != epoch.Number {
		h, receipts, err := l1.FetchReceipts(ctx, epoch.Hash)
		if err != nil {
			return nil, sys, fmt.Errorf("%w: receipts of L1 block %s: %w", ErrFetch, epoch, err)
		}
		if h.Hash() != epoch.Hash {
			return nil, sys, fmt.Errorf("%w: asked for L1 block %s, got %s", ErrFetch, epoch, h.Hash())
		}
		if h.ParentHash != parent.L1Origin.Hash {
			return nil, sys, fmt.Errorf("%w: L1 origin %s has parent %s, but the L2 parent's origin is %s", ErrResetAttrs, epoch, h.ParentHash, parent.L1Origin)
		}
		deposits, err = UserDeposits(receipts, c.DepositContractAddress)
		if err != nil {
			return nil, sys, fmt.Errorf("%w: deposits of L1 block %s: %w", ErrCriticalAttrs, epoch, err)
		}
		// Bad ConfigUpdate events are stepped over by the protocol; nothing to report here.
		sys, _ = ParseConfigUpdates(sys, receipts, c.L1SystemConfigAddress, h.Time, c)
		header = h
	} else {
		if parent.L1Origin.Hash != epoch.Hash {
			return nil, sys, fmt.Errorf("%w: L1 origin %s conflicts with the L2 parent's origin %s", ErrResetAttrs, epoch, parent.L1Origin)
		}
		h, err := fetchHeader(ctx, l1, epoch.Hash)
		if err != nil {
			return nil, sys, fmt.Errorf("%w: header of L1 block %s: %w", ErrFetch, epoch, err)
		}
		if h.Hash() != epoch.Hash {
			return nil, sys, fmt.Errorf("%w: asked for L1 block %s, got %s", ErrFetch, epoch, h.Hash())
		}
		header = h
		seq = parent.SequenceNumber + 1
	}
	next := parent.Time + c.BlockTime
	if next < header.Time {
		return nil, sys, fmt.Errorf("%w: L2 block at %d after %s would be older than its L1 origin %s at %d", ErrResetAttrs, next, parent, epoch, header.Time)
	}
	attrs, err := c.assemble(l1ChainCfg, sys, seq, header, deposits, next)
	if err != nil {
		return nil, sys, fmt.Errorf("%w: %w", ErrCriticalAttrs, err)
	}
	return attrs, sys, nil
}

func fetchHeader(ctx context.Context, l1 L1ReceiptsFetcher, hash common.Hash) (*types.Header, error) {
	if hf, ok := l1.(l1HeaderFetcher); ok {
		return hf.HeaderByHash(ctx, hash)
	}
	h, _, err := l1.FetchReceipts(ctx, hash)
	return h, err
}

// upgradeTxsAt returns the network-upgrade deposits of the L2 block at time t. Only
// Jovian's are implemented; Check keeps every earlier fork at genesis, so its activation
// block is never built, and a config that slipped past Check fails here instead of
// producing a block op-node would not.
func (c *Config) upgradeTxsAt(t uint64) ([]*types.DepositTx, error) {
	activates := func(fork *uint64) bool { return active(fork, t) && t >= c.BlockTime && !active(fork, t-c.BlockTime) }
	for _, f := range []struct {
		name string
		t    *uint64
	}{{"ecotone", c.EcotoneTime}, {"fjord", c.FjordTime}, {"isthmus", c.IsthmusTime}, {"karst", c.KarstTime}, {"interop", c.InteropTime}} {
		if activates(f.t) {
			return nil, fmt.Errorf("the %s activation block at %d needs upgrade transactions opkit does not build", f.name, t)
		}
	}
	if c.IsJovianActivationBlock(t) {
		return JovianUpgradeTxs(), nil
	}
	return nil, nil
}

// assemble builds the attributes from resolved inputs; time is the new block's time.
func (c *Config) assemble(l1ChainCfg *params.ChainConfig, sys SystemConfig, seq uint64, origin *types.Header, deposits []*types.DepositTx, time uint64) (*engine.PayloadAttributes, error) {
	upgrades, err := c.upgradeTxsAt(time)
	if err != nil {
		return nil, err
	}
	info, err := c.L1InfoDepositAt(sys, seq, L1Origin{Header: origin, BlobBaseFee: BlobBaseFee(l1ChainCfg, origin)}, time)
	if err != nil {
		return nil, fmt.Errorf("build L1-attributes deposit: %w", err)
	}
	txs := make([][]byte, 0, 1+len(deposits)+len(upgrades))
	for _, d := range append(append([]*types.DepositTx{info}, deposits...), upgrades...) {
		b, err := types.NewTx(d).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode deposit: %w", err)
		}
		txs = append(txs, b)
	}
	attrs := &engine.PayloadAttributes{
		Timestamp:             time,
		Random:                origin.MixDigest,
		SuggestedFeeRecipient: SequencerFeeVault,
		Transactions:          txs,
		NoTxPool:              true,
	}
	gasLimit := sys.GasLimit
	attrs.GasLimit = &gasLimit
	if c.IsCanyon(time) {
		attrs.Withdrawals = []*types.Withdrawal{}
	}
	if c.IsEcotone(time) {
		root := common.Hash{}
		if origin.ParentBeaconRoot != nil {
			root = *origin.ParentBeaconRoot
		}
		attrs.BeaconRoot = &root
	}
	if c.IsHolocene(time) {
		attrs.EIP1559Params = append([]byte(nil), sys.EIP1559Params[:]...)
	}
	if c.IsJovian(time) {
		minBaseFee := sys.MinBaseFee
		attrs.MinBaseFee = &minBaseFee
	}
	return attrs, nil
}

// PayloadAttributes builds the attributes of the L2 block after parent with L1 origin
// origin from an origin header the caller already holds: the L1-attributes deposit, any
// upgrade deposits due, then extra (deposits, batch transactions). noTxPool stops the
// engine from adding mempool transactions, which the sequencer must do once it runs past
// the drift limit. BuildAttributes is the complete builder (user deposits, system config
// updates, consistency checks); this one applies no L1 receipts.
func (c *Config) PayloadAttributes(l1 *params.ChainConfig, sys SystemConfig, parent eth.L2BlockRef, origin *types.Header, extra [][]byte, noTxPool bool) (*engine.PayloadAttributes, error) {
	seq := uint64(0)
	if origin.Hash() == parent.L1Origin.Hash {
		seq = parent.SequenceNumber + 1
	}
	attrs, err := c.assemble(l1, sys, seq, origin, nil, parent.Time+c.BlockTime)
	if err != nil {
		return nil, err
	}
	attrs.Transactions = append(attrs.Transactions, extra...)
	attrs.NoTxPool = noTxPool
	return attrs, nil
}
