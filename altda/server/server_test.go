package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
)

func TestKeccakPutGet(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	data := frame(1, 120000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(comm, altda.Keccak256Commitment(data)) {
		t.Fatalf("commitment %s", comm)
	}
	got, err := ts.client.Get(ctx, comm)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	// Durable in both stores before the 200.
	for name, s := range map[string]*store.Memory{"primary": ts.primary, "secondary": ts.secondary} {
		if v, err := s.Get(ctx, comm); err != nil || !bytes.Equal(v, data) {
			t.Fatalf("%s holds %d bytes, %v", name, len(v), err)
		}
	}
	// Route variants real clients send.
	hexNo0x := strings.TrimPrefix(comm.String(), "0x")
	for _, path := range []string{
		"/get/" + hexNo0x,
		"/get/" + comm.String() + "?l1_inclusion_block_number=12&commitment_mode=optimism_keccak",
	} {
		if a := ts.do(t, http.MethodGet, path, nil); a.status != 200 || !bytes.Equal(a.body, data) {
			t.Fatalf("GET %s: %d, %d bytes", path, a.status, len(a.body))
		}
	}
	other := frame(2, 1000)
	oc := altda.Keccak256Commitment(other)
	if a := ts.do(t, http.MethodPost, "/put/"+strings.TrimPrefix(oc.String(), "0x")+"?foo=bar", other); a.status != 200 {
		t.Fatalf("PUT without 0x: %d %s", a.status, a.body)
	}
	if a := ts.do(t, http.MethodPost, "/put", other); a.status != 200 || !bytes.Equal(a.body, oc) {
		t.Fatalf("PUT /put without generic mode answers the keccak commitment as raw bytes: %d %x", a.status, a.body)
	}
}

func TestGenericPutIsContentAddressedAndIdempotent(t *testing.T) {
	ts := startServer(t, Config{GenericCommitment: true, DALayerByte: 0x0c})
	ctx := context.Background()
	gc := ts.newClient(t, altda.GenericMode)
	data := frame(3, 50000)
	c1, err := gc.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1, altda.ContentAddressedGeneric(0x0c, data)) {
		t.Fatalf("commitment %s is not 0x01 0c ‖ keccak256(body)", c1)
	}
	if a := ts.do(t, http.MethodPost, "/put/", data); a.status != 200 || !bytes.Equal(a.body, c1) {
		t.Fatalf("resend to /put/: %d %x", a.status, a.body)
	}
	for _, role := range []string{"primary:memory", "secondary:memory"} {
		if n := ts.counter(t, "opkit_altda_store_ops_total", "store="+role, "op=put"); n != 1 {
			t.Fatalf("%s saw %v writes for two PUTs of one body, want 1", role, n)
		}
	}
	got, err := gc.Get(ctx, c1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
	// A generic commitment the server did not make cannot be verified, so it is refused.
	if a := ts.do(t, http.MethodPost, "/put/0x01ff0102", data); a.status != 400 {
		t.Fatalf("opaque generic PUT: %d", a.status)
	}
	if a := ts.do(t, http.MethodPost, "/put/"+c1.String(), data); a.status != 200 {
		t.Fatalf("PUT of its own generic commitment: %d %s", a.status, a.body)
	}
}

func TestStatusCodes(t *testing.T) {
	ts := startServer(t, Config{MaxInputBytes: 1000, Breaker: breaker.Config{Threshold: 100, Cooldown: time.Second}})
	data := frame(4, 500)
	comm := altda.Keccak256Commitment(data)
	wrong := altda.Keccak256Commitment([]byte("other"))

	cases := []struct {
		name, method, path string
		body               []byte
		status             int
		code               string // JSON "code", when one is due
	}{
		{"keccak mismatch", "POST", "/put/" + wrong.String(), data, 400, "mismatch"},
		{"too large", "POST", "/put", frame(5, 1001), 400, "too_large"},
		{"too large with commitment", "POST", "/put/" + altda.Keccak256Commitment(frame(5, 1001)).String(), frame(5, 1001), 400, "too_large"},
		{"empty body", "POST", "/put", nil, 400, "empty"},
		{"bad commitment", "POST", "/put/0xzz", data, 400, ""},
		{"unknown commitment type", "GET", "/get/0x05aa", nil, 400, ""},
		{"bad get commitment", "GET", "/get/nothex", nil, 400, ""},
		{"GET on put", "GET", "/put", nil, 405, ""},
		{"PUT method on put", "PUT", "/put/" + comm.String(), data, 405, ""},
		{"POST on get", "POST", "/get/" + comm.String(), data, 405, ""},
		{"DELETE on get", "DELETE", "/get/" + comm.String(), nil, 405, ""},
		{"unknown route", "GET", "/nope", nil, 404, ""},
	}
	for _, c := range cases {
		a := ts.do(t, c.method, c.path, c.body)
		if a.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, a.status, a.body, c.status)
			continue
		}
		m := a.json(t)
		if _, ok := m["error"].(string); !ok {
			t.Errorf("%s: no error message in %s", c.name, a.body)
		}
		if c.code != "" && m["code"] != c.code {
			t.Errorf("%s: code %v, want %s", c.name, m["code"], c.code)
		}
	}
	if ts.primary.Len() != 0 {
		t.Fatal("a refused PUT reached the store")
	}

	// 404 for an unknown commitment: empty body.
	if a := ts.do(t, "GET", "/get/"+comm.String(), nil); a.status != 404 || len(a.body) != 0 {
		t.Fatalf("unknown commitment: %d %q", a.status, a.body)
	}
	if _, err := ts.client.Get(context.Background(), comm); !errors.Is(err, altda.ErrNotFound) {
		t.Fatalf("client: %v", err)
	}

	// 500: the primary's write fails.
	ts.setFaults(t, `{"primary":{"put":"error"}}`)
	a := ts.do(t, "POST", "/put/"+comm.String(), data)
	if a.status != 500 || a.json(t)["error"] == nil {
		t.Fatalf("primary error: %d %s", a.status, a.body)
	}
	if _, err := ts.client.Put(context.Background(), data); !errors.Is(err, altda.ErrServer) {
		t.Fatalf("client on 500: %v", err)
	}

	// 503: the primary is unreachable; Retry-After header and retry_after agree.
	ts.setFaults(t, `{"primary":{"put":"unavailable"}}`)
	a = ts.do(t, "POST", "/put/"+comm.String(), data)
	if a.status != 503 {
		t.Fatalf("primary unavailable: %d %s", a.status, a.body)
	}
	hdr, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || hdr < 1 || float64(hdr) != a.json(t)["retry_after"] {
		t.Fatalf("Retry-After %q vs body %s", a.header.Get("Retry-After"), a.body)
	}
	_, err = ts.client.Put(context.Background(), data)
	var re *altda.ResponseError
	if !errors.Is(err, altda.ErrUnavailable) || !errors.As(err, &re) || re.RetryAfter < time.Second {
		t.Fatalf("client on 503: %v", err)
	}

	// 201: primary fine, secondary failing.
	ts.setFaults(t, `{"secondary":{"put":"error"}}`)
	a = ts.do(t, "POST", "/put/"+comm.String(), data)
	if a.status != 201 {
		t.Fatalf("secondary failure: %d %s", a.status, a.body)
	}
	m := a.json(t)
	if m["status"] != "partial" || m["commitment"] != comm.String() || m["message"] == "" {
		t.Fatalf("partial body %s", a.body)
	}
}

