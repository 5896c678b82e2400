package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/repair"
	"github.com/opkit/opkit/altda/store"
)

// DefaultMaxInputBytes is op-node's default max input size for AltDA inputs.
const DefaultMaxInputBytes = 130672

// Config configures a Server. The server owns the stores and the queue: Close closes them.
type Config struct {
	Addr        string // listen address, host:port (port 0 picks a free one)
	Primary     store.Store
	Secondaries []store.Store // names must be distinct: they key the repair queue
	// RepairDir is where the repair queue keeps its database. Required with secondaries.
	RepairDir string

	MaxInputBytes     int  // default DefaultMaxInputBytes
	GenericCommitment bool // /put answers generic commitments; otherwise keccak256
	DALayerByte       byte

	// FaultsAdmin enables GET|PUT /admin/faults.
	FaultsAdmin bool

	Breaker       breaker.Config
	ProbeInterval time.Duration // health probe period (default 2s)
	CacheBytes    int           // read cache size (default 64 MiB; negative disables)
	WriteTimeout  time.Duration // bound on one write to the stores (default 60s)
	// SecondaryTimeout bounds the write to each secondary (default 5s). The secondaries
	// are written in parallel; one that misses it is queued for repair and the PUT is
	// answered 201 without waiting any longer.
	SecondaryTimeout time.Duration
	// CacheTTL, when positive, is how long a cached preimage may be served: set it to
	// the stores' retention window so that the cache does not serve what they dropped.
	CacheTTL      time.Duration
	ReadTimeout   time.Duration // bound on one read from the stores (default 30s)
	RepairBackoff time.Duration // first repair retry delay (default 500ms)

	// Slow clients: time to send the headers (default 5s), the whole request (default
	// 30s: a 130 KB body at a crawl is an attack, not a client), and how long an idle
	// keep-alive connection is kept (default 120s).
	HeaderTimeout, BodyTimeout, IdleTimeout time.Duration

	Logger   *slog.Logger
	Registry *prometheus.Registry // default: a fresh registry
}

// role is a configured store with its place in the read order.
type role struct {
	label  string // "primary:pebble", "secondary:s3"
	name   string // the store's own name, which keys the repair queue for secondaries
	store  store.Store
	faulty *store.Faulty // nil unless FaultsAdmin
	// checked: the backend detects corrupted reads itself, so what it returns need not be
	// hashed against the commitment again.
	checked bool
}

// Server is the AltDA HTTP server.
type Server struct {
	cfg         Config
	log         *slog.Logger
	primary     role
	secondaries []role
	queue       *repair.Queue
	breaker     *breaker.Breaker
	cache       *cache
	gets        flight[[]byte]
	puts        flight[putResult]
	m           *metrics
	reg         *prometheus.Registry

	health atomic.Pointer[healthReport]

	httpSrv  *http.Server
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	// storeCalls tracks store calls a request stopped waiting for (a secondary past its
	// deadline), so that Close does not close a store under them. callsMu and closing
	// keep new calls from starting once Close waits for them.
	storeCalls sync.WaitGroup
	callsMu    sync.Mutex
	closing    bool

	putCount, getCount atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// New checks the config and builds the server; Start makes it listen.
func New(cfg Config) (*Server, error) {
	if cfg.Primary == nil {
		return nil, errors.New("da server: a primary store is required")
	}
	if cfg.MaxInputBytes <= 0 {
		cfg.MaxInputBytes = DefaultMaxInputBytes
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 2 * time.Second
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 64 << 20
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.SecondaryTimeout <= 0 {
		cfg.SecondaryTimeout = 5 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 5 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, cache: newCache(cfg.CacheBytes, cfg.CacheTTL), reg: cfg.Registry}
	s.m = newMetrics(cfg.Registry, func() float64 {
		if s.queue == nil {
			return 0
		}
		return float64(s.queue.Len())
	})
	userOnChange := cfg.Breaker.OnChange
	cfg.Breaker.OnChange = func(from, to breaker.State) {
		s.m.breakerState.Set(float64(to))
		if to == breaker.Open {
			s.m.breakerTrips.Inc()
		}
		s.log.Warn("primary circuit breaker changed state", "from", from, "to", to)
		if userOnChange != nil {
			userOnChange(from, to)
		}
	}
	s.breaker = breaker.New(cfg.Breaker)

	s.primary = s.wrap("primary", cfg.Primary)
	seen := map[string]bool{}
	targets := map[string]store.Store{}
	for _, sec := range cfg.Secondaries {
		if seen[sec.Name()] {
			return nil, fmt.Errorf("da server: secondary %q is configured twice", sec.Name())
		}
		seen[sec.Name()] = true
		r := s.wrap("secondary", sec)
		s.secondaries = append(s.secondaries, r)
		targets[r.name] = r.store
	}
	if len(cfg.Secondaries) > 0 {
		if cfg.RepairDir == "" {
			return nil, errors.New("da server: secondaries need a directory for the repair queue")
		}
		q, err := repair.Open(cfg.RepairDir, targets, repair.Config{
			BaseDelay:  cfg.RepairBackoff,
			Logger:     s.log.With("component", "repair"),
			OnRepaired: func(target string) { s.m.repaired.WithLabelValues(target).Inc() },
		})
		if err != nil {
			return nil, err
		}
		s.queue = q
	}
	s.health.Store(&healthReport{Status: "starting", Breaker: breaker.Closed.String()})
	return s, nil
}

func (s *Server) wrap(kind string, st store.Store) role {
	r := role{label: kind + ":" + st.Name(), name: st.Name(), checked: store.ChecksReads(st)}
	inner := st
	if s.cfg.FaultsAdmin {
		r.faulty = store.WithFaults(st)
		inner = r.faulty
	}
	r.store = instrumented{Store: inner, label: r.label, m: s.m}
	if sz, ok := st.(store.Sizer); ok {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opkit_altda_store_bytes", Help: "Bytes a store keeps on disk.", ConstLabels: prometheus.Labels{"store": r.label},
		}, func() float64 { return float64(sz.SizeBytes()) }))
	}
	return r
}

