package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// ErrNotNext is returned for an unsafe payload that does not extend the current unsafe
// head; the caller may keep it until its parent arrives.
var ErrNotNext = errors.New("payload does not extend the unsafe head")

// Heads is the engine's full forkchoice view. Without interop, cross-unsafe is the
// unsafe head and cross-safe (Safe) is the local-safe head: nothing checks cross-chain
// dependencies, so each level is as safe as its local counterpart. PendingSafe would run
// ahead of LocalSafe only for derived blocks that do not conclude their batch; under
// Holocene every derived block concludes, so the two move together.
type Heads struct {
	Unsafe      eth.L2BlockRef
	CrossUnsafe eth.L2BlockRef
	PendingSafe eth.L2BlockRef
	LocalSafe   eth.L2BlockRef
	Safe        eth.L2BlockRef
	Finalized   eth.L2BlockRef
}

// Engine owns the forkchoice state of one L2 execution client. Every write (sequencing,
// derived blocks, unsafe payloads, resets, finality) comes from one goroutine, the
// driver's event loop, so there is one writer of forkchoice; the heads may be read from
// any goroutine.
type Engine struct {
	cfg *rollup.Config
	c   *Client
	log *slog.Logger

	mu sync.RWMutex
	h  Heads
	// interop: a supervisor decides cross-unsafe and cross-safe (see interop.go).
	interop bool
	// onUnsafe, set before the driver starts, hears of every new unsafe block.
	onUnsafe func(eth.L2BlockRef)
	// known holds the system config of recent blocks by hash, so the blocks this
	// engine inserted are never fetched back to read it.
	known *knownBlocks
}

// New returns an engine controller; call Init before use.
func New(cfg *rollup.Config, c *Client, log *slog.Logger) *Engine {
	return &Engine{cfg: cfg, c: c, log: log, known: newKnownBlocks(knownBlocksSize)}
}

// Client is the underlying Engine API client.
func (e *Engine) Client() *Client { return e.c }

// Init reads the heads the execution client already has, so a restarted node resumes
// where the chain is. Safe and finalized fall back to genesis only when the execution
// client answers that it never had them (a fresh chain); a failed call is an error.
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
	e.h = Heads{Unsafe: unsafe, CrossUnsafe: unsafe, PendingSafe: safe, LocalSafe: safe, Safe: safe, Finalized: finalized}
	e.mu.Unlock()
	return nil
}

// labelUnset reports geth's answer for a safe or finalized label that no forkchoice
// update has set yet: a server error "... block not found", distinct from a failed call.
func labelUnset(err error) bool {
	if errors.Is(err, ethereum.NotFound) {
		return true
	}
	var rpcErr rpc.Error
	return errors.As(err, &rpcErr) && strings.Contains(rpcErr.Error(), "not found")
}

func (e *Engine) refByLabel(ctx context.Context, label rpc.BlockNumber, fallback eth.L2BlockRef) (eth.L2BlockRef, error) {
	block, err := e.c.BlockByNumber(ctx, big.NewInt(label.Int64()))
	if err != nil {
		if label != rpc.LatestBlockNumber && labelUnset(err) {
			return fallback, nil
		}
		return eth.L2BlockRef{}, fmt.Errorf("read L2 %s block: %w", label, err)
	}
	ref, err := e.cfg.L2BlockRef(block)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("read L2 %s block: %w: %w", label, ErrInvalid, err)
	}
	return ref, nil
}

// State returns all heads as one consistent view.
func (e *Engine) State() Heads {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.h
}

// Heads returns the unsafe, safe and finalized heads as one consistent triple.
func (e *Engine) Heads() (unsafe, safe, finalized eth.L2BlockRef) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.h.Unsafe, e.h.Safe, e.h.Finalized
}

// UnsafeHead is the tip of the L2 chain.
func (e *Engine) UnsafeHead() eth.L2BlockRef {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.h.Unsafe
}

// PendingSafe is the newest block made from derived attributes; derivation continues
// from it.
func (e *Engine) PendingSafe() eth.L2BlockRef {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.h.PendingSafe
}

