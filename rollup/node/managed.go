package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/rollup/derive"
)

// InteropConfig turns on managed mode: the node serves the supervisor ↔ managed-node
// protocol on its own authenticated port and lets the supervisor decide cross-safety,
// which L1 blocks derivation reads, resets and finality.
type InteropConfig struct {
	// Addr and Port to listen on (port 0: any free port).
	Addr string
	Port int
	// Secret authenticates the supervisor (interop.LoadOrCreateSecret).
	Secret interop.Secret
}

// Where a reset of a managed node's derivation comes from: the node's start, the node
// itself (derivation found its view inconsistent: it asks the supervisor), the
// supervisor's interop_reset, or a replacement block.
const (
	resetAtStart = iota
	resetSelf
	resetBySupervisor
	resetByReplacement
)

// invalidatedSender sends the deposit that a replacement block ends with, which carries
// the output of the block it replaced (the interop derivation spec's "optimistic block"
// deposit).
var invalidatedSender = common.HexToAddress("0xdeaddeaddeaddeaddeaddeaddeaddeaddead0002")

// depositSigner reads a deposit's sender, which deposits carry in the clear.
var depositSigner = types.LatestSignerForChainID(big.NewInt(1))

// invalidatedSourceDomain is the deposit source-hash domain of that deposit.
const invalidatedSourceDomain = 4

// managedNode is the node's side of managed mode: a managed.Backend whose state changes
// all run on the driver's event loop (through Driver.WithState), and the hooks through
// which derivation and the engine report events to the managed.Server.
type managedNode struct {
	n   *Node
	p   *Pipeline
	srv *managed.Server

	// Loop-owned: touched only on the driver's event loop.
	lastL1     eth.L1BlockRef // the newest L1 block derivation may read
	lastOrigin eth.L1BlockRef // the origin last reported
	resetKind  int
	// exhaustSent is when exhaustL1 was last sent for the pending wait.
	exhaustSent time.Time

	// mu guards safeSource and exhausted, which LocalHeads reads from the server's
	// goroutines.
	mu         sync.Mutex
	safeSource eth.BlockRef
	exhausted  *eth.DerivedBlockRefPair
}

// exhaustRepeat is the least time between two exhaustL1 events for one wait.
const exhaustRepeat = 2 * time.Second

// l1Limiter is the part of rollup/derive's pipeline that keeps it to the L1 blocks a
// supervisor provided.
type l1Limiter interface{ SetL1Limit(n uint64) }

// initManaged sets up managed mode between creating the driver and starting it, so that
// no event derivation emits is lost.
func (n *Node) initManaged() error {
	if n.derived == nil {
		return errors.New("managed mode needs derivation from L1 (no derivation pipeline is configured)")
	}
	if _, ok := n.derived.d.(l1Limiter); !ok {
		return errors.New("managed mode needs a derivation pipeline that can be limited to the L1 blocks provided")
	}
	m := &managedNode{n: n, p: n.derived}
	n.engine.SetInterop(true)
	n.derived.managed = m
	n.engine.OnUnsafe(func(ref eth.L2BlockRef) {
		if m.srv != nil {
			m.srv.UnsafeBlock(ref.BlockRef())
		}
	})
	srv, err := managed.NewServer(managed.Config{
		Host: n.cfg.Interop.Addr, Port: n.cfg.Interop.Port, Secret: n.cfg.Interop.Secret,
		Logger: n.log.With("part", "interop"),
	}, m)
	if err != nil {
		return fmt.Errorf("--interop.rpc.port: %w", err)
	}
	m.srv = srv
	n.managed = m
	return nil
}

// InteropEndpoint is the websocket URL of the managed-node protocol, empty when the node
// is not in managed mode.
func (n *Node) InteropEndpoint() string {
	if n.managed == nil {
		return ""
	}
	return n.managed.srv.WSEndpoint()
}

