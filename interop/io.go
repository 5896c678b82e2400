package interop

import (
	"errors"
	"io"
)

// readFull reads until buf is full or the reader ends, and returns how much it read.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return n, nil
	}
	return n, err
}
