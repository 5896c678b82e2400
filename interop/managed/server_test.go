package managed_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/interop/managed/memchain"
)

var testSecret = interop.Secret{1, 2, 3}

var anchorL1 = eth.BlockRef{Hash: common.Hash{0xa1}, Number: 7, ParentHash: common.Hash{0xa0}, Time: 1000}

func startNode(t *testing.T) (*memchain.Chain, *managed.Server) {
	t.Helper()
	chain := memchain.New(901, 2000, 2, anchorL1)
	srv, err := managed.NewServer(managed.Config{Secret: testSecret}, chain)
	if err != nil {
		t.Fatal(err)
	}
	chain.SetSink(srv)
	t.Cleanup(func() { _ = srv.Close() })
	return chain, srv
}

func dial(t *testing.T, url string, secret interop.Secret) *rpc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := rpc.DialOptions(ctx, url, rpc.WithHTTPAuth(secret.HTTPAuth()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func call(t *testing.T, cl *rpc.Client, out any, method string, args ...any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.CallContext(ctx, out, method, args...)
}

func mustCall(t *testing.T, cl *rpc.Client, out any, method string, args ...any) {
	t.Helper()
	if err := call(t, cl, out, method, args...); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if got := interop.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %d, want %d", err, got, code)
	}
}

func TestAuthRefusesWrongSecretAndStaleToken(t *testing.T) {
	_, srv := startNode(t)
	post := func(header string) (int, string) {
		req, _ := http.NewRequest("POST", srv.HTTPEndpoint(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"interop_chainID","params":[]}`))
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusUnauthorized && !resp.Close {
			t.Errorf("a 401 keeps the connection open for the refused client")
		}
		return resp.StatusCode, string(body)
	}
	tok := func(s interop.Secret, at time.Time) string {
		v, err := s.NewToken(at)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + v
	}
	for name, h := range map[string]string{
		"no token":     "",
		"wrong secret": tok(interop.Secret{9}, time.Now()),
		"stale iat":    tok(testSecret, time.Now().Add(-90*time.Second)),
		"future iat":   tok(testSecret, time.Now().Add(90*time.Second)),
	} {
		code, body := post(h)
		if code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want 401 with a JSON error", name, code, body)
		}
	}
	if code, body := post(tok(testSecret, time.Now())); code != 200 || !strings.Contains(body, `"901"`) {
		t.Fatalf("valid token: %d %s", code, body)
	}
	// The websocket upgrade is checked the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := rpc.DialOptions(ctx, srv.WSEndpoint(), rpc.WithHTTPAuth(interop.Secret{9}.HTTPAuth()))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("websocket with the wrong secret: %v, want 401", err)
	}
}

func TestBadHTTPInputGetsJSONErrors(t *testing.T) {
	_, srv := startNode(t)
	tok, _ := testSecret.NewToken(time.Now())
	do := func(method, ctype string, body []byte) (int, string) {
		req, _ := http.NewRequest(method, srv.HTTPEndpoint(), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		method, ctype string
		body          []byte
		want          int
	}{
		{"GET", "", nil, 405},
		{"POST", "text/plain", []byte(`{}`), 415},
		{"POST", "application/json", bytes.Repeat([]byte("x"), 2<<20), 413},
	}
	for _, c := range cases {
		code, body := do(c.method, c.ctype, c.body)
		var e struct{ Error string }
		if code != c.want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", c.method, c.ctype, code, body, c.want)
		}
	}
	// Malformed JSON-RPC gets a JSON-RPC error, not a crash.
	code, body := do("POST", "application/json", []byte(`{"jsonrpc":"2.0","id":1,"method":"interop_l2BlockRefByNumber","params":["0x1"]}`))
	if code != 200 || !strings.Contains(body, "-32602") {
		t.Fatalf("hex number param: %d %s, want -32602", code, body)
	}
	code, body = do("POST", "application/json", []byte(`{"jsonrpc":"2.0","id":1,`))
	if code != 200 || !strings.Contains(body, "-32700") {
		t.Fatalf("truncated JSON: %d %s, want -32700", code, body)
	}
}

func TestEveryMethodOverWebsocket(t *testing.T) {
	chain, srv := startNode(t)
	initLog := &types.Log{Address: common.Address{5}, Topics: []common.Hash{{6}}, Data: []byte{7}}
	b1 := chain.AddBlock(anchorL1.ID(), initLog)
	b2 := chain.AddBlock(anchorL1.ID())
	cl := dial(t, srv.WSEndpoint(), testSecret)

	var raw json.RawMessage
	mustCall(t, cl, &raw, "interop_chainID")
	if string(raw) != `"901"` {
		t.Fatalf("chainID %s, want \"901\"", raw)
	}
	var anchor eth.DerivedBlockRefPair
	mustCall(t, cl, &anchor, "interop_anchorPoint")
	if anchor.Source != anchorL1 || anchor.Derived.Number != 0 {
		t.Fatalf("anchor %+v", anchor)
	}
	for _, m := range []string{"interop_l2BlockRefByNumber", "interop_blockRefByNumber"} {
		var ref eth.L2BlockRef
		mustCall(t, cl, &ref, m, 1)
		if ref != b1 {
			t.Fatalf("%s(1) = %+v, want %+v", m, ref, b1)
		}
	}
	mustCall(t, cl, &raw, "interop_l2BlockRefByNumber", 2)
	if !strings.Contains(string(raw), `"l1origin":{`) || !strings.Contains(string(raw), `"number":2`) {
		t.Fatalf("L2BlockRef wire form %s", raw)
	}
	err := call(t, cl, &raw, "interop_l2BlockRefByNumber", 99)
	wantCode(t, err, interop.CodeNotFound)
	if !strings.Contains(err.Error(), "block not found") {
		t.Fatalf("not-found text %q lacks the legacy phrase", err)
	}
	var byTime eth.L2BlockRef
	mustCall(t, cl, &byTime, "interop_l2BlockRefByTimestamp", b2.Time)
	if byTime != b2 {
		t.Fatalf("by timestamp %+v", byTime)
	}
	var receipts types.Receipts
	mustCall(t, cl, &receipts, "interop_fetchReceipts", b1.Hash)
	if len(receipts) != 1 || len(receipts[0].Logs) != 1 || interop.PayloadHash(receipts[0].Logs[0]) != interop.PayloadHash(initLog) {
		t.Fatalf("receipts %+v", receipts)
	}
	wantCode(t, call(t, cl, &receipts, "interop_fetchReceipts", common.Hash{0xee}), interop.CodeNotFound)
	var out, pending eth.OutputV0
	mustCall(t, cl, &out, "interop_outputV0AtTimestamp", b1.Time)
	mustCall(t, cl, &pending, "interop_pendingOutputV0AtTimestamp", b1.Time)
	if out.BlockHash != b1.Hash || pending != out {
		t.Fatalf("outputs %+v %+v", out, pending)
	}
	wantCode(t, call(t, cl, &out, "interop_outputV0AtTimestamp", b1.Time+1), interop.CodeNotFound)

	mustCall(t, cl, nil, "interop_updateCrossUnsafe", b2.ID())
	mustCall(t, cl, nil, "interop_updateCrossSafe", b1.ID(), anchorL1.ID())
	mustCall(t, cl, nil, "interop_updateFinalized", b1.ID())
	h := chain.Heads()
	if h.CrossUnsafe != b2 || h.CrossSafe != b1 || h.Finalized != b1 || h.CrossSafeSource != anchorL1.ID() {
		t.Fatalf("heads after promotions %+v", h)
	}
	// Promotions are idempotent; a wrong number for a hash is refused.
	mustCall(t, cl, nil, "interop_updateCrossUnsafe", b2.ID())
	wantCode(t, call(t, cl, nil, "interop_updateCrossUnsafe", eth.BlockID{Hash: b2.Hash, Number: 5}), interop.CodeInvalidParams)
	wantCode(t, call(t, cl, nil, "interop_updateFinalized", eth.BlockID{Hash: common.Hash{1}, Number: 1}), interop.CodeNotFound)

	next := eth.BlockRef{Hash: common.Hash{0xa2}, Number: 8, ParentHash: anchorL1.Hash, Time: 1012}
	mustCall(t, cl, nil, "interop_provideL1", next)
	if p := chain.Provided(); len(p) != 1 || p[0] != next {
		t.Fatalf("provided %+v", p)
	}

	// Reset: a conflicting target is -39002 with the node's block as data, a missing one
	// -39001, and a zero finalized means the anchor.
	g, _ := chain.L2BlockRefByNumber(context.Background(), 0)
	err = call(t, cl, nil, "interop_reset", eth.BlockID{Hash: common.Hash{3}, Number: 1}, g.ID(), g.ID(), g.ID(), g.ID())
	wantCode(t, err, interop.CodeConflictingBlock)
	var de rpc.DataError
	if !errors.As(err, &de) || !strings.Contains(fmt.Sprint(de.ErrorData()), b1.Hash.Hex()) {
		t.Fatalf("conflict data %v, want the node's block", err)
	}
	wantCode(t, call(t, cl, nil, "interop_reset", eth.BlockID{Hash: common.Hash{3}, Number: 50}, g.ID(), g.ID(), g.ID(), g.ID()), interop.CodeResetTargetNotFound)
	mustCall(t, cl, nil, "interop_reset", b1.ID(), b1.ID(), b1.ID(), eth.BlockID{}, eth.BlockID{})
	h = chain.Heads()
	if h.LocalUnsafe != b1 || h.LocalSafe != b1 || h.CrossSafe != g || h.Finalized != g || chain.Resets() != 1 {
		t.Fatalf("heads after reset %+v", h)
	}
	mustCall(t, cl, nil, "interop_resetPreInterop")
	if chain.Heads().LocalUnsafe != g {
		t.Fatal("pre-interop reset did not rewind to genesis")
	}

	// Invalidation replaces the block and reports the replacement.
	b1 = chain.AddBlock(anchorL1.ID(), initLog)
	if _, err := chain.MarkSafe(1, anchorL1); err != nil {
		t.Fatal(err)
	}
	for {
		var ev *interop.ManagedEvent
		if err := call(t, cl, &ev, "interop_pullEvent"); err != nil {
			wantCode(t, err, interop.CodeOutOfEvents)
			break
		}
	}
	mustCall(t, cl, nil, "interop_invalidateBlock", b1.BlockRef().Seal())
	var ev *interop.ManagedEvent
	mustCall(t, cl, &ev, "interop_pullEvent")
	if ev.ReplaceBlock == nil || ev.ReplaceBlock.Invalidated != b1.Hash || ev.ReplaceBlock.Replacement.Number != 1 {
		t.Fatalf("event after invalidation %+v", ev)
	}
	mustCall(t, cl, &pending, "interop_pendingOutputV0AtTimestamp", b1.Time)
	if pending.BlockHash != b1.Hash {
		t.Fatalf("pending output of the replacement names %s, want the invalidated block %s", pending.BlockHash, b1.Hash)
	}
}

func TestSubscriptionDeliversInOrderWithoutLossOrRepeats(t *testing.T) {
	chain, srv := startNode(t)
	cl := dial(t, srv.WSEndpoint(), testSecret)
	ch := make(chan interop.EventEntry, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := cl.Subscribe(ctx, interop.Namespace, ch, interop.EventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// A subscriber first learns where the node is.
	first := <-ch
	g, _ := chain.L2BlockRefByNumber(ctx, 0)
	if first.Data == nil || first.Data.UnsafeBlock == nil || *first.Data.UnsafeBlock != g.BlockRef() ||
		first.Data.DerivationUpdate == nil || first.Data.DerivationUpdate.Source != anchorL1 {
		t.Fatalf("first event %+v, want the node's heads", first.Data)
	}
	const n = 300
	var want []eth.BlockRef
	for i := 0; i < n; i++ {
		ref := chain.AddBlock(anchorL1.ID())
		srv.UnsafeBlock(ref.BlockRef()) // the engine reporting the same head again is dropped
		want = append(want, ref.BlockRef())
	}
	for i := 0; i < n; i++ {
		select {
		case e := <-ch:
			if e.Data == nil || e.Data.UnsafeBlock == nil || *e.Data.UnsafeBlock != want[i] {
				t.Fatalf("event %d = %+v, want unsafe block %d", i, e.Data, want[i].Number)
			}
		case err := <-sub.Err():
			t.Fatalf("subscription failed after %d events: %v", i, err)
		case <-ctx.Done():
			t.Fatalf("got %d of %d events", i, n)
		}
	}
	// An origin update comes with its derivation update, in one event.
	srv.DerivationOriginUpdate(anchorL1, want[0])
	e := <-ch
	if e.Data.DerivationUpdate == nil || e.Data.DerivationOriginUpdate == nil || *e.Data.DerivationOriginUpdate != anchorL1 {
		t.Fatalf("origin event %+v", e.Data)
	}
	select {
	case e := <-ch:
		t.Fatalf("unexpected extra event %+v", e.Data)
	default:
	}
}

func TestPullQueueSemantics(t *testing.T) {
	chain := memchain.New(901, 2000, 2, anchorL1)
	srv, err := managed.NewServer(managed.Config{Secret: testSecret, QueueSize: 10}, chain)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	chain.SetSink(srv)
	cl := dial(t, srv.HTTPEndpoint(), testSecret)
	var ev *interop.ManagedEvent
	wantCode(t, call(t, cl, &ev, "interop_pullEvent"), interop.CodeOutOfEvents)
	var refs []eth.L2BlockRef
	for i := 0; i < 15; i++ {
		refs = append(refs, chain.AddBlock(anchorL1.ID()))
	}
	// The queue keeps the newest 10, oldest first.
	for i := 5; i < 15; i++ {
		mustCall(t, cl, &ev, "interop_pullEvent")
		if ev.UnsafeBlock == nil || ev.UnsafeBlock.Number != refs[i].Number {
			t.Fatalf("pulled %+v, want block %d", ev, refs[i].Number)
		}
	}
	wantCode(t, call(t, cl, &ev, "interop_pullEvent"), interop.CodeOutOfEvents)

	// Subscribing drops the queue; pulling ends the subscription with a close entry.
	chain.AddBlock(anchorL1.ID())
	ws := dial(t, srv.WSEndpoint(), testSecret)
	ch := make(chan interop.EventEntry, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := ws.Subscribe(ctx, interop.Namespace, ch, interop.EventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if heads := <-ch; heads.Data == nil || heads.Data.UnsafeBlock == nil || heads.Data.UnsafeBlock.Number != 16 {
		t.Fatalf("first event %+v, want the heads", heads.Data)
	}
	wantCode(t, call(t, cl, &ev, "interop_pullEvent"), interop.CodeOutOfEvents)
	select {
	case e := <-ch:
		if e.Data != nil || !e.Close {
			t.Fatalf("got %+v, want the close entry", e)
		}
	case <-ctx.Done():
		t.Fatal("no close entry after pulling")
	}
	if srv.Subscribed() {
		t.Fatal("subscription still active after a pull")
	}
	// Without a subscriber, events queue again.
	last := chain.AddBlock(anchorL1.ID())
	mustCall(t, cl, &ev, "interop_pullEvent")
	if ev.UnsafeBlock == nil || ev.UnsafeBlock.Hash != last.Hash {
		t.Fatalf("pulled %+v", ev)
	}
}

func TestResetEventClearsDeduplication(t *testing.T) {
	chain, srv := startNode(t)
	cl := dial(t, srv.HTTPEndpoint(), testSecret)
	ref := chain.AddBlock(anchorL1.ID())
	srv.RequestReset("engine reset")
	srv.UnsafeBlock(ref.BlockRef()) // news again after a reset
	var kinds []string
	for {
		var ev *interop.ManagedEvent
		if err := call(t, cl, &ev, "interop_pullEvent"); err != nil {
			wantCode(t, err, interop.CodeOutOfEvents)
			break
		}
		switch {
		case ev.Reset != nil:
			kinds = append(kinds, "reset:"+*ev.Reset)
		case ev.UnsafeBlock != nil:
			kinds = append(kinds, fmt.Sprint("unsafe:", ev.UnsafeBlock.Number))
		}
	}
	if strings.Join(kinds, ",") != "unsafe:1,reset:engine reset,unsafe:1" {
		t.Fatalf("events %v", kinds)
	}
}

// An unauthenticated client trickling a body gets its 401 at once and loses the
// connection, so refused clients cannot pin the node's connections.
func TestUnauthenticatedSlowBodiesAreRefusedAtOnce(t *testing.T) {
	_, srv := startNode(t)
	const clients = 50
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		go func() {
			conn, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n{"); err != nil {
				errs <- err
				return
			}
			r := bufio.NewReader(conn)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				errs <- fmt.Errorf("no answer: %w", err)
				return
			}
			_, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
				return
			}
			if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
				errs <- fmt.Errorf("connection left open after the 401: %v", err)
				return
			}
			errs <- nil
		}()
	}
	for i := 0; i < clients; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
}

// Re-subscribing on one connection leaves one live subscription and no goroutine per
// earlier subscription.
func TestResubscribingDoesNotLeak(t *testing.T) {
	_, srv := startNode(t)
	conn := dialRaw(t, srv)
	// Read and discard everything the server writes, counting subscription answers.
	answers := make(chan struct{}, 2048)
	go func() {
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(msg, []byte(`"id":`)) {
				answers <- struct{}{}
			}
		}
	}()
	subscribe := func(id int) {
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"interop_subscribe","params":["events"]}`, id)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-answers:
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer to subscription %d", id)
		}
	}
	subscribe(0)
	waitFor(t, 5*time.Second, srv.Subscribed)
	base := runtime.NumGoroutine()
	const n = 1000
	for i := 1; i <= n; i++ {
		subscribe(i)
	}
	// Replaced senders exit after writing their close signal; wait for them to.
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > base+20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after %d re-subscriptions, %d before", runtime.NumGoroutine(), n, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !srv.Subscribed() {
		t.Fatal("the newest subscription is not live")
	}
}

func dialRaw(t *testing.T, srv *managed.Server) *websocket.Conn {
	t.Helper()
	tok, err := testSecret.NewToken(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+tok)
	conn, _, err := websocket.DefaultDialer.Dial(srv.WSEndpoint(), hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// A subscriber that stops reading never holds up the node's event producers.
func TestStalledSubscriberDoesNotBlockProducers(t *testing.T) {
	chain, srv := startNode(t)
	conn := dialRaw(t, srv)
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"interop_subscribe","params":["events"]}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, srv.Subscribed)
	// From here on the client reads nothing. Enough events to fill every socket buffer
	// between the two ends many times over must still be accepted without waiting.
	start := time.Now()
	for i := 0; i < 20000; i++ {
		ref := chain.AddBlock(anchorL1.ID())
		srv.UnsafeBlock(ref.BlockRef())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("20000 events took %s with a stalled subscriber", took)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
