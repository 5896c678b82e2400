package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/depset"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/supervisor"
)

// managedOPNode is op-node v1.16.13 (the peers harness's process) sequencing an interop
// chain in managed mode, with its own op-geth.
type managedOPNode struct {
	ID      interop.ChainID
	Node    *peers.OpNode
	L2      *devnet.L2
	Interop string // the managed endpoint
	Secret  interop.Secret
}

// startManagedOPNode plans chain id on dn's L1 (interop from genesis, batches from
// batcher's address) and runs op-node as its sequencer in managed mode, serving its
// interop RPC with a dependency set of deps in op-node's own format.
func startManagedOPNode(t *testing.T, ctx context.Context, dn *devnet.InteropDevnet, id uint64, batcher devnet.Account, deps []uint64) *managedOPNode {
	t.Helper()
	dir := t.TempDir()
	g, rcfg, err := devnet.PlanL2(devnet.ChainPlan{
		L1Origin: dn.L1.Backend().BlockChain().Genesis().Header(), L1ChainID: dn.L1.ChainConfig().ChainID.Uint64(),
		L2ChainID: id, BlockTime: 1, Batcher: batcher.Address, Interop: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	secretPath := filepath.Join(dir, "interop-jwt.hex")
	secret, err := interop.LoadOrCreateSecret(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	depMap := make(map[eth.ChainID]*depset.StaticConfigDependency)
	for _, d := range deps {
		depMap[eth.ChainIDFromUInt64(d)] = &depset.StaticConfigDependency{}
	}
	ds, err := depset.NewStaticConfigDependencySet(depMap)
	if err != nil {
		t.Fatal(err)
	}
	dsJSON, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	depPath := filepath.Join(dir, "dependency-set.json")
	if err := os.WriteFile(depPath, dsJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLevel()})).With("chain", id)
	n, err := peers.StartOpNode(ctx, peers.OpNodeConfig{
		L1: dn.L1, Rollup: rcfg, L2Genesis: g, Sequencer: true, Dir: dir, Logger: logger,
		ExtraFlags: []string{
			"--harness.managed", "--interop.rpc.addr=127.0.0.1", fmt.Sprintf("--interop.rpc.port=%d", port),
			"--interop.jwt-secret=" + secretPath, "--interop.dependency-set=" + depPath,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("stop op-node: %v", err)
		}
	})
	return &managedOPNode{ID: interop.ChainID(id), Node: n, L2: n.L2, Interop: fmt.Sprintf("ws://127.0.0.1:%d", port), Secret: secret}
}

// TestOpkitSupervisorManagesOPNode: opkit's supervisor manages op-node v1.16.13 in
// managed mode, sequencing chain 902 with an opkit batcher posting its batches to the
// dev L1, side by side with an opkit node sequencing chain 901 on the same L1: the
// supervisor feeds both L1, indexes both, and cross-unsafe and cross-safe advance on
// both nodes.
func TestOpkitSupervisorManagesOPNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Built before the devnet starts, so that its chain does not run ahead meanwhile.
	if err := peers.Build(ctx); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLevel()}))
	dn, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		ChainIDs: []uint64{901}, NoSupervisor: true, L1BlockTime: time.Second, L2BlockTime: 1,
		L1PollInterval: 100 * time.Millisecond, DataDir: t.TempDir(), Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dn.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	})
	// The interop devnet's batchers post with L1 dev accounts 2 and up; op-node's chain
	// takes account 1.
	op := startManagedOPNode(t, ctx, dn, 902, dn.L1.Accounts()[1], []uint64{901, 902})
	b, err := batcher.New(ctx, batcher.Config{
		L1URL: dn.L1.HTTPEndpoint(), L2URL: op.L2.HTTPEndpoint(), RollupURL: op.Node.RPCEndpoint(), Key: dn.L1.Accounts()[1].Key,
		DAType: batcher.DACalldata, MaxChannelDuration: 2, SubSafetyMargin: 10, TargetNumFrames: 1,
		MaxL1TxSize: 120_000, Compression: "zlib", NumConfirmations: 1,
		ResubmissionTimeout: 24 * time.Second, NetworkTimeout: 10 * time.Second,
		ReceiptInterval: 200 * time.Millisecond, PollInterval: 100 * time.Millisecond, MaxPendingTx: 4,
		FeeLimitMultiplier: 5, WaitNodeSync: true, RPCAddr: "127.0.0.1",
		Log: logger.With("system", "batcher", "chain", 902),
	}, batcher.DefaultCodec())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close batcher: %v", err)
		}
	})

	ok := dn.Chains[0]
	sup, err := supervisor.New(supervisor.Config{
		L1RPC: dn.L1.HTTPEndpoint(), DataDir: t.TempDir(), DependencySet: interop.NewDependencySet(901, 902),
		Nodes: []supervisor.NodeConfig{
			{Endpoint: ok.Node.InteropEndpoint(), Secret: ok.Secret},
			{Endpoint: op.Interop, Secret: op.Secret},
		},
		L1PollInterval: 100 * time.Millisecond, ReassertInterval: 2 * time.Second,
		Logger: logger.With("system", "supervisor"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sup.Close(); err != nil {
			t.Errorf("close supervisor: %v", err)
		}
	})

	nodes := []watchedNode{
		dialWatched(t, ctx, "opkit node 901", ok.Node.RPCEndpoint()),
		dialWatched(t, ctx, "op-node 902", op.Node.RPCEndpoint()),
	}
	// The supervisor's own view: a node's cross heads are what the supervisor promoted.
	supView := func() string {
		st := sup.Status()
		return fmt.Sprintf("supervisor: 901 cross-unsafe %d cross-safe %d, 902 cross-unsafe %d cross-safe %d",
			st.Chains[901].CrossUnsafe.Number, st.Chains[901].CrossSafe.Derived.Number,
			st.Chains[902].CrossUnsafe.Number, st.Chains[902].CrossSafe.Derived.Number)
	}
	waitHeads(t, ctx, nodes, supView, "cross heads at 4", func(i int, st *oketh.SyncStatus) bool {
		return st.SafeL2.Number >= 4 && st.CrossUnsafeL2.Number >= 4
	})

	// A message initiated on opkit's chain and executed on op-node's.
	m := sendMessage(t, ctx, msgChain{ok.ID, ok.L2}, msgChain{op.ID, op.L2})
	waitHeads(t, ctx, nodes, supView, "the message cross-safe on both chains", func(i int, st *oketh.SyncStatus) bool {
		n := m.initNum
		if i == 1 {
			n = m.execNum
		}
		return st.SafeL2.Number >= n && st.CrossUnsafeL2.Number >= n
	})
	m.checkKept(t)
	// op-node's cross-safe head is one the supervisor promoted, not its own local-safe.
	var st oketh.SyncStatus
	if err := nodes[1].rpc.CallContext(ctx, &st, "optimism_syncStatus"); err != nil {
		t.Fatal(err)
	}
	if sup := sup.Status().Chains[902].CrossSafe.Derived; st.SafeL2.Number > sup.Number {
		t.Fatalf("op-node's cross-safe %s is past the supervisor's %s", st.SafeL2.ID(), sup.ID())
	}
}
