package interop_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/processors"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/types"
	"github.com/ethereum/go-ethereum/common"
	gethtypes "github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/log"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// testLevel is warn, or the level OPKIT_TEST_INFO names (info, debug).
func testLevel() slog.Level {
	switch os.Getenv("OPKIT_TEST_INFO") {
	case "":
		return slog.LevelWarn
	case "debug":
		return slog.LevelDebug
	default:
		return slog.LevelInfo
	}
}

// opLogger logs an OP Stack component at the test level, to stderr.
func opLogger(name string) log.Logger {
	lvl := log.LevelWarn
	switch testLevel() {
	case slog.LevelInfo:
		lvl = log.LevelInfo
	case slog.LevelDebug:
		lvl = log.LevelDebug
	}
	return log.NewLogger(log.NewTerminalHandlerWithLevel(os.Stderr, lvl, false)).New("system", name)
}

// watchedNode is a rollup node whose optimism_syncStatus a test polls.
type watchedNode struct {
	name string
	rpc  *gethrpc.Client
}

func dialWatched(t *testing.T, ctx context.Context, name, url string) watchedNode {
	t.Helper()
	c, err := gethrpc.DialContext(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return watchedNode{name: name, rpc: c}
}

func statusLine(st *oketh.SyncStatus) string {
	return fmt.Sprintf("l1 %d unsafe %d cross-unsafe %d local-safe %d cross-safe %d",
		st.CurrentL1.Number, st.UnsafeL2.Number, st.CrossUnsafeL2.Number, st.LocalSafeL2.Number, st.SafeL2.Number)
}

// waitHeads polls every node's optimism_syncStatus until done holds for each (i is the
// node's index), checking on the way that no node reports its heads out of order.
// extra, when set, adds the supervisor's own view to the progress lines.
func waitHeads(t *testing.T, ctx context.Context, nodes []watchedNode, extra func() string, what string, done func(i int, st *oketh.SyncStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		all := true
		var line string
		for i, n := range nodes {
			var st oketh.SyncStatus
			if err := n.rpc.CallContext(ctx, &st, "optimism_syncStatus"); err != nil {
				t.Fatalf("%s: optimism_syncStatus: %v", n.name, err)
			}
			line += fmt.Sprintf(" | %s: %s", n.name, statusLine(&st))
			if st.LocalSafeL2.Number < st.SafeL2.Number || st.UnsafeL2.Number < st.CrossUnsafeL2.Number || st.CrossUnsafeL2.Number < st.SafeL2.Number {
				t.Fatalf("%s heads out of order:%s", n.name, line)
			}
			if !done(i, &st) {
				all = false
			}
		}
		if extra != nil {
			line += " | " + extra()
		}
		if all {
			t.Logf("%s:%s", what, line)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s:%s", what, line)
		}
		t.Logf("status:%s", line)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// msgChain is an L2 chain a test sends a message on.
type msgChain struct {
	id interop.ChainID
	l2 *devnet.L2
}

// message is a cross-chain message a test sent: the initiating and executing receipts.
type message struct {
	init, exec       msgChain
	initRcpt         *gethtypes.Receipt
	execRcpt         *gethtypes.Receipt
	initNum, execNum uint64
}

// initCode is a contract creation that emits one log and leaves no code: the initiating
// message. MSTORE(0, 42) LOG0(0, 32) STOP.
var initCode = []byte{0x60, 0x2a, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xa0, 0x00}

// sendMessage initiates a message on init and executes it on exec through the
// CrossL2Inbox, with the payload hash as op-supervisor computes it, and checks that
// op-supervisor's decoder reads the executing log as that message.
func sendMessage(t *testing.T, ctx context.Context, init, exec msgChain) *message {
	t.Helper()
	initRcpt := sendL2(t, ctx, init.l2, nil, initCode)
	if len(initRcpt.Logs) != 1 {
		t.Fatalf("the initiating transaction logged %d logs", len(initRcpt.Logs))
	}
	initLog := initRcpt.Logs[0]
	initHdr := init.l2.Backend().BlockChain().GetHeaderByHash(initRcpt.BlockHash)
	if initHdr == nil {
		t.Fatalf("no header for block %s", initRcpt.BlockHash)
	}
	id := interop.Identifier{
		Origin: initLog.Address, BlockNumber: initRcpt.BlockNumber.Uint64(), LogIndex: uint32(initLog.Index),
		Timestamp: initHdr.Time, ChainID: init.id,
	}
	payloadHash := crypto.Keccak256Hash(types.LogToMessagePayload(initLog))
	inbox := interop.CrossL2Inbox
	execRcpt := sendL2(t, ctx, exec.l2, &inbox, devnet.ValidateMessageCalldata(id, payloadHash))
	if len(execRcpt.Logs) != 1 {
		t.Fatalf("the inbox emitted %d logs", len(execRcpt.Logs))
	}
	chain := eth.ChainIDFromUInt64(uint64(id.ChainID))
	want := types.ExecutingMessage{
		ChainID: chain, BlockNum: id.BlockNumber, LogIdx: id.LogIndex, Timestamp: id.Timestamp,
		Checksum: types.ChecksumArgs{
			BlockNumber: id.BlockNumber, LogIndex: id.LogIndex, Timestamp: id.Timestamp, ChainID: chain,
			LogHash: types.PayloadHashToLogHash(payloadHash, id.Origin),
		}.Checksum(),
	}
	if msg, err := processors.DecodeExecutingMessageLog(execRcpt.Logs[0]); err != nil || msg == nil || *msg != want {
		t.Fatalf("op-supervisor decodes the executing message as %v (%v), want %v", msg, err, &want)
	}
	return &message{init: init, exec: exec, initRcpt: initRcpt, execRcpt: execRcpt,
		initNum: id.BlockNumber, execNum: execRcpt.BlockNumber.Uint64()}
}

// checkKept fails unless both blocks of the message are still canonical: a valid
// message is neither invalidated nor reorged out.
func (m *message) checkKept(t *testing.T) {
	t.Helper()
	if h := m.exec.l2.Backend().BlockChain().GetHeaderByNumber(m.execNum); h == nil || h.Hash() != m.execRcpt.BlockHash {
		t.Fatalf("the block executing a valid message on chain %s was replaced", m.exec.id)
	}
	if h := m.init.l2.Backend().BlockChain().GetHeaderByNumber(m.initNum); h == nil || h.Hash() != m.initRcpt.BlockHash {
		t.Fatalf("the initiating block on chain %s was reorged out", m.init.id)
	}
}

// sendL2 sends a transaction from the first dev account on l2 and waits for its
// successful receipt.
func sendL2(t *testing.T, ctx context.Context, l2 *devnet.L2, to *common.Address, data []byte) *gethtypes.Receipt {
	t.Helper()
	c, err := ethclient.DialContext(ctx, l2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	chainID := l2.ChainConfig().ChainID
	key := devnet.DevAccounts(1)[0].Key
	nonce, err := c.PendingNonceAt(ctx, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tx := gethtypes.MustSignNewTx(key, gethtypes.LatestSignerForChainID(chainID), &gethtypes.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11),
		Gas: 300_000, To: to, Data: data,
	})
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := c.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != gethtypes.ReceiptStatusSuccessful {
				t.Fatalf("transaction %s on chain %s failed", tx.Hash(), chainID)
			}
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s on chain %s: %v", tx.Hash(), chainID, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
