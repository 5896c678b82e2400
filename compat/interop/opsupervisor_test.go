package interop_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-supervisor/config"
	opsupervisor "github.com/ethereum-optimism/optimism/op-supervisor/supervisor"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/depset"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/processors"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/syncnode"
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

// testLogger logs at warn, or at the level OPKIT_TEST_INFO names (info, debug), to stderr.
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

// startOPSupervisor runs op-supervisor v1.16.13's whole service (its backend with its
// databases, L1 processor and a syncnode controller per node) managing the nodes of dn.
func startOPSupervisor(t *testing.T, ctx context.Context, dn *devnet.InteropDevnet) *opsupervisor.SupervisorService {
	t.Helper()
	hdr := dn.L1.Backend().BlockChain().Genesis().Header()
	rollups := make(map[eth.ChainID]*depset.StaticRollupConfig)
	deps := make(map[eth.ChainID]*depset.StaticConfigDependency)
	nodes := &syncnode.CLISyncNodes{}
	for _, c := range dn.Chains {
		id := eth.ChainIDFromUInt64(uint64(c.ID))
		g := c.Rollup.Genesis
		if g.L1.Hash != hdr.Hash() {
			t.Fatalf("chain %s starts after L1 block %s, not the L1 genesis", c.ID, g.L1)
		}
		rollups[id] = &depset.StaticRollupConfig{
			Genesis: depset.Genesis{
				L1: types.BlockSeal{Hash: g.L1.Hash, Number: g.L1.Number, Timestamp: hdr.Time},
				L2: types.BlockSeal{Hash: g.L2.Hash, Number: g.L2.Number, Timestamp: g.L2Time},
			},
			BlockTime: c.Rollup.BlockTime, InteropTime: c.Rollup.InteropTime,
		}
		deps[id] = &depset.StaticConfigDependency{}
		nodes.Endpoints = append(nodes.Endpoints, c.Node.InteropEndpoint())
		nodes.JWTSecretPaths = append(nodes.JWTSecretPaths, c.SecretPath)
	}
	depSet, err := depset.NewStaticConfigDependencySet(deps)
	if err != nil {
		t.Fatal(err)
	}
	full, err := depset.NewFullConfigSetMerged(depset.StaticRollupConfigSet(rollups), depSet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.NewConfig(dn.L1.HTTPEndpoint(), nodes, full, filepath.Join(t.TempDir(), "op-supervisor"))
	cfg.RPC.ListenAddr, cfg.RPC.ListenPort = "127.0.0.1", 0
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	lvl := log.LevelWarn
	switch testLevel() {
	case slog.LevelInfo:
		lvl = log.LevelInfo
	case slog.LevelDebug:
		lvl = log.LevelDebug
	}
	logger := log.NewLogger(log.NewTerminalHandlerWithLevel(os.Stderr, lvl, false)).New("system", "op-supervisor")
	sup, err := opsupervisor.SupervisorFromConfig(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sup.Stop(stopCtx); err != nil {
			t.Errorf("stop op-supervisor: %v", err)
		}
	})
	return sup
}

