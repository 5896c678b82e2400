package batcher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/batcher"
)

// metric sums the samples of a family whose labels include every given pair.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func withRegistry(cfg batcher.Config) (batcher.Config, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	cfg.Registry = reg
	return cfg, reg
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPostsCalldata(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.sendL2Txs(ctx, 5)
	e.waitL2(ctx, 6)
	cfg, reg := withRegistry(e.config(batcher.DACalldata))
	e.startBatcher(cfg)
	kinds, _ := e.waitPosted(ctx, 6)
	if kinds["[calldata]"] != 6 {
		t.Fatalf("blocks by DA: %v", kinds)
	}
	if metric(t, reg, "opkit_batcher_txs_confirmed_total", "da", "calldata") < 1 ||
		metric(t, reg, "opkit_batcher_channel_input_bytes_total") <= 0 ||
		metric(t, reg, "opkit_batcher_fees_paid_wei_total", "kind", "execution") <= 0 {
		t.Fatal("metrics do not show the confirmed calldata transactions")
	}
}

func TestPostsBlobs(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.sendL2Txs(ctx, 3)
	e.waitL2(ctx, 5)
	cfg, reg := withRegistry(e.config(batcher.DABlobs))
	e.startBatcher(cfg)
	kinds, _ := e.waitPosted(ctx, 5)
	if kinds["[blobs]"] != 5 {
		t.Fatalf("blocks by DA: %v", kinds)
	}
	if metric(t, reg, "opkit_batcher_fees_paid_wei_total", "kind", "blob") <= 0 {
		t.Fatal("no blob fees recorded")
	}
}

func TestPostsAltDA(t *testing.T) {
	for _, generic := range []bool{false, true} {
		name := "keccak"
		if generic {
			name = "generic"
		}
		t.Run(name, func(t *testing.T) {
			e := startEnv(t)
			e.startDA(generic)
			ctx := testCtx(t, 90*time.Second)
			e.sendL2Txs(ctx, 3)
			e.waitL2(ctx, 5)
			cfg := e.config(batcher.DAAltDA)
			cfg.AltDAGeneric = generic
			cfg, reg := withRegistry(cfg)
			e.startBatcher(cfg)
			kinds, _ := e.waitPosted(ctx, 5)
			if kinds["[altda]"] != 5 {
				t.Fatalf("blocks by DA: %v", kinds)
			}
			if metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "ok") < 1 {
				t.Fatal("no successful PUT counted")
			}
		})
	}
}

// The primary store is down: the DA server answers 503, the channel goes to Ethereum and
// later channels stay there until retry_after; once the store is back, AltDA resumes.
func TestAltDAFailoverAndReturn(t *testing.T) {
	e := startEnv(t)
	e.startDA(false)
	ctx := testCtx(t, 120*time.Second)
	e.waitL2(ctx, 3)
	e.setFaults(`{"primary":{"put":"unavailable"}}`)
	cfg, reg := withRegistry(e.config(batcher.DAAltDA))
	e.startBatcher(cfg)
	kinds, _ := e.waitPosted(ctx, 3)
	if kinds["[altda]"] == 3 {
		t.Fatalf("posted through AltDA while the DA server answered 503: %v", kinds)
	}
	if metric(t, reg, "opkit_batcher_altda_failovers_total", "reason", "unavailable") < 1 {
		t.Fatal("no failover counted")
	}
	if metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "unavailable") < 1 {
		t.Fatal("no 503 counted")
	}
	e.setFaults(`{}`)
	// Once retry_after has passed, new channels try AltDA again and it carries blocks.
	for {
		head, err := e.l2.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.waitL2(ctx, head+1)
		kinds, _ = e.waitPosted(ctx, head+1)
		carried := false
		for k := range kinds {
			carried = carried || strings.Contains(k, "altda")
		}
		if carried {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("AltDA never resumed: %v", kinds)
		}
	}
	if metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "ok") < 1 {
		t.Fatal("AltDA carries blocks but no successful PUT was counted")
	}
}

// The secondary store fails: the DA server answers 201, the batcher resends the same
// body; once the secondary is back the resend gets 200 and the commitment is posted.
func TestAltDAPartialResends(t *testing.T) {
	e := startEnv(t)
	e.startDA(false)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 3)
	e.setFaults(`{"secondary":{"put":"error"}}`)
	cfg := e.config(batcher.DAAltDA)
	cfg.AltDAPartialMax = 1000
	cfg, reg := withRegistry(cfg)
	e.startBatcher(cfg)
	for metric(t, reg, "opkit_batcher_altda_partial_resends_total") < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("no 201 resends")
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.setFaults(`{}`)
	kinds, _ := e.waitPosted(ctx, 3)
	if kinds["[altda]"] != 3 {
		t.Fatalf("blocks by DA: %v", kinds)
	}
	if metric(t, reg, "opkit_batcher_altda_partial_committed_total") != 0 {
		t.Fatal("a partial commitment was posted though the bound was not reached")
	}
}

