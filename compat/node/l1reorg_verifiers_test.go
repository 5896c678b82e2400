package node_test

import (
	"context"
	"testing"
	"time"

	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
)

// reorgL1 makes canonical L1 block fork the dev L1's head. The dev L1 refuses to fork
// while a transaction waits in its pool (it would land on either branch), and op-batcher
// sends one every L1 block or so, so it tries again, until ctx ends, right after the
// next seal.
func (p *derivingPair) reorgL1(ctx context.Context, t *testing.T, fork uint64) {
	t.Helper()
	header := p.d.L1.Backend().BlockChain().GetHeaderByNumber(fork)
	if header == nil {
		t.Fatalf("no L1 block %d", fork)
	}
	for {
		err := p.d.L1.Reorg(header.Hash())
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("reorg L1 to %d: %v (last: %v)", fork, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// onNewBranch waits until both verifiers derive from the canonical L1 above old, the
// L1 block each had reached before the reorg.
func (p *derivingPair) onNewBranch(ctx context.Context, t *testing.T, old uint64) {
	t.Helper()
	chain := p.d.L1.Backend().BlockChain()
	canonical := func(s *opeth.SyncStatus) bool {
		h := chain.GetHeaderByNumber(s.CurrentL1.Number)
		o := chain.GetHeaderByNumber(s.SafeL2.L1Origin.Number)
		return s.CurrentL1.Number > old && h != nil && h.Hash() == s.CurrentL1.Hash && o != nil && o.Hash() == s.SafeL2.L1Origin.Hash
	}
	p.opkit.waitFor(ctx, "current L1 on the new branch", canonical)
	if _, err := p.ref.WaitFor(ctx, "current L1 on the new branch", canonical); err != nil {
		t.Fatal(err)
	}
}

// derived is the lower of the two verifiers' current L1 blocks and of their safe heads'
// L1 origins.
func (p *derivingPair) derived(ctx context.Context, t *testing.T) (currentL1, safeOrigin uint64) {
	t.Helper()
	a, err := p.opkit.RPC.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.ref.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return min(a.CurrentL1.Number, b.CurrentL1.Number), min(a.SafeL2.L1Origin.Number, b.SafeL2.L1Origin.Number)
}

// TestL1ReorgsUnderBothVerifiers reorgs the dev L1 below where both op-node and the opkit
// verifier have derived to: first two blocks below it, then below the first frame of a
// channel both have read whole (deeper than the L1 blocks that channel's frames span).
// The dropped blocks held L1 origins of the sequencer's chain and batcher transactions.
// After each, both derive from the new branch, and once the batcher stops they stand on
// the same safe head, with the sequencer's blocks and outputs at every height.
func TestL1ReorgsUnderBothVerifiers(t *testing.T) {
	buildPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startDerivingPair(ctx, t, "")
	start := time.Now()
	p.opkit.waitSafe(ctx, 6)
	if _, err := p.ref.WaitSafe(ctx, 6); err != nil {
		t.Fatal(err)
	}

	// Shallow: two blocks below both verifiers' current L1.
	cur, _ := p.derived(ctx, t)
	p.reorgL1(ctx, t, cur-2)
	t.Logf("%s: L1 reorged to %d under current L1 %d", time.Since(start), cur-2, cur)
	p.onNewBranch(ctx, t, cur)
	st := p.opkit.waitSafe(ctx, 10)
	if _, err := p.ref.WaitSafe(ctx, st.SafeL2.Number); err != nil {
		t.Fatal(err)
	}

	// Deep: below the block before the first frame of the newest channel both have read
	// whole, when its frames are in more than one L1 block, and below both safe heads'
	// L1 origins, so that safe blocks are derived again too.
	var fork, depth, span, safeOrigin uint64
	p.opkit.waitFor(ctx, "a channel spanning L1 blocks read by both verifiers", func(*opeth.SyncStatus) bool {
		cur, safeOrigin = p.derived(ctx, t)
		frames, err := inboxFrames(p.d.L1, p.d.Rollup.BatchInboxAddress, cur)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(frames) - 1; i >= 0; i-- {
			last := frames[i]
			if !last.frame.IsLast {
				continue
			}
			first := last
			for j := i; j >= 0 && frames[j].frame.ID == last.frame.ID; j-- {
				first = frames[j]
			}
			if first.l1Block == last.l1Block || first.l1Block < 3 || safeOrigin < 2 {
				return false
			}
			// One more block below the channel's first, so that the reorg is deeper than
			// the channel even when current L1 is the block of its last frame.
			fork = min(first.l1Block-2, safeOrigin-1)
			depth, span = cur-fork, last.l1Block-first.l1Block+1
			return true
		}
		return false
	})
	if depth <= span {
		t.Fatalf("a reorg %d deep is no deeper than a channel over %d L1 blocks", depth, span)
	}
	p.reorgL1(ctx, t, fork)
	t.Logf("%s: L1 reorged to %d, %d blocks under current L1 %d, under a channel over %d blocks and safe heads' origin %d",
		time.Since(start), fork, depth, cur, span, safeOrigin)
	p.onNewBranch(ctx, t, cur)
	st = p.opkit.waitSafe(ctx, st.SafeL2.Number+4)
	if _, err := p.ref.WaitSafe(ctx, st.SafeL2.Number); err != nil {
		t.Fatal(err)
	}

	safe := p.settle(ctx, t)
	p.check(ctx, t, safe)
	// The start-up reset is not counted; each reorg's is.
	if got := p.opkit.counter("opkit_node_pipeline_resets_total"); got < 2 {
		t.Fatalf("the opkit verifier counted %v pipeline resets over two L1 reorgs", got)
	}
	t.Logf("%s: both on safe %d", time.Since(start), safe)
}

// counter sums the verifier's counter name over its labels.
func (v *opkitVerifier) counter(name string) float64 {
	v.t.Helper()
	families, err := v.Node.Metrics().Registry.Gather()
	if err != nil {
		v.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
		return total
	}
	v.t.Fatalf("metric %s not found", name)
	return 0
}
