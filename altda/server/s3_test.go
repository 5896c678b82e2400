package server

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/altda/store/s3store"
	"github.com/opkit/opkit/internal/miniotest"
)

func openS3(t *testing.T, m *miniotest.Server, prefix string) *s3store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := s3store.Open(ctx, s3store.Config{Endpoint: m.Endpoint, Bucket: "altda", Prefix: prefix,
		AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openPebble(t *testing.T) *pebblestore.Store {
	t.Helper()
	p, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestS3Primary(t *testing.T) {
	m := miniotest.Start(t)
	ts := startServer(t, Config{Primary: openS3(t, m, "primary/"), Secondaries: []store.Store{openPebble(t)},
		Breaker: breaker.Config{Threshold: 2, Cooldown: time.Minute}, ProbeInterval: time.Hour, CacheBytes: -1})
	ctx := context.Background()
	data := frame(80, 120000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %v", err)
	}
	// Absent in S3 is a 404, never a 500.
	a := ts.do(t, "GET", "/get/"+altda.Keccak256Commitment([]byte("absent")).String(), nil)
	if a.status != 404 || len(a.body) != 0 {
		t.Fatalf("absent commitment on S3: %d %q", a.status, a.body)
	}
	// A second replica on the same bucket and prefix reads what the first wrote.
	replica := startServer(t, Config{Primary: openS3(t, m, "primary/"), Secondaries: []store.Store{}})
	if got, err := replica.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("replica read: %v", err)
	}

	// S3 goes away: writes fail over with 503; the breaker opens; reads fall back to the secondary.
	m.Stop()
	for i := 0; i < 2; i++ {
		if _, err := ts.client.Put(ctx, frame(byte(81+i), 100)); !errors.Is(err, altda.ErrUnavailable) {
			t.Fatalf("put with S3 down: %v", err)
		}
	}
	if ts.breaker.State() != breaker.Open {
		t.Fatalf("breaker %s after S3 failures", ts.breaker.State())
	}
	if got, err := ts.client.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with S3 down: %v", err)
	}
}

func TestS3Secondary(t *testing.T) {
	m := miniotest.Start(t)
	sec := openS3(t, m, "")
	ts := startServer(t, Config{Primary: openPebble(t), Secondaries: []store.Store{sec}, RepairBackoff: 20 * time.Millisecond})
	ctx := context.Background()
	data := frame(90, 120000)
	comm, err := ts.client.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sec.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("S3 after a 200: %v", err)
	}

	// Writes while S3 is down are partial, and repaired once it is back.
	ts.setFaults(t, `{"secondary":{"put":"unavailable"}}`)
	late := frame(91, 5000)
	lc, err := ts.client.Put(ctx, late)
	if !errors.Is(err, altda.ErrPartial) {
		t.Fatalf("put with S3 failing: %v", err)
	}
	if _, err := sec.Get(ctx, lc); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("S3 should not have it yet: %v", err)
	}
	ts.setFaults(t, `{}`)
	waitFor(t, "the repair to reach S3", func() bool { return ts.Stats().RepairQueue == 0 })
	if got, err := sec.Get(ctx, lc); err != nil || !bytes.Equal(got, late) {
		t.Fatalf("S3 after repair: %v", err)
	}
}
