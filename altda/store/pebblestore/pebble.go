package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/opkit/opkit/altda/store"
)

// Store is a Pebble-backed store.Store.
type Store struct {
	db   *pebble.DB
	name string
}

// Open opens (or creates) the database in dir.
func Open(dir string) (*Store, error) {
	opts := &pebble.Options{
		// Preimages are ~120 KB each: a larger memtable means fewer flushes per write.
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		// Fewer, larger levels: every compaction rewrites whole preimages.
		L0CompactionThreshold:    8,
		L0StopWritesThreshold:    32,
		LBaseMaxBytes:            512 << 20,
		MaxConcurrentCompactions: func() int { return 2 },
		// Let concurrent synced writers share one WAL sync.
		WALMinSyncInterval: func() time.Duration { return 200 * time.Microsecond },
		Logger:             quietLogger{},
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i] = pebble.LevelOptions{
			// Preimages are compressed batcher frames: compressing again only costs CPU.
			Compression: pebble.NoCompression,
			// Every PUT first asks whether the key exists (idempotent resends); a bloom
			// filter answers "no" without reading data blocks.
			FilterPolicy: bloom.FilterPolicy(10),
			BlockSize:    32 << 10,
		}
	}
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble at %s: %w", dir, err)
	}
	return &Store{db: db, name: "pebble"}, nil
}

func (s *Store) Name() string { return s.name }

func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pebble get: %w", err)
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	return out, nil
}

func (s *Store) Has(ctx context.Context, key []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pebble get: %w", err)
	}
	_ = closer.Close()
	return true, nil
}

func (s *Store) Put(ctx context.Context, key, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.Set(key, value, pebble.Sync); err != nil {
		return fmt.Errorf("pebble set: %w", err)
	}
	return nil
}

// Delete removes a key with a synced write.
func (s *Store) Delete(key []byte) error {
	if err := s.db.Delete(key, pebble.Sync); err != nil {
		return fmt.Errorf("pebble delete: %w", err)
	}
	return nil
}

// Each calls fn for every key with the given prefix, in key order, until fn returns false.
func (s *Store) Each(prefix []byte, fn func(key, value []byte) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("pebble iterate: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble iterate: %w", err)
	}
	return nil
}

// Ping checks the database is open and has not hit a background error.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, closer, err := s.db.Get([]byte{0xff, 'p', 'i', 'n', 'g'})
	if err == nil {
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("pebble ping: %w", err)
	}
	return nil
}

// Close flushes the memtable and closes the database.
func (s *Store) Close() error {
	if err := s.db.Flush(); err != nil {
		_ = s.db.Close()
		return fmt.Errorf("pebble flush: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("pebble close: %w", err)
	}
	return nil
}

// prefixEnd is the smallest key greater than every key with the prefix (nil: no bound).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// quietLogger drops Pebble's informational chatter and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
