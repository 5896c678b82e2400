// Package store defines what the AltDA server needs of a storage backend and holds the
// in-memory backend and the fault-injecting wrapper used by tests and demos. The durable
// backends live in the pebblestore and s3store subpackages.
//
// Errors are sorted into three kinds because the server answers each differently:
// ErrNotFound (404, or try the next store), ErrUnavailable (the backend cannot be
// reached: count it against the primary's breaker and answer 503), and anything else
// (a failed operation: 500 on the primary, a repair entry on a secondary).
package store
