package pebblestore

import (
	"context"
	"testing"

	"github.com/opkit/opkit/altda/store/vlog"
)

func readCheckpoint(t *testing.T, s *Store) vlog.Position {
	t.Helper()
	raw, closer, err := s.db.Get(checkpointKey)
	if err != nil {
		t.Fatalf("read checkpoint: %v", err)
	}
	defer closer.Close()
	pos, err := vlog.ParsePosition(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// A checkpoint stops at the oldest record still between its append and its index write:
// that record's location is not durable yet, so a restart must rescan it.
func TestCheckpointStopsAtRecordsInFlight(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := s.Put(ctx, []byte{0, byte(i)}, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.values.checkpoint(s.db); err != nil {
		t.Fatal(err)
	}
	if got, want := readCheckpoint(t, s), s.values.log.End(); got != want {
		t.Fatalf("checkpoint with nothing in flight at %v, want the log's end %v", got, want)
	}

	inFlight := vlog.Position{Segment: 1, Offset: 1010}
	s.values.mu.Lock()
	s.values.inFlight[inFlight] = struct{}{}
	s.values.mu.Unlock()
	if err := s.Put(ctx, []byte{0, 9}, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.values.checkpoint(s.db); err != nil {
		t.Fatal(err)
	}
	if got := readCheckpoint(t, s); got != inFlight {
		t.Fatalf("checkpoint at %v passed a record in flight at %v", got, inFlight)
	}
	s.values.mu.Lock()
	delete(s.values.inFlight, inFlight)
	s.values.mu.Unlock()
}

// Enough appended bytes trigger a checkpoint from Put itself.
func TestPutCheckpointsEveryFewMegabytes(t *testing.T) {
	const every = 4 << 20
	s, err := OpenWith(t.TempDir(), Options{CheckpointBytes: every})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := readCheckpoint(t, s)
	ctx := context.Background()
	value := make([]byte, 1<<20)
	for i := 0; i <= every/len(value); i++ {
		if err := s.Put(ctx, []byte{0, byte(i), byte(i >> 8)}, value); err != nil {
			t.Fatal(err)
		}
	}
	after := readCheckpoint(t, s)
	if !before.Before(after) || after.Offset < every {
		t.Fatalf("after %d MiB of puts the checkpoint moved from %v to %v", every>>20+1, before, after)
	}
}
