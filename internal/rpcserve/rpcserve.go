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
	// ReadTimeout bounds reading a whole request, body included, so a slow client cannot
	// hold a connection by trickling bytes. The websocket upgrade clears the connection's
	// deadlines, so it does not cut live websockets.
	ReadTimeout = RequestTimeout
	// WriteTimeout bounds writing a response; it leaves room for RequestTimeout's own
	// answer.
	WriteTimeout = RequestTimeout + 5*time.Second
	// IdleTimeout closes keep-alive connections that carry no request.
	IdleTimeout = 60 * time.Second
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

// Refuse answers like WriteJSONError and closes the connection afterwards, without
// reading what is left of the request body: a refused client (a 401) gets no keep-alive
// connection to hold and no server time spent draining a body it may trickle.
func Refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Connection", "close")
	WriteJSONError(w, status, msg)
	// The server reads up to 256 KiB of an unread body before closing; a read deadline
	// in the past ends that at once (the answer is written before the drain starts).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
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

// Timeouts of a listening server's connections.
type Timeouts struct {
	Header, Read, Write, Idle time.Duration
}

// DefaultTimeouts are the timeouts of every server Listen starts.
var DefaultTimeouts = Timeouts{Header: HeaderTimeout, Read: ReadTimeout, Write: WriteTimeout, Idle: IdleTimeout}

// Listen starts serving h on host:port (port 0 picks a free one) with DefaultTimeouts.
func Listen(host string, port int, h http.Handler, logger *slog.Logger) (*HTTPServer, error) {
	return ListenTimeouts(host, port, h, logger, DefaultTimeouts)
}

// ListenTimeouts is Listen with chosen timeouts.
func ListenTimeouts(host string, port int, h http.Handler, logger *slog.Logger, t Timeouts) (*HTTPServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s:%d: %w", host, port, err)
	}
	s := &HTTPServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: t.Header,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
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
