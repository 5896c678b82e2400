// Package pebblestore keeps AltDA preimages in an embedded Pebble database. Every write
// is synced to the write-ahead log before Put returns, so an acknowledged preimage
// survives a crash of the process or the machine; Pebble groups the syncs of concurrent
// writers into one, which is what makes synced writes cheap under load.
package pebblestore
