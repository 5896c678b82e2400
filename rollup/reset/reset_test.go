package reset

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// chains is a double of L1 and L2: a canonical L1 (by number), every L1 block ever made
// (by hash), and the L2 blocks (by hash).
type chains struct {
	canon  []eth.L1BlockRef
	l1     map[common.Hash]eth.L1BlockRef
	l2     map[common.Hash]eth.L2BlockRef
	l2List []eth.L2BlockRef
	calls  int
}

func hashOf(kind string, n uint64, salt int) common.Hash {
	return common.BytesToHash([]byte(fmt.Sprintf("%s-%d-%d", kind, n, salt)))
}

// newChains makes L1 blocks 0..l1Len-1 and an L2 chain of l2Len blocks, two L2 blocks
// per L1 block (L1 block time 2, L2 block time 1), origins advancing in step.
func newChains(l1Len, l2Len int) *chains {
	c := &chains{l1: map[common.Hash]eth.L1BlockRef{}, l2: map[common.Hash]eth.L2BlockRef{}}
	for i := 0; i < l1Len; i++ {
		c.addL1(0)
	}
	for i := 0; i < l2Len; i++ {
		c.addL2(uint64(i / 2))
	}
	return c
}

func (c *chains) addL1(salt int) eth.L1BlockRef {
	n := uint64(len(c.canon))
	ref := eth.L1BlockRef{Hash: hashOf("l1", n, salt), Number: n, Time: 1000 + 2*n}
	if n > 0 {
		ref.ParentHash = c.canon[n-1].Hash
	}
	c.canon = append(c.canon, ref)
	c.l1[ref.Hash] = ref
	return ref
}

// reorgL1 replaces L1 blocks from n up with new ones (as many as before, plus extra).
func (c *chains) reorgL1(n uint64, extra int) {
	count := len(c.canon) - int(n) + extra
	c.canon = c.canon[:n]
	for i := 0; i < count; i++ {
		c.addL1(1)
	}
}

func (c *chains) addL2(originNum uint64) eth.L2BlockRef {
	n := uint64(len(c.l2List))
	origin := c.canon[originNum]
	ref := eth.L2BlockRef{Hash: hashOf("l2", n, 0), Number: n, Time: 1000 + n, L1Origin: origin.ID()}
	if n > 0 {
		parent := c.l2List[n-1]
		ref.ParentHash = parent.Hash
		if parent.L1Origin == ref.L1Origin {
			ref.SequenceNumber = parent.SequenceNumber + 1
		}
	}
	c.l2List = append(c.l2List, ref)
	c.l2[ref.Hash] = ref
	return ref
}

func (c *chains) L1BlockRefByNumber(_ context.Context, n uint64) (eth.L1BlockRef, error) {
	c.calls++
	if n >= uint64(len(c.canon)) {
		return eth.L1BlockRef{}, fmt.Errorf("block %d: %w", n, ethereum.NotFound)
	}
	return c.canon[n], nil
}

func (c *chains) L1BlockRefByHash(_ context.Context, h common.Hash) (eth.L1BlockRef, error) {
	c.calls++
	if r, ok := c.l1[h]; ok {
		return r, nil
	}
	return eth.L1BlockRef{}, ethereum.NotFound
}

func (c *chains) L2BlockRefByHash(_ context.Context, h common.Hash) (eth.L2BlockRef, error) {
	if r, ok := c.l2[h]; ok {
		return r, nil
	}
	return eth.L2BlockRef{}, ethereum.NotFound
}

func (c *chains) cfg(window uint64) *rollup.Config {
	return &rollup.Config{
		Genesis:       rollup.Genesis{L1: c.canon[0].ID(), L2: c.l2List[0].ID()},
		BlockTime:     1,
		SeqWindowSize: window,
		L1ChainID:     big.NewInt(900), L2ChainID: big.NewInt(901),
	}
}

// expectSafe computes the rule independently: the parent of the highest block at or
// below oldSafe that starts an epoch more than a window below the highest canonical
// origin; the finalized block when the walk reaches it first.
func expectSafe(c *chains, unsafe, oldSafe, finalized eth.L2BlockRef, window uint64) eth.L2BlockRef {
	highestOrigin := unsafe.L1Origin.Number
	for n := oldSafe.Number; n > finalized.Number; n-- {
		b := c.l2List[n]
		if b.SequenceNumber == 0 && b.L1Origin.Number+window < highestOrigin {
			return c.l2List[n-1]
		}
	}
	return finalized
}

