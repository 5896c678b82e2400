package batch

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// SpanBatchBuilder accumulates consecutive L2 blocks into one span batch, keeping the
// wire size up to date so a channel builder can ask for it after every block without
// re-encoding.
type SpanBatchBuilder struct {
	genesisTime uint64
	chainID     *big.Int
	raw         RawSpanBatch
	firstTime   uint64
	lastEpoch   uint64
	lastTime    uint64

	// Running byte counts of the variable-size columns.
	countsLen int // block tx count uvarints
	datasLen  int
	noncesLen int
	gasesLen  int
}

// NewSpanBatchBuilder starts an empty span for the chain with the given L2 genesis time
// and chain id.
func NewSpanBatchBuilder(genesisTime uint64, chainID *big.Int) *SpanBatchBuilder {
	return &SpanBatchBuilder{genesisTime: genesisTime, chainID: new(big.Int).Set(chainID)}
}

// Len is the number of blocks added.
func (s *SpanBatchBuilder) Len() int { return len(s.raw.BlockTxCounts) }

// Raw is the span batch so far; it shares memory with the builder.
func (s *SpanBatchBuilder) Raw() *RawSpanBatch { return &s.raw }

// Reset empties the builder.
func (s *SpanBatchBuilder) Reset() {
	*s = SpanBatchBuilder{genesisTime: s.genesisTime, chainID: s.chainID}
}

// AppendSingular adds a singular batch; seqNum is the block's position in its epoch (0
// for an epoch's first block), which only matters for the first block of the span.
func (s *SpanBatchBuilder) AppendSingular(b *SingularBatch, seqNum uint64) error {
	txs := make([]*types.Transaction, len(b.Transactions))
	for i, enc := range b.Transactions {
		txs[i] = new(types.Transaction)
		if err := txs[i].UnmarshalBinary(enc); err != nil {
			return fmt.Errorf("%w: tx %d of block at %d: %w", ErrInvalidSpanTx, i, b.Timestamp, err)
		}
	}
	return s.AppendBlock(b.ParentHash, b.EpochNum, b.EpochHash, b.Timestamp, seqNum, txs)
}

// mark is a builder length snapshot for undoing a failed or rejected append.
type mark struct {
	blocks, txs, tos, legacy                    int
	countsLen, datasLen, noncesLen, gasesLen    int
	parent, origin                              [20]byte
	lastEpoch, lastTime, firstTime, l1OriginNum uint64
}

func (s *SpanBatchBuilder) mark() mark {
	return mark{
		blocks: len(s.raw.BlockTxCounts), txs: len(s.raw.Txs.Nonces), tos: len(s.raw.Txs.Tos),
		legacy: int(s.raw.Txs.ProtectedBits.Len()), countsLen: s.countsLen, datasLen: s.datasLen,
		noncesLen: s.noncesLen, gasesLen: s.gasesLen, parent: s.raw.ParentCheck, origin: s.raw.L1OriginCheck,
		lastEpoch: s.lastEpoch, lastTime: s.lastTime, firstTime: s.firstTime, l1OriginNum: s.raw.L1OriginNum,
	}
}

func (s *SpanBatchBuilder) restore(m mark) {
	r := &s.raw
	r.BlockTxCounts = r.BlockTxCounts[:m.blocks]
	r.OriginBits.truncate(uint64(m.blocks))
	t := &r.Txs
	t.ContractCreationBits.truncate(uint64(m.txs))
	t.YParityBits.truncate(uint64(m.txs))
	t.Sigs, t.Datas, t.Nonces, t.Gases = t.Sigs[:m.txs], t.Datas[:m.txs], t.Nonces[:m.txs], t.Gases[:m.txs]
	t.Tos = t.Tos[:m.tos]
	t.ProtectedBits.truncate(uint64(m.legacy))
	s.countsLen, s.datasLen, s.noncesLen, s.gasesLen = m.countsLen, m.datasLen, m.noncesLen, m.gasesLen
	r.ParentCheck, r.L1OriginCheck, r.L1OriginNum = m.parent, m.origin, m.l1OriginNum
	s.lastEpoch, s.lastTime, s.firstTime = m.lastEpoch, m.lastTime, m.firstTime
	r.RelTimestamp = s.firstTime - s.genesisTime
}

// AppendBlock adds one block given its batch fields and non-deposit transactions.
// Blocks must come in timestamp order. On error the builder is unchanged.
func (s *SpanBatchBuilder) AppendBlock(parent common.Hash, epochNum uint64, epochHash common.Hash, timestamp, seqNum uint64, txs []*types.Transaction) error {
	n := s.Len()
	if n > 0 && timestamp < s.lastTime {
		return fmt.Errorf("%w: block at %d after block at %d", ErrInvalidBatch, timestamp, s.lastTime)
	}
	if n == 0 && timestamp < s.genesisTime {
		return fmt.Errorf("%w: block at %d before genesis %d", ErrInvalidBatch, timestamp, s.genesisTime)
	}
	m := s.mark()
	t := &s.raw.Txs
	for i, tx := range txs {
		if err := t.appendTx(tx, s.chainID); err != nil {
			s.restore(m)
			return fmt.Errorf("block at %d tx %d: %w", timestamp, i, err)
		}
		d := t.Datas[len(t.Datas)-1]
		s.datasLen += len(d)
		s.noncesLen += uvarintLen(tx.Nonce())
		s.gasesLen += uvarintLen(tx.Gas())
	}
	if n == 0 {
		copy(s.raw.ParentCheck[:], parent[:20])
		s.firstTime = timestamp
		s.raw.RelTimestamp = timestamp - s.genesisTime
		s.raw.OriginBits.Append(seqNum == 0)
	} else {
		s.raw.OriginBits.Append(epochNum > s.lastEpoch)
	}
	copy(s.raw.L1OriginCheck[:], epochHash[:20])
	s.raw.L1OriginNum = epochNum
	s.raw.BlockTxCounts = append(s.raw.BlockTxCounts, uint64(len(txs)))
	s.countsLen += uvarintLen(uint64(len(txs)))
	s.lastEpoch, s.lastTime = epochNum, timestamp
	return nil
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

// WireLen is the length of the span batch's typed encoding (type byte included),
// computed from the running counts.
func (s *SpanBatchBuilder) WireLen() int {
	r := &s.raw
	blocks := uint64(len(r.BlockTxCounts))
	txs := uint64(len(r.Txs.Nonces))
	return 1 + uvarintLen(r.RelTimestamp) + uvarintLen(r.L1OriginNum) + 40 + uvarintLen(blocks) +
		int(bitsWireLen(blocks)) + s.countsLen + 2*int(bitsWireLen(txs)) + 64*int(txs) + 20*len(r.Txs.Tos) +
		s.datasLen + s.noncesLen + s.gasesLen + int(bitsWireLen(r.Txs.ProtectedBits.Len()))
}
