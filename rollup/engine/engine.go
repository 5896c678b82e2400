package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// ErrNotNext is returned for an unsafe payload that does not extend the current unsafe
// head; it is dropped, not retried.
var ErrNotNext = errors.New("payload does not extend the unsafe head")

// Engine owns the forkchoice state of one L2 execution client. Writes come from one
// goroutine (the driver's event loop); the heads may be read from any goroutine.
type Engine struct {
	cfg *rollup.Config
	c   *Client
	log *slog.Logger

	mu        sync.RWMutex
	unsafe    eth.L2BlockRef
	safe      eth.L2BlockRef
	finalized eth.L2BlockRef
}

// New returns an engine controller; call Init before use.
func New(cfg *rollup.Config, c *Client, log *slog.Logger) *Engine {
	return &Engine{cfg: cfg, c: c, log: log}
}

// Client is the underlying Engine API client.
func (e *Engine) Client() *Client { return e.c }

// Init reads the heads the execution client already has, so a restarted node resumes
// where the chain is. Safe and finalized fall back to genesis on a fresh chain (the
// execution client answers "not found" until a forkchoice update names them).
func (e *Engine) Init(ctx context.Context) error {
	genesis, err := e.BlockRefByNumber(ctx, e.cfg.Genesis.L2.Number)
	if err != nil {
		return fmt.Errorf("read L2 genesis: %w", err)
	}
	if genesis.Hash != e.cfg.Genesis.L2.Hash {
		return fmt.Errorf("L2 genesis is %s, rollup config says %s", genesis.Hash, e.cfg.Genesis.L2.Hash)
	}
	unsafe, err := e.refByLabel(ctx, rpc.LatestBlockNumber, genesis)
	if err != nil {
		return err
	}
	safe, err := e.refByLabel(ctx, rpc.SafeBlockNumber, genesis)
	if err != nil {
		return err
	}
	finalized, err := e.refByLabel(ctx, rpc.FinalizedBlockNumber, genesis)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.unsafe, e.safe, e.finalized = unsafe, safe, finalized
	e.mu.Unlock()
	return nil
}

func (e *Engine) refByLabel(ctx context.Context, label rpc.BlockNumber, fallback eth.L2BlockRef) (eth.L2BlockRef, error) {
	block, err := e.c.Eth.BlockByNumber(ctx, big.NewInt(label.Int64()))
	if err != nil {
		// geth answers an error for safe/finalized before they were ever set.
		if label != rpc.LatestBlockNumber {
			return fallback, nil
		}
		return eth.L2BlockRef{}, fmt.Errorf("read L2 %s block: %w: %w", label, ErrTemporary, err)
	}
	return e.cfg.L2BlockRef(block)
}

// Heads returns the unsafe, safe and finalized heads as one consistent triple.
func (e *Engine) Heads() (unsafe, safe, finalized eth.L2BlockRef) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.unsafe, e.safe, e.finalized
}

// UnsafeHead is the tip of the L2 chain.
func (e *Engine) UnsafeHead() eth.L2BlockRef {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.unsafe
}

func (e *Engine) forkchoice(head common.Hash) engine.ForkchoiceStateV1 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return engine.ForkchoiceStateV1{HeadBlockHash: head, SafeBlockHash: e.safe.Hash, FinalizedBlockHash: e.finalized.Hash}
}

// StartBuilding asks the engine to build a block on parent from attrs.
func (e *Engine) StartBuilding(ctx context.Context, parent eth.L2BlockRef, attrs *engine.PayloadAttributes) (engine.PayloadID, error) {
	id, err := e.c.ForkchoiceUpdated(ctx, e.forkchoice(parent.Hash), attrs)
	if err != nil {
		return engine.PayloadID{}, fmt.Errorf("start building on %s: %w", parent, err)
	}
	return *id, nil
}

// SealBuilding fetches the built payload, inserts it and makes it the unsafe head.
func (e *Engine) SealBuilding(ctx context.Context, id engine.PayloadID) (*engine.ExecutionPayloadEnvelope, eth.L2BlockRef, error) {
	env, err := e.c.GetPayload(ctx, id)
	if err != nil {
		return nil, eth.L2BlockRef{}, fmt.Errorf("seal payload %s: %w", id, err)
	}
	ref, err := e.insert(ctx, env)
	if err != nil {
		return nil, eth.L2BlockRef{}, fmt.Errorf("seal payload %s: %w", id, err)
	}
	return env, ref, nil
}

