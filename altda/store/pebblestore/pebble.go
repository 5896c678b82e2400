package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/vlog"
)

// Store is a Pebble-backed store.Store. Opened with Open, the preimages themselves go to a
// value log and Pebble holds only their locations; opened with OpenInline, Pebble holds the
// values too.
type Store struct {
	db     *pebble.DB
	values *values // nil: values are inline in db
	name   string

	retention time.Duration
	now       func() time.Time
	log       *slog.Logger
	stop      chan struct{} // closed by Close: ends the retention loop
	loop      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Options tune a store opened with OpenWith. The zero value is what Open uses.
type Options struct {
	// Retention, when positive, drops the value log segments whose every record is older
	// than it, together with their index entries: a read of such a preimage is then not
	// found. A background loop checks about every Retention/4 (at most every minute).
	// Zero keeps everything.
	Retention time.Duration
	// SegmentSize is where the value log starts a new segment (default 1 GiB). Space is
	// given back a segment at a time.
	SegmentSize int64
	// CheckpointBytes is how many value bytes may be appended between index checkpoints,
	// which bounds what a restart after a crash rescans (default 64 MiB).
	CheckpointBytes int64
	// Now is the clock retention measures age by (default time.Now).
	Now func() time.Time
	// Logger reports retention passes (default slog.Default()).
	Logger *slog.Logger
	// IndexFS and ValueFS are the file systems of the index and the value log (default:
	// the operating system's). Tests use them to model what a crash keeps.
	IndexFS vfs.FS
	ValueFS vlog.FS
}

// Open opens (or creates) a store whose index is a Pebble database in dir/index and whose
// values are appended to a value log in dir/values. This is the store for preimages: each
// is written once, where an LSM tree would rewrite it on every flush and compaction.
func Open(dir string) (*Store, error) { return OpenWith(dir, Options{}) }

// OpenWith is Open with options.
func OpenWith(dir string, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = defaultCheckpointBytes
	}
	// The index holds 16-byte locations: Pebble's defaults fit, with a bloom filter so
	// that the "already stored?" lookup before each write rarely reads a data block.
	opts := &pebble.Options{
		WALMinSyncInterval: walMinSyncInterval,
		Logger:             quietLogger{},
		FS:                 o.IndexFS,
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i] = pebble.LevelOptions{FilterPolicy: bloom.FilterPolicy(10)}
	}
	db, err := openDB(filepath.Join(dir, "index"), opts)
	if err != nil {
		return nil, err
	}
	values, err := openValues(filepath.Join(dir, "values"), db, vlog.Options{SegmentSize: o.SegmentSize, FS: o.ValueFS, Now: o.Now}, o.CheckpointBytes)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open value log in %s: %w", dir, err)
	}
	s := &Store{db: db, values: values, name: "pebble", retention: o.Retention, now: o.Now, log: o.Logger, stop: make(chan struct{})}
	if s.retention > 0 {
		s.loop.Add(1)
		go s.retentionLoop()
	}
	return s, nil
}

// OpenInline opens (or creates) a store that keeps values inside the Pebble database in
// dir: for data that is deleted again, such as the repair queue, whose space a value log
// would never give back.
func OpenInline(dir string) (*Store, error) {
	opts := &pebble.Options{
		// Values of ~120 KB: a larger memtable means fewer flushes per write.
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		// Fewer, larger levels: every compaction rewrites whole values.
		L0CompactionThreshold:    8,
		L0StopWritesThreshold:    32,
		LBaseMaxBytes:            512 << 20,
		MaxConcurrentCompactions: func() int { return 2 },
		WALMinSyncInterval:       walMinSyncInterval,
		Logger:                   quietLogger{},
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i] = pebble.LevelOptions{
			// Preimages are compressed batcher frames: compressing again only costs CPU.
			Compression:  pebble.NoCompression,
			FilterPolicy: bloom.FilterPolicy(10),
			BlockSize:    32 << 10,
		}
	}
	db, err := openDB(dir, opts)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, name: "pebble", stop: make(chan struct{})}, nil
}

// walMinSyncInterval lets concurrent synced writers share one WAL sync.
func walMinSyncInterval() time.Duration { return 200 * time.Microsecond }

func openDB(dir string, opts *pebble.Options) (*pebble.DB, error) {
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble at %s: %w", dir, err)
	}
	return db, nil
}

