package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
)

func TestStopStartSequencerOverRPC(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{}, 20)
	c := dialNode(t, d.Node.RPCEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitUnsafe(t, c, 5, 30*time.Second)

	var active bool
	if err := c.CallContext(ctx, &active, "admin_sequencerActive"); err != nil || !active {
		t.Fatalf("admin_sequencerActive = %v, %v; want true", active, err)
	}
	var stoppedAt common.Hash
	if err := c.CallContext(ctx, &stoppedAt, "admin_stopSequencer"); err != nil {
		t.Fatalf("admin_stopSequencer: %v", err)
	}
	st := syncStatus(t, c)
	if st.UnsafeL2.Hash != stoppedAt {
		t.Fatalf("stop returned %s, unsafe head is %s", stoppedAt, st.UnsafeL2.Hash)
	}
	if err := c.CallContext(ctx, &active, "admin_sequencerActive"); err != nil || active {
		t.Fatalf("admin_sequencerActive after stop = %v, %v", active, err)
	}
	if err := c.CallContext(ctx, &stoppedAt, "admin_stopSequencer"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("second stop: %v", err)
	}
	// While stopped, L1 keeps moving and the node sees it, but no L2 block is built.
	l1Then := st.HeadL1.Number
	waitFor(t, 30*time.Second, "the node to see 5 more L1 blocks", func() bool {
		return syncStatus(t, c).HeadL1.Number >= l1Then+5
	})
	if got := syncStatus(t, c).UnsafeL2.Hash; got != stoppedAt {
		t.Fatalf("unsafe head moved to %s while the sequencer was stopped", got)
	}
	if err := c.CallContext(ctx, nil, "admin_startSequencer", common.Hash{1}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("start on a wrong hash: %v", err)
	}
	if err := c.CallContext(ctx, nil, "admin_startSequencer", stoppedAt); err != nil {
		t.Fatalf("admin_startSequencer: %v", err)
	}
	if err := c.CallContext(ctx, nil, "admin_startSequencer", stoppedAt); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second start: %v", err)
	}
	waitUnsafe(t, c, st.UnsafeL2.Number+5, 30*time.Second)

	// The other admin and optimism methods answer with op-node's shapes.
	if err := c.CallContext(ctx, nil, "admin_resetDerivationPipeline"); err != nil {
		t.Fatalf("admin_resetDerivationPipeline: %v", err)
	}
	var raw json.RawMessage
	if err := c.CallContext(ctx, &raw, "optimism_rollupConfig"); err != nil {
		t.Fatal(err)
	}
	back, err := rollup.ParseConfig(raw)
	if err != nil || back.Genesis.L2.Hash != d.Rollup.Genesis.L2.Hash {
		t.Fatalf("optimism_rollupConfig does not round-trip: %v", err)
	}
	var version string
	if err := c.CallContext(ctx, &version, "optimism_version"); err != nil || version == "" {
		t.Fatalf("optimism_version %q, %v", version, err)
	}
}

func TestNodeServesHealthMetricsAndRejectsBadRequests(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{}, 20)
	c := dialNode(t, d.Node.RPCEndpoint())
	waitUnsafe(t, c, 3, 30*time.Second)
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(d.Node.MetricsEndpoint() + "/health"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/health %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "sequenced blocks to show in /metrics", func() bool {
		_, body := get(d.Node.MetricsEndpoint() + "/metrics")
		return strings.Contains(body, "opkit_node_sequenced_blocks_total") && !strings.Contains(body, "opkit_node_sequenced_blocks_total 0\n")
	})
	// A body over the limit and malformed JSON get JSON-RPC errors, not a crash.
	big := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"optimism_syncStatus","params":["` + strings.Repeat("a", 2<<20) + `"]}`)
	resp, err := http.Post(d.Node.RPCEndpoint(), "application/json", big)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d", resp.StatusCode)
	}
	resp, err = http.Post(d.Node.RPCEndpoint(), "application/json", strings.NewReader(`{"jsonrpc":`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"error"`) {
		t.Fatalf("malformed JSON answered %d %s", resp.StatusCode, body)
	}
	var out json.RawMessage
	if err := c.Call(&out, "optimism_outputAtBlock", "not-a-number"); err == nil {
		t.Fatal("a malformed block number was accepted")
	}
}