// InsertUnsafePayload inserts a payload built elsewhere (a peer sequencer) on top of the
// unsafe head and makes it the new unsafe head.
func (e *Engine) InsertUnsafePayload(ctx context.Context, env *engine.ExecutionPayloadEnvelope) (eth.L2BlockRef, error) {
	if env == nil || env.ExecutionPayload == nil {
		return eth.L2BlockRef{}, fmt.Errorf("insert unsafe payload: %w: empty envelope", ErrInvalid)
	}
	if head := e.UnsafeHead(); env.ExecutionPayload.ParentHash != head.Hash {
		return eth.L2BlockRef{}, fmt.Errorf("insert unsafe payload %d %s: %w: parent %s, unsafe head %s",
			env.ExecutionPayload.Number, env.ExecutionPayload.BlockHash, ErrNotNext, env.ExecutionPayload.ParentHash, head)
	}
	return e.insert(ctx, env)
}

func (e *Engine) insert(ctx context.Context, env *engine.ExecutionPayloadEnvelope) (eth.L2BlockRef, error) {
	p := env.ExecutionPayload
	ref, err := RefFromPayload(e.cfg, p)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var beaconRoot common.Hash
	if env.ParentBeaconBlockRoot != nil {
		beaconRoot = *env.ParentBeaconBlockRoot
	}
	if err := e.c.NewPayload(ctx, p, beaconRoot); err != nil {
		return eth.L2BlockRef{}, err
	}
	if _, err := e.c.ForkchoiceUpdated(ctx, e.forkchoice(ref.Hash), nil); err != nil {
		return eth.L2BlockRef{}, err
	}
	e.mu.Lock()
	e.unsafe = ref
	e.mu.Unlock()
	return ref, nil
}

// SetUnsafeHead moves the unsafe head to ref, which may be an ancestor (an L2 reorg after
// an L1 reorg). It may not go below the safe head.
func (e *Engine) SetUnsafeHead(ctx context.Context, ref eth.L2BlockRef) error {
	if _, safe, _ := e.Heads(); ref.Number < safe.Number {
		return fmt.Errorf("set unsafe head to %s: %w: below the safe head %s", ref, ErrInvalid, safe)
	}
	if _, err := e.c.ForkchoiceUpdated(ctx, e.forkchoice(ref.Hash), nil); err != nil {
		return fmt.Errorf("set unsafe head to %s: %w", ref, err)
	}
	e.mu.Lock()
	e.unsafe = ref
	e.mu.Unlock()
	return nil
}

// SetSafeAndFinalized records derivation's progress; it is the seam the derivation
// pipeline and the supervisor's managed mode write through.
func (e *Engine) SetSafeAndFinalized(ctx context.Context, safe, finalized eth.L2BlockRef) error {
	unsafe := e.UnsafeHead()
	if safe.Number > unsafe.Number || finalized.Number > safe.Number {
		return fmt.Errorf("forkchoice out of order: unsafe %d, safe %d, finalized %d: %w", unsafe.Number, safe.Number, finalized.Number, ErrInvalid)
	}
	fc := engine.ForkchoiceStateV1{HeadBlockHash: unsafe.Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: finalized.Hash}
	if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return fmt.Errorf("set safe %s, finalized %s: %w", safe, finalized, err)
	}
	e.mu.Lock()
	e.safe, e.finalized = safe, finalized
	e.mu.Unlock()
	return nil
}

// BlockRefByNumber reads the canonical L2 block at n.
func (e *Engine) BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	block, err := e.c.Eth.BlockByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("read L2 block %d: %w", n, err)
	}
	return e.cfg.L2BlockRef(block)
}

// BlockRefByHash reads the L2 block with hash h.
func (e *Engine) BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error) {
	block, err := e.c.Eth.BlockByHash(ctx, h)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("read L2 block %s: %w", h, err)
	}
	return e.cfg.L2BlockRef(block)
}

// RefFromPayload builds the block reference of a payload without asking the engine.
func RefFromPayload(cfg *rollup.Config, p *engine.ExecutableData) (eth.L2BlockRef, error) {
	ref := eth.L2BlockRef{Hash: p.BlockHash, Number: p.Number, ParentHash: p.ParentHash, Time: p.Timestamp}
	if len(p.Transactions) == 0 {
		return eth.L2BlockRef{}, fmt.Errorf("payload %d %s has no L1-attributes deposit", p.Number, p.BlockHash)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(p.Transactions[0]); err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("payload %d first transaction: %w", p.Number, err)
	}
	info, err := rollup.L1InfoFromBlockTx(&tx)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("payload %d: %w", p.Number, err)
	}
	ref.L1Origin = eth.BlockID{Hash: info.BlockHash, Number: info.Number}
	ref.SequenceNumber = info.SequenceNumber
	return ref, nil
}
