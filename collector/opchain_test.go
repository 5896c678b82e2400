package collector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
)

// opChains is an OP Stack L2 with the real predeploys, on a dev L1: a path-scheme client
// (what the collector follows), sequenced block by block, and a hash-scheme archive of the
// same chain (the ground truth).
type opChains struct {
	l1      *devnet.L1
	hot     *devnet.L2
	archive *devnet.L2
	miner   *devnet.L2Miner
	fed     uint64
}

func startOPChains(t testing.TB) *opChains {
	t.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l1.Close(); err != nil {
			t.Errorf("close L1: %v", err)
		}
	})
	genesis, rcfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: l1.ChainConfig().ChainID.Uint64()})
	if err != nil {
		t.Fatal(err)
	}
	start := func(cfg devnet.L2Config) *devnet.L2 {
		l2, err := devnet.StartL2(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := l2.Close(); err != nil {
				t.Errorf("close L2: %v", err)
			}
		})
		return l2
	}
	c := &opChains{
		l1:      l1,
		hot:     start(devnet.L2Config{DataDir: filepath.Join(t.TempDir(), "hot"), Genesis: genesis, Scheme: devnet.Path}),
		archive: start(devnet.L2Config{Genesis: genesis, Scheme: devnet.HashArchive}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.miner, err = devnet.NewL2Miner(ctx, l1, c.hot, rcfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.miner.Close)
	return c
}

// feed inserts the hot client's new canonical blocks into the archive.
func (c *opChains) feed(t testing.TB) {
	t.Helper()
	hotBC := c.hot.Backend().BlockChain()
	head := hotBC.CurrentBlock().Number.Uint64()
	var blocks types.Blocks
	for n := c.fed + 1; n <= head; n++ {
		blocks = append(blocks, hotBC.GetBlockByNumber(n))
	}
	if len(blocks) == 0 {
		return
	}
	if _, err := c.archive.Backend().BlockChain().InsertChain(blocks); err != nil {
		t.Fatalf("archive rejected blocks %d..%d: %v", c.fed+1, head, err)
	}
	c.fed = head
}

// storageKeys lists every slot the account holds before block's transactions, from the
// archive, which keeps the preimages of hashed keys.
func storageKeys(t testing.TB, ctx context.Context, arch *rpc.Client, addr common.Address, block *types.Block) []string {
	t.Helper()
	var keys []string
	next := hexutil.Bytes{}
	for {
		var res struct {
			Storage map[common.Hash]struct {
				Key *common.Hash `json:"key"`
			} `json:"storage"`
			NextKey *common.Hash `json:"nextKey"`
		}
		if err := arch.CallContext(ctx, &res, "debug_storageRangeAt", block.Hash(), 0, addr, next, 256); err != nil {
			t.Fatalf("storage of %s at %d: %v", addr, block.NumberU64(), err)
		}
		for _, e := range res.Storage {
			if e.Key == nil {
				t.Fatalf("archive lacks the preimage of a storage key of %s", addr)
			}
			keys = append(keys, e.Key.Hex())
		}
		if res.NextKey == nil {
			break
		}
		next = res.NextKey[:]
	}
	slices.Sort(keys)
	return keys
}

// TestCollectorFollowsOPChain follows a path-scheme OP chain with the real predeploys
// under a load that reads absent accounts, withdraws (touching the message passer) and
// does not (every other transaction), writes and deletes storage, creates and
// self-destructs contracts and delegates with EIP-7702, for several windows. After every
// pass each block in the window replays from the collector's store alone, and the output
// proposer's and withdrawal prover's calls (eth_getProof of the message passer, with no
// slots and with every slot it holds) and the output roots equal the archive's.
func TestCollectorFollowsOPChain(t *testing.T) {
	t.Parallel()
	ch := startOPChains(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const (
		window = 5
		passes = 4
		per    = 4 // blocks mined between passes
	)
	// 7 transactions a block: the load's 12 kinds rotate through the blocks, so some
	// blocks initiate a withdrawal (touch the message passer) and some do not.
	load := devnet.NewLoad(ch.miner, devnet.LoadConfig{TxsPerBlock: 7, Seed: 21})
	c := newCollector(t, ch.hot.HTTPEndpoint(), t.TempDir(), window)
	defer closeCollector(t, c)
	srv := startServer(t, c)
	col := dial(t, srv.HTTPURL())
	arch := dial(t, ch.archive.HTTPEndpoint())
	bc := ch.hot.Backend().BlockChain()
	signer := types.LatestSignerForChainID(ch.hot.ChainConfig().ChainID)
	for pass := 0; pass < passes; pass++ {
		if err := load.MineBlocks(ctx, per); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		ch.feed(t)
		first, last, ok, _ := c.Store().Bounds()
		head := bc.CurrentBlock().Number.Uint64()
		wantFirst := uint64(1)
		if head >= window {
			wantFirst = head - window + 1
		}
		if !ok || first != wantFirst || last != head {
			t.Fatalf("pass %d: window %d..%d (%v), want %d..%d", pass, first, last, ok, wantFirst, head)
		}
		verifyRange(t, srv.HTTPURL(), first, last)
		checkNoLeak(t, c.Store())
		for n := first; n <= last; n++ {
			block := bc.GetBlockByNumber(n)
			num := hexutil.EncodeUint64(n)
			// The message passer's slots after block n are those before block n+1 (for the
			// head, those before n: it never deletes one, so they are all still there).
			next := bc.GetBlockByNumber(n + 1)
			if next == nil {
				next = block
			}
			queries := []proofQuery{
				{addr: collector.MessagePasser, slots: []string{}},
				{addr: collector.MessagePasser, slots: storageKeys(t, ctx, arch, collector.MessagePasser, next)},
			}
			// Everything the block's transactions touched, absent accounts included
			// (in the last pass: every block is in one window at least once).
			for _, tx := range block.Transactions() {
				if pass != passes-1 {
					break
				}
				if tx.Type() == types.DepositTxType {
					continue
				}
				from, _ := types.Sender(signer, tx)
				queries = append(queries, proofQuery{addr: from, slots: []string{}})
				if tx.To() != nil {
					slots := []string{}
					if len(tx.Data()) == 64 {
						slots = []string{hexutil.Encode(tx.Data()[:32])}
					}
					queries = append(queries, proofQuery{addr: *tx.To(), slots: slots})
				}
			}
			for _, q := range queries {
				var want, got json.RawMessage
				args := []any{q.addr, q.slots, num}
				if err := arch.CallContext(ctx, &want, "eth_getProof", args...); err != nil {
					t.Fatalf("archive proof: %v", err)
				}
				if err := col.CallContext(ctx, &got, "eth_getProof", args...); err != nil {
					t.Fatalf("block %d: collector cannot prove %s with %d slots: %v", n, q.addr, len(q.slots), err)
				}
				if string(want) != string(got) {
					t.Fatalf("block %d: proof of %s with %d slots differs:\narchive   %s\ncollector %s", n, q.addr, len(q.slots), want, got)
				}
			}
			// The output root, from the collector alone, is the one the archive implies.
			var proof struct {
				StorageHash common.Hash `json:"storageHash"`
			}
			if err := arch.CallContext(ctx, &proof, "eth_getProof", collector.MessagePasser, []string{}, num); err != nil {
				t.Fatal(err)
			}
			if block.Header().WithdrawalsHash == nil || *block.Header().WithdrawalsHash != proof.StorageHash {
				t.Fatalf("block %d: withdrawalsRoot %v, message passer storage root %s", n, block.Header().WithdrawalsHash, proof.StorageHash)
			}
			want := eth.OutputV0{StateRoot: block.Root(), MessagePasserStorageRoot: proof.StorageHash, BlockHash: block.Hash()}.Root()
			var out collector.OutputResponse
			if err := col.CallContext(ctx, &out, "collector_outputAtBlock", num); err != nil {
				t.Fatalf("block %d: collector_outputAtBlock: %v", n, err)
			}
			if out.OutputRoot != want || out.WithdrawalStorageRoot != proof.StorageHash || out.BlockHash != block.Hash() {
				t.Fatalf("block %d: collector output %+v, want root %s", n, out, want)
			}
		}
	}
	var touching, untouching int
	for n := uint64(1); n <= bc.CurrentBlock().Number.Uint64(); n++ {
		touches := false
		for _, tx := range bc.GetBlockByNumber(n).Transactions() {
			if tx.To() != nil && *tx.To() == collector.MessagePasser {
				touches = true
			}
		}
		if touches {
			touching++
		} else {
			untouching++
		}
	}
	if touching == 0 || untouching == 0 {
		t.Fatalf("%d blocks touch the message passer, %d do not: the load should do both", touching, untouching)
	}
	// A block that left the window is refused, and the refusal names the window.
	var out json.RawMessage
	err := col.CallContext(ctx, &out, "eth_getProof", collector.MessagePasser, []string{}, "0x1")
	if err == nil {
		t.Fatal("proof at a block that left the window was answered")
	}
	first, last, _, _ := c.Store().Bounds()
	if want := fmt.Sprintf("outside the collector's window %d..%d", first, last); !strings.Contains(err.Error(), want) {
		t.Fatalf("refusal %q does not say %q", err, want)
	}
}
