package batcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
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

// hashes reads the hashes of L2 blocks 1..n.
func (e *env) hashes(ctx context.Context, n uint64) []common.Hash {
	e.t.Helper()
	var out []common.Hash
	for i := uint64(1); i <= n; i++ {
		h, err := e.l2.HeaderByNumber(ctx, new(big.Int).SetUint64(i))
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, h.Hash())
	}
	return out
}

// The batcher posts the chain in each DA mode (AltDA with generic commitments here;
// the failover tests use keccak ones); the node derives it back from L1 to the
// same blocks (its safe head reaches them without a reorg), and every block was posted
// exactly once.
func TestPostsChainInEveryMode(t *testing.T) {
	cases := []struct {
		name    string
		da      batcher.DAType
		generic bool
		kind    string
		metric  []string
	}{
		{"calldata", batcher.DACalldata, false, "[calldata]", []string{"opkit_batcher_fees_paid_wei_total", "kind", "execution"}},
		{"blobs", batcher.DABlobs, false, "[blobs]", []string{"opkit_batcher_fees_paid_wei_total", "kind", "blob"}},
		{"altda-generic", batcher.DAAltDA, true, "[altda]", []string{"opkit_batcher_altda_puts_total", "outcome", "ok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := startEnv(t)
			if c.da == batcher.DAAltDA {
				e.startDA(c.generic)
			}
			ctx := testCtx(t, 120*time.Second)
			e.sendL2Txs(ctx, 4)
			e.waitL2(ctx, 6)
			before := e.hashes(ctx, 6)
			cfg := e.config(c.da)
			cfg.AltDAGeneric = c.generic
			cfg, reg := withRegistry(cfg)
			e.startBatcher(cfg)
			e.waitSafe(ctx, 6)
			after := e.hashes(ctx, 6)
			for i := range before {
				if before[i] != after[i] {
					t.Fatalf("L2 block %d changed from %s to %s while becoming safe", i+1, before[i], after[i])
				}
			}
			kinds, dups := e.waitPosted(ctx, 6)
			if kinds[c.kind] != 6 || len(kinds) != 1 {
				t.Fatalf("blocks by DA: %v", kinds)
			}
			if dups != 0 {
				t.Fatalf("%d blocks posted more than once", dups)
			}
			if metric(t, reg, c.metric[0], c.metric[1:]...) <= 0 {
				t.Fatalf("%v not recorded", c.metric)
			}
			if metric(t, reg, "opkit_batcher_channels_closed_total") < 1 || metric(t, reg, "opkit_batcher_channel_input_bytes_total") <= 0 {
				t.Fatal("channel metrics not recorded")
			}
		})
	}
}

// The primary store is down: the DA server answers 503, the channel goes to Ethereum and
// later channels stay there until retry_after; the safe head keeps moving; once the store
// is back, AltDA carries blocks again.
func TestAltDAFailoverAndReturn(t *testing.T) {
	e := startEnv(t)
	e.startDA(false)
	ctx := testCtx(t, 120*time.Second)
	e.waitL2(ctx, 3)
	e.setFaults(`{"primary":{"put":"unavailable"}}`)
	cfg, reg := withRegistry(e.config(batcher.DAAltDA))
	e.startBatcher(cfg)
	e.waitSafe(ctx, 3)
	kinds, _ := e.waitPosted(ctx, 3)
	for k := range kinds {
		if strings.Contains(k, "altda") {
			t.Fatalf("posted through AltDA while the DA server answered 503: %v", kinds)
		}
	}
	if metric(t, reg, "opkit_batcher_altda_failovers_total", "reason", "unavailable") < 1 ||
		metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "unavailable") < 1 {
		t.Fatal("503 and failover not counted")
	}
	e.setFaults(`{}`)
	// Once retry_after has passed, new channels try AltDA again and it carries blocks.
	for {
		st, err := e.syncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.waitSafe(ctx, st.UnsafeL2.Number)
		var dups int
		kinds, dups = e.waitPosted(ctx, st.UnsafeL2.Number)
		if dups != 0 {
			t.Fatalf("%d blocks posted more than once", dups)
		}
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
}