func (e *Engine) forkchoice(head common.Hash) engine.ForkchoiceStateV1 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return engine.ForkchoiceStateV1{HeadBlockHash: head, SafeBlockHash: e.h.Safe.Hash, FinalizedBlockHash: e.h.Finalized.Hash}
}

func (e *Engine) setUnsafe(ref eth.L2BlockRef) {
	e.mu.Lock()
	e.h.Unsafe = ref
	e.followUnsafeLocked(ref)
	e.mu.Unlock()
	e.notifyUnsafe(ref)
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
	ref, err := e.newPayload(ctx, env)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	if _, err := e.c.ForkchoiceUpdated(ctx, e.forkchoice(ref.Hash), nil); err != nil {
		return eth.L2BlockRef{}, err
	}
	e.setUnsafe(ref)
	return ref, nil
}

func (e *Engine) newPayload(ctx context.Context, env *engine.ExecutionPayloadEnvelope) (eth.L2BlockRef, error) {
	p := env.ExecutionPayload
	ref, l1Info, err := refFromPayload(e.cfg, p)
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
	// VALID: the execution client checked that the payload is the block its hash names,
	// so its system config can be remembered under that hash. One that does not read is
	// left for SystemConfigByL2Hash to fail on when asked.
	sys, err := rollup.SystemConfigFromL2Fields(e.cfg, rollup.L2BlockFields{
		Number: p.Number, Hash: p.BlockHash, Time: p.Timestamp, GasLimit: p.GasLimit, Extra: p.ExtraData, L1InfoTx: l1Info,
	})
	if err == nil {
		e.known.add(p.BlockHash, sys)
	}
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
	e.h.Unsafe = ref
	e.followUnsafeLocked(ref)
	if e.h.PendingSafe.Number > ref.Number {
		e.h.PendingSafe = e.h.LocalSafe
	}
	e.mu.Unlock()
	return nil
}

// SetSafeAndFinalized records safe and finalized heads decided elsewhere (the
// supervisor's managed mode); pending-safe and local-safe follow safe.
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
	e.h.Safe, e.h.LocalSafe, e.h.Finalized = safe, safe, finalized
	if e.h.PendingSafe.Number < safe.Number {
		e.h.PendingSafe = safe
	}
	e.mu.Unlock()
	return nil
}

// Reset installs the heads a pipeline reset found (rollup/reset.FindL2Heads): unsafe,
// safe and finalized, each an ancestor of the one before. Pending-safe and local-safe
// restart at safe.
func (e *Engine) Reset(ctx context.Context, unsafe, safe, finalized eth.L2BlockRef) error {
	if safe.Number > unsafe.Number || finalized.Number > safe.Number {
		return fmt.Errorf("reset forkchoice out of order: unsafe %d, safe %d, finalized %d: %w", unsafe.Number, safe.Number, finalized.Number, ErrInvalid)
	}
	fc := engine.ForkchoiceStateV1{HeadBlockHash: unsafe.Hash, SafeBlockHash: safe.Hash, FinalizedBlockHash: finalized.Hash}
	if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return fmt.Errorf("reset forkchoice to unsafe %s, safe %s, finalized %s: %w", unsafe, safe, finalized, err)
	}
	e.mu.Lock()
	e.h = Heads{Unsafe: unsafe, CrossUnsafe: unsafe, PendingSafe: safe, LocalSafe: safe, Safe: safe, Finalized: finalized}
	e.mu.Unlock()
	return nil
}

// Finalize moves the finalized head forward to ref, which must be safe already. An
// older ref is ignored: finality never goes back.
func (e *Engine) Finalize(ctx context.Context, ref eth.L2BlockRef) error {
	h := e.State()
	if ref.Number <= h.Finalized.Number {
		return nil
	}
	if ref.Number > h.Safe.Number {
		return fmt.Errorf("finalize %s: %w: above the safe head %s", ref, ErrInvalid, h.Safe)
	}
	fc := engine.ForkchoiceStateV1{HeadBlockHash: h.Unsafe.Hash, SafeBlockHash: h.Safe.Hash, FinalizedBlockHash: ref.Hash}
	if _, err := e.c.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return fmt.Errorf("finalize %s: %w", ref, err)
	}
	e.mu.Lock()
	e.h.Finalized = ref
	e.mu.Unlock()
	return nil
}