// resetDerivation restarts derivation at the local-safe head (Pipeline.Step calls it on
// the loop). Derivation may then read L1 up to the last block provided, or, after a reset
// that may come from an L1 reorg, only up to its restart origin: the supervisor provides
// the rest again, each block checked to extend the one before.
func (m *managedNode) resetDerivation(ctx context.Context) error {
	kind := m.resetKind
	m.resetKind = resetSelf
	h := m.n.engine.State()
	if h.PendingSafe != h.LocalSafe {
		if err := m.n.engine.ForceReset(ctx, h.Unsafe, h.CrossUnsafe, h.LocalSafe, h.Safe, h.Finalized); err != nil {
			m.resetKind = kind
			return derive.NewTemporaryError(err)
		}
	}
	if err := m.p.d.Reset(ctx, h.LocalSafe); err != nil {
		m.resetKind = kind
		if errors.Is(err, derive.ErrCritical) {
			return err
		}
		return derive.NewTemporaryError(fmt.Errorf("reset derivation at %s: %w", h.LocalSafe.ID(), err))
	}
	origin := m.p.d.Origin()
	if kind != resetByReplacement || m.lastL1.Number < origin.Number {
		m.lastL1 = origin
	}
	m.p.d.(l1Limiter).SetL1Limit(m.lastL1.Number)
	m.setExhausted(nil)
	m.lastOrigin = origin
	if h.LocalSafe.Number == m.n.cfg.Rollup.Genesis.L2.Number {
		m.setSafeSource(origin)
	}
	m.n.log.Info("managed derivation reset", "local_safe", h.LocalSafe.ID(), "origin", origin.ID(), "l1_limit", m.lastL1.ID(), "by", kind)
	if kind == resetSelf {
		// Derivation found L1 or L2 inconsistent: the supervisor decides where to go.
		m.srv.RequestReset(fmt.Sprintf("derivation reset at local-safe %s", h.LocalSafe.ID()))
	}
	return nil
}

// afterNext reports what one derivation call changed: a new origin, or that every L1
// block provided is used up. It turns an origin that is not the block provided at its
// height (L1 changed since) into a reset.
func (m *managedNode) afterNext(err error) error {
	origin := m.p.d.Origin()
	localSafe := m.n.engine.State().LocalSafe
	if origin != m.lastOrigin {
		m.lastOrigin = origin
		m.srv.DerivationOriginUpdate(origin, localSafe.BlockRef())
	}
	if origin.Number == m.lastL1.Number && origin.Hash != m.lastL1.Hash {
		return derive.NewResetError(fmt.Errorf("derivation reads L1 block %s, the supervisor provided %s", origin.ID(), m.lastL1.ID()))
	}
	if errors.Is(err, io.EOF) && origin.Number >= m.lastL1.Number {
		pair := eth.DerivedBlockRefPair{Source: origin, Derived: localSafe.BlockRef()}
		m.mu.Lock()
		repeat := m.exhausted != nil && *m.exhausted == pair
		m.mu.Unlock()
		switch now := time.Now(); {
		case !repeat:
			m.setExhausted(&pair)
			m.exhaustSent = now
			m.srv.ExhaustL1(origin, localSafe.BlockRef())
		case now.Sub(m.exhaustSent) >= exhaustRepeat:
			// Still waiting (derivation steps again as L1 moves): say it again, at most
			// every exhaustRepeat, for a supervisor that dropped it.
			m.exhaustSent = now
			m.srv.RepeatExhaustL1(origin, localSafe.BlockRef())
		}
	}
	return err
}

// derived reports a new local-safe block. Under Holocene every derived block is
// local-safe as soon as it is derived (span batches included), so the supervisor, which
// records the chain block by block and resets a node that skips one, sees each block.
func (m *managedNode) derived(ref eth.L2BlockRef, from eth.L1BlockRef) {
	m.setSafeSource(from)
	m.srv.DerivationUpdate(from, ref.BlockRef())
}

func (m *managedNode) setExhausted(p *eth.DerivedBlockRefPair) {
	m.mu.Lock()
	m.exhausted = p
	m.mu.Unlock()
}

func (m *managedNode) setSafeSource(src eth.BlockRef) {
	m.mu.Lock()
	m.safeSource = src
	m.mu.Unlock()
}

func (m *managedNode) close() error { return m.srv.Close() }

