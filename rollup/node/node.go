package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/engine"
	"github.com/opkit/opkit/rollup/l1"
	"github.com/opkit/opkit/rollup/sequencer"
)

// Config assembles a node.
type Config struct {
	Rollup *rollup.Config
	// L1ChainConfig prices L1 blob fees for the L1-attributes deposit.
	L1ChainConfig *params.ChainConfig
	L1URL         string
	L2EngineURL   string
	JWTSecret     [32]byte

	Driver           driver.Config
	SequencerL1Confs uint64

	// RPCAddr and RPCPort serve JSON-RPC (port 0: any free port).
	RPCAddr string
	RPCPort int
	// MetricsAddr and MetricsPort serve /metrics and /health; MetricsDisabled turns it off.
	MetricsAddr     string
	MetricsPort     int
	MetricsDisabled bool

	// L1PollInterval is how often L1 is polled; default 1s.
	L1PollInterval time.Duration
	// StatusInterval is how often a status line is logged; default 10s.
	StatusInterval time.Duration
	// L1BeaconURL serves the blobs of blob batcher transactions; empty: blob
	// transactions cannot be derived (derivation stops at the first with a clear error).
	L1BeaconURL string
	// AltDAEnabled reads batcher data through AltDA commitments from AltDAServer.
	AltDAEnabled bool
	AltDAServer  string

	// L1CallTimeout bounds every L1 call the node makes; default 10s.
	L1CallTimeout time.Duration
	// EngineCallTimeout bounds every execution-client call; default 10s.
	EngineCallTimeout time.Duration

	// Data finds the batcher data of L1 blocks for derivation; nil: rollup/dasource's,
	// reading calldata, blobs from L1BeaconURL and AltDA inputs from AltDAServer.
	Data derive.DataSource
	// DerivationDisabled runs the Idle pipeline: nothing is derived, safe stays put.
	DerivationDisabled bool
	// Deriver makes derived attributes from L1; the node feeds them to the engine. Nil:
	// rollup/derive's pipeline reading Data.
	Deriver Deriver
	// Interop, when set, runs the node in managed mode (managed.go).
	Interop *InteropConfig
	// Pipeline replaces the whole derivation side (tests of the driver's outcomes).
	Pipeline derive.Pipeline
	Clock    clock.Clock
	Log      *slog.Logger
	Version  string
}

// Node is a running rollup node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	l1      *ethclient.Client
	l1src   *l1.Source
	ec      *engine.Client
	engine  *engine.Engine
	seq     *sequencer.Sequencer
	idle    *derive.Idle
	derived *Pipeline
	driver  *driver.Driver
	metrics *Metrics
	watcher *l1Watcher
	managed *managedNode

	rpcSrv      *rpc.Server
	rpcHTTP     *http.Server
	rpcAddr     net.Addr
	metricsHTTP *http.Server
	metricsAddr net.Addr

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// maxRPCBody bounds a JSON-RPC request body; the node's methods take a few hashes.
const maxRPCBody = 1 << 20