func (s *Store) Name() string { return s.name }

// SizeBytes is what the store takes on disk: the value log and the Pebble files.
func (s *Store) SizeBytes() int64 {
	n := int64(s.db.Metrics().DiskSpaceUsage())
	if s.values != nil {
		n += s.values.log.Size()
	}
	return n
}

// Recovered is how many value log records Open rescanned after the last checkpoint and
// indexed again: after a clean shutdown, none.
func (s *Store) Recovered() int {
	if s.values == nil {
		return 0
	}
	return s.values.recovered
}

// ChecksReads is true with a value log: every record carries a checksum over its key and
// value, checked on each read. (Pebble's own block checksums do not cover a value put
// under the wrong key, so inline values are not counted as checked.)
func (s *Store) ChecksReads() bool { return s.values != nil }

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
	return s.resolve(key, out)
}

// resolve turns what the index holds for key into the value.
func (s *Store) resolve(key, indexed []byte) ([]byte, error) {
	if s.values == nil {
		return indexed, nil
	}
	loc, err := vlog.ParseLocation(indexed)
	if err != nil {
		return nil, fmt.Errorf("index entry for %x: %w", key, err)
	}
	v, err := s.values.log.Read(loc, key)
	if errors.Is(err, vlog.ErrExpired) {
		// Retention dropped the segment after this read found its index entry.
		return nil, fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	if errors.Is(err, vlog.ErrCorrupt) {
		return nil, fmt.Errorf("%w: %w", store.ErrCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("pebble store: %w", err)
	}
	return v, nil
}

// Has reports whether the store holds key. With a value log, a record that fails its
// checksum is not held: the server then writes the value again when a client resends it,
// which heals the damage.
func (s *Store) Has(ctx context.Context, key []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pebble get: %w", err)
	}
	if s.values == nil {
		_ = closer.Close()
		return true, nil
	}
	indexed := bytes.Clone(v)
	_ = closer.Close()
	_, err = s.resolve(key, indexed)
	if errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) Put(ctx context.Context, key, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if reserved(key) {
		return fmt.Errorf("pebble store: keys starting with 0xff are reserved (got %x)", key)
	}
	if s.values != nil {
		if err := s.values.put(s.db, key, value); err != nil {
			return fmt.Errorf("pebble store: %w", err)
		}
		return nil
	}
	if err := s.db.Set(key, value, pebble.Sync); err != nil {
		return fmt.Errorf("pebble set: %w", err)
	}
	return nil
}

// Delete removes a key with a synced write. In a store with a value log, the value's
// space is not given back.
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
	var resolveErr error
	for it.First(); it.Valid(); it.Next() {
		if reserved(it.Key()) {
			continue
		}
		v := it.Value()
		if s.values != nil {
			if v, resolveErr = s.resolve(it.Key(), v); resolveErr != nil {
				break
			}
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	if err := errors.Join(resolveErr, it.Close()); err != nil {
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
	if s.values != nil {
		if err := s.values.log.Err(); err != nil {
			return fmt.Errorf("pebble ping: %w", err)
		}
	}
	return nil
}

// Close stops the retention loop, flushes the memtable and closes the database and the
// value log. Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.loop.Wait()
		s.closeErr = s.close()
	})
	return s.closeErr
}

func (s *Store) close() error {
	var errs []error
	if s.values != nil {
		errs = append(errs, s.values.close(s.db))
	}
	if err := s.db.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("pebble flush: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("pebble close: %w", err))
	}
	return errors.Join(errs...)
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

// DropExpired drops, now, what Options.Retention says is too old, and returns how many
// preimages it removed. The retention loop calls it; so can tests.
func (s *Store) DropExpired() (int, error) {
	if s.values == nil || s.retention <= 0 {
		return 0, nil
	}
	return s.values.dropBefore(s.db, s.now().Add(-s.retention))
}

func (s *Store) retentionLoop() {
	defer s.loop.Done()
	t := time.NewTicker(min(max(s.retention/4, 10*time.Millisecond), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if n, err := s.DropExpired(); err != nil {
				s.log.Error("pebble store: retention pass failed", "err", err)
			} else if n > 0 {
				s.log.Info("retention dropped preimages older than the window", "count", n, "retention", s.retention)
			}
		}
	}
}
