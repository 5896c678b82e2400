package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
)

// MaxSpanBatchElementCount bounds a span batch's block count, each block's transaction
// count, the total transaction count and the size of one transaction's data.
const MaxSpanBatchElementCount = 10_000_000

// Span batch errors.
var (
	ErrSpanBatchTooBig = errors.New("span batch element count limit reached")
	ErrEmptySpanBatch  = errors.New("span batch has no blocks")
)

// RawSpanBatch is a span batch as carried on the wire: block metadata as columns and the
// transactions split into per-field columns. Derive turns it into per-block elements.
type RawSpanBatch struct {
	// RelTimestamp is the first block's timestamp minus the L2 genesis time.
	RelTimestamp uint64
	// L1OriginNum is the last block's L1 origin number.
	L1OriginNum uint64
	// ParentCheck is the first 20 bytes of the first block's parent hash.
	ParentCheck [20]byte
	// L1OriginCheck is the first 20 bytes of the last block's L1 origin hash.
	L1OriginCheck [20]byte
	// OriginBits has one bit per block: set where the block starts a new epoch (bit 0
	// set iff the first block is the first of its epoch).
	OriginBits    Bitlist
	BlockTxCounts []uint64
	Txs           SpanTxs
}

// BatchType is SpanBatchType.
func (b *RawSpanBatch) BatchType() byte { return SpanBatchType }

// BlockCount is the number of blocks in the span.
func (b *RawSpanBatch) BlockCount() int { return len(b.BlockTxCounts) }

// TxCount is the total number of transactions.
func (b *RawSpanBatch) TxCount() uint64 { return uint64(len(b.Txs.Nonces)) }

func appendUvarint(out []byte, v uint64) []byte { return binary.AppendUvarint(out, v) }

// AppendBinary appends 0x01 ‖ the span batch wire format.
func (b *RawSpanBatch) AppendBinary(out []byte) ([]byte, error) {
	n := uint64(len(b.BlockTxCounts))
	if n == 0 {
		return nil, ErrEmptySpanBatch
	}
	if b.OriginBits.Len() != n {
		return nil, fmt.Errorf("%w: %d origin bits for %d blocks", ErrInvalidBatch, b.OriginBits.Len(), n)
	}
	var total uint64
	for _, c := range b.BlockTxCounts {
		total += c
	}
	if err := b.Txs.check(total); err != nil {
		return nil, err
	}
	out = append(out, SpanBatchType)
	out = appendUvarint(out, b.RelTimestamp)
	out = appendUvarint(out, b.L1OriginNum)
	out = append(out, b.ParentCheck[:]...)
	out = append(out, b.L1OriginCheck[:]...)
	out = appendUvarint(out, n)
	out = b.OriginBits.appendWire(out)
	for _, c := range b.BlockTxCounts {
		out = appendUvarint(out, c)
	}
	return b.Txs.appendWire(out), nil
}

// MarshalBinary is the typed encoding.
func (b *RawSpanBatch) MarshalBinary() ([]byte, error) { return b.AppendBinary(nil) }

// decodeRawSpanBatch decodes the payload after the type byte. As in op-node, bytes after
// the last column are ignored.
func decodeRawSpanBatch(payload []byte) (*RawSpanBatch, error) {
	r := &reader{b: payload}
	b := new(RawSpanBatch)
	var err error
	if b.RelTimestamp, err = r.uvarint("rel timestamp"); err != nil {
		return nil, err
	}
	if b.L1OriginNum, err = r.uvarint("l1 origin number"); err != nil {
		return nil, err
	}
	pc, err := r.take(20)
	if err != nil {
		return nil, fmt.Errorf("parent check: %w", err)
	}
	copy(b.ParentCheck[:], pc)
	oc, err := r.take(20)
	if err != nil {
		return nil, fmt.Errorf("l1 origin check: %w", err)
	}
	copy(b.L1OriginCheck[:], oc)
	n, err := r.uvarint("block count")
	if err != nil {
		return nil, err
	}
	if n > MaxSpanBatchElementCount {
		return nil, fmt.Errorf("%w: %d blocks", ErrSpanBatchTooBig, n)
	}
	if n == 0 {
		return nil, ErrEmptySpanBatch
	}
	if b.OriginBits, err = readBits(r, n, "origin"); err != nil {
		return nil, err
	}
	// Every count takes at least one byte, which bounds the allocation by the input.
	b.BlockTxCounts = make([]uint64, 0, min(n, uint64(r.left())))
	var total uint64
	for i := uint64(0); i < n; i++ {
		c, err := r.uvarint("block tx count")
		if err != nil {
			return nil, err
		}
		if c > MaxSpanBatchElementCount {
			return nil, fmt.Errorf("%w: %d txs in block %d", ErrSpanBatchTooBig, c, i)
		}
		b.BlockTxCounts = append(b.BlockTxCounts, c)
		// Each count is ≤ 10M, so the sum of at most 10M of them cannot overflow.
		total += c
	}
	if total > MaxSpanBatchElementCount {
		return nil, fmt.Errorf("%w: %d txs", ErrSpanBatchTooBig, total)
	}
	if err := b.Txs.decode(r, total); err != nil {
		return nil, err
	}
	return b, nil
}

