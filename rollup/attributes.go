package rollup

import (
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

// PayloadAttributes builds the attributes of the L2 block after parent with L1 origin
// origin, as the sequencer and the derivation pipeline both do: the L1-attributes deposit
// first, then extra (deposits, batch transactions). noTxPool stops the engine from adding
// mempool transactions, which the sequencer must do once it runs past the drift limit.
func (c *Config) PayloadAttributes(l1 *params.ChainConfig, sys SystemConfig, parent eth.L2BlockRef, origin *types.Header, extra [][]byte, noTxPool bool) (*engine.PayloadAttributes, error) {
	seq := uint64(0)
	if origin.Hash() == parent.L1Origin.Hash {
		seq = parent.SequenceNumber + 1
	}
	dep, err := L1InfoDeposit(sys, seq, L1Origin{Header: origin, BlobBaseFee: BlobBaseFee(l1, origin)})
	if err != nil {
		return nil, fmt.Errorf("build L1-attributes deposit: %w", err)
	}
	depBytes, err := types.NewTx(dep).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode L1-attributes deposit: %w", err)
	}
	txs := make([][]byte, 0, 1+len(extra))
	txs = append(txs, depBytes)
	txs = append(txs, extra...)
	beaconRoot := common.Hash{}
	if origin.ParentBeaconRoot != nil {
		beaconRoot = *origin.ParentBeaconRoot
	}
	gasLimit := sys.GasLimit
	return &engine.PayloadAttributes{
		Timestamp:             parent.Time + c.BlockTime,
		Random:                origin.MixDigest,
		SuggestedFeeRecipient: SequencerFeeVault,
		Withdrawals:           []*types.Withdrawal{},
		BeaconRoot:            &beaconRoot,
		Transactions:          txs,
		NoTxPool:              noTxPool,
		GasLimit:              &gasLimit,
		EIP1559Params:         append([]byte(nil), sys.EIP1559Params[:]...),
	}, nil
}
