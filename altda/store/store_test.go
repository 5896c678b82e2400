package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/storetest"
)

func TestMemoryContract(t *testing.T) { storetest.Run(t, store.NewMemory()) }

func TestFaultyWithoutFaultsKeepsTheContract(t *testing.T) {
	storetest.Run(t, store.WithFaults(store.NewMemory()))
}

func TestFaultsInject(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	f := store.WithFaults(mem)
	key, val := []byte{1}, []byte("v")

	f.SetFault(store.Fault{Put: store.FaultUnavailable})
	if err := f.Put(ctx, key, val); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("put under unavailable fault: %v", err)
	}
	if mem.Len() != 0 {
		t.Fatal("a failed injected put reached the store")
	}
	if err := f.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("ping while unavailable: %v", err)
	}

	f.SetFault(store.Fault{Put: store.FaultError})
	err := f.Put(ctx, key, val)
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("put under error fault: %v, want a plain error", err)
	}
	if err := f.Ping(ctx); err != nil {
		t.Fatalf("ping under an error fault: %v (only unavailability fails the probe)", err)
	}

	f.SetFault(store.Fault{Get: store.FaultError})
	if err := f.Put(ctx, key, val); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, key); err == nil {
		t.Fatal("get under error fault succeeded")
	}

	f.SetFault(store.Fault{LatencyMS: 50})
	start := time.Now()
	if _, err := f.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("latency fault of 50ms took %s", d)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	f.SetFault(store.Fault{LatencyMS: 5000})
	if _, err := f.Get(cctx, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("latency fault ignored the context: %v", err)
	}

	f.SetFault(store.Fault{})
	if got := f.Fault(); got.Put != store.FaultOK || got.Get != store.FaultOK {
		t.Fatalf("cleared fault reads %+v, want ok/ok", got)
	}
}

func TestFaultModeJSON(t *testing.T) {
	var f store.Fault
	if err := json.Unmarshal([]byte(`{"put":"unavailable"}`), &f); err != nil {
		t.Fatal(err)
	}
	if f.Normalize().Get != store.FaultOK || f.Put != store.FaultUnavailable {
		t.Fatalf("decoded %+v", f)
	}
	if err := json.Unmarshal([]byte(`{"put":"sometimes"}`), &f); err == nil {
		t.Fatal("unknown fault mode accepted")
	}
	if err := (store.Fault{LatencyMS: -1}).Validate(); err == nil {
		t.Fatal("negative latency accepted")
	}
}
