package batch

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/rollup"
)

// Channel out errors.
var (
	// ErrChannelFull: the channel takes no more blocks; the block passed was not added.
	ErrChannelFull = errors.New("channel full")
	// ErrTooManyRLPBytes: the block would push the channel past MaxRLPBytes; it is
	// returned wrapped together with ErrChannelFull.
	ErrTooManyRLPBytes      = errors.New("channel would exceed its RLP byte bound")
	ErrChannelClosed        = errors.New("channel already closed")
	ErrMaxFrameSizeTooSmall = errors.New("max frame size cannot hold the frame overhead")
	ErrNotDepositTx         = errors.New("first transaction of the block is not the L1-info deposit")
)

// ChannelOutConfig configures a channel builder.
type ChannelOutConfig struct {
	// ID of the channel; zero picks a random one.
	ID ChannelID
	// TargetSize is the compressed size at which the channel is full.
	TargetSize uint64
	// Compression and Level (0: zlib 9, brotli 10).
	Compression Compression
	Level       int
	// MaxRLPBytes bounds the uncompressed channel (0: MaxRLPBytesPerChannelFjord).
	MaxRLPBytes uint64
	// GenesisTime and ChainID of the L2 chain, for span batches.
	GenesisTime uint64
	ChainID     *big.Int
	// MaxBlocksPerSpanBatch starts a new span batch in the same channel after this many
	// blocks (0: one span batch per channel).
	MaxBlocksPerSpanBatch int
}

// ChannelOut builds one channel from L2 blocks for the batcher.
type ChannelOut interface {
	ID() ChannelID
	// AddBlock adds a block's batch. ErrChannelFull (possibly with ErrTooManyRLPBytes)
	// means the block was not added and the channel is now full.
	AddBlock(block *types.Block) (*rollup.L1BlockInfo, error)
	// Blocks is the number of blocks in the channel.
	Blocks() int
	// InputBytes is the uncompressed RLP size of the channel.
	InputBytes() int
	// ReadyBytes is the compressed data not yet output as frames.
	ReadyBytes() int
	// FullErr is nil until the channel is full.
	FullErr() error
	// Close ends the channel; the rest of the data can then be output.
	Close() error
	// OutputFrame takes the next frame of at most maxSize encoded bytes; the frame
	// with IsLast set ends a closed channel (a span channel answers io.EOF after it,
	// having let go of its body).
	OutputFrame(maxSize int) (Frame, error)
}

func (c *ChannelOutConfig) defaults() error {
	if c.ID == (ChannelID{}) {
		if _, err := rand.Read(c.ID[:]); err != nil {
			return fmt.Errorf("channel id: %w", err)
		}
	}
	if c.MaxRLPBytes == 0 {
		c.MaxRLPBytes = MaxRLPBytesPerChannelFjord
	}
	if c.ChainID == nil {
		c.ChainID = new(big.Int)
	}
	return nil
}

// BlockToSingularBatch derives a block's batch: its parent, the epoch from the L1-info
// deposit that opens it, its timestamp and every non-deposit transaction.
func BlockToSingularBatch(block *types.Block) (*SingularBatch, *rollup.L1BlockInfo, error) {
	info, txs, err := blockParts(block)
	if err != nil {
		return nil, nil, err
	}
	b := &SingularBatch{ParentHash: block.ParentHash(), EpochNum: info.Number, EpochHash: info.BlockHash,
		Timestamp: block.Time(), Transactions: make([][]byte, 0, len(txs))}
	for _, tx := range txs {
		enc, err := tx.MarshalBinary()
		if err != nil {
			return nil, nil, fmt.Errorf("encoding tx %s: %w", tx.Hash(), err)
		}
		b.Transactions = append(b.Transactions, enc)
	}
	return b, info, nil
}

func blockParts(block *types.Block) (*rollup.L1BlockInfo, []*types.Transaction, error) {
	all := block.Transactions()
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("block %d has no transactions: %w", block.NumberU64(), ErrNotDepositTx)
	}
	if all[0].Type() != types.DepositTxType {
		return nil, nil, fmt.Errorf("block %d: %w", block.NumberU64(), ErrNotDepositTx)
	}
	info, err := rollup.L1InfoFromBlockTx(all[0])
	if err != nil {
		return nil, nil, fmt.Errorf("block %d L1-info deposit: %w", block.NumberU64(), err)
	}
	txs := make([]*types.Transaction, 0, len(all))
	for _, tx := range all {
		if tx.Type() != types.DepositTxType {
			txs = append(txs, tx)
		}
	}
	return info, txs, nil
}

