package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opkit/opkit/altda/store"
)

// Run checks s against the store.Store contract. s must be empty.
func Run(t *testing.T, s store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if s.Name() == "" {
		t.Error("Name is empty")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on a healthy store: %v", err)
	}
	key := []byte{0x00, 1, 2, 3}
	if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want store.ErrNotFound", err)
	}
	if ok, err := s.Has(ctx, key); err != nil || ok {
		t.Fatalf("Has of a missing key = %v, %v; want false, nil", ok, err)
	}
	value := bytes.Repeat([]byte{0xab, 0x00, 0xff}, 40000) // 120000 bytes, a full frame
	if err := s.Put(ctx, key, value); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Get(ctx, key)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Get after Put: %d bytes, err %v; want the %d bytes put", len(got), err, len(value))
	}
	got[0] ^= 0xff // callers may modify what they get
	if again, _ := s.Get(ctx, key); !bytes.Equal(again, value) {
		t.Fatal("modifying a returned value changed the stored one")
	}
	if ok, err := s.Has(ctx, key); err != nil || !ok {
		t.Fatalf("Has after Put = %v, %v; want true, nil", ok, err)
	}
	if err := s.Put(ctx, key, value); err != nil {
		t.Fatalf("second Put of the same value: %v", err)
	}

	// Keys differing only in a suffix or a prefix byte are distinct.
	other := append(bytes.Clone(key), 0)
	if _, err := s.Get(ctx, other); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a longer key: got %v, want store.ErrNotFound", err)
	}

	// Concurrent writers and readers.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := []byte{0x01, 0xee, byte(i)}
			v := bytes.Repeat([]byte{byte(i)}, 1000+i)
			if err := s.Put(ctx, k, v); err != nil {
				errs <- fmt.Errorf("put %d: %w", i, err)
				return
			}
			got, err := s.Get(ctx, k)
			if err != nil || !bytes.Equal(got, v) {
				errs <- fmt.Errorf("get %d: %d bytes, %v", i, len(got), err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := s.Get(cctx, key); err == nil {
		t.Error("Get with a cancelled context succeeded")
	}
}
