package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// Server limits: a getter request is a few hundred bytes, a batch of them a few hundred
// kilobytes; anything far larger is an error, not a workload.
const (
	maxBodyBytes      = 5 << 20
	maxBatchItems     = 1000
	maxBatchResponse  = 100 << 20
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Server serves the collector's JSON-RPC API over HTTP and websocket on one port, and
// /health.
type Server struct {
	rpc  *rpc.Server
	http *http.Server
	ln   net.Listener
	done chan error
}

// StartServer listens on addr (host:port; port 0 picks a free one) and serves c.
func StartServer(c *Collector, addr string) (*Server, error) {
	srv := rpc.NewServer()
	srv.SetHTTPBodyLimit(maxBodyBytes)
	srv.SetBatchLimits(maxBatchItems, maxBatchResponse)
	for _, api := range c.APIs() {
		if err := srv.RegisterName(api.Namespace, api.Service); err != nil {
			return nil, fmt.Errorf("register %s API: %w", api.Namespace, err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ws := srv.WebsocketHandler([]string{"*"})
	mux := http.NewServeMux()
	mux.Handle("/health", HealthHandler(c))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			ws.ServeHTTP(w, r)
			return
		}
		srv.ServeHTTP(w, r)
	})
	s := &Server{rpc: srv, ln: ln, done: make(chan error, 1), http: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// HTTPURL is the server's JSON-RPC URL over HTTP.
func (s *Server) HTTPURL() string { return "http://" + s.ln.Addr().String() }

// WSURL is the server's JSON-RPC URL over websocket.
func (s *Server) WSURL() string { return "ws://" + s.ln.Addr().String() }

// Close stops accepting requests, lets in-flight ones finish until ctx ends, and
// closes websocket connections.
func (s *Server) Close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.rpc.Stop()
	if serr := <-s.done; err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("stop collector API: %w", err)
	}
	return nil
}

// HealthHandler answers 200 with the status while collection runs, and 503 once it
// halted on a block that failed its check.
func HealthHandler(c *Collector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := c.Status()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		case st.Halted != "":
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": st.Halted})
		default:
			_ = json.NewEncoder(w).Encode(st)
		}
	})
}