// onLoop runs fn on the driver's event loop and returns its error.
func (m *managedNode) onLoop(ctx context.Context, fn func() error) error {
	var err error
	if lerr := m.n.driver.WithState(ctx, func() { err = fn() }); lerr != nil {
		return fmt.Errorf("driver: %w", lerr)
	}
	return err
}

// notFound makes the execution client's "not found" the protocol's.
func notFound(err error) error {
	if errors.Is(err, ethereum.NotFound) {
		return fmt.Errorf("%w: %w", interop.ErrNotFound, err)
	}
	return err
}

// LocalHeads implements managed.Backend. The local-safe block's source is the L1 block it
// was derived from, as derivation reported it; after a restart, until derivation reports
// again, it is the local-safe block's L1 origin, the oldest L1 block it can have come from.
func (m *managedNode) LocalHeads(ctx context.Context) (managed.LocalHeads, error) {
	h := m.n.engine.State()
	m.mu.Lock()
	src, exhausted := m.safeSource, m.exhausted
	m.mu.Unlock()
	if src.Number < h.LocalSafe.L1Origin.Number || src.IsZero() {
		src = eth.BlockRef{Hash: h.LocalSafe.L1Origin.Hash, Number: h.LocalSafe.L1Origin.Number}
	}
	return managed.LocalHeads{
		Unsafe:    h.Unsafe.BlockRef(),
		Safe:      eth.DerivedBlockRefPair{Source: src, Derived: h.LocalSafe.BlockRef()},
		Exhausted: exhausted,
	}, nil
}

// ChainID implements managed.Backend.
func (m *managedNode) ChainID() interop.ChainID {
	return interop.ChainID(m.n.cfg.Rollup.L2ChainID.Uint64())
}

// AnchorPoint implements managed.Backend: interop is active from genesis.
func (m *managedNode) AnchorPoint(ctx context.Context) (eth.DerivedBlockRefPair, error) {
	g := m.n.cfg.Rollup.Genesis
	l1, err := m.n.l1src.L1BlockRefByHash(ctx, g.L1.Hash)
	if err != nil {
		return eth.DerivedBlockRefPair{}, fmt.Errorf("L1 anchor block: %w", err)
	}
	l2, err := m.n.engine.BlockRefByHash(ctx, g.L2.Hash)
	if err != nil {
		return eth.DerivedBlockRefPair{}, fmt.Errorf("L2 genesis block: %w", notFound(err))
	}
	return eth.DerivedBlockRefPair{Source: l1, Derived: l2.BlockRef()}, nil
}

// L2BlockRefByNumber implements managed.Backend.
func (m *managedNode) L2BlockRefByNumber(ctx context.Context, number uint64) (eth.L2BlockRef, error) {
	ref, err := m.n.engine.BlockRefByNumber(ctx, number)
	return ref, notFound(err)
}

// L2BlockRefByHash implements managed.Backend.
func (m *managedNode) L2BlockRefByHash(ctx context.Context, hash common.Hash) (eth.L2BlockRef, error) {
	ref, err := m.n.engine.BlockRefByHash(ctx, hash)
	return ref, notFound(err)
}

// L2BlockRefByTimestamp implements managed.Backend.
func (m *managedNode) L2BlockRefByTimestamp(ctx context.Context, ts uint64) (eth.L2BlockRef, error) {
	cfg := m.n.cfg.Rollup
	if ts < cfg.Genesis.L2Time {
		return eth.L2BlockRef{}, fmt.Errorf("timestamp %d is before the L2 genesis at %d: %w", ts, cfg.Genesis.L2Time, interop.ErrNotFound)
	}
	return m.L2BlockRefByNumber(ctx, cfg.Genesis.L2.Number+(ts-cfg.Genesis.L2Time)/cfg.BlockTime)
}

// Receipts implements managed.Backend.
func (m *managedNode) Receipts(ctx context.Context, hash common.Hash) (types.Receipts, error) {
	r, err := m.n.ec.BlockReceipts(ctx, hash)
	if err != nil {
		return nil, notFound(err)
	}
	for _, rc := range r {
		if rc.BlockHash != hash {
			// The execution client answered for another block (a reorg while asked).
			return nil, fmt.Errorf("receipts of %s are for block %s: %w", hash, rc.BlockHash, interop.ErrNotFound)
		}
	}
	return r, nil
}

