package rollup

import (
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
)

// L2BlockRef builds the reference of an L2 block, reading its L1 origin and sequence number
// from the L1-attributes deposit; the genesis block's origin is the rollup genesis L1 block.
func (c *Config) L2BlockRef(block *types.Block) (eth.L2BlockRef, error) {
	ref := eth.L2BlockRef{
		Hash:       block.Hash(),
		Number:     block.NumberU64(),
		ParentHash: block.ParentHash(),
		Time:       block.Time(),
	}
	if ref.Number == c.Genesis.L2.Number {
		if ref.Hash != c.Genesis.L2.Hash {
			return eth.L2BlockRef{}, fmt.Errorf("block %d is %s, but the rollup genesis is %s", ref.Number, ref.Hash, c.Genesis.L2.Hash)
		}
		ref.L1Origin = c.Genesis.L1
		return ref, nil
	}
	txs := block.Transactions()
	if len(txs) == 0 {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %d %s has no transactions: %w", ref.Number, ref.Hash, ErrInvalidL1Info)
	}
	info, err := L1InfoFromBlockTx(txs[0])
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %d %s: %w", ref.Number, ref.Hash, err)
	}
	ref.L1Origin = eth.BlockID{Hash: info.BlockHash, Number: info.Number}
	ref.SequenceNumber = info.SequenceNumber
	return ref, nil
}
