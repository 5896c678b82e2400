package devnet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gethengine "github.com/ethereum/go-ethereum/beacon/engine"
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
	engine  *buildTrackingEngine // nil without an Engine API
}

func startExecutionClient(cfg executionConfig) (*executionClient, error) {
	if err := cfg.scheme.validate(); err != nil {
		return nil, err
	}
	if cfg.logger != nil && !gethLogRouted.Load() {
		// A client started on its own sends geth's process-wide log to its logger, until
		// a devnet routes it (RouteGethLog) for all the clients it runs.
		setGethLog(cfg.logger)
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
	if cfg.logger != nil {
		// The node's own records (start, stop, endpoints) carry this client's label; the
		// rest of geth logs through the process-wide logger (RouteGethLog).
		nodeCfg.Logger = gethlog.NewLogger(quietHandler{cfg.logger.Handler()})
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
	var engineAPI *buildTrackingEngine
	if cfg.jwtSecretPath != "" {
		engineAPI = &buildTrackingEngine{ConsensusAPI: catalyst.NewConsensusAPI(backend), backend: backend}
		stack.RegisterAPIs([]rpc.API{{Namespace: "engine", Service: engineAPI, Authenticated: true}})
	}
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, fmt.Errorf("%s: start node: %w", cfg.name, err)
	}
	return &executionClient{stack: stack, backend: backend, engine: engineAPI}, nil
}

// HTTPEndpoint is the JSON-RPC URL over HTTP.
func (c *executionClient) HTTPEndpoint() string { return c.stack.HTTPEndpoint() }

// WSEndpoint is the JSON-RPC URL over websocket.
func (c *executionClient) WSEndpoint() string { return c.stack.WSEndpoint() }

// AuthEndpoint is the Engine API URL over HTTP.
func (c *executionClient) AuthEndpoint() string { return c.stack.HTTPAuthEndpoint() }

func (c *executionClient) close() error {
	if c.engine != nil {
		c.engine.endBuilds()
	}
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

// gethLogRouted is set once RouteGethLog has chosen where geth's process-wide log goes.
var gethLogRouted atomic.Bool

// RouteGethLog sends op-geth's process-wide log to l with system=geth. Geth logs its
// chain, pool, miner and RPC records through one global logger, so in a process running
// the dev L1 and an L2 they cannot be told apart: labelling them with either client
// would mislabel the other's. Each client's own node records still carry its label.
func RouteGethLog(l *slog.Logger) {
	gethLogRouted.Store(true)
	setGethLog(l.With("system", "geth"))
}

func setGethLog(l *slog.Logger) {
	gethlog.SetDefault(gethlog.NewLogger(quietHandler{l.Handler()}))
}

// buildTrackingEngine is op-geth's Engine API keeping the payloads it was asked to build,
// so that the client can end their builds before it shuts down. Op-geth rebuilds a
// payload in the background until it is fetched or its build time is up, and keeps doing
// so after its miner stops: a build the rollup node started and never fetched (it was
// stopped first) would go on reading a closed chain and log "Failed to create sealing
// context ... missing trie node".
type buildTrackingEngine struct {
	*catalyst.ConsensusAPI
	backend *eth.Ethereum

	mu     sync.Mutex
	builds []trackedBuild // newest last, at most maxTrackedBuilds
}

type trackedBuild struct {
	id gethengine.PayloadID
	// deadline is when op-geth stops rebuilding the payload on its own.
	deadline time.Time
}

// maxTrackedBuilds matches how many payloads op-geth's Engine API keeps: an older one is
// no longer fetchable, and its build has ended.
const maxTrackedBuilds = 10

// minBuildTime is op-geth's shortest payload build window.
const minBuildTime = 2 * time.Second

func (e *buildTrackingEngine) track(update gethengine.ForkchoiceStateV1, r gethengine.ForkChoiceResponse, attrs *gethengine.PayloadAttributes) {
	if r.PayloadID == nil || attrs == nil {
		return
	}
	// Op-geth builds for max(2s, timestamp - parent's timestamp) from the call.
	window := minBuildTime
	if parent := e.backend.BlockChain().GetHeaderByHash(update.HeadBlockHash); parent != nil && attrs.Timestamp > parent.Time {
		window = max(window, time.Duration(attrs.Timestamp-parent.Time)*time.Second)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.builds = append(e.builds, trackedBuild{id: *r.PayloadID, deadline: time.Now().Add(window)})
	if len(e.builds) > maxTrackedBuilds {
		e.builds = slices.Delete(e.builds, 0, len(e.builds)-maxTrackedBuilds)
	}
}

func (e *buildTrackingEngine) ForkchoiceUpdatedV1(ctx context.Context, update gethengine.ForkchoiceStateV1, attrs *gethengine.PayloadAttributes) (gethengine.ForkChoiceResponse, error) {
	r, err := e.ConsensusAPI.ForkchoiceUpdatedV1(ctx, update, attrs)
	e.track(update, r, attrs)
	return r, err
}

func (e *buildTrackingEngine) ForkchoiceUpdatedV2(ctx context.Context, update gethengine.ForkchoiceStateV1, attrs *gethengine.PayloadAttributes) (gethengine.ForkChoiceResponse, error) {
	r, err := e.ConsensusAPI.ForkchoiceUpdatedV2(ctx, update, attrs)
	e.track(update, r, attrs)
	return r, err
}

func (e *buildTrackingEngine) ForkchoiceUpdatedV3(ctx context.Context, update gethengine.ForkchoiceStateV1, attrs *gethengine.PayloadAttributes) (gethengine.ForkChoiceResponse, error) {
	r, err := e.ConsensusAPI.ForkchoiceUpdatedV3(ctx, update, attrs)
	e.track(update, r, attrs)
	return r, err
}

// ForkchoiceUpdatedV4 is not wrapped: no OP Stack fork builds through it, and its
// signature differs between the op-geth the main module uses and the release candidate
// the compat module pins for op-node v1.16.13, which builds this package too.

// endBuilds fetches every build still inside its window, which stops op-geth rebuilding
// it. A fetch waits for the build's first complete payload, normally there within one
// rebuild; should none ever complete (every attempt failing), op-geth's build ends at its
// deadline and the wait for it is given up then, the fetch left blocked inside op-geth.
func (e *buildTrackingEngine) endBuilds() {
	e.mu.Lock()
	builds := e.builds
	e.builds = nil
	e.mu.Unlock()
	for _, b := range builds {
		if time.Now().After(b.deadline) {
			continue
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			// The payload ID carries its version; only the getter of that version looks
			// the payload up, the others refuse it untouched.
			_, _ = e.GetPayloadV2(b.id)
			_, _ = e.GetPayloadV3(b.id)
			_, _ = e.GetPayloadV6(b.id)
		}()
		select {
		case <-done:
		case <-time.After(time.Until(b.deadline)):
		}
	}
}
