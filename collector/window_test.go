package collector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/stateless"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/collector/store"
	"github.com/opkit/opkit/devnet"
)

// TestWindowPlateaus collects 800 loaded blocks (20 windows) with a 40-block window: every block
// in the window verifies, blocks that left it are gone, and the store stops growing.
func TestWindowPlateaus(t *testing.T) {
	t.Parallel()
	hot, _ := startHot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	load := devnet.NewLoad(hot, devnet.LoadConfig{TxsPerBlock: 1, Seed: 3})
	// Start from a state whose account trie is as deep as it will be at the end (a few
	// hundred to a thousand accounts: three levels of branches), so that growth in the store can
	// only come from the window, not from the chain's state getting deeper.
	if err := load.Populate(ctx, 600, 200); err != nil {
		t.Fatal(err)
	}
	const (
		window = 40
		total  = 800
		chunk  = 40 // well inside the ~128 blocks a path-scheme client keeps
	)
	c, err := collector.New(ctx, collector.Config{L2: hot.HTTPEndpoint(), DataDir: t.TempDir(), Window: window, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeCollector(t, c)
	srv := startServer(t, c)
	// The collector follows in the background while blocks are mined, as in production;
	// mining waits whenever it gets more than a chunk ahead.
	runCtx, stopRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()
	type sample struct{ preimages, bytes uint64 }
	samples := map[uint64]sample{}
	collected := func() uint64 {
		_, last, _, _ := c.Store().Bounds()
		return last
	}
	for mined := uint64(0); mined < total; mined += chunk {
		if err := load.MineBlocks(ctx, chunk); err != nil {
			t.Fatal(err)
		}
		// Let the collector trail by at most one chunk, so mining the next chunk overlaps
		// collecting this one while the lag stays well inside the hot window.
		waitFor(t, ctx, func() bool { return collected()+chunk >= hot.Head().Number.Uint64() })
		st := c.Store().Stats()
		samples[collected()] = sample{st.Preimages, st.Bytes}
	}
	head := hot.Head().Number.Uint64()
	waitFor(t, ctx, func() bool { return collected() == head })
	stopRun()
	if err := <-runErr; err != nil {
		t.Fatalf("collector stopped: %v", err)
	}
	st := c.Store().Stats()
	samples[head] = sample{st.Preimages, st.Bytes}
	first, last, ok, err := c.Store().Bounds()
	if err != nil || !ok || first != head-window+1 || last != head {
		t.Fatalf("window %d..%d (%v, %v), want %d..%d", first, last, ok, err, head-window+1, head)
	}
	// Plateau: once the window is full (block 200, five windows, leaves ample margin), the store holds
	// about the same whatever the chain length. The state grows a little (new accounts
	// deepen the trie), so allow 25%.
	var ref sample
	for n := uint64(200); ref.bytes == 0 && n < total; n++ {
		ref = samples[n] // the first sample at or after block 200
	}
	end := samples[head]
	t.Logf("store at block 200: %d preimages, %d bytes; at %d: %d preimages, %d bytes", ref.preimages, ref.bytes, head, end.preimages, end.bytes)
	for n, s := range samples {
		if n >= 200 && (s.bytes > ref.bytes*5/4 || s.preimages > ref.preimages*5/4) {
			t.Fatalf("store kept growing: at block %d it holds %d preimages, %d bytes; at 200 %d, %d", n, s.preimages, s.bytes, ref.preimages, ref.bytes)
		}
	}
	checkNoLeak(t, c.Store())
	// Blocks that left the window are gone from the index and the API.
	col := dial(t, srv.HTTPURL())
	for _, n := range []uint64{1, 200, head - window} {
		if _, err := c.Store().Block(n); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("block %d left the window but is indexed: %v", n, err)
		}
		var w stateless.ExtWitness
		if err := col.CallContext(ctx, &w, "debug_executionWitness", hexutil.EncodeUint64(n)); err == nil {
			t.Fatalf("witness of block %d served after it left the window", n)
		}
	}
	verifyRange(t, srv.HTTPURL(), first, last)
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t testing.TB, ctx context.Context, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met: %v", ctx.Err())
		case <-tick.C:
		}
	}
}
