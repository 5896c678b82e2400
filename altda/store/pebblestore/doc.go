// Package pebblestore keeps AltDA preimages on local disk. Open gives the store the server
// uses for preimages: each value is appended once to a value log (package vlog) and Pebble
// holds only its 16-byte location, so a 120 KB frame is not copied again by memtable
// flushes and compactions. The value is synced before its location is written, and the
// location is synced before Put returns: an acknowledged preimage survives a crash of the
// process or the machine. Both syncs are shared between concurrent writers.
//
// OpenInline keeps values inside Pebble, for data that is deleted again (the repair
// queue), whose space a value log would never give back.
package pebblestore
