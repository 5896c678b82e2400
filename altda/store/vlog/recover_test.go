package vlog

import (
	"errors"
	"os"
	"testing"
)

type seen struct {
	key string
	loc Location
}

func recoverAll(t *testing.T, l *Log, from Position) ([]seen, Position) {
	t.Helper()
	var got []seen
	end, err := l.Recover(from, func(key []byte, loc Location) error {
		got = append(got, seen{string(key), loc})
		return nil
	})
	if err != nil {
		t.Fatalf("Recover from %v: %v", from, err)
	}
	return got, end
}

// Recover lists exactly the records from a position on, across segments, in log order.
func TestRecoverFromPosition(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	var locs []Location
	for i := 0; i < 20; i++ {
		locs = append(locs, appendSynced(t, l, key(i), value(i, 3000)))
	}
	end := l.End()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, from := range []int{0, 1, 7, 19} {
		l, err := Open(dir, Options{SegmentSize: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		got, gotEnd := recoverAll(t, l, locs[from].Start())
		if gotEnd != end {
			t.Errorf("from record %d: end %v, want %v", from, gotEnd, end)
		}
		if len(got) != len(locs)-from {
			t.Fatalf("from record %d: %d records, want %d", from, len(got), len(locs)-from)
		}
		for j, g := range got {
			if i := from + j; g.key != string(key(i)) || g.loc != locs[i] {
				t.Fatalf("from record %d: #%d is %q at %v, want %q at %v", from, j, g.key, g.loc, key(i), locs[i])
			}
		}
		_ = l.Close()
	}
}

// A record torn by a crash is cut off, and the next append takes its place.
func TestRecoverCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := appendSynced(t, l, key(1), value(1, 4000))
	b := appendSynced(t, l, key(2), value(2, 4000))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func(path string) error{
		"cut short":     func(p string) error { return os.Truncate(p, b.Offset+2000) },
		"header only":   func(p string) error { return os.Truncate(p, b.Offset+5) },
		"zeroed blocks": func(p string) error { return zeroFrom(p, b.Offset+100) },
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			copyFile(t, segmentPath(dir, 1), segmentPath(d, 1))
			if err := damage(segmentPath(d, 1)); err != nil {
				t.Fatal(err)
			}
			l, err := Open(d, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			got, end := recoverAll(t, l, Position{})
			if len(got) != 1 || got[0].loc != a {
				t.Fatalf("recovered %v, want only the first record at %v", got, a)
			}
			if end != b.Start() {
				t.Fatalf("log ends at %v after the cut, want %v", end, b.Start())
			}
			if _, err := l.Read(b, key(2)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read of the torn record = %v, want ErrCorrupt", err)
			}
			c := appendSynced(t, l, key(3), value(3, 4000))
			if c.Start() != b.Start() {
				t.Fatalf("next record at %v, want it where the torn one began (%v)", c.Start(), b.Start())
			}
			mustRead(t, l, c, key(3), value(3, 4000))
		})
	}
}

// A damaged record in a sealed segment is not cut away: it is reported.
func TestRecoverRefusesDamagedSealedSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{SegmentSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		appendSynced(t, l, key(i), value(i, 3000))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zeroFrom(segmentPath(dir, 1), 5000); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{SegmentSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Recover(Position{}, func([]byte, Location) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Recover over a damaged sealed segment: %v, want ErrCorrupt", err)
	}
	if _, err := l.Recover(Position{Segment: 1, Offset: 1 << 20}, func([]byte, Location) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Recover from past the end of a segment: %v, want ErrCorrupt", err)
	}
	if _, err := l.Recover(Position{Segment: 99}, func([]byte, Location) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Recover from a missing segment: %v, want ErrCorrupt", err)
	}
}

func zeroFrom(path string, off int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(make([]byte, st.Size()-off), off)
	return errors.Join(err, f.Close())
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
