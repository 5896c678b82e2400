package l1

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/opkit/opkit/eth"
)

// Label names a block the L1 node chooses: its head, or the head of its safe or finalized
// chain.
type Label string

// The labels L1BlockRefByLabel accepts.
const (
	Latest    Label = "latest"
	Safe      Label = "safe"
	Finalized Label = "finalized"
)

// ErrMismatch is returned when the endpoint answers with data that does not belong to the
// block asked for: another block's header, or transactions or receipts that do not hash
// to the header's roots.
var ErrMismatch = errors.New("L1 endpoint returned data not matching the block")

// Config tunes a Source; the zero value is usable.
type Config struct {
	// Timeout bounds each call to the endpoint; default 10 s.
	Timeout time.Duration
	// CacheSize is how many blocks each cache (headers, transactions, receipts) keeps;
	// default 1000, which covers a sequencing window of 3600 twelve-second blocks' worth
	// of recent lookups without holding the whole window's receipts.
	CacheSize int
}

func (c *Config) applyDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 1000
	}
}

// Stats counts cache outcomes since the Source was made.
type Stats struct {
	Hits, Misses uint64
}

// Source reads L1 through one RPC client. It is safe for concurrent use.
type Source struct {
	rpc     *rpc.Client
	client  *ethclient.Client
	timeout time.Duration

	headers  *lru.Cache[common.Hash, *types.Header]
	txs      *lru.Cache[common.Hash, types.Transactions]
	receipts *lru.Cache[common.Hash, types.Receipts]

	hits, misses atomic.Uint64
}

// New reads L1 through client, which the Source does not close.
func New(client *rpc.Client, cfg Config) *Source {
	cfg.applyDefaults()
	return &Source{
		rpc:      client,
		client:   ethclient.NewClient(client),
		timeout:  cfg.Timeout,
		headers:  lru.NewCache[common.Hash, *types.Header](cfg.CacheSize),
		txs:      lru.NewCache[common.Hash, types.Transactions](cfg.CacheSize),
		receipts: lru.NewCache[common.Hash, types.Receipts](cfg.CacheSize),
	}
}

// Dial connects to an L1 endpoint (http, ws or ipc); Close releases it.
func Dial(ctx context.Context, url string, cfg Config) (*Source, error) {
	cfg.applyDefaults()
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	client, err := rpc.DialContext(dctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial L1 %s: %w", url, err)
	}
	return New(client, cfg), nil
}

// Close closes the RPC client.
func (s *Source) Close() { s.rpc.Close() }

// Stats reports the cache hits and misses so far.
func (s *Source) Stats() Stats { return Stats{Hits: s.hits.Load(), Misses: s.misses.Load()} }

func (s *Source) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// L1BlockRefByNumber returns the canonical block at n. Past the head the error wraps
// ethereum.NotFound. Lookups by number are never served from the cache, since the
// canonical block at a height changes with reorgs; the header is cached by hash.
func (s *Source) L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error) {
	h, err := s.headerByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("L1 block %d: %w", n, err)
	}
	if h.Number.Uint64() != n {
		return eth.L1BlockRef{}, fmt.Errorf("L1 block %d: %w: got block %d", n, ErrMismatch, h.Number)
	}
	return eth.BlockRefFromHeader(h), nil
}

// L1BlockRefByLabel returns the block the L1 node labels latest, safe or finalized.
func (s *Source) L1BlockRefByLabel(ctx context.Context, label Label) (eth.L1BlockRef, error) {
	var n rpc.BlockNumber
	switch label {
	case Latest:
		n = rpc.LatestBlockNumber
	case Safe:
		n = rpc.SafeBlockNumber
	case Finalized:
		n = rpc.FinalizedBlockNumber
	default:
		return eth.L1BlockRef{}, fmt.Errorf("unknown L1 block label %q", label)
	}
	h, err := s.headerByNumber(ctx, big.NewInt(n.Int64()))
	if err != nil {
		return eth.L1BlockRef{}, fmt.Errorf("L1 %s block: %w", label, err)
	}
	return eth.BlockRefFromHeader(h), nil
}

func (s *Source) headerByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	h, err := s.client.HeaderByNumber(cctx, n)
	if err != nil {
		return nil, err
	}
	s.headers.Add(h.Hash(), h)
	return h, nil
}

