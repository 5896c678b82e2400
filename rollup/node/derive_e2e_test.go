package node_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/node"
)

// derivationNet is a devnet whose sequencing node (opkit) has its chain posted to L1 by
// opkit's batcher, plus an opkit verifier on a second op-geth from the same L2 genesis.
type derivationNet struct {
	t        *testing.T
	ctx      context.Context
	d        *devnet.Devnet
	verL2    *devnet.L2
	ver      *node.Node
	seqRPC   *rpc.Client
	verRPC   *rpc.Client
	seqEth   *ethclient.Client
	verEth   *ethclient.Client
	verCfg   node.Config
	verStart time.Time
}

func startDerivationNet(t *testing.T, da batcher.DAType, channelDuration uint64) *derivationNet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	d, err := devnet.Start(ctx, devnet.Config{
		L1BlockTime: 500 * time.Millisecond, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quietLog(),
		Batcher: &devnet.BatcherConfig{DA: da, MaxChannelDuration: channelDuration, PollInterval: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	n := &derivationNet{t: t, ctx: ctx, d: d}
	n.verL2, err = devnet.StartL2(devnet.L2Config{Genesis: d.L2Genesis, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.verL2.Close() })
	n.verCfg = node.Config{
		Rollup: d.Rollup, L1ChainConfig: d.L1.ChainConfig(),
		L1URL: d.L1.HTTPEndpoint(), L1BeaconURL: d.L1.BeaconURL(),
		L2EngineURL: n.verL2.EngineEndpoint(), JWTSecret: n.verL2.JWTSecret(),
		MetricsDisabled: true, L1PollInterval: 100 * time.Millisecond, Log: quietLog(),
	}
	n.startVerifier()
	n.seqRPC = dialNode(t, d.Node.RPCEndpoint())
	if n.seqEth, err = ethclient.DialContext(ctx, d.L2.HTTPEndpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.seqEth.Close)
	if n.verEth, err = ethclient.DialContext(ctx, n.verL2.HTTPEndpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.verEth.Close)
	return n
}

func (n *derivationNet) startVerifier() {
	n.t.Helper()
	v, err := node.Start(n.ctx, n.verCfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.ver = v
	n.t.Cleanup(func() { v.Close() })
	n.verRPC = dialNode(n.t, v.RPCEndpoint())
	n.verStart = time.Now()
}

// waitSafe waits until both nodes' safe heads reach target.
func (n *derivationNet) waitSafe(target uint64, timeout time.Duration) (seq, ver *eth.SyncStatus) {
	n.t.Helper()
	waitFor(n.t, timeout, "both safe heads to reach the target", func() bool {
		seq, ver = syncStatus(n.t, n.seqRPC), syncStatus(n.t, n.verRPC)
		return seq.SafeL2.Number >= target && ver.SafeL2.Number >= target
	})
	return seq, ver
}

// sameChain checks every block 1..upto has the same hash on both execution clients and
// the same output root on both nodes.
func (n *derivationNet) sameChain(upto uint64) {
	n.t.Helper()
	for h := uint64(1); h <= upto; h++ {
		a, err := n.seqEth.HeaderByNumber(n.ctx, new(big.Int).SetUint64(h))
		if err != nil {
			n.t.Fatalf("sequencer block %d: %v", h, err)
		}
		b, err := n.verEth.HeaderByNumber(n.ctx, new(big.Int).SetUint64(h))
		if err != nil {
			n.t.Fatalf("verifier block %d: %v", h, err)
		}
		if a.Hash() != b.Hash() {
			n.t.Fatalf("block %d: sequencer %s, verifier %s", h, a.Hash(), b.Hash())
		}
	}
	var so, vo eth.OutputResponse
	if err := n.seqRPC.CallContext(n.ctx, &so, "optimism_outputAtBlock", hexutil.Uint64(upto)); err != nil {
		n.t.Fatal(err)
	}
	if err := n.verRPC.CallContext(n.ctx, &vo, "optimism_outputAtBlock", hexutil.Uint64(upto)); err != nil {
		n.t.Fatal(err)
	}
	if so.OutputRoot != vo.OutputRoot || so.BlockRef != vo.BlockRef {
		n.t.Fatalf("output at %d: sequencer %s %+v, verifier %s %+v", upto, so.OutputRoot, so.BlockRef, vo.OutputRoot, vo.BlockRef)
	}
}

// TestVerifierDerivesTheSequencersChain: opkit's batcher posts the sequencer's chain in
// calldata; the sequencer's own safe head moves, and an opkit verifier on its own op-geth
// derives the same blocks; finalized follows the dev L1's finality.
func TestVerifierDerivesTheSequencersChain(t *testing.T) {
	n := startDerivationNet(t, batcher.DACalldata, 1)
	seq, ver := n.waitSafe(15, 90*time.Second)
	upto := min(seq.SafeL2.Number, ver.SafeL2.Number)
	n.sameChain(upto)
	for name, st := range map[string]*eth.SyncStatus{"sequencer": seq, "verifier": ver} {
		if st.CurrentL1.IsZero() || st.CurrentL1.Number > st.HeadL1.Number {
			t.Errorf("%s: current_l1 %d, head_l1 %d", name, st.CurrentL1.Number, st.HeadL1.Number)
		}
		if st.LocalSafeL2 != st.SafeL2 || st.PendingSafeL2.Number < st.SafeL2.Number || st.CrossUnsafeL2 != st.UnsafeL2 {
			t.Errorf("%s: heads %+v", name, st)
		}
		if st.CurrentL1Finalized != st.FinalizedL1 {
			t.Errorf("%s: current_l1_finalized %v, finalized_l1 %v", name, st.CurrentL1Finalized.ID(), st.FinalizedL1.ID())
		}
	}
	// The verifier built every block itself: no unsafe chain was ahead of it.
	if ver.UnsafeL2.Number > ver.SafeL2.Number+1 {
		t.Errorf("verifier unsafe %d ahead of safe %d", ver.UnsafeL2.Number, ver.SafeL2.Number)
	}
	var sh node.SafeHeadResponse
	if err := n.verRPC.CallContext(n.ctx, &sh, "optimism_safeHeadAtL1Block", hexutil.Uint64(ver.CurrentL1.Number)); err != nil {
		t.Fatal(err)
	}
	if sh.SafeHead.Number == 0 || sh.L1Block.Number > ver.CurrentL1.Number {
		t.Fatalf("safe head at L1 %d: %+v", ver.CurrentL1.Number, sh)
	}
	// The dev L1 finalizes in 32-block epochs; L2 derived from finalized L1 follows.
	waitFor(t, 90*time.Second, "both finalized heads to move", func() bool {
		return syncStatus(t, n.seqRPC).FinalizedL2.Number > 0 && syncStatus(t, n.verRPC).FinalizedL2.Number > 0
	})
	seq, ver = syncStatus(t, n.seqRPC), syncStatus(t, n.verRPC)
	for name, st := range map[string]*eth.SyncStatus{"sequencer": seq, "verifier": ver} {
		if st.FinalizedL2.Number > st.SafeL2.Number || st.FinalizedL2.L1Origin.Number > st.FinalizedL1.Number {
			t.Errorf("%s: finalized %d (origin %d), safe %d, finalized L1 %d", name, st.FinalizedL2.Number, st.FinalizedL2.L1Origin.Number, st.SafeL2.Number, st.FinalizedL1.Number)
		}
	}
	n.sameChain(min(seq.SafeL2.Number, ver.SafeL2.Number))
}

// TestVerifierRestartMidChannel stops the verifier while channels span several L1 blocks
// and starts a new one on the same op-geth: it resumes from the execution client's heads.
// Its reset walks safe back (with the devnet's 3600-block sequencing window, to the
// finalized block), derives again from there, consolidating against the blocks op-geth
// kept, and reaches the same safe chain.
func TestVerifierRestartMidChannel(t *testing.T) {
	n := startDerivationNet(t, batcher.DACalldata, 4)
	_, ver := n.waitSafe(6, 90*time.Second)
	if err := n.ver.Close(); err != nil {
		t.Fatal(err)
	}
	before := ver
	n.startVerifier()
	if st := syncStatus(t, n.verRPC); st.UnsafeL2.Number < before.UnsafeL2.Number {
		t.Fatalf("restarted verifier lost its unsafe head: %d, was %d", st.UnsafeL2.Number, before.UnsafeL2.Number)
	}
	seq, ver := n.waitSafe(before.SafeL2.Number+8, 90*time.Second)
	n.sameChain(min(seq.SafeL2.Number, ver.SafeL2.Number))
	if got := metricValueOf(t, n.ver, "opkit_node_derived_blocks_total"); got < float64(before.SafeL2.Number) {
		t.Fatalf("the restarted verifier derived %v blocks, fewer than the %d it had", got, before.SafeL2.Number)
	}
}

// TestL1ReorgBelowTheDerivedOrigin reorgs L1 below both nodes' current_l1: both reset,
// derive again from the new L1 branch and end on the same chain.
func TestL1ReorgBelowTheDerivedOrigin(t *testing.T) {
	n := startDerivationNet(t, batcher.DACalldata, 1)
	_, ver := n.waitSafe(10, 90*time.Second)
	fork := ver.CurrentL1.Number - 3
	forkHeader := n.d.L1.Backend().BlockChain().GetHeaderByNumber(fork)
	if err := n.d.L1.Reorg(forkHeader.Hash()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the verifier to derive from the new L1 branch", func() bool {
		st := syncStatus(t, n.verRPC)
		canon := n.d.L1.Backend().BlockChain().GetHeaderByNumber(st.CurrentL1.Number)
		return st.CurrentL1.Number > ver.CurrentL1.Number+2 && canon != nil && canon.Hash() == st.CurrentL1.Hash
	})
	target := syncStatus(t, n.verRPC).SafeL2.Number + 5
	seq, ver2 := n.waitSafe(target, 90*time.Second)
	n.sameChain(min(seq.SafeL2.Number, ver2.SafeL2.Number))
	// Every safe block's origin is on the canonical L1.
	o := ver2.SafeL2.L1Origin
	if canon := n.d.L1.Backend().BlockChain().GetHeaderByNumber(o.Number); canon == nil || canon.Hash() != o.Hash {
		t.Fatalf("verifier safe head's origin %v is not canonical", o)
	}
	// The start-up reset is not counted; the reorg's is.
	if got := metricValueOf(t, n.ver, "opkit_node_pipeline_resets_total"); got < 1 {
		t.Fatalf("verifier pipeline resets %v: the reorg did not reset it", got)
	}
}

func metricValueOf(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	families, err := n.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			if m.Counter != nil {
				total += m.Counter.GetValue()
			}
		}
		return total
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
