package node_test

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// emitterCreation deploys a contract that logs its calldata (LOG0): a message on one
// chain for the other to execute.
var emitterCreation = []byte{
	0x67, 0x36, 0x5f, 0x5f, 0x37, 0x36, 0x5f, 0xa0, 0x00, // PUSH8 runtime: CALLDATACOPY(0,0,size) LOG0(0,size) STOP
	0x5f, 0x52, // MSTORE at 0
	0x60, 0x08, 0x60, 0x18, 0xf3, // RETURN(24, 8)
}

type interopChain struct {
	t   *testing.T
	c   *devnet.InteropChain
	l2  *ethclient.Client
	rpc *rpc.Client
	key *ecdsa.PrivateKey
}

func (c *interopChain) status() *eth.SyncStatus { return syncStatus(c.t, c.rpc) }

// send signs a transaction from the chain's first dev account and waits for its receipt.
func (c *interopChain) send(to *common.Address, data []byte) *types.Receipt {
	return c.sendWith(to, data, nil)
}

// execute sends the CrossL2Inbox call that executes the message id names, with the
// message's access-list entries, as the OP Stack's inbox requires.
func (c *interopChain) execute(id interop.Identifier, payloadHash common.Hash) *types.Receipt {
	inbox := interop.CrossL2Inbox
	al := types.AccessList{{Address: inbox, StorageKeys: interop.AccessListEntries(id, payloadHash)}}
	return c.sendWith(&inbox, devnet.ValidateMessageCalldata(id, payloadHash), al)
}

func (c *interopChain) sendWith(to *common.Address, data []byte, al types.AccessList) *types.Receipt {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := c.submit(ctx, to, data, al)
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := c.l2.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("transaction %s failed", tx.Hash())
			}
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s: %v", tx.Hash(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// submit signs a transaction from the chain's first dev account and hands it to op-geth,
// returning op-geth's answer.
func (c *interopChain) submit(ctx context.Context, to *common.Address, data []byte, al types.AccessList) (*types.Transaction, error) {
	from := crypto.PubkeyToAddress(c.key.PublicKey)
	nonce, err := c.l2.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, err
	}
	tx := types.MustSignNewTx(c.key, types.LatestSignerForChainID(c.c.Rollup.L2ChainID), &types.DynamicFeeTx{
		ChainID: c.c.Rollup.L2ChainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11),
		Gas: 500_000, To: to, Data: data, AccessList: al,
	})
	return tx, c.l2.SendTransaction(ctx, tx)
}

func (c *interopChain) blockHash(n uint64) common.Hash {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := c.l2.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		c.t.Fatal(err)
	}
	return h.Hash()
}

func startInterop(t *testing.T) []*interopChain {
	t.Helper()
	_, chains := startInteropWith(t, devnet.InteropConfig{L1BlockTime: 2 * time.Second, L2BlockTime: 2})
	return chains
}

// startInteropWith starts an interop devnet (cfg's data directory, poll interval and
// logger filled in for the test) and dials each chain.
func startInteropWith(t *testing.T, cfg devnet.InteropConfig) (*devnet.InteropDevnet, []*interopChain) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cfg.L1PollInterval == 0 {
		cfg.L1PollInterval = 100 * time.Millisecond
	}
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()}))
	d, err := devnet.StartInterop(ctx, cfg)
	if err != nil {
		t.Fatalf("start interop devnet: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close interop devnet: %v", err)
		}
	})
	var out []*interopChain
	for _, c := range d.Chains {
		l2, err := ethclient.Dial(c.L2.HTTPEndpoint())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l2.Close)
		out = append(out, &interopChain{t: t, c: c, l2: l2, rpc: dialNode(t, c.Node.RPCEndpoint()), key: devnet.DevAccounts(1)[0].Key})
	}
	return d, out
}

