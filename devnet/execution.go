package devnet

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/eth/tracers"
	gethlog "github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rpc"

	// Registers the native and JavaScript tracers (callTracer, prestateTracer, ...) that
	// debug_trace* look up by name.
	_ "github.com/ethereum/go-ethereum/eth/tracers/js"
	_ "github.com/ethereum/go-ethereum/eth/tracers/native"
)

// StateScheme selects how the execution client stores state.
type StateScheme string

const (
	// HashArchive stores trie nodes by hash and never prunes: every historical state
	// stays readable and debug_dbGet answers for any node. It is the reference chain.
	HashArchive StateScheme = "hash"
	// Path stores trie nodes by path and keeps only recent states (about 128 blocks),
	// as a default op-geth full node does.
	Path StateScheme = "path"
)

func (s StateScheme) validate() error {
	switch s {
	case HashArchive, Path:
		return nil
	default:
		return fmt.Errorf("unknown state scheme %q (want %q or %q)", s, HashArchive, Path)
	}
}

// executionConfig is what every in-process execution client needs.
type executionConfig struct {
	name    string
	dataDir string // empty: in memory
	host    string
	port    int // 0: any free port; HTTP and websocket share it
	modules []string
	scheme  StateScheme
	genesis *core.Genesis
	logger  *slog.Logger
	// jwtSecretPath, when set, serves the Engine API on authPort (0: any free port)
	// behind that JWT secret, as a consensus client expects.
	jwtSecretPath string
	authPort      int
	// noLogIndex skips the log search index: eth_getLogs then scans blocks, which is fine
	// on a dev chain, and a resumed datadir opens without re-reading the index (slow under
	// the race detector).
	noLogIndex bool
	// recommit, when set, is how often the payload builder rebuilds a pending block.
	recommit time.Duration
	// interopRPC, when set, is the supervisor op-geth asks about executing messages
	// before they enter its pool.
	interopRPC string
}

// executionClient is a started op-geth node with its eth service.
type executionClient struct {
	stack   *node.Node
	backend *eth.Ethereum
}

func startExecutionClient(cfg executionConfig) (*executionClient, error) {
	if err := cfg.scheme.validate(); err != nil {
		return nil, err
	}
	if cfg.logger != nil {
		gethlog.SetDefault(gethlog.NewLogger(quietHandler{cfg.logger.Handler()}))
	}
	nodeCfg := node.Config{
		Name:        cfg.name,
		DataDir:     cfg.dataDir,
		HTTPHost:    cfg.host,
		HTTPPort:    cfg.port,
		HTTPModules: cfg.modules,
		WSHost:      cfg.host,
		WSPort:      cfg.port,
		WSModules:   cfg.modules,
		// The dev clients are reached from loopback only; any browser origin may call them.
		HTTPCors:         []string{"*"},
		HTTPVirtualHosts: []string{"*"},
		WSOrigins:        []string{"*"},
		HTTPTimeouts:     rpc.DefaultHTTPTimeouts,
		P2P:              p2p.Config{NoDiscovery: true, MaxPeers: 0, ListenAddr: ""},
	}
	if cfg.jwtSecretPath != "" {
		nodeCfg.AuthAddr = cfg.host
		nodeCfg.AuthPort = cfg.authPort
		nodeCfg.AuthVirtualHosts = []string{"*"}
		nodeCfg.JWTSecret = cfg.jwtSecretPath
	}
	stack, err := node.New(&nodeCfg)
	if err != nil {
		return nil, fmt.Errorf("%s: create node: %w", cfg.name, err)
	}
	ethCfg := ethconfig.Defaults
	ethCfg.Genesis = cfg.genesis
	ethCfg.SyncMode = ethconfig.FullSync
	ethCfg.TxPool.NoLocals = true
	ethCfg.StateScheme = string(cfg.scheme)
	if cfg.scheme == HashArchive {
		ethCfg.StateScheme = rawdb.HashScheme
		ethCfg.NoPruning = true
		ethCfg.Preimages = true
	} else {
		ethCfg.StateScheme = rawdb.PathScheme
	}
	// Keep memory modest: several clients share one small machine in tests.
	ethCfg.DatabaseCache = 64
	ethCfg.TrieCleanCache = 32
	ethCfg.TrieDirtyCache = 32
	ethCfg.SnapshotCache = 0
	ethCfg.LogNoHistory = cfg.noLogIndex
	if cfg.recommit > 0 {
		ethCfg.Miner.Recommit = cfg.recommit
	}
	if cfg.interopRPC != "" {
		ethCfg.InteropMessageRPC = cfg.interopRPC
		ethCfg.InteropMempoolFiltering = true
	}
	backend, err := eth.New(stack, &ethCfg)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("%s: create eth service: %w", cfg.name, err)
	}
	stack.RegisterAPIs(tracers.APIs(backend.APIBackend))
	if cfg.jwtSecretPath != "" {
		if err := catalyst.Register(stack, backend); err != nil {
			stack.Close()
			return nil, fmt.Errorf("%s: register engine API: %w", cfg.name, err)
		}
	}
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, fmt.Errorf("%s: start node: %w", cfg.name, err)
	}
	return &executionClient{stack: stack, backend: backend}, nil
}

// HTTPEndpoint is the JSON-RPC URL over HTTP.
func (c *executionClient) HTTPEndpoint() string { return c.stack.HTTPEndpoint() }

// WSEndpoint is the JSON-RPC URL over websocket.
func (c *executionClient) WSEndpoint() string { return c.stack.WSEndpoint() }

// AuthEndpoint is the Engine API URL over HTTP.
func (c *executionClient) AuthEndpoint() string { return c.stack.HTTPAuthEndpoint() }

func (c *executionClient) close() error {
	if err := c.stack.Close(); err != nil {
		return fmt.Errorf("close %s: %w", c.stack.Config().Name, err)
	}
	return nil
}

// quietHandler passes the execution client's own logs on at warning level and above, and
// at every level once debug logging is on: its per-block info lines would drown opkit's.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, level slog.Level) bool {
	if h.Handler.Enabled(ctx, slog.LevelDebug) {
		return true
	}
	return level >= slog.LevelWarn && h.Handler.Enabled(ctx, level)
}

func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
