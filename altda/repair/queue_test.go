package repair

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/opkit/opkit/altda/store"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQueueSurvivesRestartAndRepairs(t *testing.T) {
	dir := t.TempDir()
	mem := store.NewMemory()
	target := store.WithFaults(mem)
	target.SetFault(store.Fault{Put: store.FaultUnavailable})
	targets := map[string]store.Store{"s3": target}
	cfg := Config{BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}

	q, err := Open(dir, targets, cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{{0, 1}, {0, 2}, {0, 3}}
	for _, k := range keys {
		if err := q.Add("s3", k, append([]byte("value-"), k...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Add("s3", keys[0], []byte("value-\x00\x01")); err != nil { // re-adding is not a second entry
		t.Fatal(err)
	}
	if q.Len() != 3 {
		t.Fatalf("len %d, want 3", q.Len())
	}
	// Retries fail while the target is down; entries stay.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	waitFor(t, "a failed attempt", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.entries[string(entryKey("s3", keys[0]))].attempts > 0
	})
	cancel()
	<-done
	if q.Len() != 3 || mem.Len() != 0 {
		t.Fatalf("after failed retries: queue %d, target %d", q.Len(), mem.Len())
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with the target back: the queue resumes and drains.
	target.SetFault(store.Fault{})
	repaired := make(chan string, 8)
	cfg.OnRepaired = func(name string) { repaired <- name }
	q, err = Open(dir, targets, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Len() != 3 {
		t.Fatalf("reopened queue has %d entries, want 3", q.Len())
	}
	if ok, _ := q.Pending("s3", keys[1]); !ok {
		t.Fatal("entry not pending after reopen")
	}
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the queue to drain", func() bool { return q.Len() == 0 })
	for _, k := range keys {
		got, err := mem.Get(context.Background(), k)
		if err != nil || !bytes.Equal(got, append([]byte("value-"), k...)) {
			t.Fatalf("target holds %q, %v for %x", got, err, k)
		}
	}
	for i := 0; i < 3; i++ {
		if name := <-repaired; name != "s3" {
			t.Fatalf("repaired %q", name)
		}
	}
}

func TestDoneRemovesOnce(t *testing.T) {
	q, err := Open(t.TempDir(), nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Add("pebble", []byte{9}, []byte("v")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := q.Done("pebble", []byte{9}); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("len %d after Done twice", q.Len())
	}
	if ok, _ := q.Pending("pebble", []byte{9}); ok {
		t.Fatal("still pending")
	}
}

func TestEntriesForAnUnconfiguredTargetWait(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, nil, Config{BaseDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Add("s3", []byte{1}, []byte("v")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	waitFor(t, "a postponed attempt", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.entries[string(entryKey("s3", []byte{1}))].attempts > 0
	})
	cancel()
	<-done
	if q.Len() != 1 {
		t.Fatal("entry for an unconfigured target was dropped")
	}
	_ = q.Close()
}

// lockSpy wraps the queue's database and records every read made while the queue's lock
// is held. The test calls the queue from one goroutine, so a lock that TryLock cannot
// take is held by the caller.
type lockSpy struct {
	entryDB
	q                *Queue
	reads, underLock int
}

func (s *lockSpy) check() {
	s.reads++
	if s.q.mu.TryLock() {
		s.q.mu.Unlock()
		return
	}
	s.underLock++
}

func (s *lockSpy) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.check()
	return s.entryDB.Get(ctx, key)
}

func (s *lockSpy) Each(prefix []byte, fn func(key, value []byte) bool) error {
	s.check()
	return s.entryDB.Each(prefix, fn)
}

// Every PUT that finds a secondary down adds an entry and takes the queue's lock. The
// retry loop must not read the queued preimages (120 KB each, a database scan over all
// of them) while it holds that lock, or every such PUT waits for the scan.
func TestRetryReadsNoPreimageUnderTheLock(t *testing.T) {
	down := store.WithFaults(store.NewMemory())
	down.SetFault(store.Fault{Put: store.FaultUnavailable})
	q, err := Open(t.TempDir(), map[string]store.Store{"s3": down}, Config{BaseDelay: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := 0; i < 20; i++ {
		if err := q.Add("s3", []byte{0, byte(i)}, bytes.Repeat([]byte{byte(i)}, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	spy := &lockSpy{entryDB: q.db, q: q}
	q.db = spy
	// Make every entry due now (Add scheduled them an hour out).
	q.mu.Lock()
	for ek := range q.entries {
		q.entries[ek] = retryState{}
	}
	q.mu.Unlock()
	q.retryDue(context.Background())
	if spy.reads == 0 {
		t.Fatal("the retry round read nothing: the test did not exercise it")
	}
	if spy.underLock > 0 {
		t.Fatalf("%d of %d database reads of the retry round ran under the queue's lock", spy.underLock, spy.reads)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for ek, st := range q.entries {
		if st.attempts != 1 {
			t.Fatalf("entry %x: %d attempts, want 1 (the target is down)", ek, st.attempts)
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