// TestOPSupervisorManagesOpkitNodes: op-supervisor v1.16.13's service manages two opkit
// nodes in managed mode on the interop devnet (a dev L1, a batcher per chain posting to
// it): it feeds each node L1 on exhaustL1, indexes their blocks and promotes them, and
// the nodes' cross-unsafe and cross-safe heads advance.
func TestOPSupervisorManagesOpkitNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dn, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		ChainIDs: []uint64{901, 902}, NoSupervisor: true, L1BlockTime: time.Second, L2BlockTime: 1, SequencerL1Confs: 6,
		L1PollInterval: 100 * time.Millisecond, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLevel()})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dn.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	})
	sup := startOPSupervisor(t, ctx, dn)
	supRPC, err := gethrpc.DialContext(ctx, sup.RPC())
	if err != nil {
		t.Fatal(err)
	}
	defer supRPC.Close()
	nodeRPC := make([]*gethrpc.Client, len(dn.Chains))
	for i, c := range dn.Chains {
		if nodeRPC[i], err = gethrpc.DialContext(ctx, c.Node.RPCEndpoint()); err != nil {
			t.Fatal(err)
		}
		defer nodeRPC[i].Close()
	}

	waitCross(t, ctx, dn, supRPC, nodeRPC, "cross heads at 4", func(i int, st *oketh.SyncStatus) bool {
		return st.SafeL2.Number >= 4 && st.CrossUnsafeL2.Number >= 4
	})

	// A message initiated on 901 (the log a contract creation emits) and executed on 902
	// through the CrossL2Inbox, with the payload hash as op-supervisor computes it.
	a, b := dn.Chains[0], dn.Chains[1]
	initRcpt := sendL2(t, ctx, a, nil, []byte{0x60, 0x2a, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xa0, 0x00}) // MSTORE(0, 42) LOG0(0, 32) STOP
	if len(initRcpt.Logs) != 1 {
		t.Fatalf("the initiating transaction logged %d logs", len(initRcpt.Logs))
	}
	initLog := initRcpt.Logs[0]
	initHdr := a.L2.Backend().BlockChain().GetHeaderByHash(initRcpt.BlockHash)
	if initHdr == nil {
		t.Fatalf("no header for block %s", initRcpt.BlockHash)
	}
	id := interop.Identifier{
		Origin: initLog.Address, BlockNumber: initRcpt.BlockNumber.Uint64(), LogIndex: uint32(initLog.Index),
		Timestamp: initHdr.Time, ChainID: a.ID,
	}
	payloadHash := crypto.Keccak256Hash(types.LogToMessagePayload(initLog))
	inbox := interop.CrossL2Inbox
	execRcpt := sendL2(t, ctx, b, &inbox, devnet.ValidateMessageCalldata(id, payloadHash))
	if len(execRcpt.Logs) != 1 {
		t.Fatalf("the inbox emitted %d logs", len(execRcpt.Logs))
	}
	wantMsg := types.ExecutingMessage{
		ChainID: eth.ChainIDFromUInt64(uint64(id.ChainID)), BlockNum: id.BlockNumber, LogIdx: id.LogIndex, Timestamp: id.Timestamp,
		Checksum: types.ChecksumArgs{
			BlockNumber: id.BlockNumber, LogIndex: id.LogIndex, Timestamp: id.Timestamp, ChainID: eth.ChainIDFromUInt64(uint64(id.ChainID)),
			LogHash: types.PayloadHashToLogHash(payloadHash, id.Origin),
		}.Checksum(),
	}
	if msg, err := processors.DecodeExecutingMessageLog(execRcpt.Logs[0]); err != nil || msg == nil || *msg != wantMsg {
		t.Fatalf("op-supervisor decodes the executing message as %v (%v), want %v", msg, err, &wantMsg)
	}
	initNum, execNum := id.BlockNumber, execRcpt.BlockNumber.Uint64()
	waitCross(t, ctx, dn, supRPC, nodeRPC, "the message cross-safe on both chains", func(i int, st *oketh.SyncStatus) bool {
		n := initNum
		if i == 1 {
			n = execNum
		}
		return st.SafeL2.Number >= n && st.CrossUnsafeL2.Number >= n
	})
	if h := b.L2.Backend().BlockChain().GetHeaderByNumber(execNum); h == nil || h.Hash() != execRcpt.BlockHash {
		t.Fatalf("the block executing a valid message was replaced")
	}
	if h := a.L2.Backend().BlockChain().GetHeaderByNumber(initNum); h == nil || h.Hash() != initRcpt.BlockHash {
		t.Fatalf("the initiating block was reorged out")
	}
}

// waitCross polls both sides, op-supervisor's supervisor_syncStatus and each node's
// optimism_syncStatus, until done holds for every chain's node status.
func waitCross(t *testing.T, ctx context.Context, dn *devnet.InteropDevnet, supRPC *gethrpc.Client, nodeRPC []*gethrpc.Client,
	what string, done func(i int, st *oketh.SyncStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		var supSt eth.SupervisorSyncStatus
		if err := supRPC.CallContext(ctx, &supSt, "supervisor_syncStatus"); err != nil {
			t.Logf("supervisor_syncStatus: %v", err)
		}
		all := true
		var line string
		for i, c := range dn.Chains {
			var st oketh.SyncStatus
			if err := nodeRPC[i].CallContext(ctx, &st, "optimism_syncStatus"); err != nil {
				t.Fatal(err)
			}
			line += " | " + c.ID.String() + ": " + statusLine(&st)
			if cs := supSt.Chains[eth.ChainIDFromUInt64(uint64(c.ID))]; cs != nil {
				line += " sup(cu " + cs.CrossUnsafe.String() + " cs " + cs.CrossSafe.String() + ")"
			}
			if st.LocalSafeL2.Number < st.SafeL2.Number || st.UnsafeL2.Number < st.CrossUnsafeL2.Number || st.CrossUnsafeL2.Number < st.SafeL2.Number {
				t.Fatalf("chain %s heads out of order:%s", c.ID, line)
			}
			if !done(i, &st) {
				all = false
			}
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

// sendL2 sends a transaction from the first dev account on chain c and waits for its
// successful receipt.
func sendL2(t *testing.T, ctx context.Context, c *devnet.InteropChain, to *common.Address, data []byte) *gethtypes.Receipt {
	t.Helper()
	l2, err := ethclient.DialContext(ctx, c.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	key := devnet.DevAccounts(1)[0].Key
	nonce, err := l2.PendingNonceAt(ctx, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tx := gethtypes.MustSignNewTx(key, gethtypes.LatestSignerForChainID(c.Rollup.L2ChainID), &gethtypes.DynamicFeeTx{
		ChainID: c.Rollup.L2ChainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11),
		Gas: 300_000, To: to, Data: data,
	})
	if err := l2.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := l2.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != gethtypes.ReceiptStatusSuccessful {
				t.Fatalf("transaction %s on chain %s failed", tx.Hash(), c.ID)
			}
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s on chain %s: %v", tx.Hash(), c.ID, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func statusLine(st *oketh.SyncStatus) string {
	return fmt.Sprintf("l1 %d unsafe %d cross-unsafe %d local-safe %d cross-safe %d",
		st.CurrentL1.Number, st.UnsafeL2.Number, st.CrossUnsafeL2.Number, st.LocalSafeL2.Number, st.SafeL2.Number)
}
