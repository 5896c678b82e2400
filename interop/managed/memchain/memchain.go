package memchain

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/managed"
)

// Sink receives the chain's events; managed.Server implements it.
type Sink interface {
	UnsafeBlock(ref eth.BlockRef)
	DerivationUpdate(source, derived eth.BlockRef)
	ExhaustL1(source, lastDerived eth.BlockRef)
	ReplaceBlock(replacement eth.BlockRef, invalidated eth.BlockSeal)
	RequestReset(reason string)
}

type block struct {
	ref      eth.L2BlockRef
	receipts types.Receipts
	// replaced is the block this one replaced, if it is a deposits-only replacement.
	replaced *eth.BlockSeal
	source   eth.BlockRef
}

// Heads is a snapshot of the chain's heads.
type Heads struct {
	LocalUnsafe, CrossUnsafe, LocalSafe, CrossSafe, Finalized eth.L2BlockRef
	CrossSafeSource                                           eth.BlockID
}

// Chain is an in-memory L2 chain.
type Chain struct {
	id        interop.ChainID
	blockTime uint64
	anchorL1  eth.BlockRef

	mu        sync.Mutex
	sink      Sink
	canonical []*block
	byHash    map[common.Hash]*block
	salt      uint64
	localSafe uint64
	xUnsafe   uint64
	xSafe     uint64
	xSafeSrc  eth.BlockID
	final     uint64
	provided  []eth.BlockRef
	resets    int
	changed   chan struct{}
}

// New makes a chain with only its genesis block, anchored after L1 block anchorL1.
func New(id interop.ChainID, genesisTime, blockTime uint64, anchorL1 eth.BlockRef) *Chain {
	c := &Chain{id: id, blockTime: blockTime, anchorL1: anchorL1, byHash: map[common.Hash]*block{}, changed: make(chan struct{})}
	g := &block{ref: eth.L2BlockRef{Number: 0, Time: genesisTime, L1Origin: anchorL1.ID()}, source: anchorL1}
	g.ref.Hash = c.hash(0, common.Hash{})
	c.canonical = []*block{g}
	c.byHash[g.ref.Hash] = g
	return c
}

// SetSink directs the chain's events to s (nil drops them).
func (c *Chain) SetSink(s Sink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sink = s
}

// Changed is closed at the next change of the chain's heads or records.
func (c *Chain) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Chain) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Chain) hash(n uint64, parent common.Hash) common.Hash {
	var buf [24]byte
	binary.BigEndian.PutUint64(buf[:], uint64(c.id))
	binary.BigEndian.PutUint64(buf[8:], n)
	binary.BigEndian.PutUint64(buf[16:], c.salt)
	return crypto.Keccak256Hash(buf[:], parent[:])
}

func (c *Chain) headLocked() *block { return c.canonical[len(c.canonical)-1] }

// newBlockLocked appends a block with logs (one transaction per log, so each log has its
// own receipt) on top of the canonical head.
func (c *Chain) newBlockLocked(l1Origin eth.BlockID, logs []*types.Log) *block {
	parent := c.headLocked()
	n := parent.ref.Number + 1
	ref := eth.L2BlockRef{
		Number: n, ParentHash: parent.ref.Hash, Time: parent.ref.Time + c.blockTime, L1Origin: l1Origin,
	}
	if l1Origin == parent.ref.L1Origin {
		ref.SequenceNumber = parent.ref.SequenceNumber + 1
	}
	ref.Hash = c.hash(n, parent.ref.Hash)
	b := &block{ref: ref, receipts: makeReceipts(ref, logs)}
	c.canonical = append(c.canonical, b)
	c.byHash[ref.Hash] = b
	return b
}

func makeReceipts(ref eth.L2BlockRef, logs []*types.Log) types.Receipts {
	receipts := make(types.Receipts, 0, len(logs))
	for i, l := range logs {
		cp := *l
		txHash := crypto.Keccak256Hash(ref.Hash[:], big.NewInt(int64(i)).Bytes())
		cp.BlockHash, cp.BlockNumber, cp.TxHash, cp.TxIndex, cp.Index = ref.Hash, ref.Number, txHash, uint(i), uint(i)
		r := &types.Receipt{
			Type: types.LegacyTxType, Status: types.ReceiptStatusSuccessful, CumulativeGasUsed: uint64(i+1) * 30000,
			Logs: []*types.Log{&cp}, TxHash: txHash, GasUsed: 30000, EffectiveGasPrice: big.NewInt(1),
			BlockHash: ref.Hash, BlockNumber: new(big.Int).SetUint64(ref.Number), TransactionIndex: uint(i),
		}
		r.Bloom = types.CreateBloom(r)
		receipts = append(receipts, r)
	}
	return receipts
}

