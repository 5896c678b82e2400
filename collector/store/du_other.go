//go:build !unix

package store

import "io/fs"

// allocatedBytes falls back to the file size where st_blocks is not available.
func allocatedBytes(info fs.FileInfo) uint64 { return uint64(info.Size()) }
