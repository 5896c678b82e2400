// Package crashfs is an in-memory vlog.FS that models what a machine crash keeps: a
// file's bytes and size as of its last completed fsync, and a directory's entries as of
// its last directory sync. Everything else lives in the "page cache" and is discarded by
// Crash. A SIGKILL test cannot show that an fsync is missing, because the kernel keeps the
// page cache of a killed process; this can. It also counts fsyncs and injects short
// writes, which a real disk produces only when it fills up.
package crashfs
