package engine_test

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	enginepkg "github.com/opkit/opkit/rollup/engine"
)

func TestConsolidationMatchMovesOnlySafe(t *testing.T) {
	r := newRig(t)
	genesis := r.eng.UnsafeHead()
	var seq []eth.L2BlockRef
	for i := 0; i < 3; i++ {
		_, ref := r.build(t, nil)
		seq = append(seq, ref)
	}
	// The first derived block belongs to a span that has not ended: pending-safe moves,
	// safe stays.
	ref, out, err := r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: genesis, Attrs: r.attrs(t, genesis, nil)})
	if err != nil || out != enginepkg.Consolidated || ref != seq[0] {
		t.Fatalf("consolidate block 1: %v %v %+v", err, out, ref)
	}
	h := r.eng.State()
	if h.PendingSafe != seq[0] || h.Safe != genesis || h.LocalSafe != genesis || h.Unsafe != seq[2] {
		t.Fatalf("heads after a non-concluding block: %+v", h)
	}
	// The span's last block concludes it: local-safe and safe follow.
	ref, out, err = r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: seq[0], Attrs: r.attrs(t, seq[0], nil), Concluding: true})
	if err != nil || out != enginepkg.Consolidated || ref != seq[1] {
		t.Fatalf("consolidate block 2: %v %v %+v", err, out, ref)
	}
	h = r.eng.State()
	if h.Safe != seq[1] || h.LocalSafe != seq[1] || h.PendingSafe != seq[1] || h.Unsafe != seq[2] || h.CrossUnsafe != seq[2] {
		t.Fatalf("heads after a concluding block: %+v", h)
	}
	// op-geth was told: its safe label is block 2 and its head did not move.
	safe, err := r.eng.Client().BlockByNumber(r.ctx, big.NewInt(-4)) // rpc.SafeBlockNumber
	if err != nil || safe.Hash() != seq[1].Hash {
		t.Fatalf("op-geth safe block %v, %v", safe, err)
	}
	if head := r.l2.Backend().BlockChain().CurrentBlock(); head.Hash() != seq[2].Hash {
		t.Fatalf("consolidation moved the head to %d", head.Number)
	}
	// Attributes that do not build on pending-safe call for a reset.
	if _, _, err := r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: seq[0], Attrs: r.attrs(t, seq[0], nil)}); !errors.Is(err, enginepkg.ErrNotOnPendingSafe) {
		t.Fatalf("stale attributes: %v", err)
	}
	// With nothing left ahead, the next derived block is built on top.
	ref, out, err = r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: seq[1], Attrs: r.attrs(t, seq[1], nil), Concluding: true})
	if err != nil || out != enginepkg.Consolidated || ref != seq[2] {
		t.Fatalf("consolidate block 3: %v %v %+v", err, out, ref)
	}
	ref, out, err = r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: seq[2], Attrs: r.attrs(t, seq[2], nil), Concluding: true})
	if err != nil || out != enginepkg.Appended || ref.Number != 4 || ref.ParentHash != seq[2].Hash {
		t.Fatalf("append block 4: %v %v %+v", err, out, ref)
	}
	if h := r.eng.State(); h.Unsafe != ref || h.Safe != ref {
		t.Fatalf("heads after append: %+v", h)
	}
}

