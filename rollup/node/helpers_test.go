package node_test

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/clock"
)

// fastDevnet starts an in-memory devnet whose sequencer clock runs speed times faster
// than real time, with an L1 that seals a block (2s of chain time apart) whenever the
// fast clock has passed the L1 head's next slot. Chain time then advances in step on L1
// and L2, as on a live network, only faster.
type fastDevnet struct {
	*devnet.Devnet
	clock    clock.Clock
	stopFeed func()
	feedMu   sync.Mutex
	paused   bool
}

func startFastDevnet(t *testing.T, cfg devnet.Config, speed float64) *fastDevnet {
	return startFastDevnetAt(t, cfg, speed, time.Now())
}

// startFastDevnetAt starts the fast clock at start; a resumed datadir's chains are ahead
// of the wall clock, so its clock must start where the chains left off.
func startFastDevnetAt(t *testing.T, cfg devnet.Config, speed float64, start time.Time) *fastDevnet {
	t.Helper()
	clk := clock.Scaled(start, speed)
	cfg.Clock = clk
	if cfg.L2BlockTime == 0 {
		cfg.L2BlockTime = 1
	}
	if cfg.L1PollInterval == 0 {
		cfg.L1PollInterval = 50 * time.Millisecond
	}
	cfg.NodeMetricsPort = 0
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start devnet: %v", err)
	}
	f := &fastDevnet{Devnet: d, clock: clk}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	})
	f.startFeed(t)
	return f
}

const l1Gap = 2 * time.Second

func (f *fastDevnet) startFeed(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			f.feedMu.Lock()
			if !f.paused && f.L1.Head().Time+uint64(l1Gap/time.Second) <= uint64(f.clock.Now().Unix()) {
				if _, err := f.L1.MineWithGap(l1Gap); err != nil {
					t.Errorf("mine L1: %v", err)
				}
			}
			f.feedMu.Unlock()
		}
	}()
	var once sync.Once
	f.stopFeed = func() { once.Do(func() { close(stop); <-done }) }
	t.Cleanup(f.stopFeed)
}

// pauseFeed stops L1 block production until the returned function is called.
func (f *fastDevnet) pauseFeed() (resume func()) {
	f.feedMu.Lock()
	f.paused = true
	f.feedMu.Unlock()
	return func() {
		f.feedMu.Lock()
		f.paused = false
		f.feedMu.Unlock()
	}
}

func dialNode(t *testing.T, url string) *rpc.Client {
	t.Helper()
	c, err := rpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func syncStatus(t *testing.T, c *rpc.Client) *eth.SyncStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st eth.SyncStatus
	if err := c.CallContext(ctx, &st, "optimism_syncStatus"); err != nil {
		t.Fatalf("optimism_syncStatus: %v", err)
	}
	return &st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitUnsafe(t *testing.T, c *rpc.Client, n uint64, timeout time.Duration) *eth.SyncStatus {
	t.Helper()
	var st *eth.SyncStatus
	waitFor(t, timeout, "the unsafe head to reach the target", func() bool {
		st = syncStatus(t, c)
		return st.UnsafeL2.Number >= n
	})
	return st
}