// Start connects to L1 and the execution client, restores the engine's heads and starts
// the driver, the L1 watcher and the servers.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Rollup == nil {
		return nil, errors.New("start node: rollup config is required")
	}
	check := cfg.Rollup.Check
	if cfg.Interop != nil {
		check = cfg.Rollup.CheckInterop
	}
	if err := check(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	if cfg.L1PollInterval == 0 {
		cfg.L1PollInterval = time.Second
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.L1CallTimeout == 0 {
		cfg.L1CallTimeout = 10 * time.Second
	}
	if cfg.Driver.SyncCheckInterval == 0 {
		cfg.Driver.SyncCheckInterval = 2 * time.Duration(cfg.Rollup.BlockTime) * time.Second
	}
	n := &Node{cfg: cfg, log: cfg.Log, metrics: NewMetrics(), stop: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	var err error
	if n.l1, err = ethclient.DialContext(ctx, cfg.L1URL); err != nil {
		return nil, fmt.Errorf("dial L1 %s: %w", cfg.L1URL, err)
	}
	idCtx, cancel := context.WithTimeout(ctx, cfg.L1CallTimeout)
	l1ID, err := n.l1.ChainID(idCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("read L1 chain ID from %s: %w", cfg.L1URL, err)
	}
	if l1ID.Cmp(cfg.Rollup.L1ChainID) != 0 {
		return nil, fmt.Errorf("L1 at %s has chain ID %v, rollup config says %v", cfg.L1URL, l1ID, cfg.Rollup.L1ChainID)
	}
	if n.l1src, err = l1.Dial(ctx, cfg.L1URL, l1.Config{Timeout: cfg.L1CallTimeout}); err != nil {
		return nil, fmt.Errorf("dial L1 %s: %w", cfg.L1URL, err)
	}
	if n.ec, err = engine.Dial(ctx, cfg.L2EngineURL, cfg.JWTSecret); err != nil {
		return nil, err
	}
	n.ec.CallTimeout = cfg.EngineCallTimeout
	n.engine = engine.New(cfg.Rollup, n.ec, cfg.Log.With("part", "engine"))
	if err := n.engine.Init(ctx); err != nil {
		return nil, fmt.Errorf("restore L2 heads from %s: %w", cfg.L2EngineURL, err)
	}
	n.seq = sequencer.New(sequencer.Config{L1Confs: cfg.SequencerL1Confs, L1ChainConfig: cfg.L1ChainConfig, L1CallTimeout: cfg.L1CallTimeout},
		cfg.Rollup, n.engine, n.l1, n.l1src, cfg.Clock, cfg.Log.With("part", "sequencer"), n.metrics)
	pipeline := cfg.Pipeline
	deriver := cfg.Deriver
	if pipeline == nil && deriver == nil && !cfg.DerivationDisabled && cfg.Data == nil {
		if cfg.Data, err = n.dataSource(); err != nil {
			return nil, err
		}
	}
	if deriver == nil && cfg.Data != nil && !cfg.DerivationDisabled {
		deriver = NewDeriver(derive.New(cfg.Rollup, cfg.L1ChainConfig, derive.Deps{
			L1: n.l1src, Data: cfg.Data, L2: n.engine, Log: cfg.Log, Metrics: n.metrics,
		}))
	}
	switch {
	case pipeline != nil:
	case deriver != nil:
		n.derived = NewPipeline(cfg.Rollup, deriver, n.engine, n.l1src, n.metrics, cfg.Log.With("part", "derivation"))
		pipeline = n.derived
	default:
		n.idle = &derive.Idle{}
		pipeline = n.idle
	}
	n.driver = driver.New(cfg.Driver, driver.Deps{
		Pipeline: pipeline, Engine: n.engine, Sequencer: n.seq, Metrics: n.metrics,
		Clock: cfg.Clock, Log: cfg.Log.With("part", "driver"),
	})
	if cfg.Interop != nil {
		if err := n.initManaged(); err != nil {
			return nil, err
		}
	}
	if err := n.driver.Start(); err != nil {
		return nil, err
	}
	if err := n.startRPC(); err != nil {
		return nil, err
	}
	if !cfg.MetricsDisabled {
		if err := n.startMetrics(); err != nil {
			return nil, err
		}
	}
	n.watcher = startL1Watcher(n.l1, l1Signals{n}, cfg.L1PollInterval, cfg.L1CallTimeout, cfg.Log.With("part", "l1"))
	n.wg.Add(1)
	go n.statusLoop()
	ok = true
	unsafe, safe, finalized := n.engine.Heads()
	n.log.Info("rollup node started", "rpc", n.RPCEndpoint(), "metrics", n.MetricsEndpoint(),
		"unsafe", unsafe.ID(), "safe", safe.ID(), "finalized", finalized.ID(), "sequencer", cfg.Driver.SequencerEnabled)
	return n, nil
}

// dataSource builds the batcher-data source derivation reads: calldata always, blobs
// when a beacon endpoint is set, AltDA inputs when enabled (which rollup.json must agree
// with).
func (n *Node) dataSource() (derive.DataSource, error) {
	cfg := n.cfg
	if cfg.AltDAEnabled != (cfg.Rollup.AltDAConfig != nil) {
		return nil, fmt.Errorf("--altda.enabled is %v but rollup.json %s an alt_da section", cfg.AltDAEnabled,
			map[bool]string{true: "has", false: "has no"}[cfg.Rollup.AltDAConfig != nil])
	}
	var beacon *dasource.Beacon
	if cfg.L1BeaconURL != "" {
		beacon = dasource.NewBeacon(dasource.BeaconConfig{URL: cfg.L1BeaconURL})
	}
	var da *altda.Client
	if cfg.AltDAEnabled {
		mode := altda.KeccakMode
		if cfg.Rollup.AltDAConfig.CommitmentType == rollup.GenericCommitment {
			mode = altda.GenericMode
		}
		var err error
		if da, err = altda.NewClient(altda.ClientConfig{URL: cfg.AltDAServer, Mode: mode, VerifyGets: true}); err != nil {
			return nil, fmt.Errorf("--altda.da-server: %w", err)
		}
	}
	src, err := dasource.New(dasource.Config{
		Rollup: cfg.Rollup, L1: n.l1src, Beacon: beacon, AltDA: da,
		Log: cfg.Log.With("part", "dasource"), Metrics: n.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("derivation data source: %w", err)
	}
	return src, nil
}

// l1Signals forwards L1 changes to the driver. The L1 head is not derivation's origin:
// current_l1 reports only what derivation has read (a batcher takes a current_l1 past
// its channel's inclusion with no safe progress for a dropped channel).
type l1Signals struct{ n *Node }

func (s l1Signals) OnL1Head(ctx context.Context, ref eth.L1BlockRef) error {
	return s.n.driver.OnL1Head(ctx, ref)
}

func (s l1Signals) OnL1Safe(ctx context.Context, ref eth.L1BlockRef) error {
	return s.n.driver.OnL1Safe(ctx, ref)
}

func (s l1Signals) OnL1Finalized(ctx context.Context, ref eth.L1BlockRef) error {
	return s.n.driver.OnL1Finalized(ctx, ref)
}

func listen(addr string, port int) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1"
	}
	return net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
}

func (n *Node) startRPC() error {
	n.rpcSrv = rpc.NewServer()
	n.rpcSrv.SetHTTPBodyLimit(maxRPCBody)
	if err := n.rpcSrv.RegisterName("optimism", &optimismAPI{n}); err != nil {
		return fmt.Errorf("register optimism API: %w", err)
	}
	if err := n.rpcSrv.RegisterName("admin", &adminAPI{n}); err != nil {
		return fmt.Errorf("register admin API: %w", err)
	}
	ln, err := listen(n.cfg.RPCAddr, n.cfg.RPCPort)
	if err != nil {
		return fmt.Errorf("--rpc.port: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", n.rpcSrv)
	mux.HandleFunc("/health", n.health)
	n.rpcHTTP = newHTTPServer(mux)
	n.rpcAddr = ln.Addr()
	n.wg.Add(1)
	go n.serve(n.rpcHTTP, ln)
	return nil
}

func (n *Node) startMetrics() error {
	ln, err := listen(n.cfg.MetricsAddr, n.cfg.MetricsPort)
	if err != nil {
		return fmt.Errorf("--metrics.port: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", n.health)
	n.metricsHTTP = newHTTPServer(mux)
	n.metricsAddr = ln.Addr()
	n.wg.Add(1)
	go n.serve(n.metricsHTTP, ln)
	return nil
}

// newHTTPServer times out slow clients at every stage of a request.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func (n *Node) serve(srv *http.Server, ln net.Listener) {
	defer n.wg.Done()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		n.log.Error("HTTP server failed", "addr", ln.Addr(), "err", err)
	}
}

// healthTimeout bounds how long /health waits for the driver's loop to answer.
const healthTimeout = 2 * time.Second

// health answers 200 while the node makes progress and 503 with the reason otherwise:
// the driver stopped (its critical error), its loop does not answer, derivation or the
// sequencer keep failing, or L1 has not answered a poll for the stall timeout.
func (n *Node) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	err := n.driver.Health(ctx)
	if err == nil {
		err = n.watcher.health(n.stallTimeout())
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
		return
	}
	fmt.Fprintln(w, `{"status":"ok"}`)
}

