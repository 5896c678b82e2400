package batcher

import (
	"math/big"

	"github.com/ethereum/go-ethereum/params"
)

// calldataFloorPerToken is EIP-7623's floor price of a calldata token; batch data is
// charged at the floor because a batch transaction executes nothing.
const calldataFloorPerToken = 10

// blobsCheaper is the auto rule: compare the cost per byte of one full calldata
// transaction (every byte priced as a non-zero byte, since compressed data has few zeros)
// with one full blob transaction of numBlobs blobs, at the current base fee, tip and
// blob base fee.
func blobsCheaper(calldataBytes, numBlobs int, baseFee, tip, blobBaseFee *big.Int) bool {
	price := new(big.Int).Add(baseFee, tip)
	tokens := uint64(calldataBytes) * 4
	calldataCost := new(big.Int).Mul(new(big.Int).SetUint64(params.TxGas+tokens*calldataFloorPerToken), price)
	blobCost := new(big.Int).Mul(big.NewInt(int64(params.BlobTxBlobGasPerBlob)*int64(numBlobs)), blobBaseFee)
	blobCost.Add(blobCost, new(big.Int).Mul(big.NewInt(int64(params.TxGas)), price))
	blobBytes := big.NewInt(int64(MaxBlobFrameSize+1) * int64(numBlobs))
	// blobCost/blobBytes <= calldataCost/calldataBytes, cross-multiplied.
	lhs := new(big.Int).Mul(blobCost, big.NewInt(int64(calldataBytes)))
	rhs := new(big.Int).Mul(calldataCost, blobBytes)
	return lhs.Cmp(rhs) <= 0
}
