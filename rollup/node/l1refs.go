package node

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
)

// L1Headers reads L1 headers.
type L1Headers interface {
	HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error)
	HeaderByHash(ctx context.Context, h common.Hash) (*types.Header, error)
}

// NewL1Refs reads L1 block references from src with a deadline of timeout per call.
func NewL1Refs(src L1Headers, timeout time.Duration) L1Refs {
	return l1Refs{src: src, timeout: timeout}
}

// l1Refs reads L1 block references with a deadline on every call; a missing block
// stays ethereum.NotFound.
type l1Refs struct {
	src     L1Headers
	timeout time.Duration
}

func (l l1Refs) L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	h, err := l.src.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("read L1 block %d: %w", n, err)
	}
	return eth.BlockRefFromHeader(h), nil
}

func (l l1Refs) L1BlockRefByHash(ctx context.Context, hash common.Hash) (eth.L1BlockRef, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	h, err := l.src.HeaderByHash(ctx, hash)
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("read L1 block %s: %w", hash, err)
	}
	return eth.BlockRefFromHeader(h), nil
}
