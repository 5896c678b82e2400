package vlog

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// FS is the file system a Log works on: the operating system's unless Options.FS says
// otherwise. It is the seam through which tests model what a crash keeps (only what a
// completed fsync covered) and inject faults such as short writes, which a real disk
// produces only when it fills up.
type FS interface {
	MkdirAll(dir string) error
	// ReadDir lists the names of the regular files in dir.
	ReadDir(dir string) ([]string, error)
	// OpenFile opens name for reading and writing; with create it creates the file and
	// fails if it exists. A created file's directory entry is durable after SyncDir.
	OpenFile(name string, create bool) (File, error)
	Remove(name string) error
	SyncDir(dir string) error
}

// File is one segment file.
type File interface {
	// Pwritev writes bufs back to back at off in one call and returns how many bytes it
	// wrote, which may be fewer than asked.
	Pwritev(bufs [][]byte, off int64) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	// Datasync makes the file's bytes and size durable (fdatasync).
	Datasync() error
	Stat() (size int64, modTime time.Time, err error)
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (OSFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (OSFS) OpenFile(name string, create bool) (File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) Remove(name string) error { return os.Remove(name) }

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type osFile struct{ f *os.File }

func (o osFile) Pwritev(bufs [][]byte, off int64) (int, error) {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = unix.Pwritev(int(fd), bufs, off)
			if werr != unix.EINTR {
				return true
			}
		}
	}); err != nil {
		return 0, err
	}
	return n, werr
}

func (o osFile) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o osFile) Truncate(size int64) error               { return o.f.Truncate(size) }
func (o osFile) Close() error                            { return o.f.Close() }

func (o osFile) Datasync() error {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	return serr
}

func (o osFile) Stat() (int64, time.Time, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stat: %w", err)
	}
	return st.Size(), st.ModTime(), nil
}