func (n *Node) stallTimeout() time.Duration {
	if n.cfg.Driver.StallTimeout > 0 {
		return n.cfg.Driver.StallTimeout
	}
	return 30 * time.Second
}

func (n *Node) statusLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.driver.Done():
			if err := n.driver.Err(); err != nil {
				n.log.Error("rollup node driver stopped", "err", err)
			}
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := n.driver.SyncStatus(ctx)
			cancel()
			if err != nil {
				continue
			}
			n.metrics.RecordStatus(st)
			n.log.Info("status", "l1_head", st.HeadL1.Number, "l1_finalized", st.FinalizedL1.Number, "current_l1", st.CurrentL1.Number,
				"unsafe_l2", st.UnsafeL2.Number, "pending_safe_l2", st.PendingSafeL2.Number, "safe_l2", st.SafeL2.Number,
				"finalized_l2", st.FinalizedL2.Number, "l1_origin", st.UnsafeL2.L1Origin.Number, "safe_l1_origin", st.SafeL2.L1Origin.Number)
		}
	}
}

// RPCEndpoint is the JSON-RPC URL.
func (n *Node) RPCEndpoint() string {
	if n.rpcAddr == nil {
		return ""
	}
	return "http://" + n.rpcAddr.String()
}

// MetricsEndpoint is the base URL of /metrics and /health, empty when disabled.
func (n *Node) MetricsEndpoint() string {
	if n.metricsAddr == nil {
		return ""
	}
	return "http://" + n.metricsAddr.String()
}

