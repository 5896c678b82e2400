package batch

import (
	"errors"
	"fmt"
)

const (
	// BlobSize is an EIP-4844 blob: 4096 field elements of 32 bytes.
	BlobSize = 4096 * 32
	// blobRounds is how many groups of four field elements a blob holds; each group
	// carries 4×31 whole bytes plus three bytes spread over the four 6-bit high parts.
	blobRounds = 1024
	// MaxBlobDataSize is the most data one blob carries: 127 bytes per round, minus the
	// version byte and the 3-byte length in the first round.
	MaxBlobDataSize = (4*31+3)*blobRounds - 4
	// BlobEncodingVersion is the only blob data encoding.
	BlobEncodingVersion = 0
)

// Blob errors. Decoding wraps exactly one of them.
var (
	ErrBlobTooLarge       = errors.New("data too large for one blob")
	ErrBlobVersion        = errors.New("invalid blob encoding version")
	ErrBlobLength         = errors.New("invalid blob data length")
	ErrBlobFieldElement   = errors.New("invalid blob field element")
	ErrBlobTrailingOutput = errors.New("non-zero blob data past the declared length")
	ErrBlobTrailingBytes  = errors.New("non-zero blob bytes past the encoded data")
)

// Blob is the raw content of one EIP-4844 blob.
type Blob [BlobSize]byte

// FromData packs data into b, leaving every byte past the encoded rounds zero. The
// first round starts with a zero byte (the high part of field element 0), the version
// and a 24-bit big-endian length; each field element's first byte keeps its top two
// bits clear so it stays below the BLS12-381 modulus.
func (b *Blob) FromData(data []byte) error {
	if len(data) > MaxBlobDataSize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrBlobTooLarge, len(data), MaxBlobDataSize)
	}
	*b = Blob{}
	if len(data) == 0 {
		// op-service leaves an empty input as the all-zero blob, which decodes to empty
		// data because version and length are both zero.
		return nil
	}
	// The first round's payload is the 4 header bytes followed by data, so encode from
	// one stream that starts with them.
	var head [4]byte
	head[0] = BlobEncodingVersion
	head[1], head[2], head[3] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	src := blobSource{head: head[:], data: data}
	for round := 0; round < blobRounds && src.pos < len(data); round++ {
		fe := b[round*128 : round*128+128]
		src.take(fe[1:32])
		x := src.byte()
		src.take(fe[33:64])
		y := src.byte()
		src.take(fe[65:96])
		z := src.byte()
		src.take(fe[97:128])
		fe[0] = x & 0x3F
		fe[32] = (y & 0x0F) | (x&0xC0)>>2
		fe[64] = z & 0x3F
		fe[96] = (z&0xC0)>>2 | (y&0xF0)>>4
	}
	return nil
}

// blobSource yields the header bytes, then the data, then zeros.
type blobSource struct {
	head []byte
	data []byte
	pos  int // position in data
}

func (s *blobSource) take(dst []byte) {
	n := copy(dst, s.head)
	s.head = s.head[n:]
	if s.pos < len(s.data) {
		s.pos += copy(dst[n:], s.data[s.pos:])
	}
}

func (s *blobSource) byte() byte {
	var one [1]byte
	s.take(one[:])
	return one[0]
}

// ToData unpacks the data FromData packed. It rejects a version other than 0, a length
// over MaxBlobDataSize, a field element of a decoded round with either top bit set
// (except the very first, whose top bits op-node never looks at), non-zero data past the
// declared length inside the decoded rounds, and any non-zero byte after them.
func (b *Blob) ToData() ([]byte, error) {
	if b[1] != BlobEncodingVersion {
		return nil, fmt.Errorf("%w: %d", ErrBlobVersion, b[1])
	}
	n := int(b[2])<<16 | int(b[3])<<8 | int(b[4])
	if n > MaxBlobDataSize {
		return nil, fmt.Errorf("%w: %d", ErrBlobLength, n)
	}
	// Decode whole rounds into a buffer of the round-aligned size so the bytes past n
	// in the last round can be checked for zero; the first round holds 4 header bytes.
	rounds := 1
	if n > 127-4 {
		rounds = 1 + (n-(127-4)+126)/127
	}
	out := make([]byte, rounds*127)
	for r := 0; r < rounds; r++ {
		fe := b[r*128 : r*128+128]
		for i := 0; i < 4; i++ {
			if (r > 0 || i > 0) && fe[i*32]&0xC0 != 0 {
				return nil, fmt.Errorf("%w: field element %d", ErrBlobFieldElement, r*4+i)
			}
		}
		o := out[r*127 : r*127+127]
		copy(o[0:31], fe[1:32])
		copy(o[32:63], fe[33:64])
		copy(o[64:95], fe[65:96])
		copy(o[96:127], fe[97:128])
		h0, h1, h2, h3 := fe[0], fe[32], fe[64], fe[96]
		o[31] = h0&0x3F | (h1&0x30)<<2
		o[63] = h1&0x0F | (h3&0x0F)<<4
		o[95] = h2&0x3F | (h3&0x30)<<2
	}
	// out starts with the 4 header bytes of round 0.
	data := out[4:]
	for i := n; i < len(data); i++ {
		if data[i] != 0 {
			return nil, fmt.Errorf("%w: byte %d", ErrBlobTrailingOutput, i)
		}
	}
	for i := rounds * 128; i < BlobSize; i++ {
		if b[i] != 0 {
			return nil, fmt.Errorf("%w: blob byte %d", ErrBlobTrailingBytes, i)
		}
	}
	return data[:n:n], nil
}
