package crashfs

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/opkit/opkit/altda/store/vlog"
)

// ErrCrashed is what every operation returns between Crash and Restart: the machine is
// off.
var ErrCrashed = fmt.Errorf("crashfs: the machine has crashed: %w", syscall.EIO)

// FS is safe for concurrent use. The zero value is not usable: call New.
type FS struct {
	mu      sync.Mutex
	dirs    map[string]*dir
	crashed bool
	// boot numbers the runs between crashes: a handle opened before a crash is dead.
	boot   int
	now    func() time.Time
	budget int64 // bytes writes may still store; negative: unlimited
	syncs  int
	// countdown crashes the machine at the countdown-th mutating operation from when it
	// was set; 0: off.
	countdown int
	onCrash   func()
}

type dir struct {
	names   map[string]*inode // what the directory lists now
	durable map[string]*inode // what it lists after a crash
}

type inode struct {
	data    []byte // what reads see
	durable []byte // what survives a crash
	mtime   time.Time
}

var _ vlog.FS = (*FS)(nil)

// New returns an empty file system dated by now (nil: time.Now).
func New(now func() time.Time) *FS {
	if now == nil {
		now = time.Now
	}
	return &FS{dirs: make(map[string]*dir), now: now, budget: -1}
}

// Crash cuts the power: from now until Restart every operation fails with ErrCrashed, and
// Restart brings back only what was synced.
func (fs *FS) Crash() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.crash()
}

func (fs *FS) crash() {
	if fs.crashed {
		return
	}
	fs.crashed = true
	fs.countdown = 0
	if fs.onCrash != nil {
		fs.onCrash()
	}
}

// CrashAfter crashes the machine in place of the n-th operation from now that would
// change a file or directory (a write, truncate, fsync, create, remove or directory
// sync): a power cut at an arbitrary point, also between a write and its fsync.
func (fs *FS) CrashAfter(n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.countdown = n
}

// OnCrash sets a function called at the moment of the crash, with the file system
// locked: it must not call back into it. It lets a test cut the power to another file
// system at the same instant.
func (fs *FS) OnCrash(fn func()) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.onCrash = fn
}

// mutate is called with fs.mu held before an operation that changes state: it reports
// ErrCrashed when the machine is off or the countdown has run out.
func (fs *FS) mutate() error {
	if !fs.crashed && fs.countdown > 0 {
		fs.countdown--
		if fs.countdown == 0 {
			fs.crash()
		}
	}
	if fs.crashed {
		return ErrCrashed
	}
	return nil
}

// Restart boots the machine again: each directory lists what it listed at its last
// sync, each file holds what it held at its last fsync. Handles from before are dead.
func (fs *FS) Restart() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, d := range fs.dirs {
		d.names = make(map[string]*inode, len(d.durable))
		for name, ino := range d.durable {
			ino.data = slices.Clone(ino.durable)
			d.names[name] = ino
		}
	}
	fs.crashed = false
	fs.boot++
}

// LimitWrites lets writes store n more bytes in all; the write that reaches the limit is
// cut short, as on a disk that fills up, and later ones fail with ENOSPC. Negative n
// lifts the limit.
func (fs *FS) LimitWrites(n int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.budget = n
}

// Syncs is the number of completed file fsyncs.
func (fs *FS) Syncs() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.syncs
}

// Size is the number of bytes the files in dir hold now.
func (fs *FS) Size(dirName string) int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var n int64
	if d := fs.dirs[filepath.Clean(dirName)]; d != nil {
		for _, ino := range d.names {
			n += int64(len(ino.data))
		}
	}
	return n
}

// MkdirAll creates dir. Directories themselves are taken to be durable at once (the
// value log creates its directory once, before any data).
func (fs *FS) MkdirAll(dirName string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return ErrCrashed
	}
	dirName = filepath.Clean(dirName)
	if fs.dirs[dirName] == nil {
		fs.dirs[dirName] = &dir{names: make(map[string]*inode), durable: make(map[string]*inode)}
	}
	return nil
}

