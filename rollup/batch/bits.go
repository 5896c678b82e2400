package batch

import (
	"fmt"
	"math/bits"
)

// Bitlist is a span batch bit list of a fixed length: on the wire ⌈n/8⌉ bytes holding a
// big-endian integer whose bit i is element i. It is kept little-endian by byte so that
// appending a bit never moves the earlier ones.
type Bitlist struct {
	n     uint64
	bytes []byte // bytes[k] holds bits 8k..8k+7
}

// Len is the number of bits.
func (l *Bitlist) Len() uint64 { return l.n }

// Bit returns bit i (0 past the end).
func (l *Bitlist) Bit(i uint64) uint {
	if i >= l.n {
		return 0
	}
	return uint(l.bytes[i/8]>>(i%8)) & 1
}

// Append adds one bit at the end.
func (l *Bitlist) Append(bit bool) {
	if l.n%8 == 0 {
		l.bytes = append(l.bytes, 0)
	}
	if bit {
		l.bytes[l.n/8] |= 1 << (l.n % 8)
	}
	l.n++
}

// Ones counts the set bits.
func (l *Bitlist) Ones() uint64 {
	var c int
	for _, b := range l.bytes {
		c += bits.OnesCount8(b)
	}
	return uint64(c)
}

// truncate drops bits past n.
func (l *Bitlist) truncate(n uint64) {
	if n >= l.n {
		return
	}
	l.n = n
	l.bytes = l.bytes[:(n+7)/8]
	if r := n % 8; r != 0 {
		l.bytes[len(l.bytes)-1] &= byte(1<<r) - 1
	}
}

// wireLen is the encoded size of a bit list of n bits.
func bitsWireLen(n uint64) uint64 { return n/8 + min(n%8, 1) }

func (l *Bitlist) appendWire(out []byte) []byte {
	for i := len(l.bytes) - 1; i >= 0; i-- {
		out = append(out, l.bytes[i])
	}
	return out
}

// readBits reads a bit list of n bits. The integer must have no bit at or past n.
func readBits(r *reader, n uint64, what string) (Bitlist, error) {
	k := bitsWireLen(n)
	raw, err := r.take(k)
	if err != nil {
		return Bitlist{}, fmt.Errorf("%s bits: %w", what, err)
	}
	if rem := n % 8; rem != 0 && raw[0]>>rem != 0 {
		return Bitlist{}, fmt.Errorf("%w: %s bits set past bit %d", ErrInvalidBatch, what, n)
	}
	l := Bitlist{n: n, bytes: make([]byte, k)}
	for i := range raw {
		l.bytes[len(raw)-1-i] = raw[i]
	}
	return l, nil
}
