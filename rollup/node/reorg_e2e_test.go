package node_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
)

// TestL1ReorgBelowSequencerOrigin drops L1 blocks under the sequencer's current origin and
// checks that the unsafe L2 chain is rewound and rebuilt on canonical origins only.
func TestL1ReorgBelowSequencerOrigin(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{}, 20)
	nodeRPC := dialNode(t, d.Node.RPCEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()

	var before uint64
	waitFor(t, 60*time.Second, "the sequencer's origin to pass L1 block 8", func() bool {
		st := syncStatus(t, nodeRPC)
		before = st.UnsafeL2.L1Origin.Number
		return before >= 8
	})
	resume := d.pauseFeed()
	st := syncStatus(t, nodeRPC)
	origin := st.UnsafeL2.L1Origin
	staleL2 := st.UnsafeL2
	// Fork L1 three blocks below the sequencer's origin and grow a different branch: the
	// first new block gets a different timestamp, so its hash differs from the dropped one.
	forkPoint := d.L1.Backend().BlockChain().GetHeaderByNumber(origin.Number - 3)
	if err := d.L1.Reorg(forkPoint.Hash()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.L1.MineWithGap(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if h := d.L1.Backend().BlockChain().GetHeaderByNumber(origin.Number); h != nil && h.Hash() == origin.Hash {
		t.Fatal("the origin survived the L1 reorg")
	}
	// L1 now ends below the old origin. Without any further L1 block the sequencer must
	// notice and move its unsafe chain onto the new branch.
	waitFor(t, 30*time.Second, "the unsafe head to sit on a canonical origin", func() bool {
		o := syncStatus(t, nodeRPC).UnsafeL2.L1Origin
		canon := d.L1.Backend().BlockChain().GetHeaderByNumber(o.Number)
		return o.Number < origin.Number && canon != nil && canon.Hash() == o.Hash
	})
	resume()

	// The sequencer must move onto the new branch: wait for its origin to pass the old one.
	waitFor(t, 120*time.Second, "the unsafe chain to build on the new L1 branch", func() bool {
		st := syncStatus(t, nodeRPC)
		return st.UnsafeL2.L1Origin.Number > origin.Number+2
	})
	// Every L2 block on the canonical chain now names a canonical L1 origin.
	head := syncStatus(t, nodeRPC).UnsafeL2
	for n := uint64(1); n <= head.Number; n++ {
		block, err := l2.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		info, err := rollup.L1InfoFromBlockTx(block.Transactions()[0])
		if err != nil {
			t.Fatal(err)
		}
		canon := d.L1.Backend().BlockChain().GetHeaderByNumber(info.Number)
		if canon == nil || canon.Hash() != info.BlockHash {
			t.Fatalf("L2 block %d names L1 origin %d %s, which is not canonical", n, info.Number, info.BlockHash)
		}
	}
	// The L2 block that was the unsafe head before the reorg built on a dropped origin,
	// so it must have been replaced.
	replaced, err := l2.BlockByNumber(ctx, new(big.Int).SetUint64(staleL2.Number))
	if err != nil {
		t.Fatal(err)
	}
	if replaced.Hash() == staleL2.Hash {
		t.Fatalf("L2 block %d built on a dropped L1 origin is still canonical", staleL2.Number)
	}
	if got := metricValue(t, d, "opkit_node_sequencer_l1_reorg_rewinds_total"); got < 1 {
		t.Fatalf("rewinds metric %v", got)
	}
}

// metricValue reads one un-labelled metric from the node's registry.
func metricValue(t *testing.T, d *fastDevnet, name string) float64 {
	t.Helper()
	families, err := d.Node.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
		return total
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
