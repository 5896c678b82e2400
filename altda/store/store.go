package store

import (
	"context"
	"errors"
)

var (
	// ErrNotFound is returned by Get and Has callers' checks when a key is absent.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable marks a backend that cannot be reached right now.
	ErrUnavailable = errors.New("store unavailable")
)

// Store is a durable key-value store for preimages. Keys are encoded commitments.
// Put must be durable when it returns nil, and idempotent for the same key and value.
type Store interface {
	// Name identifies the backend in logs, metrics and /health ("pebble", "s3", "memory").
	Name() string
	Get(ctx context.Context, key []byte) ([]byte, error)
	Has(ctx context.Context, key []byte) (bool, error)
	Put(ctx context.Context, key, value []byte) error
	// Ping is the health probe: nil when the backend can serve reads and writes.
	Ping(ctx context.Context) error
	// Close flushes and releases the backend.
	Close() error
}