// Past the partial-retry bound the commitment of the 201 is posted and counted.
func TestAltDAPartialBoundPostsCommitment(t *testing.T) {
	e := startEnv(t)
	e.startDA(false)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 3)
	e.setFaults(`{"secondary":{"put":"error"}}`)
	cfg := e.config(batcher.DAAltDA)
	cfg.AltDAPartialMax = 2
	cfg, reg := withRegistry(cfg)
	e.startBatcher(cfg)
	kinds, _ := e.waitPosted(ctx, 3)
	if kinds["[altda]"] != 3 {
		t.Fatalf("blocks by DA: %v", kinds)
	}
	if metric(t, reg, "opkit_batcher_altda_partial_committed_total") < 1 {
		t.Fatal("partial commitment not counted")
	}
}

func TestAdminRPC(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 3)
	cfg := e.config(batcher.DACalldata)
	cfg.MaxChannelDuration = 0 // only a flush closes the channel
	b, err := batcher.New(ctx, cfg, batcher.DefaultCodec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	c, err := rpc.DialContext(ctx, b.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CallContext(ctx, nil, "admin_flushBatcher"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("flush while stopped: %v", err)
	}
	if err := c.CallContext(ctx, nil, "admin_startBatcher"); err != nil {
		t.Fatal(err)
	}
	if err := c.CallContext(ctx, nil, "admin_startBatcher"); err == nil {
		t.Fatal("second start accepted")
	}
	// Let the batcher load the blocks, then flush: the channel closes and goes out.
	for {
		if err := c.CallContext(ctx, nil, "admin_flushBatcher"); err != nil {
			t.Fatal(err)
		}
		posted, err := e.scanL1(ctx)
		if err == nil && len(posted) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("nothing posted after flushes")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := c.CallContext(ctx, nil, "admin_stopBatcher"); err != nil {
		t.Fatal(err)
	}
	if b.Running() {
		t.Fatal("still running after admin_stopBatcher")
	}
}

// A batcher stopped mid-run (its sends cancelled, a transaction possibly left in the
// pool) and a new one started on the same account: the new one takes the nonces over and
// every block reaches L1.
func TestRestartResumes(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 2)
	cfg := e.config(batcher.DACalldata)
	first := e.startBatcher(cfg)
	for {
		posted, err := e.scanL1(ctx)
		if err == nil && len(posted) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("first batcher posted nothing")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	head, err := e.l2.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.waitL2(ctx, head+3)
	cfg.WaitNodeSync = true
	e.startBatcher(cfg)
	e.waitPosted(ctx, head+3)
}

// The L1 RPC refuses every call for a while: sends and polls fail and are retried, and
// once it is back every block reaches L1.
func TestL1OutageRecovers(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 2)
	cfg, reg := withRegistry(e.config(batcher.DACalldata))
	e.startBatcher(cfg)
	e.waitPosted(ctx, 2)
	e.proxy.down.Store(true)
	before := metric(t, reg, "opkit_batcher_txs_confirmed_total")
	head, _ := e.l2.BlockNumber(ctx)
	e.waitL2(ctx, head+3)
	if metric(t, reg, "opkit_batcher_txs_confirmed_total") != before {
		t.Fatal("a transaction was confirmed while the L1 RPC was down")
	}
	e.proxy.down.Store(false)
	e.waitPosted(ctx, head+3)
}

// The DA server is killed: PUTs are refused, the channel fails over to Ethereum after
// the retries; the server comes back on the same address and store, and once
// --altda.retry-after has passed AltDA carries blocks again.
func TestAltDAServerKilledAndRestarted(t *testing.T) {
	e := startEnv(t)
	dir := t.TempDir()
	primary, err := pebblestore.Open(dir + "/primary")
	if err != nil {
		t.Fatal(err)
	}
	e.startDAWith(false, "127.0.0.1:0", primary, dir+"/repair")
	addr := strings.TrimPrefix(e.da.URL(), "http://")
	ctx := testCtx(t, 120*time.Second)
	e.waitL2(ctx, 2)
	cfg, reg := withRegistry(e.config(batcher.DAAltDA))
	e.startBatcher(cfg)
	e.waitPosted(ctx, 2)
	if err := e.da.Close(ctx); err != nil {
		t.Fatal(err)
	}
	head, _ := e.l2.BlockNumber(ctx)
	e.waitL2(ctx, head+2)
	for metric(t, reg, "opkit_batcher_altda_failovers_total", "reason", "server_errors") < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("no failover while the DA server was down")
		case <-time.After(100 * time.Millisecond):
		}
	}
	primary, err = pebblestore.Open(dir + "/primary")
	if err != nil {
		t.Fatal(err)
	}
	e.startDAWith(false, addr, primary, dir+"/repair")
	okBefore := metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "ok")
	for {
		head, _ := e.l2.BlockNumber(ctx)
		e.waitL2(ctx, head+1)
		e.waitPosted(ctx, head+1)
		if metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "ok") > okBefore {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("AltDA did not resume after the restart")
		}
	}
}
