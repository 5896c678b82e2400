package managed

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/internal/rpcserve"
	"github.com/opkit/opkit/interop"
)

// DefaultQueueSize is how many events the pull queue keeps, as the OP Stack's node does.
const DefaultQueueSize = 100

// Config configures a Server.
type Config struct {
	// Host and Port to listen on; defaults 127.0.0.1 and a free port.
	Host string
	Port int
	// Secret authenticates the supervisor.
	Secret interop.Secret
	// QueueSize bounds the pull queue; default DefaultQueueSize.
	QueueSize int
	// Logger; nil discards.
	Logger *slog.Logger
}

// Server serves the interop namespace of one node.
type Server struct {
	backend Backend
	log     *slog.Logger
	events  *stream
	rpc     *rpc.Server
	http    *rpcserve.HTTPServer

	// last holds the last event sent of each kind, to drop exact repeats: a node's
	// engine reports the same head more than once, and a supervisor gains nothing from it.
	lastMu sync.Mutex
	last   map[string]any
}

// NewServer starts serving backend.
func NewServer(cfg Config, backend Backend) (*Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		backend: backend,
		log:     cfg.Logger,
		events:  newStream(cfg.Logger, cfg.QueueSize),
		rpc:     rpcserve.NewRPCServer(),
		last:    make(map[string]any),
	}
	if err := s.rpc.RegisterName(interop.Namespace, &API{s: s}); err != nil {
		return nil, fmt.Errorf("register interop API: %w", err)
	}
	h := rpcserve.Handler(s.rpc, nil)
	root := http.NewServeMux()
	root.Handle("/health", rpcserve.Health())
	root.Handle("/", interop.AuthHandler(cfg.Secret, h))
	srv, err := rpcserve.Listen(cfg.Host, cfg.Port, root, cfg.Logger)
	if err != nil {
		s.rpc.Stop()
		return nil, fmt.Errorf("interop server: %w", err)
	}
	s.http = srv
	s.log.Info("Interop RPC listening", "endpoint", s.WSEndpoint())
	return s, nil
}

// Addr is host:port the server listens on.
func (s *Server) Addr() string { return s.http.Addr().String() }

// WSEndpoint is the websocket URL a supervisor dials.
func (s *Server) WSEndpoint() string { return "ws://" + s.Addr() }

// HTTPEndpoint is the plain HTTP URL of the same API.
func (s *Server) HTTPEndpoint() string { return "http://" + s.Addr() }

// Subscribed reports whether a supervisor holds an event subscription.
func (s *Server) Subscribed() bool { return s.events.subscribed() }

// Close closes every connection and stops listening.
func (s *Server) Close() error {
	// The RPC server closes its websocket connections, which http.Server no longer
	// tracks once they are upgraded.
	s.rpc.Stop()
	return s.http.Close()
}

// sendDedup sends ev unless the previous event of kind carried the same value.
func (s *Server) sendDedup(kind string, value any, ev *interop.ManagedEvent) {
	s.lastMu.Lock()
	if prev, ok := s.last[kind]; ok && prev == value {
		s.lastMu.Unlock()
		s.log.Debug("Dropping repeated event", "kind", kind)
		return
	}
	s.last[kind] = value
	s.lastMu.Unlock()
	s.events.send(ev)
}

// UnsafeBlock reports a new local-unsafe block.
func (s *Server) UnsafeBlock(ref eth.BlockRef) {
	s.sendDedup("unsafe", ref, &interop.ManagedEvent{UnsafeBlock: &ref})
}

// DerivationUpdate reports a new local-safe block derived from source.
func (s *Server) DerivationUpdate(source, derived eth.BlockRef) {
	pair := eth.DerivedBlockRefPair{Source: source, Derived: derived}
	s.sendDedup("safe", pair, &interop.ManagedEvent{DerivationUpdate: &pair})
}

// DerivationOriginUpdate reports that derivation traversed to L1 block origin, with the
// last block derived so far.
func (s *Server) DerivationOriginUpdate(origin, lastDerived eth.BlockRef) {
	pair := eth.DerivedBlockRefPair{Source: origin, Derived: lastDerived}
	s.sendDedup("origin", origin, &interop.ManagedEvent{DerivationUpdate: &pair, DerivationOriginUpdate: &origin})
}

// ExhaustL1 reports that derivation used up L1 up to source and needs the next L1 block.
func (s *Server) ExhaustL1(source, lastDerived eth.BlockRef) {
	pair := eth.DerivedBlockRefPair{Source: source, Derived: lastDerived}
	s.sendDedup("exhaust", pair, &interop.ManagedEvent{ExhaustL1: &pair})
}

// RepeatExhaustL1 sends ExhaustL1 again although it equals the last one sent: a
// supervisor that could not act on it (the next L1 block was not known to it yet, as the
// OP Stack's supervisor then drops the event) is waiting for it to come again. Callers
// bound how often they repeat it.
func (s *Server) RepeatExhaustL1(source, lastDerived eth.BlockRef) {
	pair := eth.DerivedBlockRefPair{Source: source, Derived: lastDerived}
	s.lastMu.Lock()
	s.last["exhaust"] = pair
	s.lastMu.Unlock()
	s.events.send(&interop.ManagedEvent{ExhaustL1: &pair})
}

// ReplaceBlock reports that invalidated was replaced by replacement.
func (s *Server) ReplaceBlock(replacement eth.BlockRef, invalidated eth.BlockSeal) {
	r := eth.BlockReplacement{Replacement: replacement, Invalidated: invalidated.Hash}
	s.sendDedup("replace", r, &interop.ManagedEvent{ReplaceBlock: &r})
}

// RequestReset asks the supervisor to reset the node. It also forgets the events sent so
// far, since after a reset the same heads are news again.
func (s *Server) RequestReset(reason string) {
	s.forgetSent()
	s.events.send(&interop.ManagedEvent{Reset: &reason})
}

// forgetSent clears the deduplication memory.
func (s *Server) forgetSent() {
	s.lastMu.Lock()
	clear(s.last)
	s.lastMu.Unlock()
}
