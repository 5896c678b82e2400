package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// l1Source reads L1 block references.
type l1Source struct {
	cl *ethclient.Client
}

func dialL1(ctx context.Context, url string) (*l1Source, error) {
	cl, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial L1 %s: %w", url, err)
	}
	return &l1Source{cl: ethclient.NewClient(cl)}, nil
}

func (l *l1Source) close() { l.cl.Close() }

func (l *l1Source) header(ctx context.Context, n *big.Int) (eth.BlockRef, error) {
	h, err := l.cl.HeaderByNumber(ctx, n)
	if errors.Is(err, ethereum.NotFound) {
		return eth.BlockRef{}, fmt.Errorf("L1 block %v: %w", n, interop.ErrNotFound)
	}
	if err != nil {
		return eth.BlockRef{}, fmt.Errorf("L1 block %v: %w", n, err)
	}
	return refOf(h), nil
}

// byNumber returns the canonical L1 block at n, or interop.ErrNotFound.
func (l *l1Source) byNumber(ctx context.Context, n uint64) (eth.BlockRef, error) {
	return l.header(ctx, new(big.Int).SetUint64(n))
}

func (l *l1Source) head(ctx context.Context) (eth.BlockRef, error) {
	return l.header(ctx, nil)
}

func (l *l1Source) finalized(ctx context.Context) (eth.BlockRef, error) {
	return l.header(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
}

func refOf(h *types.Header) eth.BlockRef { return eth.BlockRefFromHeader(h) }

// l1Loop follows L1: a new head may complete a pending exhaust-L1, a new finalized block
// moves finality.
func (s *Supervisor) l1Loop() {
	defer s.wg.Done()
	for {
		s.pollL1()
		if !sleep(s.ctx, s.cfg.L1PollInterval) {
			return
		}
	}
}

func (s *Supervisor) pollL1() {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.CallTimeout)
	defer cancel()
	head, err := s.l1.head(ctx)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("Cannot read the L1 head", "err", err)
		}
		return
	}
	s.mu.Lock()
	// A new head at a height already seen (after an L1 reorg) is news too.
	advanced := head.Hash != s.l1Head
	s.l1Head = head.Hash
	s.mu.Unlock()
	if _, err := s.checkL1Reorg(ctx); err != nil && s.ctx.Err() == nil {
		s.log.Warn("Cannot check the safe records against L1", "err", err)
	}
	if advanced {
		for _, n := range s.nodes {
			n.kickL1()
		}
	}
	fin, err := s.l1.finalized(ctx)
	if err != nil {
		if !errors.Is(err, interop.ErrNotFound) && s.ctx.Err() == nil {
			s.log.Warn("Cannot read the finalized L1 block", "err", err)
		}
		return
	}
	s.setFinalizedL1(fin)
}
