package server

import (
	"container/list"
	"sync"
	"time"
)

// cache is a byte-bounded LRU of preimages. Values are shared, never modified.
type cache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration // > 0: entries older than this are not served
	size  int
	ll    *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	key   string
	value []byte
	added time.Time
}

func newCache(maxBytes int, ttl time.Duration) *cache {
	return &cache{max: maxBytes, ttl: ttl, ll: list.New(), items: make(map[string]*list.Element)}
}

func (c *cache) get(key []byte) ([]byte, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[string(key)]
	if !ok {
		return nil, false
	}
	if ent := e.Value.(*cacheEntry); c.ttl > 0 && time.Since(ent.added) > c.ttl {
		c.ll.Remove(e)
		delete(c.items, ent.key)
		c.size -= len(ent.value)
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).value, true
}

func (c *cache) add(key, value []byte) {
	if len(value) > c.max/8 || c.max <= 0 {
		return // one value must not flush a large part of the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[string(key)]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[string(key)] = c.ll.PushFront(&cacheEntry{key: string(key), value: value, added: time.Now()})
	c.size += len(value)
	for c.size > c.max {
		last := c.ll.Back()
		ent := last.Value.(*cacheEntry)
		c.ll.Remove(last)
		delete(c.items, ent.key)
		c.size -= len(ent.value)
	}
}

// flight coalesces concurrent calls with the same key into one.
type flight[T any] struct {
	mu    sync.Mutex
	calls map[string]*call[T]
}

type call[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// do runs fn once for all concurrent callers of key; shared reports whether this caller
// got another caller's result.
func (f *flight[T]) do(key string, fn func() (T, error)) (v T, err error, shared bool) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]*call[T])
	}
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.val, c.err, true
	}
	c := &call[T]{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
	return c.val, c.err, false
}