func TestPartialSuccessThenResendCompletes(t *testing.T) {
	ts := startServer(t, Config{RepairBackoff: time.Hour}) // only the resend may complete it
	ctx := context.Background()
	data := frame(6, 120000)
	ts.setFaults(t, `{"secondary":{"put":"unavailable"}}`)
	comm, err := ts.client.Put(ctx, data)
	var re *altda.ResponseError
	if !errors.Is(err, altda.ErrPartial) || !errors.As(err, &re) || !bytes.Equal(re.Commitment, comm) || !bytes.Equal(comm, altda.Keccak256Commitment(data)) {
		t.Fatalf("got %s, %v; want a partial success with the commitment", comm, err)
	}
	if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("partially written data must be readable: %v", err)
	}
	if n := ts.counter(t, "opkit_altda_repair_queue_length"); n != 1 {
		t.Fatalf("repair queue %v, want 1", n)
	}
	// Still down: the resend is partial again, and the entry is not duplicated.
	if _, err := ts.client.Put(ctx, data); !errors.Is(err, altda.ErrPartial) {
		t.Fatalf("resend while down: %v", err)
	}
	primaryPuts := ts.counter(t, "opkit_altda_store_ops_total", "store=primary:memory", "op=put")
	ts.setFaults(t, `{}`)
	if _, err := ts.client.Put(ctx, data); err != nil {
		t.Fatalf("resend after recovery: %v, want 200", err)
	}
	if v, err := ts.secondary.Get(ctx, comm); err != nil || !bytes.Equal(v, data) {
		t.Fatalf("secondary after resend: %v", err)
	}
	if n := ts.counter(t, "opkit_altda_repair_queue_length"); n != 0 {
		t.Fatalf("repair queue %v after the resend, want 0", n)
	}
	if n := ts.counter(t, "opkit_altda_store_ops_total", "store=primary:memory", "op=put"); n != primaryPuts {
		t.Fatalf("resends wrote the primary again (%v writes, had %v)", n, primaryPuts)
	}
	// Now complete: a further resend is 200 and writes nothing.
	secPuts := ts.counter(t, "opkit_altda_store_ops_total", "store=secondary:memory", "op=put")
	if _, err := ts.client.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if n := ts.counter(t, "opkit_altda_store_ops_total", "store=secondary:memory", "op=put"); n != secPuts {
		t.Fatalf("a resend of complete data wrote the secondary again")
	}
}