// AddBlock seals a new unsafe block carrying logs and reports it.
func (c *Chain) AddBlock(l1Origin eth.BlockID, logs ...*types.Log) eth.L2BlockRef {
	c.mu.Lock()
	b := c.newBlockLocked(l1Origin, logs)
	sink := c.sink
	c.notifyLocked()
	c.mu.Unlock()
	if sink != nil {
		sink.UnsafeBlock(b.ref.BlockRef())
	}
	return b.ref
}

// MarkSafe makes every block up to n local-safe, derived from source, and reports the new
// local-safe head.
func (c *Chain) MarkSafe(n uint64, source eth.BlockRef) (eth.L2BlockRef, error) {
	c.mu.Lock()
	if n >= uint64(len(c.canonical)) {
		c.mu.Unlock()
		return eth.L2BlockRef{}, fmt.Errorf("block %d: %w", n, interop.ErrNotFound)
	}
	for i := c.localSafe + 1; i <= n; i++ {
		c.canonical[i].source = source
	}
	if n > c.localSafe {
		c.localSafe = n
	}
	ref := c.canonical[n].ref
	sink := c.sink
	c.notifyLocked()
	c.mu.Unlock()
	if sink != nil {
		sink.DerivationUpdate(source, ref.BlockRef())
	}
	return ref, nil
}

// ReportExhaustL1 says derivation used up L1 up to source.
func (c *Chain) ReportExhaustL1(source eth.BlockRef) {
	c.mu.Lock()
	last := c.canonical[c.localSafe].ref
	sink := c.sink
	c.mu.Unlock()
	if sink != nil {
		sink.ExhaustL1(source, last.BlockRef())
	}
}

// Fork replaces every block above n with a different chain of the same length without
// logs, as a node that diverged would hold. The safe heads are capped at n.
func (c *Chain) Fork(n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	length := len(c.canonical)
	origins := make([]eth.BlockID, 0, length)
	for _, b := range c.canonical[n+1:] {
		origins = append(origins, b.ref.L1Origin)
	}
	c.canonical = c.canonical[:n+1]
	c.salt++
	for _, o := range origins {
		c.newBlockLocked(o, nil)
	}
	c.localSafe = min(c.localSafe, n)
	c.xUnsafe, c.xSafe, c.final = min(c.xUnsafe, n), min(c.xSafe, n), min(c.final, n)
	c.notifyLocked()
}

// Heads returns the current heads.
func (c *Chain) Heads() Heads {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Heads{
		LocalUnsafe: c.headLocked().ref, CrossUnsafe: c.canonical[c.xUnsafe].ref,
		LocalSafe: c.canonical[c.localSafe].ref, CrossSafe: c.canonical[c.xSafe].ref,
		Finalized: c.canonical[c.final].ref, CrossSafeSource: c.xSafeSrc,
	}
}

// Provided lists the L1 blocks given through ProvideL1, in order.
func (c *Chain) Provided() []eth.BlockRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.provided)
}

// Resets counts the resets applied.
func (c *Chain) Resets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// BlockByNumber returns the canonical block at n with its receipts.
func (c *Chain) BlockByNumber(n uint64) (eth.L2BlockRef, types.Receipts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n >= uint64(len(c.canonical)) {
		return eth.L2BlockRef{}, nil, false
	}
	b := c.canonical[n]
	return b.ref, b.receipts, true
}

// LocalHeads implements managed.Backend.
func (c *Chain) LocalHeads(ctx context.Context) (managed.LocalHeads, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	safe := c.canonical[c.localSafe]
	return managed.LocalHeads{
		Unsafe: c.headLocked().ref.BlockRef(),
		Safe:   eth.DerivedBlockRefPair{Source: safe.source, Derived: safe.ref.BlockRef()},
	}, nil
}

// ChainID implements managed.Backend.
func (c *Chain) ChainID() interop.ChainID { return c.id }

// AnchorPoint implements managed.Backend.
func (c *Chain) AnchorPoint(ctx context.Context) (eth.DerivedBlockRefPair, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return eth.DerivedBlockRefPair{Source: c.anchorL1, Derived: c.canonical[0].ref.BlockRef()}, nil
}

// L2BlockRefByNumber implements managed.Backend.
func (c *Chain) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	ref, _, ok := c.BlockByNumber(n)
	if !ok {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %d: %w", n, interop.ErrNotFound)
	}
	return ref, nil
}

func (c *Chain) byHashLocked(h common.Hash) (*block, error) {
	b, ok := c.byHash[h]
	if !ok {
		return nil, fmt.Errorf("L2 block %s: %w", h, interop.ErrNotFound)
	}
	return b, nil
}

// L2BlockRefByHash implements managed.Backend.
func (c *Chain) L2BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.byHashLocked(h)
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	return b.ref, nil
}

// L2BlockRefByTimestamp implements managed.Backend.
func (c *Chain) L2BlockRefByTimestamp(ctx context.Context, ts uint64) (eth.L2BlockRef, error) {
	c.mu.Lock()
	g := c.canonical[0].ref.Time
	c.mu.Unlock()
	if ts < g || c.blockTime == 0 || (ts-g)%c.blockTime != 0 {
		return eth.L2BlockRef{}, fmt.Errorf("no L2 block at timestamp %d: %w", ts, interop.ErrNotFound)
	}
	return c.L2BlockRefByNumber(ctx, (ts-g)/c.blockTime)
}

