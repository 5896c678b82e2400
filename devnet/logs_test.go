package devnet_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/devnet"
)

// TestDevnetLogsCleanly runs a start/stop cycle of the whole devnet under load and checks
// its log, op-geth's included (the devnet routes it through its logger): no record at
// error level, and every record labelled with exactly one system, a part's name. The
// stop comes while the sequencer has a block building on the L2, as it nearly always
// has: a build left running as the L2 shuts down logs an error.
func TestDevnetLogsCleanly(t *testing.T) {
	check := newLogCheck(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), slog.LevelInfo)
	dir := t.TempDir()
	// A few cycles on one datadir: each stop must be clean, a resumed one too.
	for cycle := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		d, err := devnet.Start(ctx, devnet.Config{
			DataDir: dir, L1BlockTime: 500 * time.Millisecond, L2BlockTime: 1, L1PollInterval: 100 * time.Millisecond,
			NodeMetricsDisabled: true, Logger: slog.New(check),
			Batcher:   &devnet.BatcherConfig{DA: batcher.DACalldata, PollInterval: 200 * time.Millisecond, MaxChannelDuration: 2},
			Collector: &devnet.CollectorConfig{Window: 100},
		})
		cancel()
		if err != nil {
			t.Fatalf("start devnet (cycle %d): %v", cycle, err)
		}
		loadCtx, stopLoad := context.WithCancel(context.Background())
		loadDone := make(chan error, 1)
		go func() { loadDone <- d.RunLoad(loadCtx, 20) }()
		// The engine's heads, not the driver's status call: that waits its turn in the
		// driver's loop, slow on a busy machine under the race detector.
		safeHead := func() uint64 { _, safe, _ := d.Node.Engine().Heads(); return safe.Number }
		safe := safeHead()
		waitFor(t, 2*time.Minute, "the safe head to move", func() bool { return safeHead() > safe })
		stopLoad()
		<-loadDone
		if err := d.Close(); err != nil {
			t.Fatalf("close (cycle %d): %v", cycle, err)
		}
	}

	for _, e := range check.Errors() {
		t.Errorf("logged at error level: %s", e)
	}
	bad := check.Mislabelled()
	for i, b := range bad {
		if i == 10 {
			t.Errorf("and %d more mislabelled records", len(bad)-i)
			break
		}
		t.Errorf("mislabelled: %s", b)
	}
	// The parts that log at info level on every start, and geth, which warns about the
	// head of a new chain, each under its own label.
	for _, s := range []string{"geth", "node", "batcher"} {
		if check.Records(s) == 0 {
			t.Errorf("no record labelled system=%s", s)
		}
	}
}
