// Package vlog is an append-only value log: the AltDA stores keep each preimage's bytes
// here, written once, and keep only its Location in their index. Writing a 120 KB preimage
// into an LSM tree instead copies it into the write-ahead log, the memtable, a flushed table
// and then again on every compaction; here it is written once and read back with one pread.
//
// The log is a directory of numbered segment files. Each record is a checksummed
// (key, value) pair, so a read detects a torn or corrupted record and a record read through
// a stale or wrong location. Appends are serialised; Sync makes a record durable and groups
// the fsyncs of concurrent writers, so under load many appends share one. A segment is
// cut to its last whole record and synced in full before the next one is started. The log
// is never rewritten; space comes back only a whole segment at a time, when the owner drops
// the oldest segments (Expired, Keys, Drop) after removing its index entries for them.
//
// All file access goes through FS, so that tests can model what a crash keeps (package
// crashfs) and inject short writes.
//
// Recover lets the owner keep its index writes unsynced: after a crash it lists every
// intact record from a position the owner knows its index covers, so lost index entries
// can be written again, and it cuts off the torn record an interrupted append left at the
// end. Records that were never indexed and are not rescanned are unreachable garbage.
package vlog
