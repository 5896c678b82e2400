package collector_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/stateless"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/collector/store"
	"github.com/opkit/opkit/collector/verify"
	"github.com/opkit/opkit/devnet"
)

func dial(t testing.TB, url string) *rpc.Client {
	t.Helper()
	c, err := rpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// verifyRange replays blocks from..to over the collector's API alone.
func verifyRange(t testing.TB, url string, from, to uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v, err := verify.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	failed, err := v.Range(ctx, from, to, func(r verify.Result) {
		if r.Err != nil {
			t.Errorf("block %d does not verify from the collector's preimages: %v", r.Number, r.Err)
		} else if r.Preimages == 0 {
			t.Errorf("block %d verified without fetching a single preimage", r.Number)
		}
	})
	if err != nil || failed > 0 {
		t.Fatalf("verify %d..%d: %d failed, %v", from, to, failed, err)
	}
}

// checkNoLeak asserts that the store's reference counts are exactly what its retained
// blocks and the held set need: nothing a retained block needs is missing, nothing else
// is kept.
func checkNoLeak(t testing.TB, st *store.Store) {
	t.Helper()
	first, last, ok, err := st.Bounds()
	if err != nil {
		t.Fatal(err)
	}
	want := map[common.Hash]uint32{}
	if ok {
		for n := first; n <= last; n++ {
			b, err := st.Block(n)
			if errors.Is(err, store.ErrNotFound) {
				continue // a gap
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range b.Refs() {
				want[h]++
			}
		}
	}
	held, err := st.Held()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range held {
		want[h]++
	}
	seen := 0
	if err := st.ForEachPreimage(func(h common.Hash, refs uint32) error {
		seen++
		if want[h] != refs {
			t.Errorf("preimage %s has %d references, retained blocks hold %d", h, refs, want[h])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Fatalf("store holds %d preimages, retained blocks need %d", seen, len(want))
	}
}

// TestCollectorAgainstArchive follows a hot path-scheme client under varied load and
// checks everything it serves against a hash-scheme archive of the same chain.
func TestCollectorAgainstArchive(t *testing.T) {
	t.Parallel()
	ch := startChains(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := devnet.NewLoad(ch.hot, devnet.LoadConfig{TxsPerBlock: 24, Seed: 7})
	c := newCollector(t, ch.hot.HTTPEndpoint(), t.TempDir(), 1000)
	defer closeCollector(t, c)
	srv := startServer(t, c)
	const blocks = 12
	for i := 0; i < blocks; i++ {
		if _, err := load.MineBlock(ctx); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			if err := c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	ch.feed(t)
	first, last, ok, err := c.Store().Bounds()
	if err != nil || !ok || first != 1 || last != blocks {
		t.Fatalf("window %d..%d (%v, %v), want 1..%d", first, last, ok, err, blocks)
	}
	verifyRange(t, srv.HTTPURL(), 1, blocks)
	checkNoLeak(t, c.Store())

	col := dial(t, srv.WSURL()) // the getter API over websocket
	arch := dial(t, ch.archive.HTTPEndpoint())
	bc := ch.hot.Backend().BlockChain()
	for n := uint64(1); n <= blocks; n++ {
		block := bc.GetBlockByNumber(n)
		// Everything the archive says block n needs is served by the collector, byte for byte.
		var w stateless.ExtWitness
		if err := arch.CallContext(ctx, &w, "debug_executionWitness", hexutil.EncodeUint64(n)); err != nil {
			t.Fatalf("archive witness %d: %v", n, err)
		}
		for _, node := range append(append([]hexutil.Bytes{}, w.State...), w.Codes...) {
			var got hexutil.Bytes
			if err := col.CallContext(ctx, &got, "debug_dbGet", crypto.Keccak256Hash(node).Hex()); err != nil {
				t.Fatalf("block %d: collector lacks a preimage the archive's witness holds: %v", n, err)
			}
			if string(got) != string(node) {
				t.Fatalf("block %d: collector serves a different value for %s", n, crypto.Keccak256Hash(node))
			}
		}
		// The served witness is the one the block was collected with: it covers the archive's.
		var served stateless.ExtWitness
		if err := col.CallContext(ctx, &served, "debug_executionWitness", hexutil.EncodeUint64(n)); err != nil {
			t.Fatal(err)
		}
		if len(served.Headers) == 0 || served.Headers[0].Hash() != block.ParentHash() {
			t.Fatalf("served witness of %d does not start at the parent header", n)
		}
		have := map[string]bool{}
		for _, node := range served.State {
			have[string(node)] = true
		}
		for _, node := range w.State {
			if !have[string(node)] {
				t.Fatalf("served witness of block %d lacks archive node %s", n, crypto.Keccak256Hash(node))
			}
		}
		// Post-state proofs for everything the block touched equal the archive's.
		for _, q := range touched(block, bc.GetReceiptsByHash(block.Hash())) {
			var want, got json.RawMessage
			args := []any{q.addr, q.slots, hexutil.EncodeUint64(n)}
			if err := arch.CallContext(ctx, &want, "eth_getProof", args...); err != nil {
				t.Fatalf("archive proof: %v", err)
			}
			if err := col.CallContext(ctx, &got, "eth_getProof", args...); err != nil {
				t.Fatalf("block %d: collector cannot prove %s (touched by the block): %v", n, q.addr, err)
			}
			if !sameJSON(t, want, got) {
				t.Fatalf("block %d: proof of %s differs:\narchive   %s\ncollector %s", n, q.addr, want, got)
			}
		}
	}
	// Untouched accounts: the collector either answers exactly as the archive does or
	// refuses; it never answers wrongly.
	rng := rand.New(rand.NewPCG(1, 2))
	answered, refused := 0, 0
	for i := 0; i < 200; i++ {
		var addr common.Address
		for j := range addr {
			addr[j] = byte(rng.Uint32())
		}
		n := hexutil.EncodeUint64(1 + rng.Uint64N(blocks))
		var want, got json.RawMessage
		if err := arch.CallContext(ctx, &want, "eth_getProof", addr, []string{}, n); err != nil {
			t.Fatal(err)
		}
		if err := col.CallContext(ctx, &got, "eth_getProof", addr, []string{}, n); err != nil {
			refused++
			continue
		}
		answered++
		if !sameJSON(t, want, got) {
			t.Fatalf("wrong proof of absence for %s at %s:\narchive   %s\ncollector %s", addr, n, want, got)
		}
	}
	t.Logf("random accounts: %d answered (all correct), %d refused", answered, refused)
	// Outside the window is an error.
	var out json.RawMessage
	if err := col.CallContext(ctx, &out, "eth_getProof", ch.hot.Accounts()[0].Address, []string{}, "0x0"); err == nil {
		t.Fatal("proof at a block outside the window was answered")
	}
	// Forwarded chain data matches the execution client.
	for _, m := range []struct {
		method string
		args   []any
	}{
		{"eth_chainId", nil},
		{"eth_getBlockByNumber", []any{"0x3", true}},
		{"eth_getBlockByHash", []any{bc.GetBlockByNumber(4).Hash(), false}},
		{"eth_getBlockReceipts", []any{"0x5"}},
		{"debug_getRawHeader", []any{"0x6"}},
		{"debug_getRawReceipts", []any{"0x7"}},
		{"eth_getTransactionReceipt", []any{bc.GetBlockByNumber(8).Transactions()[0].Hash()}},
	} {
		var want, got json.RawMessage
		if err := arch.CallContext(ctx, &want, m.method, m.args...); err != nil {
			t.Fatalf("%s on archive: %v", m.method, err)
		}
		if err := col.CallContext(ctx, &got, m.method, m.args...); err != nil {
			t.Fatalf("%s on collector: %v", m.method, err)
		}
		if !sameJSON(t, want, got) {
			t.Fatalf("%s differs:\narchive   %s\ncollector %s", m.method, want, got)
		}
	}
}

type proofQuery struct {
	addr  common.Address
	slots []string
}

// touched lists the accounts and slots a block wrote, from its transactions.
func touched(block *types.Block, receipts types.Receipts) []proofQuery {
	signer := types.LatestSignerForChainID(big.NewInt(900))
	var out []proofQuery
	for i, tx := range block.Transactions() {
		from, _ := types.Sender(signer, tx)
		out = append(out, proofQuery{addr: from, slots: []string{}})
		switch {
		case tx.To() == nil:
			out = append(out, proofQuery{addr: receipts[i].ContractAddress, slots: []string{"0x0"}})
		case len(tx.Data()) == 64:
			out = append(out, proofQuery{addr: *tx.To(), slots: []string{hexutil.Encode(tx.Data()[:32])}})
		default:
			out = append(out, proofQuery{addr: *tx.To(), slots: []string{}})
		}
	}
	// The message passer is kept provable at every block, touched or not.
	out = append(out, proofQuery{addr: collector.MessagePasser, slots: []string{}})
	// The beacon-roots system contract is written by every block.
	out = append(out, proofQuery{addr: common.HexToAddress("0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02"), slots: []string{}})
	return out
}

func sameJSON(t testing.TB, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
