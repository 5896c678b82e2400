// Package storetest is the behaviour every store.Store must show, as one test suite the
// backends' own tests run against a real instance (memory, Pebble on disk, MinIO).
package storetest