// Driver is the node's event loop, for the supervisor's managed mode and tests.
func (n *Node) Driver() *driver.Driver { return n.driver }

// Engine is the node's engine controller, for the supervisor's managed mode and tests.
func (n *Node) Engine() *engine.Engine { return n.engine }

// Metrics is the node's instrumentation.
func (n *Node) Metrics() *Metrics { return n.metrics }

// Done is closed when the driver stops, by Close or by a critical error.
func (n *Node) Done() <-chan struct{} { return n.driver.Done() }

// Err is the critical error that stopped the driver, if any.
func (n *Node) Err() error { return n.driver.Err() }

// Close stops the L1 watcher, the driver and the servers, and closes the connections.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		if n.watcher != nil {
			n.watcher.close()
		}
		var errs []error
		if n.managed != nil {
			// First, so that no supervisor call waits on a stopped driver.
			if err := n.managed.close(); err != nil {
				errs = append(errs, fmt.Errorf("stop interop server: %w", err))
			}
		}
		if n.driver != nil {
			n.driver.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range []*http.Server{n.rpcHTTP, n.metricsHTTP} {
			if srv != nil {
				if err := srv.Shutdown(ctx); err != nil {
					errs = append(errs, fmt.Errorf("stop HTTP server: %w", err))
				}
			}
		}
		if n.rpcSrv != nil {
			n.rpcSrv.Stop()
		}
		n.wg.Wait()
		if n.ec != nil {
			n.ec.Close()
		}
		if n.l1 != nil {
			n.l1.Close()
		}
		if n.l1src != nil {
			n.l1src.Close()
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