func TestSteadyChainRewindsAWindow(t *testing.T) {
	c := newChains(40, 70) // L2 0..69, origins 0..34
	cfg := c.cfg(4)
	tip := c.l2List[69]
	got, err := FindL2Heads(context.Background(), cfg, c, c, Heads{Unsafe: tip, Safe: tip, Finalized: c.l2List[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := expectSafe(c, tip, tip, c.l2List[0], 4)
	if got.Unsafe != tip || got.Safe != want || got.Finalized != c.l2List[0] {
		t.Fatalf("heads unsafe %d safe %d finalized %d, want unsafe 69 safe %d", got.Unsafe.Number, got.Safe.Number, got.Finalized.Number, want.Number)
	}
	// Origins 34 (tip) - 4 - 1 = 29 starts at L2 block 58; its parent is 57.
	if want.Number != 57 {
		t.Fatalf("independent rule says %d", want.Number)
	}
}

func TestSafeBelowUnsafeStartsAtSafe(t *testing.T) {
	c := newChains(40, 70)
	tip, safe := c.l2List[69], c.l2List[30]
	got, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: tip, Safe: safe, Finalized: c.l2List[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Block 30 starts origin 15, far below 34: its parent is the new safe head.
	if got.Unsafe != tip || got.Safe != c.l2List[29] {
		t.Fatalf("unsafe %d safe %d", got.Unsafe.Number, got.Safe.Number)
	}
}

func TestFreshChainStaysAtGenesis(t *testing.T) {
	c := newChains(3, 1)
	g := c.l2List[0]
	got, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: g, Safe: g, Finalized: g}, nil)
	if err != nil || got != (Heads{Unsafe: g, Safe: g, Finalized: g}) {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestL1ReorgDropsUnsafeOnDroppedOrigins(t *testing.T) {
	c := newChains(40, 70)
	tip := c.l2List[69]
	c.reorgL1(30, 2) // origins 30..34 are gone
	got, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: tip, Safe: tip, Finalized: c.l2List[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The highest L2 block on a surviving origin is 59 (origin 29).
	if got.Unsafe != c.l2List[59] {
		t.Fatalf("unsafe %d (origin %d)", got.Unsafe.Number, got.Unsafe.L1Origin.Number)
	}
	want := expectSafe(c, c.l2List[59], c.l2List[59], c.l2List[0], 4)
	if got.Safe != want {
		t.Fatalf("safe %d, want %d", got.Safe.Number, want.Number)
	}
}

func TestOriginsAheadOfL1KeepUnsafe(t *testing.T) {
	c := newChains(40, 70)
	tip := c.l2List[69]
	c.canon = c.canon[:33] // this L1 endpoint has not seen 33 and 34 yet
	got, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: tip, Safe: tip, Finalized: c.l2List[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Unsafe != tip {
		t.Fatalf("unsafe %d", got.Unsafe.Number)
	}
	// The highest canonical origin is 32 (L2 64): safe ends a window below it.
	if want := expectSafe(c, c.l2List[64], tip, c.l2List[0], 4); got.Safe != want {
		t.Fatalf("safe %d, want %d", got.Safe.Number, want.Number)
	}
}

func TestWalkStopsAtFinalized(t *testing.T) {
	c := newChains(40, 70)
	tip, fin := c.l2List[69], c.l2List[62]
	got, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: tip, Safe: tip, Finalized: fin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Safe != fin || got.Finalized != fin || got.Unsafe != tip {
		t.Fatalf("%d %d %d", got.Unsafe.Number, got.Safe.Number, got.Finalized.Number)
	}
}

func TestRefusals(t *testing.T) {
	c := newChains(40, 70)
	tip := c.l2List[69]
	// An L1 reorg below the finalized block's origin.
	fin := c.l2List[40]
	c2 := newChains(40, 70)
	c2.reorgL1(10, 0)
	if _, err := FindL2Heads(context.Background(), c2.cfg(4), c2, c2, Heads{Unsafe: tip, Safe: tip, Finalized: fin}, nil); !errors.Is(err, ErrFinalizedReorg) {
		t.Fatalf("a reorg of the finalized block's origin: %v", err)
	}
	// A finalized head that is not on the chain.
	other := c.l2List[62]
	other.Hash = common.Hash{9}
	if _, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: tip, Safe: tip, Finalized: other}, nil); !errors.Is(err, ErrFinalizedReorg) {
		t.Fatalf("finalized off chain: %v", err)
	}
	// A rollup config for another L1 genesis.
	cfg := c.cfg(4)
	cfg.Genesis.L1.Hash = common.Hash{1}
	g := c.l2List[0]
	low := c.l2List[5] // close enough to genesis for the walk to reach it
	if _, err := FindL2Heads(context.Background(), cfg, c, c, Heads{Unsafe: low, Safe: low, Finalized: g}, nil); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("wrong L1 genesis: %v", err)
	}
	// Every origin since 5 dropped: too deep for a window of 4 (5 windows = 20 < 34-4).
	c3 := newChains(40, 70)
	c3.reorgL1(5, 0)
	if _, err := FindL2Heads(context.Background(), c3.cfg(4), c3, c3, Heads{Unsafe: tip, Safe: tip, Finalized: g}, nil); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("deep reorg: %v", err)
	}
	// A broken sequence number.
	c4 := newChains(40, 70)
	b := c4.l2List[69]
	b.SequenceNumber = 5
	c4.l2[b.Hash] = b
	if _, err := FindL2Heads(context.Background(), c4.cfg(4), c4, c4, Heads{Unsafe: b, Safe: b, Finalized: g}, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("bad sequence number: %v", err)
	}
	if _, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: c.l2List[3], Safe: tip, Finalized: g}, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("unsafe below safe: %v", err)
	}
}

// TestWalkFollowsParentHashes checks the walk reads an L1 block by hash when stepping to
// the previous epoch, not by number again: one L1 read per epoch.
func TestWalkReadsOneL1BlockPerEpoch(t *testing.T) {
	c := newChains(40, 70)
	tip := c.l2List[69]
	if _, err := FindL2Heads(context.Background(), c.cfg(4), c, c, Heads{Unsafe: tip, Safe: tip, Finalized: c.l2List[0]}, nil); err != nil {
		t.Fatal(err)
	}
	if c.calls > 7 { // origins 34 down to 28
		t.Fatalf("%d L1 reads for 7 epochs", c.calls)
	}
}

func TestAltDAWindowsLengthenTheLookback(t *testing.T) {
	c := newChains(40, 70)
	cfg := c.cfg(4)
	cfg.AltDAConfig = &rollup.AltDAConfig{DAChallengeWindow: 6, DAResolveWindow: 4}
	tip := c.l2List[69]
	got, err := FindL2Heads(context.Background(), cfg, c, c, Heads{Unsafe: tip, Safe: tip, Finalized: c.l2List[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := expectSafe(c, tip, tip, c.l2List[0], 10); got.Safe != want {
		t.Fatalf("safe %d, want %d (a window of 10)", got.Safe.Number, want.Number)
	}
}