// OutputV0 implements managed.Backend.
func (m *managedNode) OutputV0(ctx context.Context, hash common.Hash) (*eth.OutputV0, error) {
	out, err := m.n.OutputV0(ctx, hash)
	if err != nil {
		return nil, notFound(err)
	}
	return &out, nil
}

// PendingOutputV0 implements managed.Backend: a replacement block carries the output of
// the block it replaced in its last transaction.
func (m *managedNode) PendingOutputV0(ctx context.Context, hash common.Hash) (*eth.OutputV0, error) {
	block, err := m.n.ec.BlockByHash(ctx, hash)
	if err != nil {
		return nil, notFound(err)
	}
	if out, ok := replacedOutput(block); ok {
		return &out, nil
	}
	return m.OutputV0(ctx, hash)
}

// replacedOutput decodes the output a replacement block declares for the block it
// replaced.
func replacedOutput(block *types.Block) (eth.OutputV0, bool) {
	txs := block.Transactions()
	if block.NumberU64() == 0 || len(txs) == 0 {
		return eth.OutputV0{}, false
	}
	last := txs[len(txs)-1]
	if last.Type() != types.DepositTxType {
		return eth.OutputV0{}, false
	}
	if from, err := types.Sender(depositSigner, last); err != nil || from != invalidatedSender {
		return eth.OutputV0{}, false
	}
	out, err := eth.UnmarshalOutputV0(last.Data())
	if err != nil {
		return eth.OutputV0{}, false
	}
	return out, true
}

// Reset implements managed.Backend.
func (m *managedNode) Reset(ctx context.Context, localUnsafe, crossUnsafe, localSafe, crossSafe, finalized eth.L2BlockRef) error {
	return m.onLoop(ctx, func() error {
		if err := m.n.engine.ForceReset(ctx, localUnsafe, crossUnsafe, localSafe, crossSafe, finalized); err != nil {
			return err
		}
		m.resetKind = resetBySupervisor
		if err := m.p.Reset(ctx); err != nil {
			return err
		}
		m.n.driver.RequestStep()
		return nil
	})
}

// ResetPreInterop implements managed.Backend. Interop is active from the L2 genesis of
// every chain opkit runs in managed mode, so there is no pre-interop chain to go back to.
func (m *managedNode) ResetPreInterop(ctx context.Context) error {
	return errors.New("interop is active from genesis: there is no pre-interop chain to reset to")
}

// PromoteCrossUnsafe implements managed.Backend.
func (m *managedNode) PromoteCrossUnsafe(ctx context.Context, ref eth.L2BlockRef) error {
	return m.onLoop(ctx, func() error { return m.n.engine.PromoteCrossUnsafe(ref) })
}

// PromoteCrossSafe implements managed.Backend.
func (m *managedNode) PromoteCrossSafe(ctx context.Context, ref eth.L2BlockRef, source eth.BlockID) error {
	return m.onLoop(ctx, func() error { return m.n.engine.PromoteCrossSafe(ctx, ref) })
}

// PromoteFinalized implements managed.Backend.
func (m *managedNode) PromoteFinalized(ctx context.Context, ref eth.L2BlockRef) error {
	return m.onLoop(ctx, func() error { return m.n.engine.Finalize(ctx, ref) })
}

// ProvideL1 implements managed.Backend: next must extend the last L1 block provided (or
// the origin derivation restarted from); the same block again is accepted and ignored.
func (m *managedNode) ProvideL1(ctx context.Context, next eth.BlockRef) error {
	return m.onLoop(ctx, func() error {
		last := m.lastL1
		switch {
		case next == last:
			return nil
		case last.IsZero():
			return errors.New("derivation has not started yet")
		case next.Number != last.Number+1 || next.ParentHash != last.Hash:
			return fmt.Errorf("L1 block %s (parent %s) does not extend the last L1 block %s", next.ID(), next.ParentHash, last.ID())
		}
		m.lastL1 = next
		m.p.d.(l1Limiter).SetL1Limit(next.Number)
		m.setExhausted(nil)
		m.n.driver.RequestStep()
		return nil
	})
}