// Start listens and serves until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("da server: listen on %s: %w", s.cfg.Addr, err)
	}
	s.listener = ln
	s.httpSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		ReadTimeout:       s.cfg.BodyTimeout,
		WriteTimeout:      s.cfg.BodyTimeout + s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.probe(ctx)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.probeLoop(ctx)
	}()
	go func() {
		defer s.wg.Done()
		if s.queue != nil {
			s.queue.Run(ctx)
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("da server stopped serving", "err", err)
		}
	}()
	return nil
}

// URL is the base URL clients use.
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// Registry holds the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Close stops taking requests, waits for in-flight ones (writes included) until ctx is
// done, stops the background loops and closes the queue and the stores, which flushes them.
// Calling it again returns the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	var errs []error
	if s.httpSrv != nil {
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			_ = s.httpSrv.Close()
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.callsMu.Lock()
	s.closing = true
	s.callsMu.Unlock()
	calls := make(chan struct{})
	go func() {
		s.storeCalls.Wait()
		close(calls)
	}()
	select {
	case <-calls:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("store calls still running at shutdown: %w", ctx.Err()))
	}
	if s.queue != nil {
		if err := s.queue.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range append([]role{s.primary}, s.secondaries...) {
		if err := r.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", r.label, err))
		}
	}
	return errors.Join(errs...)
}

// Stats is a snapshot for the periodic status line.
type Stats struct {
	Puts, Gets  uint64
	Breaker     string
	RepairQueue int
}

// Stats returns counters since start.
func (s *Server) Stats() Stats {
	st := Stats{Puts: s.putCount.Load(), Gets: s.getCount.Load(), Breaker: s.breaker.State().String()}
	if s.queue != nil {
		st.RepairQueue = s.queue.Len()
	}
	return st
}

func (s *Server) probeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.probe(ctx)
		}
	}
}

// probe pings every store, feeds the primary's result to the breaker and refreshes the
// report /health serves, so /health itself never touches the stores.
func (s *Server) probe(ctx context.Context) {
	rep := &healthReport{Status: "ok"}
	for i, r := range append([]role{s.primary}, s.secondaries...) {
		pctx, cancel := context.WithTimeout(ctx, max(s.cfg.ProbeInterval, time.Second))
		err := r.store.Ping(pctx)
		cancel()
		sh := storeHealth{Role: r.label, Healthy: err == nil}
		if err != nil {
			sh.Error = err.Error()
		}
		if r.faulty != nil {
			f := r.faulty.Fault()
			sh.Fault = &f
		}
		rep.Stores = append(rep.Stores, sh)
		if i == 0 {
			switch {
			case err != nil && ctx.Err() == nil:
				s.breaker.Trip()
			case err == nil && s.breaker.ProbeDue():
				s.breaker.Success()
			}
		}
		if err != nil && rep.Status == "ok" {
			rep.Status = "degraded"
		}
	}
	rep.Breaker = s.breaker.State().String()
	rep.RetryAfter = retrySeconds(s.breaker.RetryAfter())
	if rep.Breaker != breaker.Closed.String() || !rep.Stores[0].Healthy {
		rep.Status = "unavailable"
	}
	if s.queue != nil {
		rep.RepairQueue = s.queue.Len()
	}
	s.health.Store(rep)
}

type healthReport struct {
	Status      string        `json:"status"` // ok, degraded (a secondary is down), unavailable (writes refused)
	Breaker     string        `json:"breaker"`
	RetryAfter  int64         `json:"retry_after,omitempty"`
	RepairQueue int           `json:"repair_queue"`
	Stores      []storeHealth `json:"stores"`
}

type storeHealth struct {
	Role    string       `json:"store"`
	Healthy bool         `json:"healthy"`
	Error   string       `json:"error,omitempty"`
	Fault   *store.Fault `json:"fault,omitempty"`
}

// retrySeconds rounds a delay up to whole seconds, at least 1.
func retrySeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(1, int64((d+time.Second-1)/time.Second))
}