func TestConsolidationMismatchReorgsUnsafe(t *testing.T) {
	r := newRig(t)
	genesis := r.eng.UnsafeHead()
	_, one := r.build(t, nil)
	_, two := r.build(t, nil)
	a := r.attrs(t, genesis, nil)
	gas := *a.GasLimit - 1
	a.GasLimit = &gas // L1 says another gas limit: the unsafe block 1 is not the derived one
	ref, out, err := r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: genesis, Attrs: a, Concluding: true})
	if err != nil || out != enginepkg.Reorged {
		t.Fatalf("mismatch: %v %v", err, out)
	}
	if ref.Number != 1 || ref.Hash == one.Hash {
		t.Fatalf("derived block 1 %+v, unsafe block 1 was %s", ref, one.Hash)
	}
	if h := r.eng.State(); h.Unsafe != ref || h.Safe != ref || h.PendingSafe != ref {
		t.Fatalf("heads after reorg: %+v", h)
	}
	chain := r.l2.Backend().BlockChain()
	if head := chain.CurrentBlock(); head.Hash() != ref.Hash {
		t.Fatalf("op-geth head %d %s, want the derived block 1", head.Number, head.Hash())
	}
	if b := chain.GetBlockByNumber(2); b != nil {
		t.Fatalf("unsafe block 2 %s (was %s) is still canonical", b.Hash(), two.Hash)
	}
	if b := chain.GetBlockByNumber(1); b.GasLimit() != gas {
		t.Fatalf("canonical block 1 gas limit %d", b.GasLimit())
	}
}

func TestAttributesMatchBlockFields(t *testing.T) {
	r := newRig(t)
	genesis := r.eng.UnsafeHead()
	_, one := r.build(t, nil)
	block := r.l2.Backend().BlockChain().GetBlockByHash(one.Hash)
	op := r.cfg.ChainOpConfig
	if err := enginepkg.AttributesMatchBlock(r.attrs(t, genesis, nil), genesis, block, op); err != nil {
		t.Fatalf("the attributes a block was built from do not match it: %v", err)
	}
	for name, mutate := range map[string]func(a *engine.PayloadAttributes){
		"timestamp":     func(a *engine.PayloadAttributes) { a.Timestamp++ },
		"prevRandao":    func(a *engine.PayloadAttributes) { a.Random[0] ^= 1 },
		"fee recipient": func(a *engine.PayloadAttributes) { a.SuggestedFeeRecipient[0] ^= 1 },
		"extra tx":      func(a *engine.PayloadAttributes) { a.Transactions = append(a.Transactions, a.Transactions[0]) },
		"tx bytes": func(a *engine.PayloadAttributes) {
			a.Transactions[0] = append([]byte{}, a.Transactions[0][:len(a.Transactions[0])-1]...)
		},
		"gas limit":    func(a *engine.PayloadAttributes) { g := *a.GasLimit + 1; a.GasLimit = &g },
		"withdrawals":  func(a *engine.PayloadAttributes) { a.Withdrawals = nil },
		"beacon root":  func(a *engine.PayloadAttributes) { b := *a.BeaconRoot; b[0] ^= 1; a.BeaconRoot = &b },
		"eip1559":      func(a *engine.PayloadAttributes) { a.EIP1559Params = []byte{0, 0, 0, 9, 0, 0, 0, 9} },
		"min base fee": func(a *engine.PayloadAttributes) { m := uint64(1); a.MinBaseFee = &m },
	} {
		a := r.attrs(t, genesis, nil)
		mutate(a)
		if err := enginepkg.AttributesMatchBlock(a, genesis, block, op); err == nil {
			t.Errorf("%s: a changed attribute still matches", name)
		}
	}
	if err := enginepkg.AttributesMatchBlock(r.attrs(t, genesis, nil), one, block, op); err == nil {
		t.Error("another parent still matches")
	}
}

func TestInvalidDerivedPayloadAndDepositsOnly(t *testing.T) {
	r := newRig(t)
	genesis := r.eng.UnsafeHead()
	// A batch transaction no engine can decode: the engine refuses the attributes.
	a := r.attrs(t, genesis, [][]byte{{0x02, 0xde, 0xad}})
	_, _, err := r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: genesis, Attrs: a, Concluding: true})
	if !errors.Is(err, enginepkg.ErrInvalid) {
		t.Fatalf("invalid batch transaction: %v", err)
	}
	if h := r.eng.State(); h.Unsafe != genesis || h.PendingSafe != genesis {
		t.Fatalf("a refused block moved the heads: %+v", h)
	}
	// Holocene's replacement keeps the deposits only, and it builds.
	dep := enginepkg.DepositsOnly(a)
	if len(dep.Transactions) != 1 || dep.Transactions[0][0] != types.DepositTxType || len(a.Transactions) != 2 {
		t.Fatalf("deposits-only attributes %d txs (original %d)", len(dep.Transactions), len(a.Transactions))
	}
	ref, out, err := r.eng.ProcessDerived(r.ctx, &enginepkg.Derived{Parent: genesis, Attrs: dep, Concluding: true, DepositsOnly: true})
	if err != nil || out != enginepkg.Appended || ref.Number != 1 {
		t.Fatalf("deposits-only block: %v %v %+v", err, out, ref)
	}
}

