package pebblestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClock is advanced by the test: retention measured in simulated seconds.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Under a steady stream of puts, a store with a retention window keeps about a window's
// worth of preimages on disk instead of growing without end: segments whose every
// record is older than the window go, with their index entries, so old preimages are
// not found while recent ones are.
func TestRetentionKeepsDiskBounded(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Now()}
	const (
		size      = 10_000
		puts      = 400
		every     = 10 * time.Millisecond  // simulated time between puts
		retention = 500 * time.Millisecond // so about 50 puts, 500 KB, are live
		segment   = 128 << 10
	)
	s, err := pebblestore.OpenWith(dir, pebblestore.Options{Retention: retention, SegmentSize: segment, Now: clock.now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := func(i int) []byte { return []byte(fmt.Sprintf("\x00key-%d", i)) }
	value := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2) }
	var peak int64
	dropped := 0
	for i := 0; i < puts; i++ {
		if err := s.Put(ctx, key(i), value(i)); err != nil {
			t.Fatal(err)
		}
		clock.advance(every)
		if i%10 == 9 {
			n, err := s.DropExpired()
			if err != nil {
				t.Fatal(err)
			}
			dropped += n
			peak = max(peak, dirSize(t, dir))
		}
	}
	written := int64(puts * size)
	// A window's worth, plus the segment being filled and the one that straddles the
	// window's edge, plus the index.
	bound := int64(retention/every)*size + 2*segment + 256<<10
	if peak > bound {
		t.Fatalf("store peaked at %d bytes on disk for %d bytes written under a %s window; want at most %d", peak, written, retention, bound)
	}
	t.Logf("%d bytes written, at most %d on disk (bound %d)", written, peak, bound)
	if dropped < puts/2 {
		t.Fatalf("retention dropped %d of %d preimages", dropped, puts)
	}
	if _, err := s.Get(ctx, key(0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get of a preimage older than the window: %v, want not found", err)
	}
	if has, err := s.Has(ctx, key(0)); has || err != nil {
		t.Fatalf("has of a dropped preimage: %v, %v", has, err)
	}
	for i := puts - int(retention/every)/2; i < puts; i++ {
		if got, err := s.Get(ctx, key(i)); err != nil || !bytes.Equal(got, value(i)) {
			t.Fatalf("get of recent preimage %d: %d bytes, %v", i, len(got), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The checkpoint moved past the dropped segments: a reopen rescans nothing of them.
	s, err = pebblestore.OpenWith(dir, pebblestore.Options{SegmentSize: segment})
	if err != nil {
		t.Fatalf("reopen after retention: %v", err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, key(0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after reopen, get of a dropped preimage: %v", err)
	}
	if got, err := s.Get(ctx, key(puts-1)); err != nil || !bytes.Equal(got, value(puts-1)) {
		t.Fatalf("after reopen, get of the newest preimage: %d bytes, %v", len(got), err)
	}
}

// With no writes at all, the segment being filled is sealed once its newest record is
// past the window, so a store nobody writes to any more gives its space back too.
// The background loop does it, on the real clock.
func TestRetentionDropsAnIdleStore(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.OpenWith(dir, pebblestore.Options{Retention: 50 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, []byte{0, 1}, bytes.Repeat([]byte{1}, 5000)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Get(ctx, []byte{0, 1})
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the preimage was still there 10s after a 50ms retention window")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Put(ctx, []byte{0, 2}, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, []byte{0, 2}); err != nil || string(got) != "new" {
		t.Fatalf("put after the store emptied: %q, %v", got, err)
	}
}
