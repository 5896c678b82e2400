package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/internal/rpcserve"
	"github.com/opkit/opkit/interop"
)

// NodeConfig names one managed node.
type NodeConfig struct {
	// Endpoint is the node's interop RPC: ws:// or wss:// to subscribe to events, http://
	// or https:// to pull them.
	Endpoint string
	Secret   interop.Secret
}

// Config configures a Supervisor.
type Config struct {
	// L1RPC is the L1 execution client's RPC URL.
	L1RPC string
	// Nodes are the managed nodes; several may serve one chain.
	Nodes []NodeConfig
	// DependencySet lists the chains that may execute each other's messages.
	DependencySet *interop.DependencySet
	// DataDir holds the database.
	DataDir string
	// RPCHost and RPCPort of the public supervisor_ API; defaults 127.0.0.1 and a free port.
	RPCHost string
	RPCPort int

	// L1PollInterval is how often L1's head and finalized block are read; default 2s.
	L1PollInterval time.Duration
	// ReassertInterval is how often promotions are sent again although acknowledged;
	// default 10s.
	ReassertInterval time.Duration
	// RetryInterval is how soon a failed call to a node is tried again; default 250ms.
	RetryInterval time.Duration
	// PullInterval is how often a node without subscriptions is polled once its queue is
	// empty; default 100ms.
	PullInterval time.Duration
	// CallTimeout bounds one call to a node or L1; default 10s.
	CallTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics, when set, receives the supervisor's metrics.
	Metrics *Metrics
}

func (c *Config) applyDefaults() error {
	if c.L1RPC == "" {
		return errors.New("no L1 RPC configured")
	}
	if c.DependencySet == nil {
		return errors.New("no dependency set configured")
	}
	if c.DataDir == "" {
		return errors.New("no data directory configured")
	}
	if c.RPCHost == "" {
		c.RPCHost = "127.0.0.1"
	}
	if c.L1PollInterval <= 0 {
		c.L1PollInterval = 2 * time.Second
	}
	if c.ReassertInterval <= 0 {
		c.ReassertInterval = 10 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 250 * time.Millisecond
	}
	if c.PullInterval <= 0 {
		c.PullInterval = 100 * time.Millisecond
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return nil
}

// Supervisor runs until Close.
type Supervisor struct {
	cfg Config
	log *slog.Logger
	m   *Metrics

	db *store
	l1 *l1Source

	// durable is held shared by an update from before it takes mu until its writes are
	// on disk, and exclusively by whatever reads heads to tell a node: so no node hears of
	// a cross head before it is durable, while the fsync itself runs outside mu and other
	// chains' indexing goes on meanwhile.
	durable sync.RWMutex
	// mu guards the chain states, the finalized L1 block and every database write, so
	// that the cross-safety rules see one consistent picture across chains.
	mu      sync.Mutex
	chains  map[interop.ChainID]*chainState
	finL1   eth.BlockRef
	l1Head  common.Hash
	pending map[interop.ChainID]eth.BlockSeal // invalidations sent, awaiting replacement

	nodes []*nodeConn

	rpc  *rpc.Server
	http *rpcserve.HTTPServer

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the database, starts the public RPC and starts managing the nodes.
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	db, err := openStore(filepath.Join(cfg.DataDir, "supervisor"))
	if err != nil {
		return nil, err
	}
	s := &Supervisor{
		cfg: cfg, log: cfg.Logger, m: cfg.Metrics, db: db,
		chains:  make(map[interop.ChainID]*chainState),
		pending: make(map[interop.ChainID]eth.BlockSeal),
	}
	fail := func(err error) (*Supervisor, error) {
		s.closeResources()
		return nil, err
	}
	for _, c := range cfg.DependencySet.Chains() {
		st, err := db.chainState(c)
		if err != nil {
			return fail(err)
		}
		if st != nil {
			s.chains[c] = st
			s.m.setHeads(c, st)
		}
	}
	if s.finL1, err = db.finalizedL1(); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx, s.cancel = ctx, cancel
	if s.l1, err = dialL1(ctx, cfg.L1RPC); err != nil {
		cancel()
		return fail(err)
	}
	s.rpc = rpcserve.NewRPCServer()
	if err := s.rpc.RegisterName("supervisor", &API{s: s}); err != nil {
		cancel()
		return fail(fmt.Errorf("register supervisor API: %w", err))
	}
	h := rpcserve.Handler(s.rpc, map[string]http.Handler{"/health": rpcserve.Health()})
	if s.http, err = rpcserve.Listen(cfg.RPCHost, cfg.RPCPort, h, s.log); err != nil {
		cancel()
		return fail(fmt.Errorf("supervisor RPC: %w", err))
	}
	for i, nc := range cfg.Nodes {
		s.nodes = append(s.nodes, newNodeConn(s, i, nc))
	}
	s.wg.Add(1)
	go s.l1Loop()
	for _, n := range s.nodes {
		s.wg.Add(2)
		go n.run()
		go n.promoteLoop()
	}
	s.log.Info("Supervisor started", "rpc", s.RPCEndpoint(), "nodes", len(s.nodes), "chains", cfg.DependencySet.Chains())
	return s, nil
}

// RPCEndpoint is the URL of the public supervisor_ API.
func (s *Supervisor) RPCEndpoint() string { return "http://" + s.http.Addr().String() }

// Close stops managing the nodes, waits for every goroutine and closes the database.
func (s *Supervisor) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.closeResources()
	})
	return s.closeErr
}

func (s *Supervisor) closeResources() error {
	var errs []error
	if s.rpc != nil {
		s.rpc.Stop()
	}
	if s.http != nil {
		errs = append(errs, s.http.Close())
	}
	if s.l1 != nil {
		s.l1.close()
	}
	if s.db != nil {
		errs = append(errs, s.db.close())
	}
	return errors.Join(errs...)
}

// Status is a snapshot of every chain's heads, for logs and the RPC.
type Status struct {
	FinalizedL1 eth.BlockRef
	Chains      map[interop.ChainID]chainState
	// AwaitingL1 counts the nodes that exhausted L1 and wait for their next block.
	AwaitingL1 int
}

// Status returns the current heads.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Status{FinalizedL1: s.finL1, Chains: make(map[interop.ChainID]chainState, len(s.chains))}
	for c, st := range s.chains {
		out.Chains[c] = *st
	}
	for _, n := range s.nodes {
		if n.awaitingL1() {
			out.AwaitingL1++
		}
	}
	return out
}

// ConnectedNodes counts the nodes with a live connection.
func (s *Supervisor) ConnectedNodes() int {
	n := 0
	for _, c := range s.nodes {
		if c.connected() {
			n++
		}
	}
	return n
}

// sleep waits d or until ctx ends, reporting whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