// rlpStringHeaderLen is the size of the RLP header of a string of n > 1 bytes.
func rlpStringHeaderLen(n int) int {
	if n < 56 {
		return 1
	}
	return 1 + (bitLen(uint64(n))+7)/8
}

// appendRLPStringHeader appends the header of a string of n > 1 bytes.
func appendRLPStringHeader(out []byte, n int) []byte {
	if n < 56 {
		return append(out, 0x80+byte(n))
	}
	k := (bitLen(uint64(n)) + 7) / 8
	out = append(out, 0xB7+byte(k))
	for i := k - 1; i >= 0; i-- {
		out = append(out, byte(n>>(8*i)))
	}
	return out
}

func bitLen(v uint64) int {
	n := 0
	for ; v != 0; v >>= 1 {
		n++
	}
	return n
}

// frames cuts the next frame from a compressed body.
type framer struct {
	id     ChannelID
	number uint64
}

func (f *framer) next(body *bytes.Buffer, closed bool, maxSize int) (Frame, error) {
	if maxSize < FrameOverhead {
		return Frame{}, ErrMaxFrameSizeTooSmall
	}
	if f.number > 0xFFFF {
		return Frame{}, fmt.Errorf("channel %s has no frame numbers left", f.id)
	}
	fr := Frame{ID: f.id, Number: uint16(f.number)}
	n := maxSize - FrameOverhead
	if n >= body.Len() {
		n = body.Len()
		fr.IsLast = closed
	}
	fr.Data = make([]byte, n)
	_, _ = body.Read(fr.Data)
	f.number++
	return fr, nil
}

// SpanChannelOut builds a channel holding span batches. After each block the whole
// channel is recompressed when the estimate says the target may be reached, so the
// channel fills the target as closely as the compressor allows: it is full at or past
// the target, and a block that overshoots it is refused unless it is the only one.
type SpanChannelOut struct {
	cfg     ChannelOutConfig
	span    *SpanBatchBuilder
	sealed  []byte // RLP of span batches completed under MaxBlocksPerSpanBatch
	blocks  int
	comp    *compressor // nil once the last frame is out
	lastRLP int         // RLP size the current body was compressed from
	input   int         // InputBytes once closed: the span builder is gone then
	// current: the body is the compression of exactly the blocks taken so far, so
	// Close, or taking back a block that overshot, need not compress them again.
	current bool
	prev    []byte // the body before the trial with the block being added
	full    error
	closed  bool
	frames  framer
	scratch []byte
}

// NewSpanChannelOut starts an empty span batch channel.
func NewSpanChannelOut(cfg ChannelOutConfig) (*SpanChannelOut, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	comp, err := newCompressor(cfg.Compression, cfg.Level)
	if err != nil {
		return nil, err
	}
	return &SpanChannelOut{cfg: cfg, span: NewSpanBatchBuilder(cfg.GenesisTime, cfg.ChainID), comp: comp,
		frames: framer{id: cfg.ID}}, nil
}

func (c *SpanChannelOut) ID() ChannelID  { return c.cfg.ID }
func (c *SpanChannelOut) Blocks() int    { return c.blocks }
func (c *SpanChannelOut) FullErr() error { return c.full }

// InputBytes is the uncompressed RLP size of the channel.
func (c *SpanChannelOut) InputBytes() int {
	if c.span == nil {
		return c.input
	}
	return c.rlpLen()
}

// ReadyBytes is zero until the channel is full or closed: before that the body is only
// a trial compression that the next block replaces.
func (c *SpanChannelOut) ReadyBytes() int {
	if c.comp != nil && (c.closed || c.full != nil) {
		return c.comp.out.Len()
	}
	return 0
}

// release drops what only building needed once the channel is closed: the compressor's
// writer (some 1.3 MB of zlib state at its best level), the span builder and the RLP
// scratch. The body stays until its last frame is out.
func (c *SpanChannelOut) release() {
	c.input = c.rlpLen()
	c.span, c.sealed, c.scratch, c.prev = nil, nil, nil, nil
	c.comp.w, c.comp.zw, c.comp.bw = nil, nil, nil
}

func (c *SpanChannelOut) rlpLen() int {
	if c.span.Len() == 0 {
		return len(c.sealed)
	}
	n := c.span.WireLen()
	return len(c.sealed) + rlpStringHeaderLen(n) + n
}