// TestExecutionClientRestart stops and restarts op-geth under a running node: the node
// must back off while the engine is down and continue the same chain once it is back.
func TestExecutionClientRestart(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{DataDir: t.TempDir()}, 20)
	c := dialNode(t, d.Node.RPCEndpoint())
	before := waitUnsafe(t, c, 10, 30*time.Second).UnsafeL2
	if err := d.RestartL2(); err != nil {
		t.Fatal(err)
	}
	after := waitUnsafe(t, c, before.Number+20, 60*time.Second).UnsafeL2
	// The chain continued: the block at the old head's height is still the old head.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ref, err := d.Node.Engine().BlockRefByNumber(ctx, before.Number)
	if err != nil || ref.Hash != before.Hash {
		t.Fatalf("block %d after restart: %v %v (was %s)", before.Number, ref.Hash, err, before.Hash)
	}
	if after.Number <= before.Number {
		t.Fatal("no progress after restart")
	}
	// The outage was seen and ridden out with retries, not missed.
	if got := metricValue(t, d, "opkit_node_sequencer_errors_total"); got < 1 {
		t.Fatalf("no sequencer errors recorded across the restart (%v)", got)
	}
	select {
	case <-d.Node.Done():
		t.Fatalf("driver stopped: %v", d.Node.Err())
	default:
	}
}

// TestDevnetResumesFromDatadir closes a whole devnet and starts it again from its datadir.
func TestDevnetResumesFromDatadir(t *testing.T) {
	dir := t.TempDir()
	first := startFastDevnet(t, devnet.Config{DataDir: dir}, 20)
	c := dialNode(t, first.Node.RPCEndpoint())
	st := waitUnsafe(t, c, 10, 30*time.Second)
	first.stopFeed()
	l1Time := first.L1.Head().Time
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Start the fast clock where the chains left off, ahead of the wall clock.
	second := startFastDevnetAt(t, devnet.Config{DataDir: dir}, 20, time.Unix(int64(l1Time), 0))
	if second.Rollup.Genesis != first.Rollup.Genesis {
		t.Fatalf("resumed with another rollup genesis")
	}
	c2 := dialNode(t, second.Node.RPCEndpoint())
	resumed := syncStatus(t, c2)
	if resumed.UnsafeL2.Number < st.UnsafeL2.Number {
		t.Fatalf("resumed at L2 %d, had reached %d", resumed.UnsafeL2.Number, st.UnsafeL2.Number)
	}
	waitUnsafe(t, c2, resumed.UnsafeL2.Number+5, 30*time.Second)
}

// TestMaxSafeLagOnOpGeth: with nothing deriving safe blocks yet, safe stays at genesis, so
// a sequencer with max safe lag 5 builds blocks 1-5 and then waits (0 + 5 <= 5), however
// far L1 moves.
func TestMaxSafeLagOnOpGeth(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{SequencerMaxSafeLag: 5}, 20)
	c := dialNode(t, d.Node.RPCEndpoint())
	st := waitUnsafe(t, c, 5, 30*time.Second)
	l1Then := st.HeadL1.Number
	waitFor(t, 30*time.Second, "the node to see 10 more L1 blocks", func() bool {
		return syncStatus(t, c).HeadL1.Number >= l1Then+10
	})
	st = syncStatus(t, c)
	if st.UnsafeL2.Number != 5 || st.SafeL2.Number != 0 {
		t.Fatalf("unsafe %d, safe %d: want the sequencer paused at 5", st.UnsafeL2.Number, st.SafeL2.Number)
	}
	if got := metricValue(t, d, "opkit_node_sequencer_safe_lag_paused"); got != 1 {
		t.Fatalf("paused gauge %v", got)
	}
}
