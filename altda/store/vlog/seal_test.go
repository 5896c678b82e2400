package vlog_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/opkit/opkit/altda/store/vlog"
	"github.com/opkit/opkit/altda/store/vlog/crashfs"
)

// A disk that fills up in the middle of an append stores part of the record (a short
// pwritev) and then refuses the rest. The append fails and the log's end stays where it
// was, but those bytes are in the file past it. When the next append rolls the segment,
// the sealed segment must end at the last whole record: sealed with the torn bytes, the
// next Open's recovery finds a damaged sealed segment and refuses the whole store.
func TestShortWriteThenRollSealsCleanly(t *testing.T) {
	// 0 bytes: the plain failed write. The others leave torn bytes that reach past the
	// small record appended next, so it does not overwrite them.
	for _, written := range []int64{0, 3000, 10_000} {
		t.Run(fmt.Sprintf("%d bytes reached the file", written), func(t *testing.T) {
			fs := crashfs.New(nil)
			opts := vlog.Options{SegmentSize: 20_000, FS: fs}
			l, err := vlog.Open("/data/values", opts)
			if err != nil {
				t.Fatal(err)
			}
			sizes := map[int]int{1: 8000, 2: 11_000, 3: 100, 4: 12_000}
			val := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, sizes[i]) }
			key := func(i int) []byte { return []byte(fmt.Sprintf("key-%d", i)) }
			appendSynced := func(i int) vlog.Location {
				loc, err := l.Append(key(i), val(i))
				if err == nil {
					err = l.Sync(loc, len(key(i)))
				}
				if err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
				return loc
			}
			a := appendSynced(1)

			fs.LimitWrites(written)
			if _, err := l.Append(key(2), val(2)); err == nil {
				t.Fatal("append on a full disk succeeded")
			}
			if got := fs.Size("/data/values"); got != int64(a.Offset)+int64(len(key(1)))+10+int64(sizes[1])+written {
				t.Fatalf("segment holds %d bytes; the injected short write did not happen as planned", got)
			}
			fs.LimitWrites(-1)
			b := appendSynced(3) // fits after a
			c := appendSynced(4) // does not: rolls to segment 2
			if c.Segment != a.Segment+1 || b.Segment != a.Segment {
				t.Fatalf("records at %v, %v, %v: want the third to roll the segment", a, b, c)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			l, err = vlog.Open("/data/values", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var keys []string
			if _, err := l.Recover(vlog.Position{}, func(k []byte, _ vlog.Location) error {
				keys = append(keys, string(k))
				return nil
			}); err != nil {
				t.Fatalf("reopen after a short write and a roll: %v", err)
			}
			if want := []string{"key-1", "key-3", "key-4"}; fmt.Sprint(keys) != fmt.Sprint(want) {
				t.Fatalf("recovered %v, want %v", keys, want)
			}
			for i, loc := range map[int]vlog.Location{1: a, 3: b, 4: c} {
				got, err := l.Read(loc, key(i))
				if err != nil || !bytes.Equal(got, val(i)) {
					t.Fatalf("read record %d: %d bytes, %v", i, len(got), err)
				}
			}
		})
	}
}