// waitCrossSafe waits until the chain's cross-safe head is at or past n and returns the
// status then.
func (c *interopChain) waitCrossSafe(n uint64, timeout time.Duration) *eth.SyncStatus {
	c.t.Helper()
	var st *eth.SyncStatus
	deadline := time.Now().Add(timeout)
	for {
		st = c.status()
		if st.SafeL2.Number >= n {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for cross-safe %d on chain %s: current_l1 %d, unsafe %d, cross-unsafe %d, local-safe %d, cross-safe %d",
				timeout, n, c.c.ID, st.CurrentL1.Number, st.UnsafeL2.Number, st.CrossUnsafeL2.Number, st.LocalSafeL2.Number, st.SafeL2.Number)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two opkit nodes in managed mode, each sequencing with a batcher posting to one L1,
// managed by opkit's supervisor: local-safe and cross-safe advance on both; a message
// initiated on 901 and executed on 902 becomes cross-safe; an executing message naming
// a log that does not exist gets its block replaced, and both chains continue.
func TestManagedNodesUnderSupervisor(t *testing.T) {
	chains := startInterop(t)
	a, b := chains[0], chains[1]
	for _, c := range chains {
		st := c.waitCrossSafe(2, 180*time.Second)
		if st.LocalSafeL2.Number < st.SafeL2.Number || st.UnsafeL2.Number < st.CrossUnsafeL2.Number || st.CrossUnsafeL2.Number < st.SafeL2.Number {
			t.Fatalf("chain %s heads out of order: unsafe %d, cross-unsafe %d, local-safe %d, cross-safe %d",
				c.c.ID, st.UnsafeL2.Number, st.CrossUnsafeL2.Number, st.LocalSafeL2.Number, st.SafeL2.Number)
		}
		if st.CurrentL1.Number == 0 {
			t.Fatalf("chain %s: current_l1 is zero with cross-safe %d", c.c.ID, st.SafeL2.Number)
		}
	}

	// An initiating message on 901.
	deploy := a.send(nil, emitterCreation)
	initRcpt := a.send(&deploy.ContractAddress, []byte("hello 902"))
	if len(initRcpt.Logs) != 1 {
		t.Fatalf("emitter logged %d logs", len(initRcpt.Logs))
	}
	initLog := initRcpt.Logs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	initHeader, err := a.l2.HeaderByHash(ctx, initRcpt.BlockHash)
	if err != nil {
		t.Fatal(err)
	}
	id := interop.Identifier{
		Origin: deploy.ContractAddress, BlockNumber: initRcpt.BlockNumber.Uint64(), LogIndex: uint32(initLog.Index),
		Timestamp: initHeader.Time, ChainID: a.c.ID,
	}
	execRcpt := b.execute(id, interop.PayloadHash(initLog))
	if len(execRcpt.Logs) != 1 {
		t.Fatalf("the inbox emitted %d logs", len(execRcpt.Logs))
	}
	if m, err := interop.DecodeExecutingMessage(execRcpt.Logs[0]); err != nil || m.Identifier != id || m.PayloadHash != interop.PayloadHash(initLog) {
		t.Fatalf("the inbox emitted %+v (%v), want the message %+v", m, err, id)
	}
	execNum := execRcpt.BlockNumber.Uint64()
	b.waitCrossSafe(execNum, 180*time.Second)
	if got := b.blockHash(execNum); got != execRcpt.BlockHash {
		t.Fatalf("the block executing a valid message was replaced: %s, was %s", got, execRcpt.BlockHash)
	}

	// An executing message naming a log the initiating block does not have.
	bad := id
	bad.LogIndex = 99
	badRcpt := b.execute(bad, interop.PayloadHash(initLog))
	badNum := badRcpt.BlockNumber.Uint64()
	waitFor(t, 180*time.Second, "the block with the invalid message replaced", func() bool {
		return b.blockHash(badNum) != badRcpt.BlockHash
	})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	replacement, err := b.l2.BlockByNumber(ctx2, new(big.Int).SetUint64(badNum))
	if err != nil {
		t.Fatal(err)
	}
	// With interop active, op-geth does not put a dropped block's executing messages back
	// in its pool: the invalid one is gone and is never included again.
	bst := b.waitCrossSafe(badNum+3, 180*time.Second)
	ctx3, cancel3 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel3()
	for n := badNum; n <= bst.UnsafeL2.Number; n++ {
		blk, err := b.l2.BlockByNumber(ctx3, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if blk.Transaction(badRcpt.TxHash) != nil {
			t.Fatalf("the invalid executing message was included again, in block %d", n)
		}
	}
	if _, pending, err := b.l2.TransactionByHash(ctx3, badRcpt.TxHash); err == nil {
		t.Fatalf("the invalid executing message is still known to the pool (pending %v)", pending)
	}
	for _, tx := range replacement.Transactions() {
		if tx.Type() != types.DepositTxType {
			t.Fatalf("replacement block %d carries non-deposit transaction %s", badNum, tx.Hash())
		}
	}
	if tx := replacement.Transaction(badRcpt.TxHash); tx != nil {
		t.Fatalf("replacement still carries the invalid executing message")
	}
	var pending eth.OutputV0
	sec := b.c.Secret
	cl, err := rpc.DialOptions(ctx3, b.c.Node.InteropEndpoint(), rpc.WithHTTPAuth(sec.HTTPAuth()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.CallContext(ctx3, &pending, "interop_pendingOutputV0AtTimestamp", replacement.Time()); err != nil {
		t.Fatal(err)
	}
	if pending.BlockHash != badRcpt.BlockHash {
		t.Fatalf("pending output names block %s, want the invalidated %s", pending.BlockHash, badRcpt.BlockHash)
	}
	a.waitCrossSafe(bst.SafeL2.Number, 180*time.Second)
}

func testLogLevel() slog.Level {
	if os.Getenv("OPKIT_TEST_INFO") != "" {
		if os.Getenv("OPKIT_TEST_INFO") == "debug" {
			return slog.LevelDebug
		}
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
