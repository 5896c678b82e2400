package batcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/node"
)

func quietLog() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("OPKIT_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// recordingProxy forwards JSON-RPC to the real L1 and keeps every raw transaction it
// relays, so blob contents (which blocks do not carry) can be checked after inclusion.
type recordingProxy struct {
	srv     *httptest.Server
	down    atomic.Bool // answer every request with 503, as an L1 RPC outage
	noSend  atomic.Bool // refuse eth_sendRawTransaction only, with a JSON-RPC error
	refused atomic.Int64
	mu      sync.Mutex
	raw     map[common.Hash]*types.Transaction
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{raw: map[common.Hash]*types.Transaction{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			p.refused.Add(1)
			http.Error(w, "L1 down", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if p.noSend.Load() && isSend(body) {
			p.refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(requestID(body)) + `,"error":{"code":-32000,"message":"sends refused by the test proxy"}}`))
			return
		}
		p.record(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// isSend reports whether a JSON-RPC request publishes a transaction.
func isSend(body []byte) bool {
	var req struct {
		Method string `json:"method"`
	}
	return json.Unmarshal(body, &req) == nil && req.Method == "eth_sendRawTransaction"
}

// requestID is a JSON-RPC request's id, as raw JSON (null when absent).
func requestID(body []byte) json.RawMessage {
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.ID) == 0 {
		return json.RawMessage("null")
	}
	return req.ID
}

func (p *recordingProxy) record(body []byte) {
	var req struct {
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil || req.Method != "eth_sendRawTransaction" || len(req.Params) != 1 {
		return
	}
	var raw hexutil.Bytes
	if json.Unmarshal(req.Params[0], &raw) != nil {
		return
	}
	var tx types.Transaction
	if tx.UnmarshalBinary(raw) != nil {
		return
	}
	p.mu.Lock()
	p.raw[tx.Hash()] = &tx
	p.mu.Unlock()
}

func (p *recordingProxy) sidecar(h common.Hash) *types.BlobTxSidecar {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tx := p.raw[h]; tx != nil {
		return tx.BlobTxSidecar()
	}
	return nil
}

// env is a dev L1, an op-geth L2 and an opkit node that sequences and also derives from
// what the batcher posts (through dataSource), so its safe head shows what reached L1.
type env struct {
	t      *testing.T
	l1node *devnet.L1
	l2node *devnet.L2
	node   *node.Node
	rcfg   *rollup.Config
	proxy  *recordingProxy
	l1     *ethclient.Client
	l2     *ethclient.Client
	rollup *rpc.Client
	da     *server.Server
	daCli  atomic.Pointer[altda.Client] // read by the node's derivation goroutine

	scanMu sync.Mutex
	scans  map[common.Hash][]postedTx // per L1 block, so rescans read only new blocks

	feedMu sync.Mutex // held while L1 blocks must not be sealed
}

// l1Period is how often the test L1 seals a block.
const l1Period = 500 * time.Millisecond

// startFeed seals an L1 block every l1Period, except while feedMu is held.
func (e *env) startFeed() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(l1Period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e.feedMu.Lock()
			if _, err := e.l1node.Mine(); err != nil {
				e.t.Logf("seal L1 block: %v", err)
			}
			e.feedMu.Unlock()
		}
	}()
	e.t.Cleanup(func() { close(stop); <-done })
}

func startEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := quietLog()
	e := &env{t: t, scans: map[common.Hash][]postedTx{}}
	l1n, err := devnet.StartL1(devnet.L1Config{Logger: log.With("system", "l1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l1n.Close() })
	e.l1node = l1n
	e.startFeed()
	g, rcfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1n.Backend().BlockChain().Genesis().Header(),
		L1ChainID: l1n.ChainConfig().ChainID.Uint64(), BlockTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.rcfg = rcfg
	if e.l2node, err = devnet.StartL2(devnet.L2Config{Genesis: g, Logger: log.With("system", "l2")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.l2node.Close() })
	e.proxy = newRecordingProxy(t, l1n.HTTPEndpoint())
	if e.l1, err = ethclient.Dial(l1n.HTTPEndpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.l1.Close)
	if e.l2, err = ethclient.Dial(e.l2node.HTTPEndpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.l2.Close)
	e.node, err = node.Start(ctx, node.Config{
		Rollup: rcfg, L1ChainConfig: l1n.ChainConfig(), L1URL: l1n.HTTPEndpoint(),
		L2EngineURL: e.l2node.EngineEndpoint(), JWTSecret: e.l2node.JWTSecret(),
		Driver: driver.Config{SequencerEnabled: true}, SequencerL1Confs: 1,
		RPCPort: 0, MetricsDisabled: true, L1PollInterval: 50 * time.Millisecond,
		Data: dataSource{e}, Log: log.With("system", "node"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.node.Close() })
	if e.rollup, err = rpc.Dial(e.node.RPCEndpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.rollup.Close)
	return e
}

func (e *env) syncStatus(ctx context.Context) (*eth.SyncStatus, error) {
	var st eth.SyncStatus
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := e.rollup.CallContext(cctx, &st, "optimism_syncStatus")
	return &st, err
}

// waitSafe waits until the node has derived L2 block n from L1.
func (e *env) waitSafe(ctx context.Context, n uint64) {
	e.t.Helper()
	for {
		st, err := e.syncStatus(ctx)
		if err == nil && st.SafeL2.Number >= n {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("safe head did not reach %d: %+v %v", n, st.SafeL2, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startDA starts an in-process opkit da-server with a memory primary and a memory
// secondary, fault injection enabled.
func (e *env) startDA(generic bool) {
	e.startDAWith(generic, "127.0.0.1:0", store.NewMemory(), e.t.TempDir())
}

func (e *env) startDAWith(generic bool, addr string, primary store.Store, repairDir string) {
	t := e.t
	srv, err := server.New(server.Config{
		Addr: addr, Primary: primary, Secondaries: []store.Store{store.NewMemory()},
		RepairDir: repairDir, FaultsAdmin: true, GenericCommitment: generic, DALayerByte: 0xff,
		ProbeInterval: 100 * time.Millisecond, Logger: quietLog(), Registry: prometheus.NewRegistry(),
		// A short cooldown keeps the 503s' retry_after, and so the test, short.
		Breaker: breaker.Config{Cooldown: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	e.da = srv
	mode := altda.KeccakMode
	if generic {
		mode = altda.GenericMode
	}
	cli, err := altda.NewClient(altda.ClientConfig{URL: srv.URL(), Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	e.daCli.Store(cli)
}

func (e *env) daClient() *altda.Client {
	c := e.daCli.Load()
	if c == nil {
		// No DA server in this test: a commitment on L1 is an error the caller reports.
		c, _ = altda.NewClient(altda.ClientConfig{URL: "http://127.0.0.1:1"})
	}
	return c
}

// setFaults sets the DA server's injected faults, e.g. {"primary":{"put":"unavailable"}}.
func (e *env) setFaults(doc string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, e.da.URL()+"/admin/faults", bytes.NewReader([]byte(doc)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("set faults %s: %d", doc, resp.StatusCode)
	}
}

func (e *env) config(da batcher.DAType) batcher.Config {
	cfg := batcher.Config{
		L1URL: e.proxy.srv.URL, L2URL: e.l2node.HTTPEndpoint(), RollupURL: e.node.RPCEndpoint(),
		Key: devnet.DevAccounts(2)[1].Key, DAType: da, TargetNumFrames: 1, MaxL1TxSize: 120_000,
		Compression: "zlib", NumConfirmations: 1, ResubmissionTimeout: 10 * time.Second, NetworkTimeout: 5 * time.Second,
		ReceiptInterval: 50 * time.Millisecond, PollInterval: 100 * time.Millisecond, MaxPendingTx: 1,
		MaxChannelDuration: 1, SubSafetyMargin: 10, AltDARetryAfter: 3 * time.Second, AltDAPartialMax: 3,
		AltDAMaxRetries: 2, AltDABackoffMax: 200 * time.Millisecond, AltDAPutTimeout: 2 * time.Second,
		RPCAddr: "127.0.0.1", RPCPort: 0, Log: quietLog(),
	}
	if e.da != nil {
		cfg.AltDAServer = e.da.URL()
	}
	return cfg
}

func (e *env) startBatcher(cfg batcher.Config) *batcher.Batcher {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := batcher.New(ctx, cfg, batcher.DefaultCodec())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = b.Close() })
	if err := b.Start(); err != nil {
		e.t.Fatal(err)
	}
	return b
}

// postedTx is one batcher transaction found on L1.
type postedTx struct {
	block  uint64
	kind   string // calldata, blobs, altda
	frames []batch.Frame
}

// scanL1 reads every batcher transaction on the canonical L1 chain, resolving blobs
// through the recorded sidecars (checked against the versioned hashes) and AltDA
// commitments through the DA server.
func (e *env) scanL1(ctx context.Context) ([]postedTx, error) {
	rcfg := e.rcfg
	head, err := e.l1.BlockNumber(ctx)
	if err != nil {
		return nil, err
	}
	signer := types.LatestSignerForChainID(rcfg.L1ChainID)
	want := rcfg.Genesis.SystemConfig.BatcherAddr
	var out []postedTx
	e.scanMu.Lock()
	defer e.scanMu.Unlock()
	for n := uint64(1); n <= head; n++ {
		hdr, err := e.l1.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			return nil, err
		}
		if cached, ok := e.scans[hdr.Hash()]; ok {
			out = append(out, cached...)
			continue
		}
		blk, err := e.l1.BlockByHash(ctx, hdr.Hash())
		if err != nil {
			return nil, err
		}
		var inBlock []postedTx
		for _, tx := range blk.Transactions() {
			if tx.To() == nil || *tx.To() != rcfg.BatchInboxAddress {
				continue
			}
			if from, err := types.Sender(signer, tx); err != nil || from != want {
				continue
			}
			var items [][]byte
			kind := "calldata"
			switch {
			case tx.Type() == types.BlobTxType:
				kind = "blobs"
				sc := e.proxy.sidecar(tx.Hash())
				if sc == nil {
					return nil, fmt.Errorf("blob tx %s was not relayed through the proxy", tx.Hash())
				}
				if err := sc.ValidateBlobCommitmentHashes(tx.BlobHashes()); err != nil {
					return nil, fmt.Errorf("blob tx %s: %w", tx.Hash(), err)
				}
				for i := range sc.Blobs {
					b := batch.Blob(sc.Blobs[i])
					data, err := b.ToData()
					if err != nil {
						return nil, fmt.Errorf("blob tx %s blob %d: %w", tx.Hash(), i, err)
					}
					items = append(items, data)
				}
			case len(tx.Data()) > 0 && tx.Data()[0] == 0x01:
				kind = "altda"
				comm, err := altda.DecodeCommitment(tx.Data()[1:])
				if err != nil {
					return nil, fmt.Errorf("altda tx %s: %w", tx.Hash(), err)
				}
				data, err := e.daClient().Get(ctx, comm)
				if err != nil {
					return nil, fmt.Errorf("altda tx %s: GET %s: %w", tx.Hash(), comm, err)
				}
				items = append(items, data)
			default:
				items = append(items, tx.Data())
			}
			p := postedTx{block: n, kind: kind}
			for _, it := range items {
				fs, err := batch.ParseTxData(it)
				if err != nil {
					return nil, fmt.Errorf("tx %s: %w", tx.Hash(), err)
				}
				p.frames = append(p.frames, fs...)
			}
			inBlock = append(inBlock, p)
		}
		e.scans[hdr.Hash()] = inBlock
		out = append(out, inBlock...)
	}
	return out, nil
}

// decodedBlock is what the posted data says about one L2 block.
type decodedBlock struct {
	timestamp uint64
	epoch     uint64
	txs       [][]byte
	kind      string
}

// decode assembles the posted frames into channels (in the order their last frame
// landed) and reads every block out of them.
func decode(rcfg *rollup.Config, posted []postedTx) ([]decodedBlock, error) {
	type assembling struct {
		frames map[uint16]batch.Frame
		kinds  map[string]bool
	}
	chans := map[batch.ChannelID]*assembling{}
	var out []decodedBlock
	for _, p := range posted {
		for _, f := range p.frames {
			a := chans[f.ID]
			if a == nil {
				a = &assembling{frames: map[uint16]batch.Frame{}, kinds: map[string]bool{}}
				chans[f.ID] = a
			}
			a.frames[f.Number] = f
			a.kinds[p.kind] = true
			last := -1
			for n, fr := range a.frames {
				if fr.IsLast {
					last = int(n)
				}
			}
			if last < 0 || len(a.frames) != last+1 {
				continue
			}
			var body []byte
			for i := 0; i <= last; i++ {
				fr, ok := a.frames[uint16(i)]
				if !ok {
					return nil, fmt.Errorf("channel %s misses frame %d", f.ID, i)
				}
				body = append(body, fr.Data...)
			}
			delete(chans, f.ID)
			kinds := []string{}
			for k := range a.kinds {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			r, err := batch.NewChannelReader(bytes.NewReader(body), batch.MaxRLPBytesPerChannelFjord, true)
			if err != nil {
				return nil, err
			}
			for {
				bt, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("channel %s: %w", f.ID, err)
				}
				switch v := bt.(type) {
				case *batch.RawSpanBatch:
					els, err := v.Batches(rcfg.Genesis.L2Time, rcfg.BlockTime, rcfg.L2ChainID)
					if err != nil {
						return nil, err
					}
					for _, el := range els {
						out = append(out, decodedBlock{timestamp: el.Timestamp, epoch: el.EpochNum, txs: el.Transactions, kind: fmt.Sprint(kinds)})
					}
				case *batch.SingularBatch:
					out = append(out, decodedBlock{timestamp: v.Timestamp, epoch: v.EpochNum, txs: v.Transactions, kind: fmt.Sprint(kinds)})
				default:
					return nil, fmt.Errorf("unexpected batch %T", bt)
				}
			}
		}
	}
	return out, nil
}

// checkBlocks compares the decoded blocks with L2 blocks 1..n: every block is there,
// with its timestamp, L1 origin and transactions (the first posting is compared). It
// returns, per DA kind, how many of the blocks it carried at least once, and how many
// postings repeated a block.
func (e *env) checkBlocks(ctx context.Context, got []decodedBlock, n uint64) (map[string]int, int, error) {
	byTime := map[uint64]decodedBlock{}
	carriers := map[uint64]map[string]bool{}
	dups := 0
	for _, d := range got {
		if carriers[d.timestamp] == nil {
			carriers[d.timestamp] = map[string]bool{}
		}
		carriers[d.timestamp][d.kind] = true
		if _, ok := byTime[d.timestamp]; ok {
			dups++
			continue
		}
		byTime[d.timestamp] = d
	}
	kinds := map[string]int{}
	for i := uint64(1); i <= n; i++ {
		blk, err := e.l2.BlockByNumber(ctx, new(big.Int).SetUint64(i))
		if err != nil {
			return nil, 0, err
		}
		d, ok := byTime[blk.Time()]
		if !ok {
			return nil, 0, fmt.Errorf("L2 block %d (time %d) is not on L1", i, blk.Time())
		}
		ref, err := e.rcfg.L2BlockRef(blk)
		if err != nil {
			return nil, 0, err
		}
		if d.epoch != ref.L1Origin.Number {
			return nil, 0, fmt.Errorf("L2 block %d: posted epoch %d, block origin %d", i, d.epoch, ref.L1Origin.Number)
		}
		var want [][]byte
		for _, tx := range blk.Transactions() {
			if tx.Type() == types.DepositTxType {
				continue
			}
			raw, _ := tx.MarshalBinary()
			want = append(want, raw)
		}
		if len(want) != len(d.txs) {
			return nil, 0, fmt.Errorf("L2 block %d: %d txs posted, %d in the block", i, len(d.txs), len(want))
		}
		for j := range want {
			if !bytes.Equal(want[j], d.txs[j]) {
				return nil, 0, fmt.Errorf("L2 block %d tx %d differs", i, j)
			}
		}
		for k := range carriers[blk.Time()] {
			kinds[k]++
		}
	}
	return kinds, dups, nil
}

// waitPosted polls L1 until L2 blocks 1..n are all decodable from it.
func (e *env) waitPosted(ctx context.Context, n uint64) (map[string]int, int) {
	e.t.Helper()
	var last error
	for {
		posted, err := e.scanL1(ctx)
		if err == nil {
			var got []decodedBlock
			got, err = decode(e.rcfg, posted)
			if err == nil {
				kinds, dups, cerr := e.checkBlocks(ctx, got, n)
				if cerr == nil {
					return kinds, dups
				}
				err = cerr
			}
		}
		last = err
		select {
		case <-ctx.Done():
			e.t.Fatalf("L2 blocks 1..%d not all posted: %v", n, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitL2 waits for the L2 chain to reach block n.
func (e *env) waitL2(ctx context.Context, n uint64) {
	e.t.Helper()
	for {
		h, err := e.l2.BlockNumber(ctx)
		if err == nil && h >= n {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("L2 did not reach block %d", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sendL2Txs sends a few transfers on L2 so blocks carry user transactions.
func (e *env) sendL2Txs(ctx context.Context, n int) {
	e.t.Helper()
	acct := devnet.DevAccounts(4)[3]
	chainID := e.rcfg.L2ChainID
	nonce, err := e.l2.PendingNonceAt(ctx, acct.Address)
	if err != nil {
		e.t.Fatal(err)
	}
	to := common.Address{0x42}
	for i := 0; i < n; i++ {
		tx := types.MustSignNewTx(acct.Key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce + uint64(i), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e10),
			Gas: 21_000, To: &to, Value: big.NewInt(1),
		})
		if err := e.l2.SendTransaction(ctx, tx); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestMain loads the KZG trusted setup once before any test runs: it takes seconds (far
// more under the race detector), and paid inside the first blob test it would eat that
// test's deadline.
func TestMain(m *testing.M) {
	if _, err := kzg4844.BlobToCommitment(new(kzg4844.Blob)); err != nil {
		fmt.Fprintln(os.Stderr, "load KZG setup:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