// The secondary store fails: the DA server answers 201. A batcher whose partial-retry
// bound is 2 posts the partial commitment and counts it; a second one, with a high
// bound, resends the same body until the secondary is back and a resend gets 200.
func TestAltDAPartialSuccess(t *testing.T) {
	e := startEnv(t)
	e.startDA(false)
	ctx := testCtx(t, 120*time.Second)
	e.waitL2(ctx, 3)
	e.setFaults(`{"secondary":{"put":"error"}}`)
	cfg := e.config(batcher.DAAltDA)
	cfg.AltDAPartialMax = 2
	cfg, reg := withRegistry(cfg)
	first := e.startBatcher(cfg)
	e.waitSafe(ctx, 3)
	if metric(t, reg, "opkit_batcher_altda_partial_committed_total") < 1 {
		t.Fatal("partial commitment not counted")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st := e.settle(ctx)
	safe := st.SafeL2.Number
	e.waitL2(ctx, st.UnsafeL2.Number+2)
	cfg.AltDAPartialMax = 1000
	cfg.WaitNodeSync = true
	cfg, reg = withRegistry(cfg)
	e.startBatcher(cfg)
	for metric(t, reg, "opkit_batcher_altda_partial_resends_total") < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("no 201 resends")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if st, _ := e.syncStatus(ctx); st.SafeL2.Number != safe {
		t.Fatalf("safe head moved from %d to %d while every PUT was partial", safe, st.SafeL2.Number)
	}
	e.setFaults(`{}`)
	st, _ = e.syncStatus(ctx)
	e.waitSafe(ctx, st.UnsafeL2.Number)
	kinds, dups := e.waitPosted(ctx, st.UnsafeL2.Number)
	if kinds["[altda]"] != int(st.UnsafeL2.Number) || dups != 0 {
		t.Fatalf("blocks by DA: %v, %d posted twice", kinds, dups)
	}
	if metric(t, reg, "opkit_batcher_altda_partial_committed_total") != 0 {
		t.Fatal("the second batcher posted a partial commitment though its bound was not reached")
	}
}

// settle waits until the batcher account has nothing in the L1 pool and the node has
// read L1 up to the head after that, so the safe head shows everything posted so far.
func (e *env) settle(ctx context.Context) *eth.SyncStatus {
	e.t.Helper()
	addr := e.rcfg.Genesis.SystemConfig.BatcherAddr
	for {
		pending, err := e.l1.PendingNonceAt(ctx, addr)
		mined, err2 := e.l1.NonceAt(ctx, addr, nil)
		if err == nil && err2 == nil && pending == mined {
			break
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("batcher transactions stayed pending")
		case <-time.After(50 * time.Millisecond):
		}
	}
	head, err := e.l1.BlockNumber(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for {
		st, err := e.syncStatus(ctx)
		if err == nil && st.CurrentL1.Number >= head {
			return st
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("node did not read L1 up to %d", head)
		case <-time.After(50 * time.Millisecond):
		}
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
	// Without a duration the channel stays open until a flush closes it.
	for {
		if err := c.CallContext(ctx, nil, "admin_flushBatcher"); err != nil {
			t.Fatal(err)
		}
		if st, err := e.syncStatus(ctx); err == nil && st.SafeL2.Number >= 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("nothing became safe after flushes")
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
// pool) and a new one started on the same account: the new one takes the nonces over,
// every block becomes safe and none was posted twice.
func TestRestartResumes(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 2)
	cfg := e.config(batcher.DACalldata)
	first := e.startBatcher(cfg)
	e.waitSafe(ctx, 1)
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
	e.waitSafe(ctx, head+3)
	if _, dups := e.waitPosted(ctx, head+3); dups != 0 {
		t.Fatalf("%d blocks posted more than once", dups)
	}
}

// The L1 RPC refuses every call for a while; once it is back every block becomes safe.
func TestL1OutageRecovers(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	e.waitL2(ctx, 2)
	e.startBatcher(e.config(batcher.DACalldata))
	e.waitSafe(ctx, 2)
	e.proxy.down.Store(true)
	head, _ := e.l2.BlockNumber(ctx)
	e.waitL2(ctx, head+3)
	for e.proxy.refused.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the batcher made no L1 call during the outage")
		case <-time.After(50 * time.Millisecond):
		}
	}
	e.proxy.down.Store(false)
	e.waitSafe(ctx, head+3)
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
	e.waitSafe(ctx, 2)
	if err := e.da.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for metric(t, reg, "opkit_batcher_altda_failovers_total", "reason", "server_errors") < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("no failover while the DA server was down")
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The channels go to Ethereum meanwhile. (Verifiers cannot read the commitments
	// posted before the kill until the server is back, so the safe head may wait.)
	for metric(t, reg, "opkit_batcher_txs_confirmed_total", "da", "blobs")+metric(t, reg, "opkit_batcher_txs_confirmed_total", "da", "calldata") < 1 {
		select {
		case <-ctx.Done():
			t.Fatal("nothing posted to Ethereum DA while the DA server was down")
		case <-time.After(100 * time.Millisecond):
		}
	}
	primary, err = pebblestore.Open(dir + "/primary")
	if err != nil {
		t.Fatal(err)
	}
	e.startDAWith(false, addr, primary, dir+"/repair")
	okBefore := metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "ok")
	for metric(t, reg, "opkit_batcher_altda_puts_total", "outcome", "ok") <= okBefore {
		select {
		case <-ctx.Done():
			t.Fatal("AltDA did not resume after the restart")
		case <-time.After(100 * time.Millisecond):
		}
	}
	st, _ := e.syncStatus(ctx)
	e.waitSafe(ctx, st.UnsafeL2.Number)
}

// An L1 reorg drops the block holding the last batch transaction, and the transaction
// does not come back (its nonce is taken by another on the new branch): the node goes
// back and derives again, and the batcher posts the lost blocks again; the safe head
// reaches the unsafe head.
func TestL1ReorgDropsBatchAndItIsPostedAgain(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 120*time.Second)
	e.waitL2(ctx, 3)
	e.startBatcher(e.config(batcher.DACalldata))
	e.waitSafe(ctx, 3)
	// Cut the batcher off L1, then let the pool drain into blocks.
	e.proxy.down.Store(true)
	e.settle(ctx)
	posted, err := e.scanL1(ctx)
	if err != nil || len(posted) == 0 {
		t.Fatalf("scan: %v (%d txs)", err, len(posted))
	}
	last := posted[len(posted)-1].block
	e.feedMu.Lock()
	parent := e.l1node.Backend().BlockChain().GetHeaderByNumber(last - 1)
	dropped := e.l1node.Backend().BlockChain().GetBlockByNumber(last)
	var lost *types.Transaction
	for _, tx := range dropped.Transactions() {
		if tx.To() != nil && *tx.To() == e.rcfg.BatchInboxAddress {
			lost = tx
		}
	}
	if err := e.l1node.Reorg(parent.Hash()); err != nil {
		e.feedMu.Unlock()
		t.Fatal(err)
	}
	// The pool moves to the new head in the background; until it has, it still counts the
	// lost transaction's nonce as used.
	if err := e.l1node.Backend().TxPool().Sync(); err != nil {
		e.feedMu.Unlock()
		t.Fatal(err)
	}
	// Take the lost transaction's nonce on the new branch, so it cannot be mined again.
	key := devnet.DevAccounts(2)[1].Key
	signer := types.LatestSignerForChainID(e.rcfg.L1ChainID)
	to := common.Address{0x99}
	taker := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{
		ChainID: e.rcfg.L1ChainID, Nonce: lost.Nonce(), GasTipCap: new(big.Int).Mul(lost.GasTipCap(), big.NewInt(3)),
		GasFeeCap: new(big.Int).Mul(lost.GasFeeCap(), big.NewInt(3)), Gas: 21_000, To: &to,
	})
	if err := e.l1.SendTransaction(ctx, taker); err != nil {
		e.feedMu.Unlock()
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := e.l1node.Mine(); err != nil {
			e.feedMu.Unlock()
			t.Fatal(err)
		}
	}
	e.feedMu.Unlock()
	if _, err := e.l1.TransactionReceipt(ctx, lost.Hash()); err == nil {
		t.Fatal("the dropped batch transaction was mined again")
	}
	e.proxy.down.Store(false)
	st, err := e.syncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Derivation from the new branch reaches every block, those of the lost one included.
	e.waitSafe(ctx, st.UnsafeL2.Number)
}

// An L2 execution client without the debug API: the batcher asks for raw blocks once,
// is told the method does not exist, and reads the blocks as JSON from then on.
func TestL2WithoutDebugAPI(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 90*time.Second)
	target, err := url.Parse(e.l2node.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	var asked, other atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &req)
		if strings.HasPrefix(req.Method, "debug_") {
			asked.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(requestID(body)) + `,"error":{"code":-32601,"message":"the method ` + req.Method + ` does not exist/is not available"}}`))
			return
		}
		if req.Method == "eth_getBlockByNumber" {
			other.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.waitL2(ctx, 3)
	cfg := e.config(batcher.DACalldata)
	cfg.L2URL = srv.URL
	e.startBatcher(cfg)
	e.waitSafe(ctx, 3)
	if _, dups := e.waitPosted(ctx, 3); dups != 0 {
		t.Fatalf("%d blocks posted twice", dups)
	}
	if asked.Load() != 1 || other.Load() < 3 {
		t.Fatalf("debug_getRawBlock asked %d times, eth_getBlockByNumber %d times; want once, then JSON", asked.Load(), other.Load())
	}
}