// BlockRefByNumber reads the canonical L2 block at n. Not found past the head wraps
// ethereum.NotFound; other failures keep their class.
func (e *Engine) BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	block, err := e.c.BlockByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("read L2 block %d: %w", n, err)
	}
	return e.blockRef(block)
}

// BlockRefByHash reads the L2 block with hash h, with the same error classes. It always
// asks the execution client: a reset relies on it to tell which blocks the client still
// has (after a restart it may have lost the newest).
func (e *Engine) BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error) {
	block, err := e.c.BlockByHash(ctx, h)
	if err != nil {
		return eth.L2BlockRef{}, fmt.Errorf("read L2 block %s: %w", h, err)
	}
	return e.blockRef(block)
}

// L2BlockRefByNumber and L2BlockRefByHash are the derivation pipeline's names for the
// same reads.
func (e *Engine) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	return e.BlockRefByNumber(ctx, n)
}

func (e *Engine) L2BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error) {
	return e.BlockRefByHash(ctx, h)
}

func (e *Engine) blockRef(block *types.Block) (eth.L2BlockRef, error) {
	ref, err := e.cfg.L2BlockRef(block)
	if err != nil {
		// A canonical block without a readable L1-attributes deposit: the chain is not
		// one this rollup config describes; retrying cannot help.
		return eth.L2BlockRef{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ref, nil
}

// RefFromPayload builds the block reference of a payload without asking the engine.
func RefFromPayload(cfg *rollup.Config, p *engine.ExecutableData) (eth.L2BlockRef, error) {
	ref, _, err := refFromPayload(cfg, p)
	return ref, err
}

// refFromPayload also returns the payload's decoded first transaction.
func refFromPayload(cfg *rollup.Config, p *engine.ExecutableData) (eth.L2BlockRef, *types.Transaction, error) {
	ref := eth.L2BlockRef{Hash: p.BlockHash, Number: p.Number, ParentHash: p.ParentHash, Time: p.Timestamp}
	if len(p.Transactions) == 0 {
		return eth.L2BlockRef{}, nil, fmt.Errorf("payload %d %s has no L1-attributes deposit", p.Number, p.BlockHash)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(p.Transactions[0]); err != nil {
		return eth.L2BlockRef{}, nil, fmt.Errorf("payload %d first transaction: %w", p.Number, err)
	}
	info, err := rollup.L1InfoFromBlockTx(tx)
	if err != nil {
		return eth.L2BlockRef{}, nil, fmt.Errorf("payload %d: %w", p.Number, err)
	}
	ref.L1Origin = eth.BlockID{Hash: info.BlockHash, Number: info.Number}
	ref.SequenceNumber = info.SequenceNumber
	return ref, tx, nil
}

// SystemConfigByL2Hash is the system config the L2 block with hash h was built with,
// read back from the block (rollup.SystemConfigFromL2Block): what the next block's
// attributes start from. The blocks the engine inserted are answered from their
// payloads, and recently read ones from memory: a hash names one block for ever.
func (e *Engine) SystemConfigByL2Hash(ctx context.Context, h common.Hash) (rollup.SystemConfig, error) {
	if sys, ok := e.known.get(h); ok {
		return sys, nil
	}
	block, err := e.c.BlockByHash(ctx, h)
	if err != nil {
		return rollup.SystemConfig{}, fmt.Errorf("read L2 block %s: %w", h, err)
	}
	sys, err := rollup.SystemConfigFromL2Block(e.cfg, block)
	if err != nil {
		return rollup.SystemConfig{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	e.known.add(h, sys)
	return sys, nil
}
