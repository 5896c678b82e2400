package l1_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	rl1 "github.com/opkit/opkit/rollup/l1"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// logEmitter is creation code for a contract that logs its calldata under one topic:
// the runtime is CALLDATACOPY(0, 0, size); LOG1(0, size, topic); STOP.
func logEmitter(topic common.Hash) []byte {
	runtime := append([]byte{0x36, 0x60, 0x00, 0x60, 0x00, 0x37, 0x7f}, topic[:]...)
	runtime = append(runtime, 0x36, 0x60, 0x00, 0xa1, 0x00)
	init := []byte{0x60, byte(len(runtime)), 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}
	return append(init, runtime...)
}

type chain struct {
	l1     *devnet.L1
	client *ethclient.Client
	signer types.Signer
	key    devnet.Account
	nonce  uint64
}

func startChain(t *testing.T) *chain {
	t.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	client, err := ethclient.Dial(l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return &chain{l1: l1, client: client, signer: types.LatestSignerForChainID(l1.ChainConfig().ChainID), key: l1.Accounts()[0]}
}

func (c *chain) send(t *testing.T, to *common.Address, data []byte) {
	t.Helper()
	tx := types.MustSignNewTx(c.key.Key, c.signer, &types.DynamicFeeTx{
		ChainID: c.l1.ChainConfig().ChainID, Nonce: c.nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(100e9),
		Gas: 200_000, To: to, Value: big.NewInt(1), Data: data,
	})
	if err := c.client.SendTransaction(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	c.nonce++
}

// waitPending waits until the pool holds n executable transactions, so that the next
// seal takes them all: the pool promotes what it receives in the background.
func (c *chain) waitPending(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pending, _ := c.l1.Backend().TxPool().Stats(); pending >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not take %d transactions", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockWithLogs mines a block holding a deployment and three calls that log, and returns
// its header.
func (c *chain) blockWithLogs(t *testing.T) *types.Header {
	t.Helper()
	c.send(t, nil, logEmitter(common.Hash{0xaa}))
	emitter := crypto.CreateAddress(c.key.Address, c.nonce-1)
	if _, err := c.l1.Mine(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c.send(t, &emitter, []byte{byte(i)})
	}
	c.send(t, &common.Address{9}, nil)
	c.waitPending(t, 4)
	h, err := c.l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.l1.Backend().BlockChain().GetBlockByHash(h.Hash()).Transactions()); n != 4 {
		t.Fatalf("block holds %d transactions, want 4", n)
	}
	return h
}

func dialSource(t *testing.T, url string, cfg rl1.Config) *rl1.Source {
	t.Helper()
	s, err := rl1.Dial(context.Background(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSourceReadsDevL1(t *testing.T) {
	c := startChain(t)
	h := c.blockWithLogs(t)
	counter := &countingProxy{target: c.l1.HTTPEndpoint()}
	srv := httptest.NewServer(counter)
	defer srv.Close()
	s := dialSource(t, srv.URL, rl1.Config{})
	ctx := context.Background()

	hd, receipts, err := s.FetchReceipts(ctx, h.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if hd.Hash() != h.Hash() || len(receipts) != 4 {
		t.Fatalf("header %s, %d receipts", hd.Hash(), len(receipts))
	}
	for i, r := range receipts[:3] {
		if r.Status != types.ReceiptStatusSuccessful || len(r.Logs) != 1 || r.Logs[0].Index != uint(i) || r.Logs[0].BlockHash != h.Hash() || r.Logs[0].Topics[0] != (common.Hash{0xaa}) {
			t.Fatalf("receipt %d: %+v", i, r)
		}
	}
	calls := counter.calls.Load()
	if _, _, err := s.FetchReceipts(ctx, h.Hash()); err != nil {
		t.Fatal(err)
	}
	if counter.calls.Load() != calls {
		t.Fatalf("cached receipts fetched again: %d calls, then %d", calls, counter.calls.Load())
	}
	if st := s.Stats(); st.Hits < 2 {
		t.Fatalf("stats %+v", st)
	}

	hd2, txs, err := s.InfoAndTxsByHash(ctx, h.Hash())
	if err != nil || hd2.Hash() != h.Hash() || len(txs) != 4 {
		t.Fatalf("InfoAndTxsByHash: %v, %d txs", err, len(txs))
	}
	ref, err := s.L1BlockRefByNumber(ctx, h.Number.Uint64())
	if err != nil || ref.Hash != h.Hash() || ref.ParentHash != h.ParentHash || ref.Time != h.Time {
		t.Fatalf("by number: %+v %v", ref, err)
	}
	if ref, err := s.L1BlockRefByHash(ctx, h.ParentHash); err != nil || ref.Number != h.Number.Uint64()-1 {
		t.Fatalf("by hash: %+v %v", ref, err)
	}
	for _, l := range []rl1.Label{rl1.Latest, rl1.Safe, rl1.Finalized} {
		if _, err := s.L1BlockRefByLabel(ctx, l); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	if ref, _ := s.L1BlockRefByLabel(ctx, rl1.Latest); ref.Hash != c.l1.Head().Hash() {
		t.Fatalf("latest is %s, head %s", ref.Hash, c.l1.Head().Hash())
	}
	if _, err := s.L1BlockRefByLabel(ctx, "pending"); err == nil {
		t.Fatal("unknown label accepted")
	}
	if _, err := s.L1BlockRefByNumber(ctx, h.Number.Uint64()+5); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("past the head: %v", err)
	}
	if _, err := s.HeaderByHash(ctx, common.Hash{1}); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
}

// countingProxy forwards JSON-RPC to target, counting requests and optionally rewriting
// one method's result: the fault injection for an endpoint that lies.
type countingProxy struct {
	target  string
	calls   atomic.Int64
	method  string
	rewrite func(result json.RawMessage) json.RawMessage
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	var req struct{ Method string }
	_ = json.Unmarshal(body, &req)
	fwd, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	fwd.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(fwd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if p.rewrite != nil && req.Method == p.method {
		var msg map[string]json.RawMessage
		if json.Unmarshal(out, &msg) == nil {
			msg["result"] = p.rewrite(msg["result"])
			out, _ = json.Marshal(msg)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func TestSourceRefusesReceiptsNotMatchingTheHeader(t *testing.T) {
	c := startChain(t)
	h := c.blockWithLogs(t)
	for name, rewrite := range map[string]func([]map[string]any){
		"dropped receipt":  func(rs []map[string]any) { rs[len(rs)-1] = rs[0] },
		"status flipped":   func(rs []map[string]any) { rs[0]["status"] = "0x0" },
		"log data changed": func(rs []map[string]any) { rs[1]["logs"].([]any)[0].(map[string]any)["data"] = "0x07" },
		"log index moved":  func(rs []map[string]any) { rs[2]["logs"].([]any)[0].(map[string]any)["logIndex"] = "0x9" },
	} {
		t.Run(name, func(t *testing.T) {
			proxy := &countingProxy{target: c.l1.HTTPEndpoint(), method: "eth_getBlockReceipts", rewrite: func(raw json.RawMessage) json.RawMessage {
				var rs []map[string]any
				if err := json.Unmarshal(raw, &rs); err != nil || len(rs) == 0 {
					return raw
				}
				rewrite(rs)
				out, _ := json.Marshal(rs)
				return out
			}}
			srv := httptest.NewServer(proxy)
			defer srv.Close()
			s := dialSource(t, srv.URL, rl1.Config{})
			if _, _, err := s.FetchReceipts(context.Background(), h.Hash()); !errors.Is(err, rl1.ErrMismatch) {
				t.Fatalf("tampered receipts: %v", err)
			}
		})
	}
	// A header for another block is refused too.
	other := c.l1.Head().ParentHash
	proxy := &countingProxy{target: c.l1.HTTPEndpoint(), method: "eth_getBlockByHash", rewrite: func(raw json.RawMessage) json.RawMessage {
		return bytes.Replace(raw, []byte(`"gasUsed":"0x`), []byte(`"gasUsed":"0x1`), 1)
	}}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	s := dialSource(t, srv.URL, rl1.Config{})
	if _, err := s.HeaderByHash(context.Background(), other); !errors.Is(err, rl1.ErrMismatch) {
		t.Fatalf("altered header: %v", err)
	}
}

func TestSourceCallsHaveDeadlines(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := dialSource(t, srv.URL, rl1.Config{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := s.L1BlockRefByNumber(context.Background(), 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung endpoint: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("call took %s", d)
	}
	if _, _, err := s.FetchReceipts(context.Background(), common.Hash{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung endpoint, receipts: %v", err)
	}
}

// TestSourceFollowsReorgs: lookups by number see the new branch after an L1 reorg, while
// the old branch's blocks stay readable by hash.
func TestSourceFollowsReorgs(t *testing.T) {
	c := startChain(t)
	s := dialSource(t, c.l1.HTTPEndpoint(), rl1.Config{})
	ctx := context.Background()
	base, err := c.l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	c.send(t, &common.Address{1}, nil)
	old, err := c.l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	n := old.Number.Uint64()
	if ref, err := s.L1BlockRefByNumber(ctx, n); err != nil || ref.Hash != old.Hash() {
		t.Fatalf("before the reorg: %+v %v", ref, err)
	}
	if err := c.l1.Reorg(base.Hash()); err != nil {
		t.Fatal(err)
	}
	fresh, err := c.l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Hash() == old.Hash() || fresh.Number.Uint64() != n {
		t.Fatalf("reorg did not replace block %d", n)
	}
	if ref, err := s.L1BlockRefByNumber(ctx, n); err != nil || ref.Hash != fresh.Hash() {
		t.Fatalf("after the reorg: %+v %v", ref, err)
	}
	if h, _, err := s.FetchReceipts(ctx, old.Hash()); err != nil || h.Hash() != old.Hash() {
		t.Fatalf("the old branch's block by hash: %v", err)
	}
}
