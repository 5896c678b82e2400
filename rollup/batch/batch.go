package batch

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
)

// Batch types: the first byte of a batch's encoding.
const (
	SingularBatchType = 0
	SpanBatchType     = 1
)

// ErrInvalidBatch is wrapped by every batch decoding error.
var ErrInvalidBatch = errors.New("invalid batch")

// Batch is a decoded channel entry: *SingularBatch or *RawSpanBatch.
type Batch interface {
	BatchType() byte
	// AppendBinary appends the typed encoding (type byte, then payload).
	AppendBinary(b []byte) ([]byte, error)
}

// SingularBatch is one L2 block's batch.
type SingularBatch struct {
	ParentHash common.Hash
	EpochNum   uint64
	EpochHash  common.Hash
	Timestamp  uint64
	// Transactions are the block's non-deposit transactions in their binary encoding.
	Transactions [][]byte
}

// BatchType is SingularBatchType.
func (b *SingularBatch) BatchType() byte { return SingularBatchType }

// AppendBinary appends 0x00 ‖ rlp([parent_hash, epoch_num, epoch_hash, timestamp, txs]).
func (b *SingularBatch) AppendBinary(out []byte) ([]byte, error) {
	enc, err := rlp.EncodeToBytes(b)
	if err != nil {
		return nil, fmt.Errorf("encoding singular batch: %w", err)
	}
	out = append(out, SingularBatchType)
	return append(out, enc...), nil
}

// MarshalBinary is the typed encoding.
func (b *SingularBatch) MarshalBinary() ([]byte, error) { return b.AppendBinary(nil) }

// decodeSingular decodes the payload after the type byte. As in op-node, bytes after
// the RLP list are ignored, while the list itself must be canonical and exactly five
// items of the right kinds.
func decodeSingular(payload []byte) (*SingularBatch, error) {
	var b SingularBatch
	if err := rlp.Decode(bytes.NewReader(payload), &b); err != nil {
		if errors.Is(err, io.EOF) {
			// An empty payload: keep io.EOF for the clean end of a channel.
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: singular: %w", ErrInvalidBatch, err)
	}
	return &b, nil
}

// UnmarshalBatch decodes a typed batch (type byte first).
func UnmarshalBatch(data []byte) (Batch, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidBatch)
	}
	switch data[0] {
	case SingularBatchType:
		return decodeSingular(data[1:])
	case SpanBatchType:
		return decodeRawSpanBatch(data[1:])
	}
	return nil, fmt.Errorf("%w: unknown batch type %d", ErrInvalidBatch, data[0])
}

// MarshalBatch returns the typed encoding of b.
func MarshalBatch(b Batch) ([]byte, error) { return b.AppendBinary(nil) }

// WriteChannelEntry writes b as one channel entry: the typed encoding as an RLP string.
func WriteChannelEntry(w io.Writer, b Batch) error {
	data, err := b.AppendBinary(nil)
	if err != nil {
		return err
	}
	return rlp.Encode(w, data)
}
