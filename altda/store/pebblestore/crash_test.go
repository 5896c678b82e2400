package pebblestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/altda/store/vlog/crashfs"
)

// A PUT is acknowledged only once its preimage is durable. A test that SIGKILLs the
// server cannot check that: the kernel keeps a killed process's page cache, so data that
// was never fsynced still reads back. Here both file systems keep only what was synced
// when the "power" is cut: the value log runs on crashfs, the index on Pebble's strict
// in-memory file system. Writers run concurrently across segment rolls and index
// checkpoints; at a random moment the machine crashes, and after the restart every put
// that returned nil, in this round or an earlier one, must read back intact, and the
// store must take new writes. Remove the value log's fsync before a put returns, the
// directory sync of a new segment or the sync of a sealed segment, and this fails.
func TestAcknowledgedPutsSurviveCrash(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	values := crashfs.New(nil)
	index := vfs.NewStrictMem()
	opts := pebblestore.Options{SegmentSize: 32 << 10, CheckpointBytes: 96 << 10, IndexFS: index, ValueFS: values}
	const dir = "/da"
	// Pebble's file system loses its unsynced writes at the same instant.
	values.OnCrash(func() { index.SetIgnoreSyncs(true) })

	acked := map[string][]byte{}
	var last []string // acknowledged in the last round
	var mu sync.Mutex
	ctx := context.Background()
	next := 0
	for round := 0; round < 20; round++ {
		s, err := pebblestore.OpenWith(dir, opts)
		if err != nil {
			t.Fatalf("round %d: open after the crash: %v", round, err)
		}
		// The puts of the round that just crashed are the ones at risk; all of them are
		// checked again at the end.
		for _, k := range last {
			got, err := s.Get(ctx, []byte(k))
			if want := acked[k]; err != nil || !bytes.Equal(got, want) {
				t.Fatalf("round %d: acknowledged put %x after the crash: %d bytes, %v (want %d bytes)", round, k[:8], len(got), err, len(want))
			}
		}
		last = last[:0]

		// The power goes at a random value log write, truncate, fsync or create: also
		// between a record's write and its fsync, or in the middle of a roll.
		values.CrashAfter(5 + rng.IntN(400))
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			mu.Lock()
			base := next
			next += 1000
			mu.Unlock()
			size := 500 + rng.IntN(12_000)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := base; ; i++ {
					v := bytes.Repeat([]byte{byte(i), byte(i >> 8), byte(w)}, size/3+i%7)
					sum := sha256.Sum256(v)
					k := append([]byte{0}, sum[:]...)
					if err := s.Put(ctx, k, v); err != nil {
						if !errors.Is(err, crashfs.ErrCrashed) {
							// After the crash a put fails in the value log; anything
							// else is a real error (Pebble, once syncs are ignored,
							// still answers).
							t.Errorf("put: %v", err)
						}
						return
					}
					mu.Lock()
					acked[string(k)] = v
					last = append(last, string(k))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		// The process dies with the machine: closing releases memory and goroutines, and
		// writes nothing durable, because every sync now fails or is ignored.
		_ = s.Close()
		index.ResetToSyncedState()
		index.SetIgnoreSyncs(false)
		values.Restart()
		t.Logf("round %d: %d puts acknowledged in all, %d value log fsyncs", round, len(acked), values.Syncs())
	}

	s, err := pebblestore.OpenWith(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, want := range acked {
		got, err := s.Get(ctx, []byte(k))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("acknowledged put %x after the last crash: %d bytes, %v", k[:8], len(got), err)
		}
	}
	k, v := []byte{0, 1, 2}, []byte("after the crashes")
	if err := s.Put(ctx, k, v); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, k); err != nil || !bytes.Equal(got, v) {
		t.Fatalf("new put after the crashes: %q, %v", got, err)
	}
	if _, err := s.Get(ctx, []byte{9, 9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get of a key never put: %v", err)
	}
}
