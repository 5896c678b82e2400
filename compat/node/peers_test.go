package node_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
	opkitrollup "github.com/opkit/opkit/rollup"
)

// buildPeers builds op-node and op-batcher (or finds them built) before a test starts its
// clock: a cold build takes minutes on a loaded machine.
func buildPeers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := peers.Build(ctx); err != nil {
		t.Fatal(err)
	}
}

func dialRollup(ctx context.Context, t *testing.T, url string) *peers.RollupClient {
	t.Helper()
	rc, err := peers.DialRollup(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return rc
}

func startOpNode(ctx context.Context, t *testing.T, cfg peers.OpNodeConfig) *peers.OpNode {
	t.Helper()
	cfg.Dir = t.TempDir()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	n, err := peers.StartOpNode(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Err(); err != nil {
			t.Errorf("op-node stopped itself: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("close op-node: %v", err)
		}
	})
	return n
}

func startBatcher(ctx context.Context, t *testing.T, cfg peers.BatcherConfig) *peers.Batcher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	b, err := peers.StartBatcher(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Err(); err != nil {
			t.Errorf("op-batcher stopped itself: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("close op-batcher: %v", err)
		}
	})
	return b
}

// inboxTxs counts the batcher transactions of each type (calldata, blob) to the inbox in
// L1 blocks 1..head.
func inboxTxs(l1 *devnet.L1, inbox common.Address) (calldata, blobs int) {
	chain := l1.Backend().BlockChain()
	for n := uint64(1); n <= l1.Head().Number.Uint64(); n++ {
		b := chain.GetBlockByNumber(n)
		for _, tx := range b.Transactions() {
			if tx.To() == nil || *tx.To() != inbox {
				continue
			}
			if tx.Type() == types.BlobTxType {
				blobs++
			} else {
				calldata++
			}
		}
	}
	return calldata, blobs
}