func TestBlockRefErrorsKeepTheirClass(t *testing.T) {
	r := newRig(t)
	if _, err := r.eng.BlockRefByNumber(r.ctx, 1000); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("block past the head: %v", err)
	}
	r.l2.Close()
	if _, err := r.eng.BlockRefByNumber(r.ctx, 0); !errors.Is(err, enginepkg.ErrTemporary) {
		t.Fatalf("engine down, by number: %v", err)
	}
	if _, err := r.eng.BlockRefByHash(r.ctx, r.cfg.Genesis.L2.Hash); !errors.Is(err, enginepkg.ErrTemporary) {
		t.Fatalf("engine down, by hash: %v", err)
	}
}

// TestInitDoesNotTakeAFailedCallForAFreshChain puts a proxy in front of op-geth that fails
// the read of the safe label in transit: Init must fail, not restart safe at genesis.
func TestInitDoesNotTakeAFailedCallForAFreshChain(t *testing.T) {
	r := newRig(t)
	_, one := r.build(t, nil)
	if err := r.eng.SetSafeAndFinalized(r.ctx, one, one); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(r.l2.EngineEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if bytes.Contains(body, []byte(`"safe"`)) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c, err := enginepkg.Dial(r.ctx, srv.URL, r.l2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eng := enginepkg.New(r.cfg, c, quietLog())
	if err := eng.Init(r.ctx); !errors.Is(err, enginepkg.ErrTemporary) {
		_, safe, _ := eng.Heads()
		t.Fatalf("Init with the safe read failing: %v (safe %d)", err, safe.Number)
	}
	// Through op-geth directly the same chain restores safe at block 1.
	again := enginepkg.New(r.cfg, r.eng.Client(), quietLog())
	if err := again.Init(r.ctx); err != nil {
		t.Fatal(err)
	}
	if _, safe, fin := again.Heads(); safe != one || fin != one {
		t.Fatalf("restored safe %d finalized %d", safe.Number, fin.Number)
	}
}

// TestUnknownEngineErrorCodes answers Engine API calls with error codes op-geth does not
// produce in these tests: an unsupported fork is ErrUnsupported, an unknown -38xxx code
// a refusal, neither a temporary failure to retry for ever.
func TestUnknownEngineErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		code int
		want error
	}{
		{-38005, enginepkg.ErrUnsupported},
		{-32601, enginepkg.ErrUnsupported},
		{-38099, enginepkg.ErrInvalid},
		{-38003, enginepkg.ErrInvalid},
		{-38001, enginepkg.ErrTemporary},
		{-32000, enginepkg.ErrTemporary},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":`+itoa(tc.code)+`,"message":"refused"}}`)
		}))
		c, err := enginepkg.Dial(t.Context(), srv.URL, [32]byte{1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ForkchoiceUpdated(t.Context(), engine.ForkchoiceStateV1{}, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("code %d: %v, want %v", tc.code, err, tc.want)
		}
		c.Close()
		srv.Close()
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func TestSystemConfigByL2Hash(t *testing.T) {
	r := newRig(t)
	_, one := r.build(t, nil)
	got, err := r.eng.SystemConfigByL2Hash(r.ctx, one.Hash)
	if err != nil {
		t.Fatal(err)
	}
	want := r.cfg.Genesis.SystemConfig
	if got.BatcherAddr != want.BatcherAddr || got.GasLimit != want.GasLimit || got.Scalar != want.Scalar {
		t.Fatalf("system config of block 1 %+v, built with %+v", got, want)
	}
	if g, err := r.eng.SystemConfigByL2Hash(r.ctx, r.cfg.Genesis.L2.Hash); err != nil || g != want {
		t.Fatalf("genesis system config %+v, %v", g, err)
	}
}

// TestSystemConfigOfInsertedBlocksIsNotFetched: the system config of a block the engine
// inserted comes from its payload, with no block read, and equals the one read back from
// the block; another engine on the same client, which inserted nothing, reads it once.
func TestSystemConfigOfInsertedBlocksIsNotFetched(t *testing.T) {
	r := newRig(t)
	target, err := url.Parse(r.l2.EngineEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	reads := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if bytes.Contains(body, []byte(`"eth_getBlockByHash"`)) {
			mu.Lock()
			reads++
			mu.Unlock()
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c, err := enginepkg.Dial(r.ctx, srv.URL, r.l2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eng := enginepkg.New(r.cfg, c, quietLog())
	if err := eng.Init(r.ctx); err != nil {
		t.Fatal(err)
	}
	var refs []eth.L2BlockRef
	for i := 0; i < 3; i++ {
		parent := eng.UnsafeHead()
		id, err := eng.StartBuilding(r.ctx, parent, r.attrs(t, parent, nil))
		if err != nil {
			t.Fatal(err)
		}
		_, ref, err := eng.SealBuilding(r.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	mu.Lock()
	reads = 0
	mu.Unlock()
	fresh := enginepkg.New(r.cfg, c, quietLog())
	for _, ref := range refs {
		got, err := eng.SystemConfigByL2Hash(r.ctx, ref.Hash)
		if err != nil {
			t.Fatal(err)
		}
		want, err := rollup.SystemConfigFromL2Block(r.cfg, r.l2.Backend().BlockChain().GetBlockByHash(ref.Hash))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("block %d: system config %+v from the payload, %+v from the block", ref.Number, got, want)
		}
		mu.Lock()
		n := reads
		mu.Unlock()
		if n != 0 {
			t.Fatalf("block %d: %d block reads for the system config of a block the engine inserted", ref.Number, n)
		}
		for i := 0; i < 2; i++ {
			if g, err := fresh.SystemConfigByL2Hash(r.ctx, ref.Hash); err != nil || g != want {
				t.Fatalf("block %d through an engine that did not insert it: %+v, %v", ref.Number, g, err)
			}
		}
		mu.Lock()
		n, reads = reads, 0
		mu.Unlock()
		if n != 1 {
			t.Fatalf("block %d: %d block reads by the other engine, want 1", ref.Number, n)
		}
	}
}

// TestEngineCallsAskForNoCompression: op-geth gzips every answer a client accepts
// compressed; the engine client must not ask for it (a payload each way per block).
func TestEngineCallsAskForNoCompression(t *testing.T) {
	r := newRig(t)
	target, err := url.Parse(r.l2.EngineEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var encodings []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		encodings = append(encodings, req.Header.Get("Accept-Encoding"))
		mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c, err := enginepkg.Dial(r.ctx, srv.URL, r.l2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eng := enginepkg.New(r.cfg, c, quietLog())
	if err := eng.Init(r.ctx); err != nil {
		t.Fatal(err)
	}
	parent := eng.UnsafeHead()
	id, err := eng.StartBuilding(r.ctx, parent, r.attrs(t, parent, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.SealBuilding(r.ctx, id); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(encodings) < 5 {
		t.Fatalf("%d calls seen", len(encodings))
	}
	for i, e := range encodings {
		if strings.Contains(e, "gzip") {
			t.Fatalf("call %d asked for Accept-Encoding %q", i, e)
		}
	}
}
