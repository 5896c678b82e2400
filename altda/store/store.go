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
	// ErrCorrupt marks a read whose bytes a backend found damaged (see ReadChecker).
	ErrCorrupt = errors.New("stored bytes are corrupt")
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

// ReadChecker is implemented by backends that detect, on every read, bytes that differ
// from what was put under the key (a checksum over key and value). The server hashes what
// other backends return against the commitment; what these return it can serve as is,
// because it verified the bytes against the commitment before putting them.
type ReadChecker interface {
	ChecksReads() bool
}

// Sizer is implemented by backends that know how many bytes they keep on disk.
type Sizer interface {
	SizeBytes() int64
}

// ChecksReads reports whether s detects corrupted reads itself.
func ChecksReads(s Store) bool {
	c, ok := s.(ReadChecker)
	return ok && c.ChecksReads()
}
