package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
)

// flakyClient forwards JSON-RPC to the execution client but fails some calls the way a
// loaded or reorging node does (fault injection): every third request is answered
// "header not found", every fifth with HTTP 429.
type flakyClient struct {
	upstream string
	n        atomic.Int64
	failed   atomic.Int64
}

func (f *flakyClient) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := f.n.Add(1)
	switch {
	case n%5 == 0:
		f.failed.Add(1)
		http.Error(w, "rate limited", http.StatusTooManyRequests)
		return
	case n%3 == 0 && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")):
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(body, &req) == nil {
			f.failed.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": -32000, "message": "header not found"},
			})
			return
		}
	}
	resp, err := http.Post(f.upstream, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestTransientErrorsAreNotGaps collects through an execution client that keeps failing
// a share of its calls with errors that pass: every block is still collected, nothing is
// recorded as a gap, and the retries are counted.
func TestTransientErrorsAreNotGaps(t *testing.T) {
	t.Parallel()
	hot, _ := startHot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	load := devnet.NewLoad(hot, devnet.LoadConfig{TxsPerBlock: 12, Seed: 12})
	if err := load.MineBlocks(ctx, 8); err != nil {
		t.Fatal(err)
	}
	flaky := &flakyClient{upstream: hot.HTTPEndpoint()}
	proxy := httptest.NewServer(flaky)
	defer proxy.Close()
	reg := prometheus.NewRegistry()
	c, err := collector.New(ctx, collector.Config{L2: proxy.URL, DataDir: t.TempDir(), Window: 100, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer closeCollector(t, c)
	// Run retries whole passes too; wait until it has everything.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	waitFor(t, ctx, func() bool {
		_, last, _, _ := c.Store().Bounds()
		return last == 8
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	first, last, _, _ := c.Store().Bounds()
	if first != 1 || last != 8 {
		t.Fatalf("window %d..%d, want 1..8", first, last)
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Gaps) != 0 {
		t.Fatalf("transient errors recorded as gaps: %+v", st.Gaps)
	}
	if flaky.failed.Load() == 0 || gaugeValue(t, reg, "collector_rpc_retries_total") == 0 {
		t.Fatalf("%d calls failed, %v retries counted", flaky.failed.Load(), gaugeValue(t, reg, "collector_rpc_retries_total"))
	}
	checkNoLeak(t, c.Store())
}
