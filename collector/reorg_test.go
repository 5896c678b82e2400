package collector_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
)

// TestReorgDropsOrphansAndCollectsNewBranch reorgs the execution client below the
// collector's last block: the orphaned blocks leave the store with their preimages and
// the new branch is collected and verifies.
func TestReorgDropsOrphansAndCollectsNewBranch(t *testing.T) {
	t.Parallel()
	hot, _ := startHot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	load := devnet.NewLoad(hot, devnet.LoadConfig{TxsPerBlock: 12, Seed: 4})
	c := newCollector(t, hot.HTTPEndpoint(), t.TempDir(), 100)
	defer closeCollector(t, c)
	srv := startServer(t, c)
	if err := load.MineBlocks(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	orphan, err := c.Store().Block(8)
	if err != nil {
		t.Fatal(err)
	}
	fork := hot.Backend().BlockChain().GetHeaderByNumber(6)
	if err := hot.Reorg(fork.Hash()); err != nil {
		t.Fatal(err)
	}
	load.Resync()
	// The new branch is shorter at first: the collector must notice the head it holds
	// is gone even before the new chain overtakes it.
	if err := load.MineBlocks(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := load.MineBlocks(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bc := hot.Backend().BlockChain()
	first, last, _, _ := c.Store().Bounds()
	if first != 1 || last != 14 {
		t.Fatalf("window %d..%d after the reorg, want 1..14", first, last)
	}
	for n := first; n <= last; n++ {
		b, err := c.Store().Block(n)
		if err != nil {
			t.Fatal(err)
		}
		if want := bc.GetHeaderByNumber(n).Hash(); b.Hash != want {
			t.Fatalf("block %d: store holds %s, canonical is %s", n, b.Hash, want)
		}
	}
	if _, err := c.Store().BlockByHash(orphan.Hash); err == nil {
		t.Fatal("orphaned block 8 is still indexed by hash")
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Reorgs != 4 {
		t.Fatalf("status counts %d orphaned blocks, want 4 (7..10)", st.Reorgs)
	}
	checkNoLeak(t, c.Store())
	verifyRange(t, srv.HTTPURL(), 1, 14)
}

// TestRestartResumesAndReportsGap stops the collector mid-stream and restarts it: it
// resumes from its last block without missing one. Stopped for longer than the
// execution client keeps state, it reports the blocks it could not collect.
func TestRestartResumesAndReportsGap(t *testing.T) {
	t.Parallel()
	hot, _ := startHot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := devnet.NewLoad(hot, devnet.LoadConfig{TxsPerBlock: 2, Seed: 5})
	dir := t.TempDir()

	c := newCollector(t, hot.HTTPEndpoint(), dir, 1000)
	if err := load.MineBlocks(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	closeCollector(t, c)
	if err := load.MineBlocks(ctx, 15); err != nil {
		t.Fatal(err)
	}
	c = newCollector(t, hot.HTTPEndpoint(), dir, 1000)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first, last, _, _ := c.Store().Bounds()
	if first != 1 || last != 35 {
		t.Fatalf("window %d..%d after restart, want 1..35", first, last)
	}
	for n := uint64(2); n <= last; n++ {
		b, err := c.Store().Block(n)
		if err != nil {
			t.Fatalf("block %d missed across the restart: %v", n, err)
		}
		prev, _ := c.Store().Block(n - 1)
		if b.ParentHash != prev.Hash {
			t.Fatalf("block %d does not extend block %d", n, n-1)
		}
	}
	if gaps, _ := c.Store().Gaps(); len(gaps) != 0 {
		t.Fatalf("gaps after a short stop: %v", gaps)
	}
	closeCollector(t, c)

	// Stop for longer than the hot client keeps parent states (128 blocks).
	if err := load.MineBlocks(ctx, 200); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := collector.New(ctx, collector.Config{L2: hot.HTTPEndpoint(), DataDir: dir, Window: 1000, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { closeCollector(t, c) }()
	srv := startServer(t, c)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Gaps) != 1 || st.Gaps[0].From != 36 || st.Gaps[0].To < 36 || st.Gaps[0].To >= 235 {
		t.Fatalf("gaps %+v, want one starting at block 36", st.Gaps)
	}
	gap := st.Gaps[0]
	if st.Last == nil || st.Last.Number != 235 {
		t.Fatalf("last collected %+v, want 235", st.Last)
	}
	// The gap is in collector_status over RPC and in the metrics, not hidden.
	var viaRPC collector.Status
	if err := dial(t, srv.HTTPURL()).CallContext(ctx, &viaRPC, "collector_status"); err != nil {
		t.Fatal(err)
	}
	if len(viaRPC.Gaps) != 1 || viaRPC.Gaps[0] != gap {
		t.Fatalf("collector_status gaps %+v, want %+v", viaRPC.Gaps, gap)
	}
	if got := gaugeValue(t, reg, "collector_gap_blocks"); got != float64(gap.To-gap.From+1) {
		t.Fatalf("collector_gap_blocks %v, want %d", got, gap.To-gap.From+1)
	}
	raw, _ := json.Marshal(viaRPC)
	t.Logf("collector_status: %s", raw)
	resp, err := http.Get(srv.HTTPURL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health %d with a gap but collection running", resp.StatusCode)
	}
	// Blocks after the gap were collected and verify.
	verifyRange(t, srv.HTTPURL(), gap.To+1, 235)
	for _, n := range []uint64{gap.From, gap.To} {
		if _, err := c.Store().Block(n); err == nil {
			t.Fatalf("block %d inside the gap is indexed", n)
		}
	}
	// A block in the gap is refused as such.
	var out json.RawMessage
	err = dial(t, srv.HTTPURL()).CallContext(ctx, &out, "eth_getProof", collector.MessagePasser, []string{}, hexutil.EncodeUint64(gap.From))
	if err == nil || !strings.Contains(err.Error(), "in a gap") {
		t.Fatalf("proof at block %d in the gap: %v", gap.From, err)
	}
	// Once the window has moved past it, the gap leaves collector_status and the metric.
	closeCollector(t, c)
	reg = prometheus.NewRegistry()
	c, err = collector.New(ctx, collector.Config{L2: hot.HTTPEndpoint(), DataDir: dir, Window: 20, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := load.MineBlocks(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(); err != nil || len(st.Gaps) != 0 || st.First == nil || st.First.Number != 217 {
		t.Fatalf("status after the window passed the gap: %+v, %v", st, err)
	}
	if got := gaugeValue(t, reg, "collector_gap_blocks"); got != 0 {
		t.Fatalf("collector_gap_blocks %v after the gap left the window", got)
	}
	checkNoLeak(t, c.Store())
}

func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