func TestRepairQueueDrainsInBackground(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	ts.setFaults(t, `{"secondary":{"put":"error"}}`)
	var comms []altda.Commitment
	for i := 0; i < 5; i++ {
		c, err := ts.client.Put(ctx, frame(byte(10+i), 2000))
		if !errors.Is(err, altda.ErrPartial) {
			t.Fatalf("put %d: %v", i, err)
		}
		comms = append(comms, c)
	}
	ts.setFaults(t, `{}`)
	waitFor(t, "the repair queue to drain", func() bool { return ts.counter(t, "opkit_altda_repair_queue_length") == 0 })
	for i, c := range comms {
		if v, err := ts.secondary.Get(ctx, c); err != nil || !bytes.Equal(v, frame(byte(10+i), 2000)) {
			t.Fatalf("secondary missing %s after repair: %v", c, err)
		}
	}
	if n := ts.counter(t, "opkit_altda_repaired_total"); n != 5 {
		t.Fatalf("repaired_total %v, want 5", n)
	}
}

func TestRepairQueueResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	openStores := func() (store.Store, store.Store) {
		p, err := pebblestore.Open(dir + "/primary")
		if err != nil {
			t.Fatal(err)
		}
		s, err := pebblestore.Open(dir + "/secondary")
		if err != nil {
			t.Fatal(err)
		}
		return p, s
	}
	ctx := context.Background()
	data := frame(20, 120000)

	p, s := openStores()
	srv := launch(t, Config{Addr: "127.0.0.1:0", Logger: quietLogger(), Primary: p, Secondaries: []store.Store{s}, RepairDir: dir + "/repair",
		FaultsAdmin: true, RepairBackoff: time.Hour})
	ts := &testServer{Server: srv, http: http.DefaultClient}
	ts.client = ts.newClient(t, altda.KeccakMode)
	ts.setFaults(t, `{"secondary":{"put":"unavailable"}}`)
	comm, err := ts.client.Put(ctx, data)
	if !errors.Is(err, altda.ErrPartial) {
		t.Fatalf("put: %v", err)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Restart without faults: the queue is read back and drained.
	p, s = openStores()
	srv2, err := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger(), Primary: p, Secondaries: []store.Store{s}, RepairDir: dir + "/repair",
		RepairBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if srv2.Stats().RepairQueue != 1 {
		t.Fatalf("restarted server sees %d queued repairs, want 1", srv2.Stats().RepairQueue)
	}
	if err := srv2.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv2.Close(ctx)
	waitFor(t, "the resumed queue to drain", func() bool { return srv2.Stats().RepairQueue == 0 })
	if v, err := s.Get(ctx, comm); err != nil || !bytes.Equal(v, data) {
		t.Fatalf("secondary after restart: %v", err)
	}
}

