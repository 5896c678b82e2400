package vlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// A record is laid out as
//
//	crc32c   uint32  over everything after it
//	keyLen   uint16
//	valueLen uint32
//	key      [keyLen]byte
//	value    [valueLen]byte
//
// all integers big-endian.
const headerSize = 4 + 2 + 4

// MaxKeySize and MaxValueSize bound what one record holds.
const (
	MaxKeySize   = math.MaxUint16
	MaxValueSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned when the bytes at a location are not the record the location
// names: a checksum, length or key mismatch.
var ErrCorrupt = errors.New("value log record is corrupt")

// recordSize is the encoded size of a record with the given key and value lengths.
func recordSize(keyLen, valueLen int) int64 {
	return int64(headerSize + keyLen + valueLen)
}

// header encodes the record header for key and value.
func header(key, value []byte) [headerSize]byte {
	var h [headerSize]byte
	binary.BigEndian.PutUint16(h[4:6], uint16(len(key)))
	binary.BigEndian.PutUint32(h[6:10], uint32(len(value)))
	crc := crc32.Update(0, castagnoli, h[4:])
	crc = crc32.Update(crc, castagnoli, key)
	crc = crc32.Update(crc, castagnoli, value)
	binary.BigEndian.PutUint32(h[0:4], crc)
	return h
}

// lengths reads the key and value lengths from a record header.
func lengths(h []byte) (keyLen int, valueLen uint32) {
	return int(binary.BigEndian.Uint16(h[4:6])), binary.BigEndian.Uint32(h[6:10])
}

// parseRecord checks that rec is exactly one whole, intact record and returns its key and
// value, sub-slices of rec.
func parseRecord(rec []byte) (key, value []byte, err error) {
	if len(rec) < headerSize {
		return nil, nil, fmt.Errorf("%w: %d bytes is shorter than a header", ErrCorrupt, len(rec))
	}
	keyLen, valueLen := lengths(rec)
	if want := recordSize(keyLen, int(valueLen)); want != int64(len(rec)) {
		return nil, nil, fmt.Errorf("%w: header declares %d bytes, location %d", ErrCorrupt, want, len(rec))
	}
	if got, want := binary.BigEndian.Uint32(rec[0:4]), crc32.Checksum(rec[4:], castagnoli); got != want {
		return nil, nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	return rec[headerSize : headerSize+keyLen], rec[headerSize+keyLen:], nil
}

// decodeRecord checks that rec is exactly one whole record holding key and returns its
// value, a sub-slice of rec.
func decodeRecord(rec, key []byte) ([]byte, error) {
	got, value, err := parseRecord(rec)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, key) {
		return nil, fmt.Errorf("%w: the record holds key %x, not %x", ErrCorrupt, got, key)
	}
	return value, nil
}

// Location is where a record lives: its segment, the offset of its first byte and the
// length of its value. Owners keep it in their index, encoded with Bytes.
type Location struct {
	Segment  uint32
	Offset   int64
	ValueLen uint32
}

// LocationSize is the length of an encoded Location.
const LocationSize = 4 + 8 + 4

// Bytes encodes the location in LocationSize bytes.
func (l Location) Bytes() []byte {
	b := make([]byte, LocationSize)
	binary.BigEndian.PutUint32(b[0:4], l.Segment)
	binary.BigEndian.PutUint64(b[4:12], uint64(l.Offset))
	binary.BigEndian.PutUint32(b[12:16], l.ValueLen)
	return b
}

// ParseLocation decodes what Bytes encoded.
func ParseLocation(b []byte) (Location, error) {
	if len(b) != LocationSize {
		return Location{}, fmt.Errorf("value log location: %d bytes, want %d", len(b), LocationSize)
	}
	l := Location{
		Segment:  binary.BigEndian.Uint32(b[0:4]),
		Offset:   int64(binary.BigEndian.Uint64(b[4:12])),
		ValueLen: binary.BigEndian.Uint32(b[12:16]),
	}
	if l.Offset < 0 || l.ValueLen > MaxValueSize {
		return Location{}, fmt.Errorf("value log location: offset %d, value length %d out of range", l.Offset, l.ValueLen)
	}
	return l, nil
}

func (l Location) String() string {
	return fmt.Sprintf("segment %d offset %d (%d bytes)", l.Segment, l.Offset, l.ValueLen)
}
