package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/collector/replay"
	"github.com/opkit/opkit/devnet"
)

// lyingClient sits between the collector and the execution client and serves block
// `target` with a wrong state root in its header (fault injection): the block's own
// witness still comes from the real client.
type lyingClient struct {
	upstream string
	target   string // block number, hex
	mu       sync.Mutex
	real     map[string]string // forged hash → real hash
}

type rpcMsg struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
	Result  json.RawMessage   `json:"result,omitempty"`
}

func (l *lyingClient) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req rpcMsg
	if err := json.Unmarshal(body, &req); err == nil && len(req.Params) > 0 {
		var arg string
		_ = json.Unmarshal(req.Params[0], &arg)
		// Calls naming the forged block by hash go to the real one.
		l.mu.Lock()
		for i, p := range req.Params {
			var s string
			if json.Unmarshal(p, &s) == nil {
				if real, ok := l.real[s]; ok {
					req.Params[i], _ = json.Marshal(real)
					body, _ = json.Marshal(req)
				}
			}
		}
		l.mu.Unlock()
		if req.Method == "debug_getRawBlock" && arg == l.target {
			l.forge(w, body)
			return
		}
	}
	resp, err := http.Post(l.upstream, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.Copy(w, resp.Body)
}

func (l *lyingClient) forge(w http.ResponseWriter, body []byte) {
	resp, err := http.Post(l.upstream, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var msg rpcMsg
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var raw hexutil.Bytes
	_ = json.Unmarshal(msg.Result, &raw)
	var block types.Block
	if err := rlp.DecodeBytes(raw, &block); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	h := block.Header()
	h.Root = common.Hash{0xba, 0xd}
	forged := types.NewBlockWithHeader(h).WithBody(*block.Body())
	l.mu.Lock()
	l.real[forged.Hash().Hex()] = block.Hash().Hex()
	l.mu.Unlock()
	enc, _ := rlp.EncodeToBytes(forged)
	msg.Result, _ = json.Marshal(hexutil.Bytes(enc))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(msg)
}

// TestMismatchHaltsLoudly feeds the collector a block whose header state root is not
// what executing it gives: collection stops with an error, the block is not stored,
// and status, /health and metrics all say so.
func TestMismatchHaltsLoudly(t *testing.T) {
	t.Parallel()
	hot, _ := startHot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	load := devnet.NewLoad(hot, devnet.LoadConfig{TxsPerBlock: 4, Seed: 6})
	if err := load.MineBlocks(ctx, 6); err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(&lyingClient{upstream: hot.HTTPEndpoint(), target: "0x4", real: map[string]string{}})
	defer proxy.Close()
	reg := prometheus.NewRegistry()
	c, err := collector.New(ctx, collector.Config{L2: proxy.URL, DataDir: t.TempDir(), Window: 100, Registerer: reg, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeCollector(t, c)
	srv := startServer(t, c)
	err = c.Run(ctx)
	if !errors.Is(err, collector.ErrHalted) || !errors.Is(err, replay.ErrMismatch) {
		t.Fatalf("Run returned %v, want a halt on a replay mismatch", err)
	}
	t.Logf("halt: %v", err)
	_, last, _, _ := c.Store().Bounds()
	if last != 3 {
		t.Fatalf("last stored block %d, want 3 (the bad block 4 and nothing after it)", last)
	}
	if err := c.Sync(ctx); !errors.Is(err, collector.ErrHalted) {
		t.Fatalf("a halted collector synced again: %v", err)
	}
	st, err := c.Status()
	if err != nil || st.Halted == "" {
		t.Fatalf("status does not report the halt: %+v, %v", st, err)
	}
	resp, err := http.Get(srv.HTTPURL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body["error"] == "" {
		t.Fatalf("/health %d %v, want 503 with the error", resp.StatusCode, body)
	}
	if got := gaugeValue(t, reg, "collector_halted"); got != 1 {
		t.Fatalf("collector_halted %v", got)
	}
}