func TestBreakerOpensFailsOverAndCloses(t *testing.T) {
	ts := startServer(t, Config{Breaker: breaker.Config{Threshold: 3, Cooldown: 400 * time.Millisecond}, ProbeInterval: time.Hour})
	ctx := context.Background()
	ts.setFaults(t, `{"primary":{"put":"error"}}`)
	for i := 0; i < 3; i++ {
		if _, err := ts.client.Put(ctx, frame(byte(30+i), 100)); !errors.Is(err, altda.ErrServer) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// Open: refused without touching the primary, with a delay.
	ts.setFaults(t, `{}`)
	before := ts.counter(t, "opkit_altda_store_ops_total", "store=primary:memory", "op=put")
	a := ts.do(t, "POST", "/put/"+altda.Keccak256Commitment([]byte("x")).String(), []byte("x"))
	if a.status != 503 || a.header.Get("Retry-After") != "1" {
		t.Fatalf("open breaker: %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	if ts.counter(t, "opkit_altda_store_ops_total", "store=primary:memory", "op=put") != before {
		t.Fatal("an open breaker let a write through")
	}
	if ts.counter(t, "opkit_altda_breaker_state") != float64(breaker.Open) {
		t.Fatal("breaker_state gauge does not say open")
	}
	if h := ts.do(t, "GET", "/health", nil); h.status != 503 {
		t.Fatalf("/health while open: %d", h.status)
	}
	// Reads keep working while writes are refused.
	if _, err := ts.client.Get(ctx, altda.Keccak256Commitment([]byte("never"))); !errors.Is(err, altda.ErrNotFound) {
		t.Fatalf("read while open: %v", err)
	}
	// After the cooldown the trial write closes it.
	waitFor(t, "a write to be admitted after the cooldown", func() bool {
		_, err := ts.client.Put(ctx, []byte("x"))
		return err == nil
	})
	if ts.breaker.State() != breaker.Closed {
		t.Fatalf("state %s after a good trial", ts.breaker.State())
	}
}

func TestHealthProbeTripsAndRecovers(t *testing.T) {
	ts := startServer(t, Config{Breaker: breaker.Config{Threshold: 100, Cooldown: 100 * time.Millisecond}, ProbeInterval: 10 * time.Millisecond})
	ts.setFaults(t, `{"primary":{"get":"unavailable"}}`) // writes work; the probe does not
	waitFor(t, "the failed probe to open the breaker", func() bool { return ts.breaker.State() == breaker.Open })
	a := ts.do(t, "GET", "/health", nil)
	m := a.json(t)
	if a.status != 503 || m["breaker"] != "open" || m["status"] != "unavailable" {
		t.Fatalf("/health: %d %s", a.status, a.body)
	}
	ts.setFaults(t, `{}`)
	waitFor(t, "a good probe to close the breaker", func() bool { return ts.breaker.State() == breaker.Closed })
	waitFor(t, "/health to say ok", func() bool {
		a := ts.do(t, "GET", "/health", nil)
		return a.status == 200 && a.json(t)["status"] == "ok"
	})
}

func TestReadFallback(t *testing.T) {
	ts := startServer(t, Config{CacheBytes: -1})
	ctx := context.Background()
	data := frame(40, 3000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	// The primary fails reads: the secondary serves.
	ts.setFaults(t, `{"primary":{"get":"error"}}`)
	if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fallback read: %v", err)
	}
	ts.setFaults(t, `{}`)

	// The primary holds bytes that do not match: skipped, counted, the secondary serves.
	other := frame(41, 3000)
	oc := altda.Keccak256Commitment(other)
	_ = ts.primary.Put(ctx, oc, []byte("corrupt"))
	_ = ts.secondary.Put(ctx, oc, other)
	if got, err := ts.client.Get(ctx, oc); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("read past corrupt primary: %v", err)
	}
	if ts.counter(t, "opkit_altda_verify_failures_total", "store=primary:memory") != 1 {
		t.Fatal("verify failure not counted")
	}

	// Only in the secondary (e.g. the primary lost it): still served.
	only := frame(42, 10)
	_ = ts.secondary.Put(ctx, altda.Keccak256Commitment(only), only)
	if got, err := ts.client.Get(ctx, altda.Keccak256Commitment(only)); err != nil || !bytes.Equal(got, only) {
		t.Fatalf("secondary-only read: %v", err)
	}

}

// A GET that no store could answer is a 500: not a 404, which op-node would take for
// missing (possibly challenged) data, and not a 503, which is the write path's signal to
// fail over to L1 and means nothing for a read. op-node retries a 500.
func TestGetFailureIs500(t *testing.T) {
	ts := startServer(t, Config{CacheBytes: -1})
	ctx := context.Background()
	data := frame(43, 3000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	ts.setFaults(t, `{"primary":{"get":"error"},"secondary":{"get":"unavailable"}}`)
	for name, c := range map[string]altda.Commitment{"stored": comm, "absent": altda.Keccak256Commitment([]byte("absent"))} {
		a := ts.do(t, "GET", "/get/"+c.String(), nil)
		if a.status != http.StatusInternalServerError || a.json(t)["error"] == "" || a.header.Get("Retry-After") != "" {
			t.Fatalf("%s, every store failing: %d %v %s, want 500 with an error and no Retry-After", name, a.status, a.header, a.body)
		}
		_, err := ts.client.Get(ctx, c)
		if !errors.Is(err, altda.ErrServer) || errors.Is(err, altda.ErrUnavailable) || errors.Is(err, altda.ErrNotFound) {
			t.Fatalf("%s: client outcome %v, want a server error", name, err)
		}
	}
}

func TestConcurrentGetsAreCoalesced(t *testing.T) {
	ts := startServer(t, Config{CacheBytes: -1})
	ctx := context.Background()
	data := frame(50, 120000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	ts.setFaults(t, `{"primary":{"latency_ms":300}}`)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := ts.client.Get(ctx, comm)
			if err == nil && !bytes.Equal(got, data) {
				err = errors.New("wrong bytes")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	reads := ts.counter(t, "opkit_altda_store_ops_total", "store=primary:memory", "op=get")
	coalesced := ts.counter(t, "opkit_altda_get_coalesced_total")
	if reads+coalesced != 20 || reads > 5 {
		t.Fatalf("20 concurrent GETs made %v primary reads (%v coalesced)", reads, coalesced)
	}
}

func TestCacheServesHotReads(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	data := frame(60, 120000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
			t.Fatal(err)
		}
	}
	if n := ts.counter(t, "opkit_altda_store_ops_total", "store=primary:memory", "op=get"); n != 0 {
		t.Fatalf("hot reads went to the store %v times", n)
	}
	if n := ts.counter(t, "opkit_altda_cache_hits_total"); n != 5 {
		t.Fatalf("cache hits %v", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(1000, 0)
	for i := 0; i < 100; i++ {
		c.add([]byte{byte(i)}, make([]byte, 100))
	}
	if c.size > 1000 || len(c.items) > 10 {
		t.Fatalf("cache holds %d bytes in %d items, bound 1000", c.size, len(c.items))
	}
	if _, ok := c.get([]byte{99}); !ok {
		t.Fatal("newest entry evicted")
	}
	if _, ok := c.get([]byte{0}); ok {
		t.Fatal("oldest entry kept")
	}
	c.add([]byte{200}, make([]byte, 900)) // over an eighth of the cache: not cached
	if _, ok := c.get([]byte{200}); ok {
		t.Fatal("oversized value cached")
	}
}

func TestShutdownFinishesInFlightWrites(t *testing.T) {
	dir := t.TempDir()
	p, err := pebblestore.Open(dir + "/p")
	if err != nil {
		t.Fatal(err)
	}
	srv := launch(t, Config{Addr: "127.0.0.1:0", Logger: quietLogger(), Primary: p, FaultsAdmin: true})
	ts := &testServer{Server: srv, http: http.DefaultClient}
	ts.client = ts.newClient(t, altda.KeccakMode)
	ts.setFaults(t, `{"primary":{"latency_ms":300}}`)
	data := frame(70, 120000)
	done := make(chan error, 1)
	go func() {
		_, err := ts.client.Put(context.Background(), data)
		done <- err
	}()
	waitFor(t, "the write to be in flight", func() bool { return srv.Stats().Puts == 1 })
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight write during shutdown: %v", err)
	}
	p, err = pebblestore.Open(dir + "/p")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if v, err := p.Get(context.Background(), altda.Keccak256Commitment(data)); err != nil || !bytes.Equal(v, data) {
		t.Fatalf("acknowledged write missing after shutdown: %v", err)
	}
}

func TestAdminFaults(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.do(t, "GET", "/admin/faults", nil)
	m := a.json(t)
	if a.status != 200 || m["primary"].(map[string]any)["put"] != "ok" || m["secondary"].(map[string]any)["get"] != "ok" {
		t.Fatalf("initial faults %s", a.body)
	}
	ts.setFaults(t, `{"primary":{"put":"unavailable","latency_ms":5},"secondary":{"get":"error"}}`)
	m = ts.do(t, "GET", "/admin/faults", nil).json(t)
	if p := m["primary"].(map[string]any); p["put"] != "unavailable" || p["get"] != "ok" || p["latency_ms"] != 5.0 {
		t.Fatalf("primary fault %v", p)
	}
	// A left-out store is reset to ok.
	ts.setFaults(t, `{"primary":{"get":"error"}}`)
	m = ts.do(t, "GET", "/admin/faults", nil).json(t)
	if m["secondary"].(map[string]any)["get"] != "ok" || m["primary"].(map[string]any)["put"] != "ok" {
		t.Fatalf("left-out fields not reset: %v", m)
	}
	for _, bad := range []string{`{"primary":{"put":"maybe"}}`, `{"tertiary":{}}`, `not json`, `{"primary":{"latency_ms":-1}}`} {
		if a := ts.do(t, "PUT", "/admin/faults", []byte(bad)); a.status != 400 || a.json(t)["error"] == nil {
			t.Fatalf("bad fault document %s: %d", bad, a.status)
		}
	}
	if a := ts.do(t, "POST", "/admin/faults", nil); a.status != 405 {
		t.Fatalf("POST /admin/faults: %d", a.status)
	}

	plain, err := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger(), Primary: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	defer plain.Close(context.Background())
	resp, err := http.Get(plain.URL() + "/admin/faults")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/admin/faults without --faults.admin: %d", resp.StatusCode)
	}
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.do(t, "GET", "/health", nil)
	m := a.json(t)
	if a.status != 200 || m["status"] != "ok" || m["breaker"] != "closed" {
		t.Fatalf("/health %d %s", a.status, a.body)
	}
	stores := m["stores"].([]any)
	if len(stores) != 2 || stores[0].(map[string]any)["store"] != "primary:memory" || stores[1].(map[string]any)["healthy"] != true {
		t.Fatalf("/health stores %v", stores)
	}
	ts.setFaults(t, `{"secondary":{"put":"unavailable"}}`)
	waitFor(t, "/health to report the secondary down", func() bool {
		a := ts.do(t, "GET", "/health", nil)
		return a.status == 200 && a.json(t)["status"] == "degraded"
	})
	if _, err := ts.client.Put(context.Background(), []byte("m")); !errors.Is(err, altda.ErrPartial) {
		t.Fatal(err)
	}
	a = ts.do(t, "GET", "/metrics", nil)
	for _, want := range []string{`opkit_altda_requests_total{code="201",route="put_commitment"} 1`, "opkit_altda_repair_queue_length 1", "opkit_altda_breaker_state 0", "go_goroutines"} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("no primary accepted")
	}
	if _, err := New(Config{Primary: store.NewMemory(), Secondaries: []store.Store{store.NewMemory(), store.NewMemory()}, RepairDir: t.TempDir()}); err == nil {
		t.Error("two secondaries of one name accepted")
	}
	if _, err := New(Config{Primary: store.NewMemory(), Secondaries: []store.Store{store.NewMemory()}}); err == nil {
		t.Error("secondaries without a repair dir accepted")
	}
}

func TestSlowClientsAreCutOff(t *testing.T) {
	ts := startServer(t, Config{HeaderTimeout: 200 * time.Millisecond, BodyTimeout: 400 * time.Millisecond})
	addr := ts.Addr().String()

	// Headers that never finish.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /put HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, conn) // returns when the server closes the connection
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a client stuck in its headers held the connection for %s", d)
	}

	// A body that trickles: the request is abandoned and nothing is stored.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := conn2.Write([]byte("POST /put HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_ = conn2.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn2)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a trickling body held the connection for %s", d)
	}
	if len(answer) > 0 && !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) {
		t.Fatalf("answer to a cut-off body: %q", answer)
	}
	if ts.primary.Len() != 0 {
		t.Fatal("a cut-off body was stored")
	}
}