// Receipts implements managed.Backend.
func (c *Chain) Receipts(ctx context.Context, h common.Hash) (types.Receipts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.byHashLocked(h)
	if err != nil {
		return nil, err
	}
	return b.receipts, nil
}

func outputOf(ref eth.L2BlockRef) *eth.OutputV0 {
	return &eth.OutputV0{
		StateRoot:                crypto.Keccak256Hash([]byte("state"), ref.Hash[:]),
		MessagePasserStorageRoot: crypto.Keccak256Hash([]byte("storage"), ref.Hash[:]),
		BlockHash:                ref.Hash,
	}
}

// OutputV0 implements managed.Backend.
func (c *Chain) OutputV0(ctx context.Context, h common.Hash) (*eth.OutputV0, error) {
	ref, err := c.L2BlockRefByHash(ctx, h)
	if err != nil {
		return nil, err
	}
	return outputOf(ref), nil
}

// PendingOutputV0 implements managed.Backend.
func (c *Chain) PendingOutputV0(ctx context.Context, h common.Hash) (*eth.OutputV0, error) {
	c.mu.Lock()
	b, err := c.byHashLocked(h)
	var replaced *eth.BlockSeal
	if err == nil {
		replaced = b.replaced
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if replaced != nil {
		return outputOf(eth.L2BlockRef{Hash: replaced.Hash, Number: replaced.Number}), nil
	}
	return outputOf(b.ref), nil
}

// Reset implements managed.Backend: the canonical chain is cut back to localUnsafe.
func (c *Chain) Reset(ctx context.Context, lUnsafe, xUnsafe, lSafe, xSafe, finalized eth.L2BlockRef) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canonical = c.canonical[:lUnsafe.Number+1]
	c.localSafe, c.xUnsafe, c.xSafe, c.final = lSafe.Number, xUnsafe.Number, xSafe.Number, finalized.Number
	c.resets++
	c.notifyLocked()
	return nil
}

// ResetPreInterop implements managed.Backend.
func (c *Chain) ResetPreInterop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canonical = c.canonical[:1]
	c.localSafe, c.xUnsafe, c.xSafe, c.final = 0, 0, 0, 0
	c.resets++
	c.notifyLocked()
	return nil
}

func (c *Chain) raise(head *uint64, ref eth.L2BlockRef) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref.Number >= uint64(len(c.canonical)) || c.canonical[ref.Number].ref.Hash != ref.Hash {
		return fmt.Errorf("block %s is not canonical", ref)
	}
	if ref.Number > *head {
		*head = ref.Number
		c.notifyLocked()
	}
	return nil
}

// PromoteCrossUnsafe implements managed.Backend.
func (c *Chain) PromoteCrossUnsafe(ctx context.Context, ref eth.L2BlockRef) error {
	return c.raise(&c.xUnsafe, ref)
}

// PromoteCrossSafe implements managed.Backend.
func (c *Chain) PromoteCrossSafe(ctx context.Context, ref eth.L2BlockRef, source eth.BlockID) error {
	if err := c.raise(&c.xSafe, ref); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.xSafe == ref.Number {
		c.xSafeSrc = source
	}
	return nil
}

// PromoteFinalized implements managed.Backend.
func (c *Chain) PromoteFinalized(ctx context.Context, ref eth.L2BlockRef) error {
	return c.raise(&c.final, ref)
}

// InvalidateBlock implements managed.Backend: the block and everything after it are
// dropped and a deposits-only block takes its place, local-safe from the same L1 block.
func (c *Chain) InvalidateBlock(ctx context.Context, seal eth.BlockSeal) error {
	c.mu.Lock()
	n := seal.Number
	if n == 0 || n >= uint64(len(c.canonical)) || c.canonical[n].ref.Hash != seal.Hash {
		c.mu.Unlock()
		return fmt.Errorf("block %s is not canonical: %w", seal, interop.ErrNotFound)
	}
	old := c.canonical[n]
	c.canonical = c.canonical[:n]
	c.salt++
	b := c.newBlockLocked(old.ref.L1Origin, nil)
	b.replaced = &seal
	b.source = old.source
	c.localSafe = min(c.localSafe, n)
	c.xUnsafe, c.xSafe, c.final = min(c.xUnsafe, n-1), min(c.xSafe, n-1), min(c.final, n-1)
	sink := c.sink
	c.notifyLocked()
	c.mu.Unlock()
	if sink != nil {
		sink.ReplaceBlock(b.ref.BlockRef(), seal)
	}
	return nil
}

// ProvideL1 implements managed.Backend.
func (c *Chain) ProvideL1(ctx context.Context, next eth.BlockRef) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.provided = append(c.provided, next)
	c.notifyLocked()
	return nil
}