// L1BlockRefByHash returns the reference of the block with hash h.
func (s *Source) L1BlockRefByHash(ctx context.Context, h common.Hash) (eth.L1BlockRef, error) {
	hd, err := s.HeaderByHash(ctx, h)
	if err != nil {
		return eth.L1BlockRef{}, err
	}
	return eth.BlockRefFromHeader(hd), nil
}

// HeaderByHash returns the header with hash h, checking that it hashes to h.
func (s *Source) HeaderByHash(ctx context.Context, h common.Hash) (*types.Header, error) {
	if hd, ok := s.headers.Get(h); ok {
		s.hits.Add(1)
		return hd, nil
	}
	s.misses.Add(1)
	cctx, cancel := s.call(ctx)
	defer cancel()
	hd, err := s.client.HeaderByHash(cctx, h)
	if err != nil {
		return nil, fmt.Errorf("L1 header %s: %w", h, err)
	}
	if hd.Hash() != h {
		return nil, fmt.Errorf("L1 header %s: %w: header hashes to %s", h, ErrMismatch, hd.Hash())
	}
	s.headers.Add(h, hd)
	return hd, nil
}

// InfoAndTxsByHash returns the header and transactions of the block with hash h; the
// transactions are checked against the header's transactions root.
func (s *Source) InfoAndTxsByHash(ctx context.Context, h common.Hash) (*types.Header, types.Transactions, error) {
	if txs, ok := s.txs.Get(h); ok {
		if hd, ok := s.headers.Get(h); ok {
			s.hits.Add(1)
			return hd, txs, nil
		}
	}
	s.misses.Add(1)
	cctx, cancel := s.call(ctx)
	defer cancel()
	block, err := s.client.BlockByHash(cctx, h)
	if err != nil {
		return nil, nil, fmt.Errorf("L1 block %s: %w", h, err)
	}
	hd := block.Header()
	if hd.Hash() != h {
		return nil, nil, fmt.Errorf("L1 block %s: %w: header hashes to %s", h, ErrMismatch, hd.Hash())
	}
	txs := block.Transactions()
	if root := types.DeriveSha(txs, trie.NewStackTrie(nil)); root != hd.TxHash {
		return nil, nil, fmt.Errorf("L1 block %s: %w: transactions root %s, header has %s", h, ErrMismatch, root, hd.TxHash)
	}
	s.headers.Add(h, hd)
	s.txs.Add(h, txs)
	return hd, txs, nil
}

// FetchReceipts returns the header and receipts of the block with hash h, checked against
// the header's receipts root.
func (s *Source) FetchReceipts(ctx context.Context, h common.Hash) (*types.Header, types.Receipts, error) {
	hd, err := s.HeaderByHash(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	if rs, ok := s.receipts.Get(h); ok {
		s.hits.Add(1)
		return hd, rs, nil
	}
	s.misses.Add(1)
	cctx, cancel := s.call(ctx)
	defer cancel()
	rs, err := s.client.BlockReceipts(cctx, rpc.BlockNumberOrHashWithHash(h, false))
	if err != nil {
		return nil, nil, fmt.Errorf("L1 receipts of %s: %w", h, err)
	}
	receipts := types.Receipts(rs)
	if root := types.DeriveSha(receipts, trie.NewStackTrie(nil)); root != hd.ReceiptHash {
		return nil, nil, fmt.Errorf("L1 receipts of %s: %w: receipts root %s, header has %s", h, ErrMismatch, root, hd.ReceiptHash)
	}
	// The root does not commit to the logs' block hash and index, which deposit source
	// hashes are made of, so check those too: the block's, numbered from 0 in order.
	next := uint(0)
	for i, r := range receipts {
		if r.BlockHash != h {
			return nil, nil, fmt.Errorf("L1 receipts of %s: %w: receipt %d is of block %s", h, ErrMismatch, i, r.BlockHash)
		}
		for _, lg := range r.Logs {
			if lg.BlockHash != h || lg.Index != next {
				return nil, nil, fmt.Errorf("L1 receipts of %s: %w: log %d of receipt %d is log %d of block %s", h, ErrMismatch, next, i, lg.Index, lg.BlockHash)
			}
			next++
		}
	}
	s.receipts.Add(h, receipts)
	return hd, receipts, nil
}