// A Pebble primary checks its reads with the value log's checksums instead of hashing
// them: bytes changed on disk are still never served, the secondary's copy is, and a
// resend of the body repairs the primary.
func TestReadPastCorruptValueLog(t *testing.T) {
	dir := t.TempDir()
	p, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Primary: p, CacheBytes: -1})
	ctx := context.Background()
	data := frame(50, 120000)
	copy(data, "corrupt-me")
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if n := ts.counter(t, "opkit_altda_store_bytes", "store=primary:pebble"); n < float64(len(data)) {
		t.Fatalf("opkit_altda_store_bytes of the primary is %v after a %d-byte PUT", n, len(data))
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "values", "*.vlog"))
	if len(segs) != 1 {
		t.Fatalf("value log segments: %v", segs)
	}
	raw, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("corrupt-me"))
	if i < 0 {
		t.Fatal("the value is not in the value log")
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte{'C'}, int64(i))
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read past a corrupt value log record: %d bytes, %v", len(got), err)
	}
	if n := ts.counter(t, "opkit_altda_verify_failures_total", "store=primary:pebble"); n != 1 {
		t.Fatalf("corrupt primary reads counted: %v, want 1", n)
	}
	if n := ts.counter(t, "opkit_altda_store_ops_total", "store=primary:pebble", "op=get", "result=corrupt"); n != 1 {
		t.Fatalf("corrupt primary reads in store_ops_total: %v, want 1", n)
	}

	// A resend of the body writes the primary's copy again: it serves alone afterwards.
	if _, err := ts.client.Put(ctx, data); err != nil {
		t.Fatalf("resend: %v", err)
	}
	ts.setFaults(t, `{"secondary":{"get":"error"}}`)
	if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read from the healed primary alone: %d bytes, %v", len(got), err)
	}
	if n := ts.counter(t, "opkit_altda_verify_failures_total", "store=primary:pebble"); n != 1 {
		t.Fatalf("corrupt primary reads counted after the resend: %v, want still 1", n)
	}
}

func TestNoGoroutineOutlivesClose(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	p, err := pebblestore.Open(dir + "/p")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := pebblestore.Open(dir + "/s")
	if err != nil {
		t.Fatal(err)
	}
	srv := launch(t, Config{Addr: "127.0.0.1:0", Primary: p, Secondaries: []store.Store{sec}, RepairDir: dir + "/r",
		FaultsAdmin: true, Logger: quietLogger(), ProbeInterval: 10 * time.Millisecond})
	tr := &http.Transport{Proxy: nil}
	ts := &testServer{Server: srv, http: &http.Client{Transport: tr}}
	c, _ := altda.NewClient(altda.ClientConfig{URL: srv.URL(), HTTPClient: ts.http})
	ts.setFaults(t, `{"secondary":{"put":"error"}}`) // leave work in the repair loop
	for i := 0; i < 10; i++ {
		comm, err := c.Put(context.Background(), frame(byte(i), 1000))
		if !errors.Is(err, altda.ErrPartial) {
			t.Fatal(err)
		}
		if _, err := c.Get(context.Background(), comm); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
