package node_test

import (
	"context"
	"testing"
	"time"

	opclient "github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
)

// TestOpNodeRollupClientTalksToOpkit drives opkit's node with op-service's RollupClient, the
// client op-batcher, op-proposer and op-conductor use against op-node.
func TestOpNodeRollupClientTalksToOpkit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw, err := rpc.DialContext(ctx, d.Node.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	rc := sources.NewRollupClient(opclient.NewBaseRPCClient(raw))
	defer rc.Close()

	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := rc.SyncStatus(ctx)
		if err != nil {
			t.Fatalf("SyncStatus: %v", err)
		}
		if st.UnsafeL2.Number >= 2 && st.HeadL1.Number >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, err := rc.OutputAtBlock(ctx, 2)
	if err != nil {
		t.Fatalf("OutputAtBlock: %v", err)
	}
	mine, err := d.Node.OutputV0(ctx, out.BlockRef.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if out.BlockRef.Number != 2 || [32]byte(out.OutputRoot) != [32]byte(mine.Root()) || out.Status == nil {
		t.Fatalf("OutputAtBlock decoded as %+v", out)
	}
	cfg, err := rc.RollupConfig(ctx)
	if err != nil || cfg.Genesis.L2.Hash != d.Rollup.Genesis.L2.Hash || cfg.Check() != nil {
		t.Fatalf("RollupConfig: %v", err)
	}
	if v, err := rc.Version(ctx); err != nil || v == "" {
		t.Fatalf("Version %q %v", v, err)
	}
	if active, err := rc.SequencerActive(ctx); err != nil || !active {
		t.Fatalf("SequencerActive %v %v", active, err)
	}
	head, err := rc.StopSequencer(ctx)
	if err != nil {
		t.Fatalf("StopSequencer: %v", err)
	}
	st, err := rc.SyncStatus(ctx)
	if err != nil || st.UnsafeL2.Hash != head {
		t.Fatalf("stopped at %s, status %v %v", head, st.UnsafeL2, err)
	}
	if err := rc.StartSequencer(ctx, head); err != nil {
		t.Fatalf("StartSequencer: %v", err)
	}
}
