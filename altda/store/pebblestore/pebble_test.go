package pebblestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/altda/store/storetest"
	"github.com/opkit/opkit/altda/store/vlog"
)

func TestContract(t *testing.T) {
	s, err := pebblestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Run(t, s)
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("k"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Recovered() != 0 {
		t.Fatalf("after a clean shutdown Open indexed %d records again", s.Recovered())
	}
	got, err := s.Get(ctx, []byte("k"))
	if err != nil || !bytes.Equal(got, []byte("value")) {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
}

func TestEachByPrefix(t *testing.T) {
	for name, open := range map[string]func(string) (*pebblestore.Store, error){"value log": pebblestore.Open, "inline": pebblestore.OpenInline} {
		t.Run(name, func(t *testing.T) { testEachByPrefix(t, open) })
	}
}

func testEachByPrefix(t *testing.T, open func(string) (*pebblestore.Store, error)) {
	s, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, k := range []string{"a\x001", "a\x002", "b\x001", "a\xff"} {
		if err := s.Put(ctx, []byte(k), []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.Each([]byte("a\x00"), func(k, v []byte) bool {
		if !bytes.Equal(k, v) {
			t.Errorf("Each gave %q the value %q", k, v)
		}
		got = append(got, string(k))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a\x001" || got[1] != "a\x002" {
		t.Fatalf("prefix a\\x00 listed %q", got)
	}
	if err := s.Delete([]byte("a\x001")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, []byte("a\x001")); ok {
		t.Fatal("deleted key still there")
	}
}

func TestContractInline(t *testing.T) {
	s, err := pebblestore.OpenInline(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Run(t, s)
}

// A value changed on disk is a read error, never other bytes and never "not found"; the
// store says it checks its reads (so the server can trust what it returns), and putting
// the value again repairs it.
func TestValueLogCorruptionIsAnError(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !store.ChecksReads(s) {
		t.Fatal("a store with a value log does not report that it checks its reads")
	}
	ctx := context.Background()
	value := bytes.Repeat([]byte("frame"), 24000)
	if err := s.Put(ctx, []byte("k"), value); err != nil {
		t.Fatal(err)
	}
	corruptValueLog(t, dir, []byte("frame"))
	got, err := s.Get(ctx, []byte("k"))
	if !errors.Is(err, store.ErrCorrupt) || !errors.Is(err, vlog.ErrCorrupt) {
		t.Fatalf("Get of a corrupted value = %d bytes, %v; want store.ErrCorrupt", len(got), err)
	}
	// Not held: a resend writes it again, and that heals it.
	if ok, err := s.Has(ctx, []byte("k")); err != nil || ok {
		t.Fatalf("Has of a corrupted value = %v, %v; want false, nil", ok, err)
	}
	if err := s.Put(ctx, []byte("k"), value); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, []byte("k")); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Get after the value was put again: %d bytes, %v", len(got), err)
	}
}

// corruptValueLog flips one byte of the first occurrence of marker in the value log
// segments under dir.
func corruptValueLog(t *testing.T, dir string, marker []byte) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "values", "*.vlog"))
	for _, seg := range segs {
		raw, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(raw, marker); i >= 0 {
			raw[i] ^= 1
			if err := os.WriteFile(seg, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no value log segment under %s holds %q", dir, marker)
}

// The value log's space goes to values alone: 200 values of 120000 bytes take little more
// than 24 MB on disk, and the index a small fraction of that.
func TestValuesAreWrittenOnce(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n, size = 200, 120000
	for i := 0; i < n; i++ {
		v := bytes.Repeat([]byte{byte(i)}, size)
		if err := s.Put(ctx, []byte(fmt.Sprintf("key-%d", i)), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	values, index := dirSize(t, filepath.Join(dir, "values")), dirSize(t, filepath.Join(dir, "index"))
	if want := int64(n * size); values < want || values > want+want/100 {
		t.Fatalf("value log holds %d bytes for %d bytes of values", values, want)
	}
	if index > int64(n*size)/20 {
		t.Fatalf("index holds %d bytes for %d values: values are being copied into it", index, n)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// Index writes are not synced one by one: a crash can lose the newest of them.
// The value log still holds every acknowledged value, and a restart rescans it from the
// last checkpoint. Here the index is put back to its state before any write, as a crash
// that lost every unsynced index write would leave it, and every value is still there.
func TestIndexRebuiltFromValueLog(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := t.TempDir()
	if err := os.CopyFS(before, os.DirFS(filepath.Join(dir, "index"))); err != nil {
		t.Fatal(err)
	}

	s, err = pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 50
	for i := 0; i < n; i++ {
		if err := s.Put(ctx, []byte(fmt.Sprintf("key-%d", i)), bytes.Repeat([]byte{byte(i)}, 20000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "index"), os.DirFS(before)); err != nil {
		t.Fatal(err)
	}

	s, err = pebblestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Recovered() != n {
		t.Fatalf("Open indexed %d records again, want %d", s.Recovered(), n)
	}
	for i := 0; i < n; i++ {
		got, err := s.Get(ctx, []byte(fmt.Sprintf("key-%d", i)))
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 20000)) {
			t.Fatalf("key-%d after the index lost its writes: %d bytes, %v", i, len(got), err)
		}
	}
	if err := s.Put(ctx, []byte("\xffvalue-log-checkpoint"), []byte("x")); err == nil {
		t.Fatal("Put accepted a key in the store's reserved 0xff space")
	}
}
