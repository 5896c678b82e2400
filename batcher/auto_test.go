package batcher

import (
	"math/big"
	"testing"
)

func TestAutoRule(t *testing.T) {
	gwei := func(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e9)) }
	// Cheap blobs: blobs.
	if !blobsCheaper(120_000, 1, gwei(10), gwei(1), big.NewInt(1)) {
		t.Fatal("1-wei blobs lost to 11-gwei calldata")
	}
	// Blob base fee far above the execution price: calldata.
	if blobsCheaper(120_000, 1, gwei(1), gwei(1), gwei(10_000)) {
		t.Fatal("10000-gwei blobs beat 2-gwei calldata")
	}
	// Break-even: a blob byte costs 131072/130044 blob gas; a calldata byte 40 gas.
	// With equal prices blobs are about 40x cheaper per byte.
	if !blobsCheaper(120_000, 6, gwei(1), big.NewInt(0), gwei(30)) {
		t.Fatal("blobs at 30x the execution price should still win")
	}
	if blobsCheaper(120_000, 6, gwei(1), big.NewInt(0), gwei(50)) {
		t.Fatal("blobs at 50x the execution price should lose")
	}
}
