package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
)

// hungStore is a secondary that never answers a write: its Put ignores its context and
// returns only when the test releases it, as a wedged S3 connection would.
type hungStore struct {
	*store.Memory
	name    string
	release chan struct{}
	mu      sync.Mutex
	started []time.Time
}

func newHungStore(name string) *hungStore {
	return &hungStore{Memory: store.NewMemory(), name: name, release: make(chan struct{})}
}

func (h *hungStore) Name() string { return h.name }

func (h *hungStore) Put(ctx context.Context, key, value []byte) error {
	h.mu.Lock()
	h.started = append(h.started, time.Now())
	h.mu.Unlock()
	<-h.release
	return errors.New("hung store released")
}

func (h *hungStore) firstPut(t *testing.T) time.Time {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.started) == 0 {
		t.Fatalf("%s: no write reached it", h.name)
	}
	return h.started[0]
}

// One hung secondary must not hold the answer: the PUT gets its 201 when the secondary
// deadline passes, the write is queued for repair, the healthy secondary has the data,
// and the secondaries were asked at the same time, not one after the other.
func TestHungSecondaryAnswers201WithinDeadline(t *testing.T) {
	const deadline = 500 * time.Millisecond
	a, b := newHungStore("hung-a"), newHungStore("hung-b")
	healthy := store.NewMemory()
	ts := startServer(t, Config{Secondaries: []store.Store{a, healthy, b}, SecondaryTimeout: deadline})
	t.Cleanup(func() { close(a.release); close(b.release) }) // runs before the server's Close

	data := frame(90, 5000)
	start := time.Now()
	comm, err := ts.client.Put(context.Background(), data) // the client gives up after 10s
	took := time.Since(start)
	var re *altda.ResponseError
	if !errors.Is(err, altda.ErrPartial) || !errors.As(err, &re) || re.Status != 201 {
		t.Fatalf("PUT with hung secondaries after %s: %v, want 201", took, err)
	}
	if took < deadline || took > deadline+3*time.Second {
		t.Fatalf("201 came after %s; want it at the %s secondary deadline", took, deadline)
	}
	if d := b.firstPut(t).Sub(a.firstPut(t)).Abs(); d >= deadline {
		t.Fatalf("the second hung secondary was asked %s after the first: written one after the other", d)
	}
	if got, err := healthy.Get(context.Background(), comm); err != nil || string(got) != string(data) {
		t.Fatalf("healthy secondary: %d bytes, %v", len(got), err)
	}
	if n := ts.queue.Len(); n != 2 {
		t.Fatalf("repair queue holds %d entries, want one per hung secondary", n)
	}
}

// Slow clients that declare a full body and send a trickle must not make the server
// reserve what they declared. Each of these declares 130,000 bytes and sends 100.
func TestSlowClientsDoNotReserveDeclaredLength(t *testing.T) {
	ts := startServer(t, Config{})
	const clients, declared = 300, 130_000
	path := "/put/" + altda.Keccak256Commitment([]byte("never sent")).String()
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: da\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, declared)
	partial := make([]byte, 100)

	before := heapInUse()
	conns := make([]net.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < clients; i++ {
		c, err := net.Dial("tcp", ts.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(append([]byte(req), partial...)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every slow PUT to reach its handler", func() bool { return ts.Stats().Puts == clients })
	// Each handler reserves its buffer as soon as it starts on the body; give them a
	// moment and keep the largest heap seen.
	var peak uint64
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		peak = max(peak, heapInUse())
	}
	grew := int64(peak) - int64(before)
	reserved := int64(clients * declared)
	t.Logf("%d clients declaring %d bytes each: heap grew %d bytes (declared in all: %d)", clients, declared, grew, reserved)
	if grew > reserved/3 {
		t.Fatalf("heap grew by %d bytes for %d clients that sent 100 bytes each: buffers sized from Content-Length (%d in all)", grew, clients, reserved)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// With --retention, what the value log dropped is gone from GET too: 404, also from the
// read cache, which would otherwise go on serving it.
func TestRetentionThenGetIs404(t *testing.T) {
	primary, err := pebblestore.OpenWith(t.TempDir(), pebblestore.Options{Retention: 100 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Primary: primary, Secondaries: []store.Store{}, CacheTTL: 100 * time.Millisecond})
	ctx := context.Background()
	data := frame(91, 4000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ts.client.Get(ctx, comm); err != nil || string(got) != string(data) {
		t.Fatalf("GET right after the PUT: %v", err)
	}
	waitFor(t, "the preimage to pass the retention window", func() bool {
		_, err := ts.client.Get(ctx, comm)
		return errors.Is(err, altda.ErrNotFound)
	})
	if a := ts.do(t, "GET", "/get/"+comm.String(), nil); a.status != 404 || len(a.body) != 0 {
		t.Fatalf("GET of a dropped preimage: %d %q", a.status, a.body)
	}
}
