package devnet

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
)

// startTestL2 plans an L2 on the L1's genesis, starts its execution client and a miner.
func startTestL2(t *testing.T, l1 *L1, scheme StateScheme) (*L2, *L2Miner) {
	t.Helper()
	genesis, rcfg, err := PlanL2(ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: l1.ChainConfig().ChainID.Uint64()})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := StartL2(L2Config{Genesis: genesis, Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l2.Close(); err != nil {
			t.Errorf("close L2: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := NewL2Miner(ctx, l1, l2, rcfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return l2, m
}

func callUint(t *testing.T, c *ethclient.Client, to common.Address, sig string, block *types.Header) []byte {
	t.Helper()
	out, err := c.CallContract(context.Background(), ethereum.CallMsg{To: &to, Data: crypto.Keccak256([]byte(sig))[:4]}, block.Number)
	if err != nil {
		t.Fatalf("%s on %s: %v", sig, to, err)
	}
	return out
}

// TestL2RunsThePredeploys checks that the devnet L2 is an Isthmus OP chain with the OP
// Stack's predeploys: the L1-attributes deposit executes L1Block, users pay L1 fees,
// withdrawals land in the message passer, and every header's withdrawalsRoot is the
// message passer's storage root.
func TestL2RunsThePredeploys(t *testing.T) {
	t.Parallel()
	l1 := startTestL1(t, L1Config{Scheme: Path})
	l2, miner := startTestL2(t, l1, Path)
	bc := l2.Backend().BlockChain()
	genesis := bc.Genesis().Header()
	st, err := bc.StateAt(genesis.Root)
	if err != nil {
		t.Fatal(err)
	}
	if genesis.WithdrawalsHash == nil || *genesis.WithdrawalsHash == types.EmptyRootHash || *genesis.WithdrawalsHash != st.GetStorageRoot(MessagePasserPredeploy) {
		t.Fatalf("genesis withdrawalsRoot %v, message passer storage root %s", genesis.WithdrawalsHash, st.GetStorageRoot(MessagePasserPredeploy))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One L1 block, so the L2 chain moves to a new epoch.
	if _, err := l1.Mine(); err != nil {
		t.Fatal(err)
	}
	load := NewLoad(miner, LoadConfig{TxsPerBlock: 24, Seed: 11})
	const blocks = 3
	if err := load.MineBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	c, err := ethclient.DialContext(ctx, l2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var withdrawals, delegations int
	for n := uint64(1); n <= blocks; n++ {
		block := bc.GetBlockByNumber(n)
		h := block.Header()
		st, err := bc.StateAt(h.Root)
		if err != nil {
			t.Fatal(err)
		}
		if h.WithdrawalsHash == nil || *h.WithdrawalsHash != st.GetStorageRoot(MessagePasserPredeploy) {
			t.Fatalf("block %d: withdrawalsRoot %v, message passer storage root %s", n, h.WithdrawalsHash, st.GetStorageRoot(MessagePasserPredeploy))
		}
		// L1Block holds the origin the deposit carried.
		info, err := miner.rollup.L2BlockRef(block)
		if err != nil {
			t.Fatal(err)
		}
		if got := common.BytesToHash(callUint(t, c, L1BlockPredeploy, "hash()", h)); got != info.L1Origin.Hash {
			t.Fatalf("block %d: L1Block.hash() = %s, deposit origin %s", n, got, info.L1Origin.Hash)
		}
		if got := common.BytesToHash(callUint(t, c, L1BlockPredeploy, "number()", h)).Big().Uint64(); got != info.L1Origin.Number {
			t.Fatalf("block %d: L1Block.number() = %d, deposit origin %d", n, got, info.L1Origin.Number)
		}
		receipts := bc.GetReceiptsByHash(block.Hash())
		for i, tx := range block.Transactions() {
			r := receipts[i]
			if tx.Type() == types.DepositTxType {
				continue
			}
			if r.L1Fee == nil || r.L1Fee.Sign() <= 0 {
				t.Fatalf("block %d tx %d pays no L1 fee", n, i)
			}
			if tx.To() != nil && *tx.To() == MessagePasserPredeploy {
				if len(r.Logs) != 1 || r.Logs[0].Address != MessagePasserPredeploy {
					t.Fatalf("block %d: withdrawal tx %d logged %d events", n, i, len(r.Logs))
				}
				withdrawals++
			}
			if tx.Type() == types.SetCodeTxType {
				code := st.GetCode(*tx.To())
				if !bytes.HasPrefix(code, []byte{0xef, 0x01, 0x00}) {
					t.Fatalf("block %d: authority %s has code %x, want a delegation", n, tx.To(), code)
				}
				delegations++
			}
		}
	}
	if withdrawals == 0 || delegations == 0 {
		t.Fatalf("%d withdrawals, %d delegations in the load", withdrawals, delegations)
	}
	for _, a := range []common.Address{GasPriceOraclePredeploy, SequencerFeeVaultPredeploy, BaseFeeVaultPredeploy, L1FeeVaultPredeploy, OperatorFeeVaultPredeploy} {
		if code, err := c.CodeAt(ctx, a, nil); err != nil || len(code) == 0 {
			t.Fatalf("no code at %s: %v", a, err)
		}
	}
	// The GasPriceOracle runs in its Isthmus mode.
	if got := callUint(t, c, GasPriceOraclePredeploy, "isIsthmus()", miner.Head()); common.BytesToHash(got).Big().Uint64() != 1 {
		t.Fatalf("GasPriceOracle.isIsthmus() = %x", got)
	}
}

// TestPredeployAllocIsTheRegistrys checks the embedded allocation against the registry
// bundle op-geth embeds (OPKIT_UPDATE_PREDEPLOYS=1 rewrites it from there).
func TestPredeployAllocIsTheRegistrys(t *testing.T) {
	t.Parallel()
	want, err := registryAlloc()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("OPKIT_UPDATE_PREDEPLOYS") == "1" {
		data, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("predeploys_alloc.json.gz", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := PredeployAlloc()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("embedded allocation has %d accounts, the registry's %d", len(got), len(want))
	}
	for addr, w := range want {
		g, ok := got[addr]
		if !ok || !bytes.Equal(g.Code, w.Code) || g.Nonce != w.Nonce || g.Balance.Cmp(w.Balance) != 0 || !maps.Equal(g.Storage, w.Storage) {
			t.Fatalf("account %s differs from the registry's", addr)
		}
	}
}
