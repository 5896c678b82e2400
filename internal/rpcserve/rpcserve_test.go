package rpcserve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

func serve(t *testing.T, h http.Handler, to Timeouts) *HTTPServer {
	t.Helper()
	srv, err := ListenTimeouts("127.0.0.1", 0, h, slog.New(slog.DiscardHandler), to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// readsEOF waits until the server closes conn, failing the test at the deadline.
func readsEOF(t *testing.T, conn net.Conn, r *bufio.Reader, within time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection still open after %s (read: %v)", within, err)
	}
}

func TestRefusalAnswersAtOnceAndCloses(t *testing.T) {
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Refuse(w, http.StatusUnauthorized, "missing bearer token")
	})
	srv := serve(t, refuse, DefaultTimeouts)
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body declared at 200,000 bytes of which only a sliver ever arrives: the refusal
	// must not wait for the rest.
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n{\"jsonrpc\""); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer to a refused slow body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "missing bearer token") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	readsEOF(t, conn, r, 5*time.Second)
}

func TestIdleKeepAliveConnectionsAreClosed(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	to := DefaultTimeouts
	to.Idle = 200 * time.Millisecond
	srv := serve(t, ok, to)
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	_, _ = io.ReadAll(resp.Body)
	readsEOF(t, conn, r, 5*time.Second)
}

type echoService struct{}

func (echoService) Echo(s string) string { return s }

func TestWebsocketsOutliveConnectionTimeouts(t *testing.T) {
	rpcSrv := NewRPCServer()
	if err := rpcSrv.RegisterName("test", echoService{}); err != nil {
		t.Fatal(err)
	}
	defer rpcSrv.Stop()
	short := 150 * time.Millisecond
	srv := serve(t, Handler(rpcSrv, nil), Timeouts{Header: short, Read: short, Write: short, Idle: short})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := rpc.DialContext(ctx, "ws://"+srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Calls spread over several times every connection timeout all succeed on the one
	// websocket: the upgrade cleared the deadlines the HTTP server set.
	calls := 0
	for start := time.Now(); time.Since(start) < 6*short; calls++ {
		var out string
		if err := cl.CallContext(ctx, &out, "test_echo", "hi"); err != nil || out != "hi" {
			t.Fatalf("call %d after %s: %q %v", calls, time.Since(start), out, err)
		}
		time.Sleep(short / 3)
	}
	if calls < 10 {
		t.Fatalf("only %d calls made", calls)
	}
}
