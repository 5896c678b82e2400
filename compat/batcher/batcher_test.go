package batcher_test

import (
	"context"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	opeth "github.com/ethereum-optimism/optimism/op-service/eth"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// TestOpNodeDerivesWhatOpkitBatcherPosts: opkit's sequencer builds the chain, opkit
// batcher posts it in one DA mode, and op-node v1.16.13, a verifier on its own op-geth
// (blobs from the dev L1's beacon API, AltDA through the devnet's DA server), derives it:
// every height up to its safe head has the sequencer's block hash and output root.
func TestOpNodeDerivesWhatOpkitBatcherPosts(t *testing.T) {
	{
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		err := peers.Build(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, da := range []batcher.DAType{batcher.DACalldata, batcher.DABlobs, batcher.DAAltDA} {
		t.Run(string(da), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
				L1PollInterval: 100 * time.Millisecond, Logger: quiet(),
				Batcher: &devnet.BatcherConfig{DA: da, PollInterval: 200 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			var extra []string
			if da == batcher.DAAltDA {
				extra = []string{"--altda.enabled", "--altda.da-server=" + d.DAServer.URL(), "--altda.da-service"}
			}
			ver, err := peers.StartOpNode(ctx, peers.OpNodeConfig{L1: d.L1, Rollup: d.Rollup, L2Genesis: d.L2Genesis,
				Dir: t.TempDir(), ExtraFlags: extra, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ver.Close() })
			seq, err := peers.DialRollup(ctx, d.Node.RPCEndpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer seq.Close()
			vc, err := peers.DialRollup(ctx, ver.RPCEndpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer vc.Close()
			st, err := vc.WaitSafe(ctx, 8)
			if err != nil {
				t.Fatal(err)
			}
			if err := peers.Agree(ctx, 0, st.SafeL2.Number, seq, vc); err != nil {
				t.Fatal(err)
			}
			if got := inboxKinds(ctx, t, d); got[da] == 0 || len(got) != 1 {
				t.Fatalf("batcher transactions by kind: %v, want only %s", got, da)
			}
		})
	}
}

// inboxKinds counts the batcher transactions on L1 by how they carry data.
func inboxKinds(ctx context.Context, t *testing.T, d *devnet.Devnet) map[batcher.DAType]int {
	t.Helper()
	c, err := ethclient.DialContext(ctx, d.L1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, err := c.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[batcher.DAType]int{}
	for n := uint64(1); n <= head; n++ {
		b, err := c.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions() {
			if tx.To() == nil || *tx.To() != d.Rollup.BatchInboxAddress {
				continue
			}
			switch {
			case tx.Type() == types.BlobTxType:
				out[batcher.DABlobs]++
			case len(tx.Data()) > 0 && tx.Data()[0] == 0x01:
				out[batcher.DAAltDA]++
			default:
				out[batcher.DACalldata]++
			}
		}
	}
	return out
}

// TestOpNodeFollowsAltDAFailover: the DA server's primary store goes down mid-run; opkit
// batcher sends the next channels to L1 as blobs, op-node's safe head keeps moving, and
// once the store is back and retry_after has passed the batcher returns to AltDA.
func TestOpNodeFollowsAltDAFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := peers.Build(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet(),
		Batcher: &devnet.BatcherConfig{DA: batcher.DAAltDA, PollInterval: 200 * time.Millisecond, AltDARetryAfter: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ver, err := peers.StartOpNode(ctx, peers.OpNodeConfig{L1: d.L1, Rollup: d.Rollup, L2Genesis: d.L2Genesis, Dir: t.TempDir(),
		ExtraFlags: []string{"--altda.enabled", "--altda.da-server=" + d.DAServer.URL(), "--altda.da-service"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ver.Close() })
	seq, err := peers.DialRollup(ctx, d.Node.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	vc, err := peers.DialRollup(ctx, ver.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	st, err := vc.WaitSafe(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	setFaults(t, d, `{"primary":{"put":"unavailable"}}`)
	// While the primary is down the safe head moves on blobs: past every block the
	// sequencer had when the fault was set, so past what may have gone to AltDA before it.
	atFault, err := seq.WaitFor(ctx, "the sequencer's heads", func(*opeth.SyncStatus) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	st, err = vc.WaitSafe(ctx, max(st.SafeL2.Number+6, atFault.UnsafeL2.Number+2))
	if err != nil {
		t.Fatal(err)
	}
	if got := inboxKinds(ctx, t, d); got[batcher.DABlobs] == 0 {
		t.Fatalf("no blob transactions during the AltDA outage: %v", got)
	}
	setFaults(t, d, `{}`)
	altdaBefore := inboxKinds(ctx, t, d)[batcher.DAAltDA]
	if _, err := vc.WaitFor(ctx, "AltDA again", func(*opeth.SyncStatus) bool {
		return inboxKinds(ctx, t, d)[batcher.DAAltDA] > altdaBefore
	}); err != nil {
		t.Fatal(err)
	}
	final, err := vc.WaitSafe(ctx, st.SafeL2.Number+4)
	if err != nil {
		t.Fatal(err)
	}
	if err := peers.Agree(ctx, 0, final.SafeL2.Number, seq, vc); err != nil {
		t.Fatal(err)
	}
}

func setFaults(t *testing.T, d *devnet.Devnet, doc string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, d.DAServer.URL()+"/admin/faults", strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set faults %s: %d", doc, resp.StatusCode)
	}
}

// TestOpkitBatcherTakesOverFromOpBatcher: op-batcher v1.16.13 posts the first part of
// the chain, opkit batcher (same account) the rest; op-node derives the whole chain to
// the sequencer's blocks and output roots.
func TestOpkitBatcherTakesOverFromOpBatcher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := peers.Build(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ver, err := peers.StartOpNode(ctx, peers.OpNodeConfig{L1: d.L1, Rollup: d.Rollup, L2Genesis: d.L2Genesis, Dir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ver.Close() })
	seq, err := peers.DialRollup(ctx, d.Node.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	vc, err := peers.DialRollup(ctx, ver.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	opb, err := peers.StartBatcher(ctx, peers.BatcherConfig{L1: d.L1, L2RPC: d.L2.HTTPEndpoint(), RollupRPC: d.Node.RPCEndpoint(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc.WaitSafe(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := opb.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := seq.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := batcher.New(ctx, batcher.Config{
		L1URL: d.L1.HTTPEndpoint(), L2URL: d.L2.HTTPEndpoint(), RollupURL: d.Node.RPCEndpoint(),
		Key: devnet.DevAccounts(2)[1].Key, DAType: batcher.DABlobs, TargetNumFrames: 1, MaxL1TxSize: 120_000,
		Compression: "zlib", NumConfirmations: 1, ResubmissionTimeout: 10 * time.Second, NetworkTimeout: 5 * time.Second,
		ReceiptInterval: 100 * time.Millisecond, PollInterval: 200 * time.Millisecond, MaxPendingTx: 1,
		MaxChannelDuration: 1, SubSafetyMargin: 4, RPCPort: -1, Log: quiet(),
	}, batcher.DefaultCodec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	final, err := vc.WaitSafe(ctx, st.UnsafeL2.Number+4)
	if err != nil {
		t.Fatal(err)
	}
	if got := inboxKinds(ctx, t, d); got[batcher.DACalldata] == 0 || got[batcher.DABlobs] == 0 {
		t.Fatalf("want op-batcher's calldata and opkit's blobs on L1, got %v", got)
	}
	if err := peers.Agree(ctx, 0, final.SafeL2.Number, seq, vc); err != nil {
		t.Fatal(err)
	}
}
