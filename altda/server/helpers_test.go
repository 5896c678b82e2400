package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/store"
)

type testServer struct {
	*Server
	primary, secondary *store.Memory
	client             *altda.Client
	http               *http.Client
}

// launch creates and starts a server with exactly cfg; the caller owns its Close.
func launch(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// startServer runs a server on loopback with fault injection over the given stores
// (memory stores when nil) and closes it at cleanup.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	if cfg.Primary == nil {
		ts.primary = store.NewMemory()
		cfg.Primary = ts.primary
	}
	if cfg.Secondaries == nil {
		ts.secondary = store.NewMemory()
		cfg.Secondaries = []store.Store{ts.secondary}
	}
	if cfg.RepairDir == "" {
		cfg.RepairDir = t.TempDir()
	}
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	cfg.FaultsAdmin = true
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 20 * time.Millisecond
	}
	if cfg.Breaker.Cooldown == 0 {
		cfg.Breaker = breaker.Config{Threshold: 3, Cooldown: 300 * time.Millisecond}
	}
	if cfg.RepairBackoff == 0 {
		cfg.RepairBackoff = 20 * time.Millisecond
	}
	s := launch(t, cfg)
	ts.Server = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ts.client = ts.newClient(t, altda.KeccakMode)
	return ts
}

func (ts *testServer) newClient(t *testing.T, mode altda.Mode) *altda.Client {
	c, err := altda.NewClient(altda.ClientConfig{URL: ts.URL(), Mode: mode, PutTimeout: 10 * time.Second, GetTimeout: 10 * time.Second, VerifyGets: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", a.status, a.body)
	}
	return m
}

func (ts *testServer) do(t *testing.T, method, path string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (ts *testServer) setFaults(t *testing.T, doc string) {
	t.Helper()
	if a := ts.do(t, http.MethodPut, "/admin/faults", []byte(doc)); a.status != http.StatusOK {
		t.Fatalf("set faults %s: %d %s", doc, a.status, a.body)
	}
}

// counter reads a counter from the server's registry; labels are name=value pairs.
func (ts *testServer) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := ts.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				case m.Gauge != nil:
					sum += m.Gauge.GetValue()
				}
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func frame(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed ^ byte(i*31) ^ byte(i>>8)
	}
	return b
}
