//go:build unix

package store

import (
	"io/fs"
	"syscall"
)

// allocatedBytes is what a file takes on disk: st_blocks counts 512-byte units whatever
// the filesystem's block size.
func allocatedBytes(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Blocks) * 512
	}
	return uint64(info.Size())
}
