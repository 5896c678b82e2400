package repair

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"time"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
)

// Config tunes the retry loop.
type Config struct {
	BaseDelay  time.Duration // first retry delay (default 500ms)
	MaxDelay   time.Duration // backoff cap (default 30s)
	PutTimeout time.Duration // per retry (default 30s)
	Logger     *slog.Logger
	// OnRepaired is called after an entry was written to its target by the loop.
	OnRepaired func(target string)
}

// entryDB is what the queue needs of its database (a *pebblestore.Store).
type entryDB interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
	Delete(key []byte) error
	Each(prefix []byte, fn func(key, value []byte) bool) error
	Close() error
}

// Queue is safe for concurrent use.
//
// The entry keys and their retry state live in memory too, so that nothing on the PUT
// path (Add, Pending, Done) waits for a scan of the database, and the retry loop picks
// due entries without reading any preimage under the lock: it reads each value after
// releasing it. Writes of one entry are ordered by a per-key stripe lock, so that an
// Add and a Done of the same entry cannot leave the memory and the database disagreeing.
type Queue struct {
	cfg     Config
	db      entryDB
	targets map[string]store.Store

	mu      sync.Mutex            // guards entries; never held across I/O
	entries map[string]retryState // by entry key: every entry in db
	stripes [64]sync.Mutex
	wake    chan struct{}
}

type retryState struct {
	attempts int
	next     time.Time
}

// Open opens the queue database in dir. targets maps a secondary's name to the store
// that entries for that name are written to.
func Open(dir string, targets map[string]store.Store, cfg Config) (*Queue, error) {
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 500 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 30 * time.Second
	}
	if cfg.PutTimeout <= 0 {
		cfg.PutTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	db, err := pebblestore.OpenInline(dir)
	if err != nil {
		return nil, fmt.Errorf("repair queue: %w", err)
	}
	q := &Queue{cfg: cfg, db: db, targets: targets, entries: make(map[string]retryState), wake: make(chan struct{}, 1)}
	warned := map[string]bool{}
	err = db.Each(nil, func(key, _ []byte) bool {
		// Entries from before the restart are due at once.
		q.entries[string(key)] = retryState{}
		if target, _, ok := splitKey(key); ok && targets[target] == nil && !warned[target] {
			warned[target] = true
			cfg.Logger.Warn("repair queue holds entries for a secondary that is not configured; they wait until it is", "target", target)
		}
		return true
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("repair queue: list entries: %w", err)
	}
	return q, nil
}

func entryKey(target string, key []byte) []byte {
	return append(append([]byte(target), 0), key...)
}

func splitKey(k []byte) (target string, key []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

func (q *Queue) stripe(ek []byte) *sync.Mutex {
	return &q.stripes[crc32.ChecksumIEEE(ek)%uint32(len(q.stripes))]
}

// Add records a pending write of value under key to target. It returns once the entry is
// durable.
func (q *Queue) Add(target string, key, value []byte) error {
	ek := entryKey(target, key)
	st := q.stripe(ek)
	st.Lock()
	defer st.Unlock()
	if err := q.db.Put(context.Background(), ek, value); err != nil {
		return fmt.Errorf("repair queue: add: %w", err)
	}
	q.mu.Lock()
	if _, had := q.entries[string(ek)]; !had {
		q.entries[string(ek)] = retryState{next: time.Now().Add(q.cfg.BaseDelay)}
	}
	q.mu.Unlock()
	return nil
}

// Pending reports whether a write of key to target is queued.
func (q *Queue) Pending(target string, key []byte) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.entries[string(entryKey(target, key))]
	return ok, nil
}

// Done removes an entry whose write has succeeded.
func (q *Queue) Done(target string, key []byte) error {
	ek := entryKey(target, key)
	st := q.stripe(ek)
	st.Lock()
	defer st.Unlock()
	q.mu.Lock()
	_, had := q.entries[string(ek)]
	q.mu.Unlock()
	if !had {
		return nil
	}
	if err := q.db.Delete(ek); err != nil {
		return fmt.Errorf("repair queue: remove: %w", err)
	}
	q.mu.Lock()
	delete(q.entries, string(ek))
	q.mu.Unlock()
	return nil
}

// Len is the number of pending entries.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// Kick makes the loop look at the queue now rather than at its next tick.
func (q *Queue) Kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run retries due entries until ctx is done.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(q.cfg.BaseDelay)
	defer t.Stop()
	for {
		q.retryDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-q.wake:
		}
	}
}

// maxPerRound bounds the entries one round retries (and holds in memory).
const maxPerRound = 64

func (q *Queue) retryDue(ctx context.Context) {
	now := time.Now()
	var due []string
	q.mu.Lock()
	for ek, st := range q.entries {
		if now.Before(st.next) {
			continue
		}
		due = append(due, ek)
		if len(due) == maxPerRound {
			break // the rest come next round
		}
	}
	q.mu.Unlock()
	for _, ek := range due {
		if ctx.Err() != nil {
			return
		}
		target, key, ok := splitKey([]byte(ek))
		dst := q.targets[target]
		if !ok || dst == nil {
			q.postpone(ek)
			continue
		}
		value, err := q.db.Get(ctx, []byte(ek))
		if errors.Is(err, store.ErrNotFound) {
			continue // completed by a resend meanwhile
		}
		if err != nil {
			q.postpone(ek)
			q.cfg.Logger.Error("repair queue: read entry", "target", target, "key", fmt.Sprintf("0x%x", key), "err", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, q.cfg.PutTimeout)
		err = dst.Put(pctx, key, value)
		cancel()
		if err != nil {
			attempts := q.postpone(ek)
			q.cfg.Logger.Warn("repair write failed; will retry", "target", target, "key", fmt.Sprintf("0x%x", key), "attempts", attempts, "err", err)
			continue
		}
		if err := q.Done(target, key); err != nil {
			q.cfg.Logger.Error("repair queue: remove entry", "err", err)
			continue
		}
		q.cfg.Logger.Info("repaired secondary write", "target", target, "key", fmt.Sprintf("0x%x", key))
		if q.cfg.OnRepaired != nil {
			q.cfg.OnRepaired(target)
		}
	}
}

func (q *Queue) postpone(ek string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	st, ok := q.entries[ek]
	if !ok {
		return 0 // done meanwhile
	}
	st.attempts++
	delay := q.cfg.BaseDelay << min(st.attempts, 16)
	if delay > q.cfg.MaxDelay || delay <= 0 {
		delay = q.cfg.MaxDelay
	}
	st.next = time.Now().Add(delay)
	q.entries[ek] = st
	return st.attempts
}

// Close closes the database. Run must have returned.
func (q *Queue) Close() error { return q.db.Close() }
