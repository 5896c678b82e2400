// Package pebblestore keeps AltDA preimages on local disk. Open gives the store the server
// uses for preimages: each value is appended once to a value log (package vlog) and Pebble
// holds only its 16-byte location, so a 120 KB frame is not copied again by memtable
// flushes and compactions. The value is synced (one fsync shared by concurrent writers)
// before its location is written and before Put returns, so an acknowledged preimage
// survives a crash of the process or the machine; the location itself is written unsynced
// and, after a crash, written again from a rescan of the value log from the last
// checkpoint. With Options.Retention, segments whose every record is older than the
// window are dropped with their index entries.
//
// OpenInline keeps values inside Pebble, for data that is deleted again (the repair
// queue), whose space a value log would never give back.
package pebblestore
