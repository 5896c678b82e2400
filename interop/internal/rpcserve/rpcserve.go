package rpcserve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// Limits of every server built here.
const (
	// MaxBodyBytes bounds an HTTP request body and a websocket message: the largest
	// legitimate request of the protocol is a few hundred bytes.
	MaxBodyBytes = 1 << 20
	// HeaderTimeout bounds how long a client may take to send its request headers.
	HeaderTimeout = 10 * time.Second
	// RequestTimeout bounds a plain HTTP request (not a websocket).
	RequestTimeout = 30 * time.Second
)

// NewRPCServer returns a go-ethereum RPC server with opkit's limits applied.
func NewRPCServer() *rpc.Server {
	srv := rpc.NewServer()
	srv.SetHTTPBodyLimit(MaxBodyBytes)
	srv.SetWebsocketReadLimit(MaxBodyBytes)
	srv.SetBatchLimits(100, 10<<20)
	return srv
}

// Handler routes websocket upgrades to the RPC server's websocket handler, POSTs to its
// HTTP handler, and the extra paths (e.g. /health) to their handlers.
func Handler(srv *rpc.Server, extra map[string]http.Handler) http.Handler {
	ws := srv.WebsocketHandler([]string{"*"})
	httpRPC := http.TimeoutHandler(srv, RequestTimeout, `{"error":"request timed out"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := extra[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			ws.ServeHTTP(w, r)
			return
		}
		if status, msg := checkRequest(r); status != 0 {
			WriteJSONError(w, status, msg)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		httpRPC.ServeHTTP(w, r)
	})
}

// checkRequest answers what the RPC server would refuse anyway, but with a JSON body.
func checkRequest(r *http.Request) (int, string) {
	switch {
	case r.Method != http.MethodPost:
		return http.StatusMethodNotAllowed, "JSON-RPC wants POST"
	case r.ContentLength > MaxBodyBytes:
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		return http.StatusUnsupportedMediaType, "JSON-RPC wants Content-Type application/json"
	}
	return 0, ""
}

// WriteJSONError answers with status and a body {"error": msg}.
func WriteJSONError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Health answers {"status":"ok"}.
func Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
}

// HTTPServer is a listening http.Server.
type HTTPServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error
	once sync.Once
}

// Listen starts serving h on host:port (port 0 picks a free one).
func Listen(host string, port int, h http.Handler, logger *slog.Logger) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s:%d: %w", host, port, err)
	}
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: HeaderTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes open connections (websockets included, which Shutdown
// would wait on forever) and waits for the serve loop to end.
func (s *HTTPServer) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
	return s.err
}
