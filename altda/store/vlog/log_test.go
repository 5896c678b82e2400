package vlog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

func value(i, size int) []byte {
	v := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a}, size/3+1)[:size]
	copy(v, fmt.Sprintf("value-%d", i))
	return v
}

func key(i int) []byte { return []byte(fmt.Sprintf("key-%04d", i)) }

func appendSynced(t *testing.T, l *Log, k, v []byte) Location {
	t.Helper()
	loc, err := l.Append(k, v)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := l.Sync(loc, len(k)); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return loc
}

func mustRead(t *testing.T, l *Log, loc Location, k, want []byte) {
	t.Helper()
	got, err := l.Read(loc, k)
	if err != nil {
		t.Fatalf("Read %s: %v", loc, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Read %s: %d bytes that differ from the %d appended", loc, len(got), len(want))
	}
}

// Records survive segment rolls and a reopen, and new records go after the old ones.
func TestRollAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	locs := make([]Location, 40)
	for i := range locs {
		locs[i] = appendSynced(t, l, key(i), value(i, 1000+i*37))
	}
	if last := locs[len(locs)-1].Segment; last < 4 {
		t.Fatalf("40 records of about 1.7 KB in 10 KB segments ended in segment %d; want rolls", last)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(key(0), value(0, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}

	l, err = Open(dir, Options{SegmentSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, loc := range locs {
		mustRead(t, l, loc, key(i), value(i, 1000+i*37))
	}
	next := appendSynced(t, l, key(99), value(99, 500))
	last := locs[len(locs)-1]
	if next.Segment < last.Segment || (next.Segment == last.Segment && next.Offset <= last.Offset) {
		t.Fatalf("record after reopen at %s, not after the last one at %s", next, last)
	}
	mustRead(t, l, next, key(99), value(99, 500))
}

// A read notices a flipped byte, a wrong key, a wrong length and a location past the end.
func TestReadDetectsCorruption(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := appendSynced(t, l, key(1), value(1, 5000))
	b := appendSynced(t, l, key(2), value(2, 5000))

	for name, c := range map[string]struct {
		loc Location
		key []byte
	}{
		"wrong key":          {a, key(2)},
		"wrong length":       {Location{a.Segment, a.Offset, a.ValueLen - 1}, key(1)},
		"another's offset":   {Location{b.Segment, b.Offset, a.ValueLen}, key(1)},
		"past the end":       {Location{b.Segment, b.Offset + 1<<20, 10}, key(2)},
		"missing segment":    {Location{b.Segment + 5, 0, 10}, key(2)},
		"inside a record":    {Location{a.Segment, a.Offset + 7, 100}, key(1)},
		"zero-length record": {Location{a.Segment, a.Offset, 0}, nil},
	} {
		if _, err := l.Read(c.loc, c.key); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Read = %v, want ErrCorrupt", name, err)
		}
	}

	// Flip one byte of b's value on disk.
	f, err := os.OpenFile(segmentPath(dir, b.Segment), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pos := b.Offset + headerSize + int64(len(key(2))) + 100
	one := []byte{0}
	if _, err := f.ReadAt(one, pos); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{one[0] ^ 1}, pos); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(b, key(2)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of a record with a flipped byte = %v, want ErrCorrupt", err)
	}
	mustRead(t, l, a, key(1), value(1, 5000))
}

// Concurrent appends, syncs and reads (run with -race), and every synced record reads back.
func TestConcurrentUse(t *testing.T) {
	l, err := Open(t.TempDir(), Options{SegmentSize: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const writers, each = 8, 40
	locs := make([]Location, writers*each)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				i := w*each + j
				loc, err := l.Append(key(i), value(i, 12_000))
				if err == nil {
					err = l.Sync(loc, len(key(i)))
				}
				if err == nil {
					var got []byte
					got, err = l.Read(loc, key(i))
					if err == nil && !bytes.Equal(got, value(i, 12_000)) {
						err = fmt.Errorf("record %d read back wrong", i)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				locs[i] = loc
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, loc := range locs {
		mustRead(t, l, loc, key(i), value(i, 12_000))
	}
}

func TestOpenRejectsStrangeFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/0000000x.vlog", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open accepted a directory with a segment file it cannot number")
	}
}

func TestLocationRoundTrip(t *testing.T) {
	loc := Location{Segment: 7, Offset: 1<<33 + 5, ValueLen: 120000}
	got, err := ParseLocation(loc.Bytes())
	if err != nil || got != loc {
		t.Fatalf("ParseLocation(Bytes()) = %v, %v; want %v", got, err, loc)
	}
	for _, bad := range [][]byte{nil, make([]byte, LocationSize-1), append(make([]byte, 4), 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%x) accepted it", bad)
		}
	}
}

// A write that fails (here: the segment's descriptor cannot write, as a full disk would
// refuse) fails that append only. The log's end does not move, and the next append lands
// where the failed one would have.
func TestFailedWriteIsNotFatal(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := appendSynced(t, l, key(1), value(1, 1000))

	seg := l.active
	writable := seg.f
	readOnly, err := os.Open(segmentPath(dir, seg.id))
	if err != nil {
		t.Fatal(err)
	}
	seg.f = osFile{readOnly}
	if _, err := l.Append(key(2), value(2, 1000)); err == nil {
		t.Fatal("Append through a read-only descriptor succeeded")
	}
	seg.f = writable
	_ = readOnly.Close()
	if err := l.Err(); err != nil {
		t.Fatalf("a failed write stopped the log: %v", err)
	}
	b := appendSynced(t, l, key(3), value(3, 1000))
	if want := a.Offset + recordSize(len(key(1)), 1000); b.Offset != want {
		t.Fatalf("append after the failed one at offset %d, want %d", b.Offset, want)
	}
	mustRead(t, l, a, key(1), value(1, 1000))
	mustRead(t, l, b, key(3), value(3, 1000))
}
