package repair

import (
	"bytes"
	"context"
	"fmt"
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

// Queue is safe for concurrent use.
type Queue struct {
	cfg     Config
	db      *pebblestore.Store
	targets map[string]store.Store

	mu      sync.Mutex
	n       int
	backoff map[string]retryState // by entry key
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
	q := &Queue{cfg: cfg, db: db, targets: targets, backoff: make(map[string]retryState), wake: make(chan struct{}, 1)}
	err = db.Each(nil, func(key, _ []byte) bool {
		q.n++
		if target, _, ok := splitKey(key); ok && targets[target] == nil {
			cfg.Logger.Warn("repair queue holds entries for a secondary that is not configured; they wait until it is", "target", target)
		}
		return true
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("repair queue: count entries: %w", err)
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

// Add records a pending write of value under key to target. It returns once the entry is
// durable.
func (q *Queue) Add(target string, key, value []byte) error {
	ek := entryKey(target, key)
	q.mu.Lock()
	defer q.mu.Unlock()
	had, err := q.db.Has(context.Background(), ek)
	if err != nil {
		return fmt.Errorf("repair queue: %w", err)
	}
	if err := q.db.Put(context.Background(), ek, value); err != nil {
		return fmt.Errorf("repair queue: add: %w", err)
	}
	if !had {
		q.n++
		q.backoff[string(ek)] = retryState{next: time.Now().Add(q.cfg.BaseDelay)}
	}
	return nil
}

// Pending reports whether a write of key to target is queued.
func (q *Queue) Pending(target string, key []byte) (bool, error) {
	ok, err := q.db.Has(context.Background(), entryKey(target, key))
	if err != nil {
		return false, fmt.Errorf("repair queue: %w", err)
	}
	return ok, nil
}

// Done removes an entry whose write has succeeded.
func (q *Queue) Done(target string, key []byte) error {
	ek := entryKey(target, key)
	q.mu.Lock()
	defer q.mu.Unlock()
	had, err := q.db.Has(context.Background(), ek)
	if err != nil || !had {
		return err
	}
	if err := q.db.Delete(ek); err != nil {
		return fmt.Errorf("repair queue: remove: %w", err)
	}
	q.n--
	delete(q.backoff, string(ek))
	return nil
}

// Len is the number of pending entries.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
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

type due struct {
	ek, value []byte
}

func (q *Queue) retryDue(ctx context.Context) {
	now := time.Now()
	var batch []due
	q.mu.Lock()
	err := q.db.Each(nil, func(k, v []byte) bool {
		if st, ok := q.backoff[string(k)]; ok && now.Before(st.next) {
			return true
		}
		batch = append(batch, due{ek: bytes.Clone(k), value: bytes.Clone(v)})
		return len(batch) < 64 // bound memory per round; the rest come next round
	})
	q.mu.Unlock()
	if err != nil {
		q.cfg.Logger.Error("repair queue: scan failed", "err", err)
		return
	}
	for _, d := range batch {
		if ctx.Err() != nil {
			return
		}
		target, key, ok := splitKey(d.ek)
		dst := q.targets[target]
		if !ok || dst == nil {
			q.postpone(d.ek)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, q.cfg.PutTimeout)
		err := dst.Put(pctx, key, d.value)
		cancel()
		if err != nil {
			attempts := q.postpone(d.ek)
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

func (q *Queue) postpone(ek []byte) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.backoff[string(ek)]
	st.attempts++
	delay := q.cfg.BaseDelay << min(st.attempts, 16)
	if delay > q.cfg.MaxDelay || delay <= 0 {
		delay = q.cfg.MaxDelay
	}
	st.next = time.Now().Add(delay)
	q.backoff[string(ek)] = st
	return st.attempts
}

// Close closes the database. Run must have returned.
func (q *Queue) Close() error { return q.db.Close() }
