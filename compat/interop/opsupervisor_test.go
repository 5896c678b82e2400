package interop_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/depset"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
)

// startOPSupervisor runs op-supervisor v1.16.13's whole service (its backend with its
// databases, L1 processor and a syncnode controller per node; the peers harness's process)
// managing the nodes of dn, configured from the files the devnet wrote in dataDir: each
// chain's rollup.json, the dependency set, the nodes' JWT secrets.
func startOPSupervisor(t *testing.T, ctx context.Context, dn *devnet.InteropDevnet, dataDir string) *peers.OpSupervisor {
	t.Helper()
	rollupPaths := filepath.Join(dataDir, "*", "rollup.json")
	// op-supervisor's own loaders read the devnet's files as it will: interop is
	// scheduled at genesis, so op-supervisor anchors each chain at its L2 genesis.
	rollups, err := (&depset.JSONRollupConfigsLoader{PathPattern: rollupPaths, L1RPCURL: dn.L1.HTTPEndpoint()}).LoadRollupConfigSet(ctx)
	if err != nil {
		t.Fatalf("op-supervisor reads the devnet's rollup.json files: %v", err)
	}
	depSet, err := (&depset.JSONDependencySetLoader{Path: dn.DependencySetPath}).LoadDependencySet()
	if err != nil {
		t.Fatalf("op-supervisor reads the devnet's dependency set: %v", err)
	}
	cfg := peers.OpSupervisorConfig{
		L1: dn.L1, RollupConfigPaths: rollupPaths, DependencySetPath: dn.DependencySetPath, Dir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLevel()})).With("system", "op-supervisor"),
	}
	if testLevel() < slog.LevelWarn {
		cfg.ExtraFlags = append(cfg.ExtraFlags, "--log.level=info")
	}
	for _, c := range dn.Chains {
		id := eth.ChainIDFromUInt64(uint64(c.ID))
		if !rollups.HasChain(id) || !depSet.HasChain(id) {
			t.Fatalf("op-supervisor does not find chain %s in the devnet's files", c.ID)
		}
		if g := rollups.Genesis(id); g.L2.Hash != c.Rollup.Genesis.L2.Hash || !rollups.IsInterop(id, g.L2.Timestamp) {
			t.Fatalf("op-supervisor reads chain %s's rollup.json as genesis %+v, interop at genesis %v", c.ID, g, rollups.IsInterop(id, g.L2.Timestamp))
		}
		cfg.Nodes = append(cfg.Nodes, c.Node.InteropEndpoint())
		cfg.JWTSecretPaths = append(cfg.JWTSecretPaths, c.SecretPath)
	}
	sup, err := peers.StartOpSupervisor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sup.Close(); err != nil {
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
	// Built before the devnet starts, so that its chains do not run ahead meanwhile.
	if err := peers.Build(ctx); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	dn, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		ChainIDs: []uint64{901, 902}, NoSupervisor: true, L1BlockTime: time.Second, L2BlockTime: 1, SequencerL1Confs: 6,
		L1PollInterval: 100 * time.Millisecond, DataDir: dataDir,
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
	sup := startOPSupervisor(t, ctx, dn, dataDir)
	supRPC, err := gethrpc.DialContext(ctx, sup.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer supRPC.Close()
	nodes := make([]watchedNode, len(dn.Chains))
	for i, c := range dn.Chains {
		nodes[i] = dialWatched(t, ctx, "chain "+c.ID.String(), c.Node.RPCEndpoint())
	}
	// op-supervisor's own view, next to the nodes'.
	supView := func() string {
		var st eth.SupervisorSyncStatus
		if err := supRPC.CallContext(ctx, &st, "supervisor_syncStatus"); err != nil {
			return "op-supervisor: " + err.Error()
		}
		line := "op-supervisor:"
		for _, c := range dn.Chains {
			if cs := st.Chains[eth.ChainIDFromUInt64(uint64(c.ID))]; cs != nil {
				line += fmt.Sprintf(" %s cross-unsafe %d cross-safe %d", c.ID, cs.CrossUnsafe.Number, cs.CrossSafe.Number)
			}
		}
		return line
	}
	waitHeads(t, ctx, nodes, supView, "cross heads at 4", func(i int, st *oketh.SyncStatus) bool {
		return st.SafeL2.Number >= 4 && st.CrossUnsafeL2.Number >= 4
	})
	a, b := dn.Chains[0], dn.Chains[1]
	m := sendMessage(t, ctx, msgChain{a.ID, a.L2}, msgChain{b.ID, b.L2})
	waitHeads(t, ctx, nodes, supView, "the message cross-safe on both chains", func(i int, st *oketh.SyncStatus) bool {
		n := m.initNum
		if i == 1 {
			n = m.execNum
		}
		return st.SafeL2.Number >= n && st.CrossUnsafeL2.Number >= n
	})
	m.checkKept(t)
}
