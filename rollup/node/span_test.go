package node_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/derive/derivetest"
	rollupl1 "github.com/opkit/opkit/rollup/l1"
	"github.com/opkit/opkit/rollup/node"
)

// TestSpanBatchBlocksAreLocalSafeOneByOne derives a span batch of several blocks through
// the real pipeline stages onto a verifier's op-geth. Under Holocene op-node's batch stage
// concludes every batch it accepts, each block of a span batch included: local-safe (and
// safe, and op-geth's safe label) must be each block right after it is derived, never
// lagging behind pending-safe until the span's last block.
func TestSpanBatchBlocksAreLocalSafeOneByOne(t *testing.T) {
	r := newChainRig(t)
	const n = 8
	r.buildSeq(n) // origins L1 0..4
	var blocks []*types.Block
	for i := uint64(1); i <= n; i++ {
		blocks = append(blocks, r.seqL2.Backend().BlockChain().GetBlockByNumber(i))
	}
	frames, err := derivetest.SpanFrames(r.cfg, blocks, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The whole span batch in one calldata transaction of L1 block 6.
	data := derivetest.NewData()
	inclusion := r.l1.Backend().BlockChain().GetHeaderByNumber(6).Hash()
	for _, f := range frames {
		txd, err := batch.TxData(f)
		if err != nil {
			t.Fatal(err)
		}
		data.Add(inclusion, r.cfg.Genesis.SystemConfig.BatcherAddr, txd)
	}
	l1src, err := rollupl1.Dial(r.ctx, r.l1.HTTPEndpoint(), rollupl1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l1src.Close)
	dv := derive.New(r.cfg, r.l1.ChainConfig(), derive.Deps{L1: l1src, Data: data, L2: r.ver, Log: quietLog()})
	m := &countingMetrics{derived: map[string]int{}}
	refs := &countingRefs{L1Refs: node.NewL1Refs(r.l1c, 5*time.Second)}
	p := node.NewPipeline(r.cfg, node.NewDeriver(dv), r.ver, refs, m, quietLog())
	// L1 final up to block 10: every block derived from block 6 may become final.
	fin, err := l1src.L1BlockRefByNumber(r.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	p.OnL1Finalized(r.ctx, fin)

	prev := r.ver.State().PendingSafe
	deadline := time.Now().Add(time.Minute)
	for prev.Number < n {
		if time.Now().After(deadline) {
			t.Fatalf("derived up to %d of %d by the deadline", prev.Number, n)
		}
		err := p.Step(r.ctx)
		if errors.Is(err, io.EOF) {
			t.Fatalf("derivation went idle at %d of %d", prev.Number, n)
		}
		if err != nil && !errors.Is(err, derive.ErrNotEnoughData) {
			t.Fatalf("step: %v", err)
		}
		h := r.ver.State()
		if h.PendingSafe == prev {
			continue
		}
		prev = h.PendingSafe
		want := blocks[prev.Number-1]
		if prev.Hash != want.Hash() {
			t.Fatalf("derived block %d is %s, the sequencer's is %s", prev.Number, prev.Hash, want.Hash())
		}
		if h.LocalSafe != prev || h.Safe != prev {
			t.Fatalf("after deriving block %d of the span: local-safe %d, safe %d (pending-safe %d)", prev.Number, h.LocalSafe.Number, h.Safe.Number, prev.Number)
		}
		if got := r.verL2.Backend().BlockChain().CurrentSafeBlock(); got == nil || got.Hash() != prev.Hash {
			t.Fatalf("op-geth's safe block %v after deriving block %d", got, prev.Number)
		}
		if _, safe, err := p.SafeHeadAt(6); err != nil || safe != prev.ID() {
			t.Fatalf("safe head record at the inclusion block: %v %v, want %s", safe, err, prev.ID())
		}
	}
	if m.derived["appended"] != n {
		t.Fatalf("outcomes %v", m.derived)
	}
	// Finality is tried once for the L1 block the span came from, not once per block
	// (each try reads L1 twice), and again when derivation goes idle at the L1 head.
	if got := refs.byNumber; got > 4 {
		t.Fatalf("%d L1 reads by number for finality while deriving %d blocks from one L1 block", got, n)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		err := p.Step(r.ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, derive.ErrNotEnoughData) {
			t.Fatalf("step: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("derivation never went idle")
		}
	}
	if h := r.ver.State(); h.Finalized != prev {
		t.Fatalf("finalized %d once idle, want the span's last block %d (derived from L1 6, L1 final up to 10)", h.Finalized.Number, prev.Number)
	}
}

// countingRefs counts L1 reads by number.
type countingRefs struct {
	node.L1Refs
	byNumber int
}

func (c *countingRefs) L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error) {
	c.byNumber++
	return c.L1Refs.L1BlockRefByNumber(ctx, n)
}