// InvalidateBlock implements managed.Backend: the block is replaced by one with its
// deposits only, followed by a deposit declaring the replaced block's output; the
// replacement becomes every head but finalized, and derivation continues from it.
func (m *managedNode) InvalidateBlock(ctx context.Context, seal eth.BlockSeal) error {
	return m.onLoop(ctx, func() error {
		block, err := m.n.ec.BlockByHash(ctx, seal.Hash)
		if err != nil {
			return notFound(err)
		}
		if block.NumberU64() != seal.Number || block.NumberU64() == 0 {
			return fmt.Errorf("block %s is number %d: %w", seal.Hash, block.NumberU64(), interop.ErrNotFound)
		}
		canon, err := m.n.engine.BlockRefByNumber(ctx, seal.Number)
		if err != nil {
			return notFound(err)
		}
		if canon.Hash != seal.Hash {
			return fmt.Errorf("block %s is not canonical (canonical %s): %w", seal.ID(), canon.Hash, interop.ErrNotFound)
		}
		parent, err := m.n.engine.BlockRefByHash(ctx, block.ParentHash())
		if err != nil {
			return notFound(err)
		}
		attrs, err := replacementAttributes(block)
		if err != nil {
			return err
		}
		_, ref, err := m.n.engine.BuildReplacement(ctx, parent, attrs)
		if err != nil {
			return err
		}
		m.n.log.Warn("replaced an invalidated block", "invalidated", seal.ID(), "replacement", ref.ID())
		m.resetKind = resetByReplacement
		if err := m.p.Reset(ctx); err != nil {
			return err
		}
		m.srv.ReplaceBlock(ref.BlockRef(), seal)
		m.n.driver.RequestStep()
		return nil
	})
}

// replacementAttributes are the attributes of the block that replaces block: the same
// header fields, its deposits, and the deposit that declares block's output.
func replacementAttributes(block *types.Block) (*engine.PayloadAttributes, error) {
	h := block.Header()
	if h.WithdrawalsHash == nil {
		return nil, fmt.Errorf("block %s has no withdrawals root (not an Isthmus block)", block.Hash())
	}
	var txs [][]byte
	for _, tx := range block.Transactions() {
		if tx.Type() != types.DepositTxType {
			continue
		}
		enc, err := tx.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode deposit %s: %w", tx.Hash(), err)
		}
		txs = append(txs, enc)
	}
	out := eth.OutputV0{StateRoot: h.Root, MessagePasserStorageRoot: *h.WithdrawalsHash, BlockHash: block.Hash()}
	pre := out.Marshal()
	var domain [64]byte
	binary.BigEndian.PutUint64(domain[24:32], invalidatedSourceDomain)
	root := crypto.Keccak256Hash(pre)
	copy(domain[32:], root[:])
	declare, err := types.NewTx(&types.DepositTx{
		SourceHash: crypto.Keccak256Hash(domain[:]),
		From:       invalidatedSender,
		To:         &common.Address{}, // no code runs: the data is only a record
		Mint:       big.NewInt(0),
		Value:      big.NewInt(0),
		Gas:        36_000,
		Data:       pre,
	}).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode the replacement deposit: %w", err)
	}
	txs = append(txs, declare)
	extra := h.Extra
	if len(extra) < 9 || (extra[0] == 1 && len(extra) < 17) {
		return nil, fmt.Errorf("block %s extraData %x carries no EIP-1559 parameters", block.Hash(), extra)
	}
	gasLimit := h.GasLimit
	attrs := &engine.PayloadAttributes{
		Timestamp:             h.Time,
		Random:                h.MixDigest,
		SuggestedFeeRecipient: h.Coinbase,
		Withdrawals:           []*types.Withdrawal{},
		BeaconRoot:            h.ParentBeaconRoot,
		Transactions:          txs,
		NoTxPool:              true,
		GasLimit:              &gasLimit,
		EIP1559Params:         append([]byte(nil), extra[1:9]...),
	}
	if extra[0] == 1 {
		minBaseFee := binary.BigEndian.Uint64(extra[9:17])
		attrs.MinBaseFee = &minBaseFee
	}
	return attrs, nil
}
