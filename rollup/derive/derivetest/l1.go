package derivetest

import (
	"context"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
)

// L1 is an in-memory L1 chain: a canonical list of headers, any block ever added
// reachable by hash, and receipts per block.
type L1 struct {
	mu        sync.Mutex
	canonical []*types.Header
	byHash    map[common.Hash]*types.Header
	receipts  map[common.Hash]types.Receipts
	fail      error
	failN     int
}

// NewL1 starts a chain at genesis block number n with time t.
func NewL1(n, t uint64) *L1 {
	l := &L1{byHash: map[common.Hash]*types.Header{}, receipts: map[common.Hash]types.Receipts{}}
	l.add(&types.Header{Number: new(big.Int).SetUint64(n), Time: t, BaseFee: big.NewInt(1e9), Difficulty: common.Big0})
	return l
}

func (l *L1) add(h *types.Header) eth.L1BlockRef {
	l.canonical = append(l.canonical, h)
	l.byHash[h.Hash()] = h
	return eth.BlockRefFromHeader(h)
}

// Mine appends a block dt seconds after the head, with receipts; extra distinguishes
// blocks mined on different forks.
func (l *L1) Mine(dt uint64, receipts types.Receipts, extra ...byte) eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	head := l.canonical[len(l.canonical)-1]
	h := &types.Header{
		ParentHash: head.Hash(), Number: new(big.Int).Add(head.Number, common.Big1), Time: head.Time + dt,
		BaseFee: big.NewInt(1e9), Difficulty: common.Big0, Extra: extra, MixDigest: common.Hash{byte(len(l.canonical))},
	}
	ref := l.add(h)
	l.receipts[ref.Hash] = receipts
	return ref
}

// Rewind drops canonical blocks after number n (they stay reachable by hash), for reorgs.
func (l *L1) Rewind(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.canonical[0].Number.Uint64()
	l.canonical = l.canonical[:n-first+1]
}

// Head is the canonical head.
func (l *L1) Head() eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return eth.BlockRefFromHeader(l.canonical[len(l.canonical)-1])
}

// Ref is canonical block n.
func (l *L1) Ref(n uint64) eth.L1BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return eth.BlockRefFromHeader(l.canonical[n-l.canonical[0].Number.Uint64()])
}

// FailNext makes the next n calls fail with err.
func (l *L1) FailNext(n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail, l.failN = err, n
}

func (l *L1) failing() error {
	if l.failN > 0 {
		l.failN--
		return l.fail
	}
	return nil
}

func (l *L1) L1BlockRefByNumber(_ context.Context, n uint64) (eth.L1BlockRef, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failing(); err != nil {
		return eth.L1BlockRef{}, err
	}
	first := l.canonical[0].Number.Uint64()
	if n < first || n-first >= uint64(len(l.canonical)) {
		return eth.L1BlockRef{}, fmt.Errorf("L1 block %d: %w", n, ethereum.NotFound)
	}
	return eth.BlockRefFromHeader(l.canonical[n-first]), nil
}

func (l *L1) L1BlockRefByHash(_ context.Context, h common.Hash) (eth.L1BlockRef, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failing(); err != nil {
		return eth.L1BlockRef{}, err
	}
	hd, ok := l.byHash[h]
	if !ok {
		return eth.L1BlockRef{}, fmt.Errorf("L1 block %s: %w", h, ethereum.NotFound)
	}
	return eth.BlockRefFromHeader(hd), nil
}

func (l *L1) FetchReceipts(_ context.Context, h common.Hash) (*types.Header, types.Receipts, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failing(); err != nil {
		return nil, nil, err
	}
	hd, ok := l.byHash[h]
	if !ok {
		return nil, nil, fmt.Errorf("L1 block %s: %w", h, ethereum.NotFound)
	}
	return types.CopyHeader(hd), l.receipts[h], nil
}
