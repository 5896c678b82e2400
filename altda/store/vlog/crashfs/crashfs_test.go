package crashfs

import (
	"errors"
	"io"
	"slices"
	"syscall"
	"testing"
)

func write(t *testing.T, f interface {
	Pwritev([][]byte, int64) (int, error)
}, off int64, s string) {
	t.Helper()
	if n, err := f.Pwritev([][]byte{[]byte(s)}, off); err != nil || n != len(s) {
		t.Fatalf("write %q at %d: %d, %v", s, off, n, err)
	}
}

func contents(t *testing.T, fs *FS, name string) string {
	t.Helper()
	f, err := fs.OpenFile(name, false)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	size, _, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(b)
}

// A crash keeps a file's bytes as of its last fsync and a directory's entries as of its
// last sync; everything else is gone, and old handles are dead.
func TestCrashKeepsOnlyWhatWasSynced(t *testing.T) {
	fs := New(nil)
	if err := fs.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	a, err := fs.OpenFile("/d/a", true)
	if err != nil {
		t.Fatal(err)
	}
	write(t, a, 0, "synced")
	if err := a.Datasync(); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	write(t, a, 6, "+lost")
	if err := a.Truncate(3); err != nil { // also not synced
		t.Fatal(err)
	}
	b, err := fs.OpenFile("/d/b", true) // entry never synced
	if err != nil {
		t.Fatal(err)
	}
	write(t, b, 0, "b")
	if err := b.Datasync(); err != nil {
		t.Fatal(err)
	}
	if fs.Syncs() != 2 {
		t.Fatalf("%d syncs counted, want 2", fs.Syncs())
	}

	fs.Crash()
	if _, err := a.Pwritev([][]byte{[]byte("x")}, 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("write after the crash: %v", err)
	}
	if _, err := fs.ReadDir("/d"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("readdir after the crash: %v", err)
	}
	fs.Restart()
	if _, err := a.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrCrashed) {
		t.Fatalf("a handle from before the crash still works: %v", err)
	}
	names, err := fs.ReadDir("/d")
	if err != nil || !slices.Equal(names, []string{"a"}) {
		t.Fatalf("after the crash the directory lists %v, %v; want only the synced entry", names, err)
	}
	if got := contents(t, fs, "/d/a"); got != "synced" {
		t.Fatalf("after the crash a holds %q", got)
	}

	// A removal not followed by a directory sync is undone by a crash.
	if err := fs.Remove("/d/a"); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	fs.Restart()
	if got := contents(t, fs, "/d/a"); got != "synced" {
		t.Fatalf("after an unsynced removal and a crash a holds %q", got)
	}
}

// CrashAfter cuts the power in place of the n-th changing operation; LimitWrites makes
// a write short and the next one fail with ENOSPC.
func TestInjectedFaults(t *testing.T) {
	fs := New(nil)
	_ = fs.MkdirAll("/d")
	f, err := fs.OpenFile("/d/f", true)
	if err != nil {
		t.Fatal(err)
	}
	fs.LimitWrites(3)
	if n, err := f.Pwritev([][]byte{[]byte("ab"), []byte("cdef")}, 0); n != 3 || err != nil {
		t.Fatalf("write over the limit: %d, %v; want a short write of 3", n, err)
	}
	if _, err := f.Pwritev([][]byte{[]byte("g")}, 3); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v", err)
	}
	fs.LimitWrites(-1)
	if got := fs.Size("/d"); got != 3 {
		t.Fatalf("directory holds %d bytes, want 3", got)
	}

	fs.CrashAfter(2)
	write(t, f, 3, "d")
	if err := f.Datasync(); !errors.Is(err, ErrCrashed) {
		t.Fatalf("second operation after CrashAfter(2): %v", err)
	}
	crashed := false
	fs.OnCrash(func() { crashed = true })
	fs.Restart()
	fs.Crash()
	if !crashed {
		t.Fatal("OnCrash was not called")
	}
}
