package batch

import (
	"encoding/binary"
	"fmt"
	"io"
)

// reader is a cursor over a batch payload that never reads past its end.
type reader struct {
	b   []byte
	off int
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) take(n uint64) ([]byte, error) {
	if n > uint64(r.left()) {
		return nil, fmt.Errorf("%w: need %d bytes, %d left: %w", ErrInvalidBatch, n, r.left(), io.ErrUnexpectedEOF)
	}
	out := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return out, nil
}

// uvarint reads an unsigned LEB128 value with encoding/binary's rules: at most 10
// bytes, no overflow past 64 bits.
func (r *reader) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n == 0 {
		return 0, fmt.Errorf("%w: %s: %w", ErrInvalidBatch, what, io.ErrUnexpectedEOF)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: %s: uvarint overflows 64 bits", ErrInvalidBatch, what)
	}
	r.off += n
	return v, nil
}
