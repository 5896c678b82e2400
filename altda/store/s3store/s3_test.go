package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/s3store"
	"github.com/opkit/opkit/altda/store/storetest"
	"github.com/opkit/opkit/internal/miniotest"
)

func open(t *testing.T, m *miniotest.Server, bucket, prefix string) *s3store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := s3store.Open(ctx, s3store.Config{
		Endpoint: m.Endpoint, Bucket: bucket, Prefix: prefix,
		AccessKeyID: m.AccessKeyID, SecretAccessKey: m.SecretAccessKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestS3AgainstMinIO(t *testing.T) {
	m := miniotest.Start(t)
	t.Run("contract", func(t *testing.T) { storetest.Run(t, open(t, m, "contract", "altda/")) })

	t.Run("prefixes isolate replicas' namespaces", func(t *testing.T) {
		ctx := context.Background()
		a, b := open(t, m, "shared", "a/"), open(t, m, "shared", "b/")
		if err := a.Put(ctx, []byte{7}, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, []byte{7}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("other prefix: %v, want not found", err)
		}
		same := open(t, m, "shared", "a/")
		if got, err := same.Get(ctx, []byte{7}); err != nil || !bytes.Equal(got, []byte("x")) {
			t.Fatalf("second client on the same prefix: %q, %v", got, err)
		}
	})

	t.Run("a stopped server is unavailable, not missing", func(t *testing.T) {
		m2 := miniotest.Start(t)
		s := open(t, m2, "gone", "")
		m2.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.Get(ctx, []byte{1})
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get from a stopped server: %v, want ErrUnavailable", err)
		}
		if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("ping a stopped server: %v", err)
		}
		if err := s.Put(ctx, []byte{1}, []byte("v")); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("put to a stopped server: %v", err)
		}
	})
}