// rlp assembles the channel's uncompressed content.
func (c *SpanChannelOut) rlp() ([]byte, error) {
	out := append(c.scratch[:0], c.sealed...)
	if c.span.Len() > 0 {
		// The entry is an RLP string around the typed encoding; writing the header from
		// the known length saves encoding into a second buffer.
		out = appendRLPStringHeader(out, c.span.WireLen())
		var err error
		if out, err = c.span.Raw().AppendBinary(out); err != nil {
			return nil, err
		}
	}
	c.scratch = out
	return out, nil
}

func (c *SpanChannelOut) compress() error {
	c.current = false
	data, err := c.rlp()
	if err != nil {
		return err
	}
	if err := c.comp.compressAll(data); err != nil {
		return err
	}
	c.lastRLP = len(data)
	if c.full == nil && uint64(c.comp.out.Len()) >= c.cfg.TargetSize {
		c.full = ErrChannelFull
	}
	return nil
}

// AddBlock adds the block's batch to the span.
func (c *SpanChannelOut) AddBlock(block *types.Block) (*rollup.L1BlockInfo, error) {
	if c.closed {
		return nil, ErrChannelClosed
	}
	info, txs, err := blockParts(block)
	if err != nil {
		return nil, err
	}
	if c.full != nil {
		return info, c.full
	}
	if c.cfg.MaxBlocksPerSpanBatch > 0 && c.span.Len() >= c.cfg.MaxBlocksPerSpanBatch {
		if c.sealed, err = c.rlp(); err != nil {
			return nil, err
		}
		c.sealed = append([]byte(nil), c.sealed...)
		c.span.Reset()
	}
	m := c.span.mark()
	had := c.current
	if err := c.span.AppendBlock(block.ParentHash(), info.Number, info.BlockHash, block.Time(), info.SequenceNumber, txs); err != nil {
		return info, err
	}
	rlpLen := c.rlpLen()
	if uint64(rlpLen) > c.cfg.MaxRLPBytes {
		c.span.restore(m)
		c.full = fmt.Errorf("%w: %w: %d bytes, max %d", ErrChannelFull, ErrTooManyRLPBytes, rlpLen, c.cfg.MaxRLPBytes)
		if !had {
			if err := c.compress(); err != nil {
				return info, err
			}
			c.current = true
		}
		return info, c.full
	}
	// The compressed body grows by at most the new RLP bytes, so only recompress when
	// that bound reaches the target.
	if uint64(c.comp.out.Len()+rlpLen-c.lastRLP) < c.cfg.TargetSize {
		c.blocks++
		c.current = false
		return info, nil
	}
	if had {
		// Kept in case the block overshoots: restoring it is a copy, not a pass of the
		// compressor over the whole channel.
		c.prev = append(c.prev[:0], c.comp.out.Bytes()...)
	}
	if err := c.compress(); err != nil {
		c.span.restore(m)
		return info, err
	}
	if c.full == nil || c.blocks == 0 && len(c.sealed) == 0 || uint64(c.comp.out.Len()) == c.cfg.TargetSize {
		c.blocks++
		c.current = true
		return info, nil
	}
	// Overshot: take the block back out and restore the previous body.
	c.span.restore(m)
	if had {
		c.comp.out.Reset()
		c.comp.out.Write(c.prev)
		c.lastRLP = c.rlpLen()
	} else if err := c.compress(); err != nil {
		return info, err
	}
	c.current = true
	return info, c.full
}

// Close compresses the channel for output unless the body already holds every block
// (a full channel, or the last block was a trial that fit).
func (c *SpanChannelOut) Close() error {
	if c.closed {
		return ErrChannelClosed
	}
	c.closed = true
	if c.full == nil && !c.current {
		if err := c.compress(); err != nil {
			return err
		}
	}
	c.release()
	return nil
}

// OutputFrame takes the next frame of the compressed body.
func (c *SpanChannelOut) OutputFrame(maxSize int) (Frame, error) {
	if c.comp == nil {
		return Frame{}, io.EOF
	}
	body := &c.comp.out
	if !c.closed && c.full == nil {
		// Nothing is final yet.
		body = new(bytes.Buffer)
	}
	f, err := c.frames.next(body, c.closed, maxSize)
	if err == nil && f.IsLast {
		c.comp = nil // the body is all in frames now
	}
	return f, err
}
