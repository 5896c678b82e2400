package verify

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/collector/replay"
)

// Result is the outcome of verifying one block.
type Result struct {
	Number uint64
	Hash   common.Hash
	// Preimages is how many trie nodes and codes the replay fetched.
	Preimages int
	Err       error
}

// Verifier replays blocks over a collector's getter API.
type Verifier struct {
	client *rpc.Client
	chain  *params.ChainConfig
}

// New connects to the collector at url and reads the chain configuration through it.
func New(ctx context.Context, url string) (*Verifier, error) {
	client, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial collector %s: %w", url, err)
	}
	var chain params.ChainConfig
	if err := client.CallContext(ctx, &chain, "debug_chainConfig"); err != nil {
		client.Close()
		return nil, fmt.Errorf("read chain config: %w", err)
	}
	return &Verifier{client: client, chain: &chain}, nil
}

// Close closes the connection.
func (v *Verifier) Close() { v.client.Close() }

// Range verifies blocks from..to inclusive, in order, calling report after each, and
// returns how many failed.
func (v *Verifier) Range(ctx context.Context, from, to uint64, report func(Result)) (failed int, err error) {
	for n := from; n <= to; n++ {
		if err := ctx.Err(); err != nil {
			return failed, err
		}
		r := v.Block(ctx, n)
		if r.Err != nil {
			failed++
		}
		report(r)
	}
	return failed, nil
}

// Block verifies block n.
func (v *Verifier) Block(ctx context.Context, n uint64) Result {
	res := Result{Number: n}
	var raw hexutil.Bytes
	if err := v.client.CallContext(ctx, &raw, "debug_getRawBlock", hexutil.EncodeUint64(n)); err != nil {
		res.Err = fmt.Errorf("read block %d: %w", n, err)
		return res
	}
	var block types.Block
	if err := rlp.DecodeBytes(raw, &block); err != nil {
		res.Err = fmt.Errorf("decode block %d: %w", n, err)
		return res
	}
	res.Hash = block.Hash()
	src := &dbGetSource{client: v.client}
	hs := &headerSource{ctx: ctx, client: v.client}
	parent := hs.GetHeader(block.ParentHash(), n-1)
	if parent == nil {
		res.Err = fmt.Errorf("parent header of block %d: %w", n, hs.err)
		return res
	}
	res.Err = replay.Verify(ctx, v.chain, &block, parent.Root, replay.NewKV(ctx, src), hs)
	res.Preimages = int(src.fetched.Load())
	return res
}

// dbGetSource fetches preimages with debug_dbGet.
// The state machinery resolves tries from several goroutines at once.
type dbGetSource struct {
	client  *rpc.Client
	fetched atomic.Int64
}

func (s *dbGetSource) Preimage(ctx context.Context, h common.Hash, code bool) ([]byte, error) {
	key := h.Bytes()
	if code {
		key = append([]byte{0x63}, key...)
	}
	var out hexutil.Bytes
	if err := s.client.CallContext(ctx, &out, "debug_dbGet", hexutil.Encode(key)); err != nil {
		return nil, fmt.Errorf("debug_dbGet %x: %w", key, err)
	}
	s.fetched.Add(1)
	return out, nil
}

// headerSource fetches headers with debug_getRawHeader and checks them by hash.
type headerSource struct {
	ctx    context.Context
	client *rpc.Client
	mu     sync.Mutex
	err    error
}

func (s *headerSource) GetHeader(h common.Hash, n uint64) *types.Header {
	var raw hexutil.Bytes
	err := s.client.CallContext(s.ctx, &raw, "debug_getRawHeader", h.Hex())
	var hdr types.Header
	if err == nil {
		err = rlp.DecodeBytes(raw, &hdr)
	}
	if err == nil && (hdr.Hash() != h || hdr.Number.Uint64() != n) {
		err = fmt.Errorf("header %s: got block %d with hash %s", h, hdr.Number, hdr.Hash())
	}
	if err != nil {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		return nil
	}
	return &hdr
}