// SpanBatchElement is one block of a derived span batch.
type SpanBatchElement struct {
	EpochNum     uint64
	Timestamp    uint64
	Transactions [][]byte
}

// SpanBatch is a span batch in derived form, one element per L2 block.
type SpanBatch struct {
	ParentCheck   [20]byte
	L1OriginCheck [20]byte
	Elements      []SpanBatchElement
}

// CheckParent reports whether hash matches the parent check.
func (s *SpanBatch) CheckParent(hash common.Hash) bool {
	return bytes.Equal(s.ParentCheck[:], hash[:20])
}

// CheckOrigin reports whether hash matches the L1 origin check of the last block.
func (s *SpanBatch) CheckOrigin(hash common.Hash) bool {
	return bytes.Equal(s.L1OriginCheck[:], hash[:20])
}

// FirstTimestamp and LastTimestamp bound the span.
func (s *SpanBatch) FirstTimestamp() uint64 { return s.Elements[0].Timestamp }
func (s *SpanBatch) LastTimestamp() uint64  { return s.Elements[len(s.Elements)-1].Timestamp }

// StartEpoch and LastEpoch are the first and last blocks' L1 origin numbers.
func (s *SpanBatch) StartEpoch() uint64 { return s.Elements[0].EpochNum }
func (s *SpanBatch) LastEpoch() uint64  { return s.Elements[len(s.Elements)-1].EpochNum }

// Derive expands the span into per-block elements: timestamps genesisTime +
// RelTimestamp + i·blockTime, epoch numbers counted back from L1OriginNum by the origin
// bits, and every transaction rebuilt in its full signed encoding for chainID. An error
// means this batch is malformed (op-node drops it and keeps reading the channel).
func (b *RawSpanBatch) Derive(genesisTime, blockTime uint64, chainID *big.Int) (*SpanBatch, error) {
	n := len(b.BlockTxCounts)
	if n == 0 {
		return nil, ErrEmptySpanBatch
	}
	txs, err := b.Txs.FullTxs(chainID)
	if err != nil {
		return nil, err
	}
	s := &SpanBatch{ParentCheck: b.ParentCheck, L1OriginCheck: b.L1OriginCheck, Elements: make([]SpanBatchElement, n)}
	// Epochs are numbered back from the last block; arithmetic wraps as op-node's does
	// for adversarial input.
	epoch := b.L1OriginNum
	for i := n - 1; i >= 0; i-- {
		s.Elements[i].EpochNum = epoch
		if i > 0 && b.OriginBits.Bit(uint64(i)) == 1 {
			epoch--
		}
	}
	next := 0
	for i := 0; i < n; i++ {
		e := &s.Elements[i]
		e.Timestamp = genesisTime + b.RelTimestamp + blockTime*uint64(i)
		c := int(b.BlockTxCounts[i])
		if c > 0 {
			e.Transactions = txs[next : next+c : next+c]
			next += c
		}
	}
	return s, nil
}

// Batches is Derive's per-block elements.
func (b *RawSpanBatch) Batches(genesisTime, blockTime uint64, chainID *big.Int) ([]SpanBatchElement, error) {
	s, err := b.Derive(genesisTime, blockTime, chainID)
	if err != nil {
		return nil, err
	}
	return s.Elements, nil
}

// SingularBatches turns the elements after the safe head into singular batches, taking
// each epoch hash from origins (L1 blocks in ascending order, covering the span's
// epochs). Elements at or before safe's time are skipped; an element whose epoch is
// behind safe's origin, or has no block in origins, is an error.
func (s *SpanBatch) SingularBatches(origins []eth.L1BlockRef, safe eth.L2BlockRef) ([]*SingularBatch, error) {
	var out []*SingularBatch
	oi := 0
	for _, e := range s.Elements {
		if e.Timestamp <= safe.Time {
			continue
		}
		if e.EpochNum < safe.L1Origin.Number {
			return nil, fmt.Errorf("%w: block at %d has origin %d behind the safe head's %d", ErrInvalidBatch, e.Timestamp, e.EpochNum, safe.L1Origin.Number)
		}
		for oi < len(origins) && origins[oi].Number != e.EpochNum {
			oi++
		}
		if oi == len(origins) {
			return nil, fmt.Errorf("%w: no L1 origin %d for block at %d", ErrInvalidBatch, e.EpochNum, e.Timestamp)
		}
		out = append(out, &SingularBatch{EpochNum: e.EpochNum, EpochHash: origins[oi].Hash, Timestamp: e.Timestamp, Transactions: e.Transactions})
	}
	return out, nil
}