func (fs *FS) ReadDir(dirName string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return nil, ErrCrashed
	}
	d := fs.dirs[filepath.Clean(dirName)]
	if d == nil {
		return nil, fmt.Errorf("crashfs: read %s: %w", dirName, syscall.ENOENT)
	}
	var names []string
	for name := range d.names {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func (fs *FS) lookup(name string) (*dir, string, error) {
	d := fs.dirs[filepath.Dir(filepath.Clean(name))]
	if d == nil {
		return nil, "", fmt.Errorf("crashfs: %s: %w", name, syscall.ENOENT)
	}
	return d, filepath.Base(name), nil
}

func (fs *FS) OpenFile(name string, create bool) (vlog.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return nil, ErrCrashed
	}
	d, base, err := fs.lookup(name)
	if err != nil {
		return nil, err
	}
	if create {
		if err := fs.mutate(); err != nil {
			return nil, err
		}
	}
	ino := d.names[base]
	switch {
	case create && ino != nil:
		return nil, fmt.Errorf("crashfs: create %s: %w", name, syscall.EEXIST)
	case create:
		ino = &inode{mtime: fs.now()}
		d.names[base] = ino
	case ino == nil:
		return nil, fmt.Errorf("crashfs: open %s: %w", name, syscall.ENOENT)
	}
	return &file{fs: fs, ino: ino, boot: fs.boot}, nil
}

func (fs *FS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return ErrCrashed
	}
	d, base, err := fs.lookup(name)
	if err != nil {
		return err
	}
	if err := fs.mutate(); err != nil {
		return err
	}
	if d.names[base] == nil {
		return fmt.Errorf("crashfs: remove %s: %w", name, syscall.ENOENT)
	}
	delete(d.names, base)
	return nil
}

func (fs *FS) SyncDir(dirName string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.crashed {
		return ErrCrashed
	}
	d := fs.dirs[filepath.Clean(dirName)]
	if d == nil {
		return fmt.Errorf("crashfs: sync %s: %w", dirName, syscall.ENOENT)
	}
	if err := fs.mutate(); err != nil {
		return err
	}
	d.durable = make(map[string]*inode, len(d.names))
	for name, ino := range d.names {
		d.durable[name] = ino
	}
	return nil
}

type file struct {
	fs     *FS
	ino    *inode
	boot   int
	closed bool
}

// check is called with fs.mu held; mutating ones go through change.
func (f *file) change() error {
	if err := f.check(); err != nil {
		return err
	}
	return f.fs.mutate()
}

func (f *file) check() error {
	switch {
	case f.fs.crashed || f.boot != f.fs.boot:
		return ErrCrashed
	case f.closed:
		return errors.New("crashfs: file already closed")
	}
	return nil
}

func (f *file) Pwritev(bufs [][]byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.change(); err != nil {
		return 0, err
	}
	var total int64
	for _, b := range bufs {
		total += int64(len(b))
	}
	if f.fs.budget == 0 && total > 0 {
		return 0, fmt.Errorf("crashfs: write: %w", syscall.ENOSPC)
	}
	if f.fs.budget > 0 && total > f.fs.budget {
		total = f.fs.budget
	}
	if f.fs.budget > 0 {
		f.fs.budget -= total
	}
	if end := off + total; end > int64(len(f.ino.data)) {
		f.ino.data = append(f.ino.data, make([]byte, end-int64(len(f.ino.data)))...)
	}
	n := int64(0)
	for _, b := range bufs {
		if n == total {
			break
		}
		n += int64(copy(f.ino.data[off+n:off+total], b))
	}
	f.ino.mtime = f.fs.now()
	return int(total), nil
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.change(); err != nil {
		return err
	}
	if size < int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	f.ino.mtime = f.fs.now()
	return nil
}

func (f *file) Datasync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.change(); err != nil {
		return err
	}
	f.ino.durable = slices.Clone(f.ino.data)
	f.fs.syncs++
	return nil
}

func (f *file) Stat() (int64, time.Time, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, time.Time{}, err
	}
	return int64(len(f.ino.data)), f.ino.mtime, nil
}

// Close works after a crash too, so that the owner can release what it holds.
func (f *file) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return errors.New("crashfs: file already closed")
	}
	f.closed = true
	return nil
}
