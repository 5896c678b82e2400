package store

import (
	"bytes"
	"context"
	"sync"
)

// Memory keeps preimages in a map. It is not durable and exists for tests and demos.
type Memory struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{m: make(map[string][]byte)} }

func (s *Memory) Name() string { return "memory" }

func (s *Memory) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	v, ok := s.m[string(key)]
	s.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *Memory) Has(ctx context.Context, key []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	_, ok := s.m[string(key)]
	s.mu.RUnlock()
	return ok, nil
}

func (s *Memory) Put(ctx context.Context, key, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.m[string(key)] = bytes.Clone(value)
	s.mu.Unlock()
	return nil
}

// Len is the number of stored keys.
func (s *Memory) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

func (s *Memory) Ping(ctx context.Context) error { return ctx.Err() }
func (s *Memory) Close() error                   { return nil }
