package node_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/node"
)

// hangingProxy forwards JSON-RPC to target until hang is set; then every request waits
// until its client gives up, like an L1 endpoint that accepts connections and never
// answers.
type hangingProxy struct {
	srv  *httptest.Server
	hang atomic.Bool
}

func newHangingProxy(t *testing.T, target string) *hangingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &hangingProxy{}
	stop := make(chan struct{})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the whole body lets the server notice the client hanging up.
		body, _ := io.ReadAll(r.Body)
		if p.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(stop)
		p.srv.Close()
	})
	return p
}

// TestHungL1DoesNotFreezeTheNode puts an L1 that stops answering under a sequencing
// node: the driver's loop keeps answering (sync status), and /health turns 503 naming
// the stall once it has lasted the stall timeout, then 200 again when L1 is back.
func TestHungL1DoesNotFreezeTheNode(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{BlockTime: 500 * time.Millisecond, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	g, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900, BlockTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	proxy := newHangingProxy(t, l1.HTTPEndpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		Rollup: cfg, L1ChainConfig: l1.ChainConfig(),
		L1URL: proxy.srv.URL, L2EngineURL: l2.EngineEndpoint(), JWTSecret: l2.JWTSecret(),
		Driver:           driver.Config{SequencerEnabled: true, StallTimeout: 3 * time.Second},
		SequencerL1Confs: 0, MetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, L1CallTimeout: 300 * time.Millisecond,
		DerivationDisabled: true, Log: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c := dialNode(t, n.RPCEndpoint())
	st := waitUnsafe(t, c, 2, 30*time.Second)
	// Nothing is derived here, so current_l1 is unknown (zero), never the L1 head: a
	// batcher would take an L1 head there for channels derived and dropped.
	if !st.CurrentL1.IsZero() || st.HeadL1.IsZero() {
		t.Fatalf("current_l1 %v with head_l1 %v on a node that derives nothing", st.CurrentL1.ID(), st.HeadL1.ID())
	}
	health := func() (int, string) {
		resp, err := http.Get(n.RPCEndpoint() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := health(); code != 200 {
		t.Fatalf("/health before the hang: %d %s", code, body)
	}
	proxy.hang.Store(true)
	// The loop still answers while every L1 call hangs.
	for i := 0; i < 5; i++ {
		start := time.Now()
		syncStatus(t, c)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("sync status took %s with L1 hung", took)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var body string
	waitFor(t, 30*time.Second, "/health to report the stall", func() bool {
		var code int
		code, body = health()
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "stalled") && !strings.Contains(body, "L1") {
		t.Fatalf("/health does not say what stalled: %s", body)
	}
	proxy.hang.Store(false)
	waitFor(t, 30*time.Second, "/health to recover", func() bool {
		code, _ := health()
		return code == 200
	})
	before := syncStatus(t, c).UnsafeL2.Number
	waitUnsafe(t, c, before+2, 30*time.Second)
}
