package derivetest

import (
	"context"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// L2 is an in-memory L2 chain of block references with the system config of each.
type L2 struct {
	mu       sync.Mutex
	byNumber map[uint64]eth.L2BlockRef
	byHash   map[common.Hash]eth.L2BlockRef
	sys      map[common.Hash]rollup.SystemConfig
	fail     error
	failN    int
}

// NewL2 returns an empty chain.
func NewL2() *L2 {
	return &L2{byNumber: map[uint64]eth.L2BlockRef{}, byHash: map[common.Hash]eth.L2BlockRef{}, sys: map[common.Hash]rollup.SystemConfig{}}
}

// Add records a block as canonical at its number, with its system config.
func (l *L2) Add(ref eth.L2BlockRef, sys rollup.SystemConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byNumber[ref.Number] = ref
	l.byHash[ref.Hash] = ref
	l.sys[ref.Hash] = sys
}

// FailNext makes the next n calls fail with err.
func (l *L2) FailNext(n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail, l.failN = err, n
}

func (l *L2) failing() error {
	if l.failN > 0 {
		l.failN--
		return l.fail
	}
	return nil
}

func (l *L2) L2BlockRefByNumber(_ context.Context, n uint64) (eth.L2BlockRef, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failing(); err != nil {
		return eth.L2BlockRef{}, err
	}
	ref, ok := l.byNumber[n]
	if !ok {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %d: %w", n, ethereum.NotFound)
	}
	return ref, nil
}

func (l *L2) L2BlockRefByHash(_ context.Context, h common.Hash) (eth.L2BlockRef, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failing(); err != nil {
		return eth.L2BlockRef{}, err
	}
	ref, ok := l.byHash[h]
	if !ok {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %s: %w", h, ethereum.NotFound)
	}
	return ref, nil
}

func (l *L2) SystemConfigByL2Hash(_ context.Context, h common.Hash) (rollup.SystemConfig, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failing(); err != nil {
		return rollup.SystemConfig{}, err
	}
	sys, ok := l.sys[h]
	if !ok {
		return rollup.SystemConfig{}, fmt.Errorf("system config of L2 block %s: %w", h, ethereum.NotFound)
	}
	return sys, nil
}