// TestOpNodeDerivesOpkitChain: opkit's sequencer builds the chain, op-batcher v1.16.13
// posts it to the dev L1 in calldata and then in blobs, and op-node v1.16.13, as a
// verifier on its own op-geth (untrusted L1 RPC, blobs from the dev L1's beacon API),
// derives it: every height up to op-node's safe head has the sequencer's block hash and
// output root.
func TestOpNodeDerivesOpkitChain(t *testing.T) {
	buildPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// A cleanup, not a defer: the peers' cleanups must run first, while L1 and L2 are up.
	t.Cleanup(func() { d.Close() })
	start := time.Now()
	verifier := startOpNode(ctx, t, peers.OpNodeConfig{L1: d.L1, Rollup: d.Rollup, L2Genesis: d.L2Genesis})
	seq := dialRollup(ctx, t, d.Node.RPCEndpoint())
	ver := dialRollup(ctx, t, verifier.RPCEndpoint())

	calldata := startBatcher(ctx, t, peers.BatcherConfig{L1: d.L1, L2RPC: d.L2.HTTPEndpoint(), RollupRPC: d.Node.RPCEndpoint(), DataAvailability: "calldata"})
	if _, err := ver.WaitSafe(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := calldata.Close(); err != nil {
		t.Fatal(err)
	}
	// Blocks above the unsafe head at this point cannot have been posted in calldata.
	st, err := seq.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lastCalldata := st.UnsafeL2.Number
	t.Logf("%s: safe 5 from calldata", time.Since(start))
	startBatcher(ctx, t, peers.BatcherConfig{L1: d.L1, L2RPC: d.L2.HTTPEndpoint(), RollupRPC: d.Node.RPCEndpoint(), DataAvailability: "blobs"})
	vst, err := ver.WaitSafe(ctx, lastCalldata+4)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: safe %d from blobs", time.Since(start), vst.SafeL2.Number)
	if cd, bl := inboxTxs(d.L1, d.Rollup.BatchInboxAddress); cd == 0 || bl == 0 {
		t.Fatalf("the inbox got %d calldata and %d blob transactions", cd, bl)
	}
	if err := peers.Agree(ctx, 0, vst.SafeL2.Number, seq, ver); err != nil {
		t.Fatal(err)
	}
	t.Logf("op-node derived %d blocks (calldata up to %d, then blobs)", vst.SafeL2.Number, lastCalldata)
}

// sequencedChain is a running L1 and a sequencer whose chain a test checks.
type sequencedChain struct {
	l1        *devnet.L1
	rollup    *opkitrollup.Config
	genesis   *core.Genesis
	rollupRPC string // the sequencer's rollup node
	l2RPC     string // the sequencer's execution client
}

// TestOpNodeDerivesDepositsAndConfigUpdates: with op-node v1.16.13 as the sequencer and
// another as the verifier, deposits made at the dev L1's portal stand-in (a plain transfer
// and a depositTransaction call) and SystemConfig updates (gas limit, then a new batcher
// address that the second op-batcher posts from) reach both chains, and an opkit verifier
// derives the same blocks.
func TestOpNodeDerivesDepositsAndConfigUpdates(t *testing.T) {
	buildPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l1, err := devnet.StartL1(devnet.L1Config{BlockTime: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	genesis, rcfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900, BlockTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	sequencer := startOpNode(ctx, t, peers.OpNodeConfig{L1: l1, Rollup: rcfg, L2Genesis: genesis, Sequencer: true})
	checkDepositsAndConfigUpdates(ctx, t, sequencedChain{l1: l1, rollup: rcfg, genesis: genesis,
		rollupRPC: sequencer.RPCEndpoint(), l2RPC: sequencer.L2.HTTPEndpoint()})
}

// TestOpNodeDerivesOpkitDepositsAndConfigUpdates: the same with opkit's sequencer, which
// builds each block with its L1 origin's deposits and system config.
func TestOpNodeDerivesOpkitDepositsAndConfigUpdates(t *testing.T) {
	buildPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	checkDepositsAndConfigUpdates(ctx, t, sequencedChain{l1: d.L1, rollup: d.Rollup, genesis: d.L2Genesis,
		rollupRPC: d.Node.RPCEndpoint(), l2RPC: d.L2.HTTPEndpoint()})
}

// checkDepositsAndConfigUpdates starts op-batcher, an op-node verifier and an opkit
// verifier on c, makes two deposits, a gas-limit update and a batcher change (moving
// op-batcher to the new key), and checks that both verifiers' safe chains are the
// sequencer's (block hashes and outputs at every height), that op-node's holds the
// deposits, and that it carries in every block its L1 origin's gas limit and batcher.
func checkDepositsAndConfigUpdates(ctx context.Context, t *testing.T, c sequencedChain) {
	l1 := c.l1
	verifier := startOpNode(ctx, t, peers.OpNodeConfig{L1: l1, Rollup: c.rollup, L2Genesis: c.genesis})
	opkit := startOpkitVerifier(ctx, t, l1, c.rollup, c.genesis, "")
	seq := dialRollup(ctx, t, c.rollupRPC)
	ver := dialRollup(ctx, t, verifier.RPCEndpoint())
	first := startBatcher(ctx, t, peers.BatcherConfig{L1: l1, L2RPC: c.l2RPC, RollupRPC: c.rollupRPC})
	user := l1.Accounts()[7]
	bridged, err := l1.BridgeETH(ctx, user, big.NewInt(2e18))
	if err != nil {
		t.Fatal(err)
	}
	call := devnet.Deposit{To: common.HexToAddress("0x000000000000000000000000000000000000a7a7"), Mint: big.NewInt(7), Value: big.NewInt(7), GasLimit: 200_000, Data: []byte("to L2")}
	called, err := l1.SendDeposit(ctx, user, call)
	if err != nil {
		t.Fatal(err)
	}
	const newGasLimit = 45_000_000
	gasUpdate, err := l1.SetGasLimit(ctx, newGasLimit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ver.WaitSafe(ctx, 3); err != nil {
		t.Fatal(err)
	}
	newBatcher := l1.Accounts()[2]
	batcherUpdate, err := l1.SetBatcher(ctx, newBatcher.Address)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := seq.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lastByFirst := st.UnsafeL2.Number
	startBatcher(ctx, t, peers.BatcherConfig{L1: l1, L2RPC: c.l2RPC, RollupRPC: c.rollupRPC, Key: newBatcher.Key})
	// The verifier's safe head passes every block the first batcher could have posted, and
	// reaches an origin after the batcher change.
	vst, err := ver.WaitFor(ctx, "safe head past the batcher change", func(s *opeth.SyncStatus) bool {
		return s.SafeL2.Number > lastByFirst+2 && s.SafeL2.L1Origin.Number > batcherUpdate.BlockNumber.Uint64()
	})
	if err != nil {
		t.Fatal(err)
	}
	// And so is the opkit verifier's, block hashes and outputs, on its own op-geth.
	opkit.waitSafe(ctx, vst.SafeL2.Number)
	if err := errors.Join(peers.Agree(ctx, 0, vst.SafeL2.Number, seq, ver, opkit.RPC),
		sameBlocks(ctx, 0, vst.SafeL2.Number, c.l2RPC, verifier.L2.HTTPEndpoint(), opkit.L2.HTTPEndpoint())); err != nil {
		t.Fatal(err)
	}

	// Every deposit is in the safe chain, once, and succeeded.
	deposits, err := derive.UserDeposits([]*types.Receipt{bridged, called}, devnet.DepositContractAddress)
	if err != nil || len(deposits) != 2 {
		t.Fatalf("op-node reads %d deposits, %v", len(deposits), err)
	}
	l2, err := ethclient.DialContext(ctx, verifier.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for i, dep := range deposits {
		hash := types.NewTx(dep).Hash()
		rcpt, err := l2.TransactionReceipt(ctx, hash)
		if err != nil {
			t.Fatalf("deposit %d (%s) not on the verifier's L2: %v", i, hash, err)
		}
		if rcpt.Status != types.ReceiptStatusSuccessful || rcpt.BlockNumber.Uint64() > vst.SafeL2.Number {
			t.Fatalf("deposit %d: status %d in block %d, safe %d", i, rcpt.Status, rcpt.BlockNumber, vst.SafeL2.Number)
		}
	}
	before, err := l2.BalanceAt(ctx, call.To, big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	after, err := l2.BalanceAt(ctx, call.To, new(big.Int).SetUint64(vst.SafeL2.Number))
	if err != nil || new(big.Int).Sub(after, before).Cmp(call.Value) != 0 {
		t.Fatalf("deposit target went from %v to %v, %v", before, after, err)
	}

	// Gas limit and batcher: each block carries the config of its L1 origin.
	theirs := opNodeConfig(t, c.rollup)
	for n := uint64(1); n <= vst.SafeL2.Number; n++ {
		block, err := l2.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		info, err := derive.L1BlockInfoFromBytes(theirs, block.Time(), block.Transactions()[0].Data())
		if err != nil {
			t.Fatal(err)
		}
		wantGas, wantBatcher := c.rollup.Genesis.SystemConfig.GasLimit, c.rollup.Genesis.SystemConfig.BatcherAddr
		if info.Number >= gasUpdate.BlockNumber.Uint64() {
			wantGas = newGasLimit
		}
		if info.Number >= batcherUpdate.BlockNumber.Uint64() {
			wantBatcher = newBatcher.Address
		}
		if block.GasLimit() != wantGas || info.BatcherAddr != wantBatcher {
			t.Fatalf("block %d (origin %d): gas limit %d batcher %s, want %d %s", n, info.Number, block.GasLimit(), info.BatcherAddr, wantGas, wantBatcher)
		}
	}
}
