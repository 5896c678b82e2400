package collector_test

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
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	oprollup "github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-program/client/claim"
	"github.com/ethereum-optimism/optimism/op-program/host"
	"github.com/ethereum-optimism/optimism/op-program/host/config"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// opNodeConfig decodes opkit's rollup.json with op-node's types.
func opNodeConfig(t *testing.T, cfg *rollup.Config) *oprollup.Config {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var theirs oprollup.Config
	if err := json.Unmarshal(data, &theirs); err != nil {
		t.Fatalf("op-node cannot decode opkit's rollup.json: %v", err)
	}
	return &theirs
}

// postBatches sends L2 blocks from..to to the dev L1's batch inbox as calldata, from the
// batcher account, in span-batch channels built by opkit's channel out, and seals them.
func postBatches(t *testing.T, l1 *devnet.L1, l2 *devnet.L2, cfg *rollup.Config, from, to uint64) {
	t.Helper()
	var batcher devnet.Account
	for _, a := range l1.Accounts() {
		if a.Address == cfg.Genesis.SystemConfig.BatcherAddr {
			batcher = a
		}
	}
	if batcher.Key == nil {
		t.Fatalf("no dev L1 account is the batcher %s", cfg.Genesis.SystemConfig.BatcherAddr)
	}
	signer := types.LatestSignerForChainID(l1.ChainConfig().ChainID)
	nonce := l1.Backend().TxPool().Nonce(batcher.Address)
	bc := l2.Backend().BlockChain()
	send := func(data []byte) {
		head := l1.Head()
		tip := big.NewInt(1e9)
		tx := types.MustSignNewTx(batcher.Key, signer, &types.DynamicFeeTx{
			ChainID: l1.ChainConfig().ChainID, Nonce: nonce, GasTipCap: tip,
			GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
			Gas:       21000 + 40*uint64(len(data)) + 10000, To: &cfg.BatchInboxAddress, Data: data,
		})
		nonce++
		if err := l1.Backend().TxPool().Add([]*types.Transaction{tx}, true)[0]; err != nil {
			t.Fatalf("batcher transaction: %v", err)
		}
		if _, err := l1.Mine(); err != nil {
			t.Fatal(err)
		}
		if r := l1.Backend().BlockChain().GetReceiptsByHash(l1.Head().Hash()); len(r) != 1 || r[0].Status != types.ReceiptStatusSuccessful {
			t.Fatalf("batcher transaction not included and successful: %v", r)
		}
	}
	n := from
	for n <= to {
		ch, err := batch.NewSpanChannelOut(batch.ChannelOutConfig{TargetSize: 100_000, GenesisTime: cfg.Genesis.L2Time, ChainID: cfg.L2ChainID})
		if err != nil {
			t.Fatal(err)
		}
		for ; n <= to; n++ {
			if _, err := ch.AddBlock(bc.GetBlockByNumber(n)); err != nil {
				if errors.Is(err, batch.ErrChannelFull) {
					break
				}
				t.Fatal(err)
			}
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		for {
			fr, err := ch.OutputFrame(100_000)
			if err != nil {
				t.Fatal(err)
			}
			data, err := batch.TxData(fr)
			if err != nil {
				t.Fatal(err)
			}
			send(data)
			if fr.IsLast {
				break
			}
		}
	}
}

// countingProxy forwards JSON-RPC to an upstream and counts debug_dbGet calls it refused.
type countingProxy struct {
	upstream       string
	dbGet, refused atomic.Int64
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	isDBGet := bytes.Contains(body, []byte(`"debug_dbGet"`))
	resp, err := http.Post(p.upstream, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if isDBGet {
		p.dbGet.Add(1)
		if bytes.Contains(out, []byte(`"error"`)) {
			p.refused.Add(1)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// runProgram runs op-program's host with its client in-process. The client panics when
// the host cannot serve a preimage; that is a failed run here.
func runProgram(ctx context.Context, cfg *config.Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("op-program client stopped: %v", r)
		}
	}()
	logger := log.NewLogger(log.NewTerminalHandlerWithLevel(os.Stderr, log.LevelError, false))
	return host.FaultProofProgramWithDefaultPrefecher(ctx, logger, cfg)
}

// TestOpProgramChecksClaimFromCollector follows a path-scheme OP chain with the collector,
// lets the chain run more than 128 blocks past block n, so the execution client no longer
// has the state of n−k, and then asks op-program to check a claim about block n from the
// agreed output at n−k: with the collector as its L2 source the right claim passes and a
// wrong one fails; with the execution client as its source the run fails, for lack of
// state.
func TestOpProgramChecksClaimFromCollector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	genesis, rcfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: l1.ChainConfig().ChainID.Uint64()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l2, err := devnet.StartL2(devnet.L2Config{DataDir: filepath.Join(dir, "l2"), Genesis: genesis, Scheme: devnet.Path, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	miner, err := devnet.NewL2Miner(ctx, l1, l2, rcfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer miner.Close()
	c, err := collector.New(ctx, collector.Config{L2: l2.HTTPEndpoint(), DataDir: filepath.Join(dir, "collector"), Window: 1000, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, err := collector.StartServer(c, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	const (
		n     = 8   // the disputed block
		k     = 3   // the agreed output is at n-k
		after = 135 // blocks past n, beyond the execution client's ~128 states
	)
	load := devnet.NewLoad(miner, devnet.LoadConfig{TxsPerBlock: 16, Seed: 31})
	for i := uint64(1); i <= n+after; i++ {
		// Loaded blocks around the disputed range; after it, blocks with only their
		// L1-attributes deposit, to move the tip on quickly.
		if i <= n+2 {
			if _, err := load.MineBlock(ctx); err != nil {
				t.Fatal(err)
			}
		} else if _, err := miner.Mine(); err != nil {
			t.Fatal(err)
		}
		if i%32 == 0 {
			if err := c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	tip := l2.Backend().BlockChain().CurrentBlock().Number.Uint64()
	postBatches(t, l1, l2, rcfg, 1, n+2)
	for i := 0; i < 3; i++ {
		if _, err := l1.Mine(); err != nil {
			t.Fatal(err)
		}
	}

	col, err := rpc.DialContext(ctx, srv.HTTPURL())
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	output := func(num uint64) collector.OutputResponse {
		var out collector.OutputResponse
		if err := col.CallContext(ctx, &out, "collector_outputAtBlock", hexutil.EncodeUint64(num)); err != nil {
			t.Fatalf("collector_outputAtBlock %d: %v", num, err)
		}
		return out
	}
	agreed, claimed := output(n-k), output(n)
	// The execution client no longer has the agreed state.
	var bal hexutil.Big
	el, err := rpc.DialContext(ctx, l2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close()
	if err := el.CallContext(ctx, &bal, "eth_getBalance", common.Address{}, hexutil.EncodeUint64(n-k)); err == nil {
		t.Fatalf("the execution client still has the state of block %d (tip %d): the test proves nothing", n-k, tip)
	}

	base := func(l2URL string, claimRoot common.Hash) *config.Config {
		cfg := config.NewSingleChainConfig(opNodeConfig(t, rcfg), genesis.Config, l1.ChainConfig(), l1.Head().Hash(),
			agreed.BlockHash, agreed.OutputRoot, claimRoot, n)
		cfg.L1URL = l1.HTTPEndpoint()
		// Batches are calldata: the beacon endpoint is never contacted.
		cfg.L1BeaconURL = "http://127.0.0.1:1"
		cfg.L2URLs = []string{l2URL}
		return cfg
	}
	t.Run("right claim passes", func(t *testing.T) {
		proxy := &countingProxy{upstream: srv.HTTPURL()}
		ps := httptest.NewServer(proxy)
		defer ps.Close()
		if err := runProgram(ctx, base(ps.URL, claimed.OutputRoot)); err != nil {
			t.Fatalf("op-program refused the right claim %s at block %d: %v", claimed.OutputRoot, n, err)
		}
		// The state came from the collector, all of it.
		if proxy.dbGet.Load() == 0 || proxy.refused.Load() != 0 {
			t.Fatalf("op-program made %d debug_dbGet calls to the collector, %d refused", proxy.dbGet.Load(), proxy.refused.Load())
		}
		t.Logf("claim %s at block %d verified from agreed block %d: %d debug_dbGet calls, all answered by the collector", claimed.OutputRoot, n, n-k, proxy.dbGet.Load())
	})
	t.Run("wrong claim fails", func(t *testing.T) {
		wrong := common.HexToHash("0x" + strings.Repeat("ab", 32))
		err := runProgram(ctx, base(srv.HTTPURL(), wrong))
		if !errors.Is(err, claim.ErrClaimNotValid) {
			t.Fatalf("op-program on a wrong claim: %v, want %v", err, claim.ErrClaimNotValid)
		}
	})
	t.Run("execution client as the source fails", func(t *testing.T) {
		proxy := &countingProxy{upstream: l2.HTTPEndpoint()}
		ps := httptest.NewServer(proxy)
		defer ps.Close()
		// The host retries a missing preimage until its context ends.
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		err := runProgram(rctx, base(ps.URL, claimed.OutputRoot))
		if err == nil {
			t.Fatal("op-program passed with a pruned execution client as its L2 source")
		}
		if proxy.refused.Load() == 0 {
			t.Fatalf("op-program failed (%v) but not for state: %d debug_dbGet calls, none refused", err, proxy.dbGet.Load())
		}
		t.Logf("with the execution client: %v (%d of %d debug_dbGet calls refused)", err, proxy.refused.Load(), proxy.dbGet.Load())
	})
}
