package vlog

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder, which reads whatever is on
// disk at a location: it must never panic, and it must accept exactly the records the
// encoder writes.
func FuzzDecodeRecord(f *testing.F) {
	h := header([]byte("k"), []byte("value"))
	f.Add(append(append(h[:], 'k'), "value"...), []byte("k"))
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, headerSize), []byte{})
	f.Add([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte("x"))
	f.Fuzz(func(t *testing.T, rec, key []byte) {
		v, err := decodeRecord(rec, key)
		if err == nil {
			// Whatever decodes must be what the encoder makes of that key and value.
			h := header(key, v)
			if want := append(append(h[:], key...), v...); !bytes.Equal(rec, want) {
				t.Fatalf("decoded %x as key %x value %x, which encodes as %x", rec, key, v, want)
			}
		}
		if len(key) > MaxKeySize {
			return
		}
		h := header(key, rec)
		got, err := decodeRecord(append(append(h[:], key...), rec...), key)
		if err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("round trip of key %x value %x: %x, %v", key, rec, got, err)
		}
	})
}

// FuzzParseLocation: a location read from the index is either rejected or round-trips.
func FuzzParseLocation(f *testing.F) {
	f.Add(Location{Segment: 1, Offset: 10, ValueLen: 120000}.Bytes())
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, LocationSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		loc, err := ParseLocation(b)
		if err == nil && !bytes.Equal(loc.Bytes(), b) {
			t.Fatalf("ParseLocation(%x) = %v, which encodes as %x", b, loc, loc.Bytes())
		}
	})
}
