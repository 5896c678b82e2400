package channels

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// ErrFull is what a ChannelOut's AddBlock wraps when the block does not fit.
var ErrFull = errors.New("channel full")

// Frame is one encoded frame of a channel.
type Frame struct {
	Channel [16]byte
	Number  uint16
	IsLast  bool
	// Bytes is the frame's wire encoding (without the derivation version byte).
	Bytes []byte
}

// ChannelOut is a channel being built by the batch codec.
type ChannelOut interface {
	ID() [16]byte
	// AddBlock appends a block; an error wrapping ErrFull leaves the channel unchanged.
	AddBlock(block *types.Block) error
	// InputBytes is the uncompressed batch data taken in; ReadyBytes the compressed
	// bytes waiting to be framed.
	InputBytes() int
	ReadyBytes() int
	// Close finishes the compressed stream; no block may follow.
	Close() error
	// OutputFrame returns the next frame of at most maxSize encoded bytes, io.EOF
	// after the last one.
	OutputFrame(maxSize int) (Frame, error)
}

// DA is how a channel's frames reach L1.
type DA int

const (
	Calldata DA = iota
	Blobs
	AltDA
)

func (d DA) String() string {
	switch d {
	case Calldata:
		return "calldata"
	case Blobs:
		return "blobs"
	case AltDA:
		return "altda"
	}
	return fmt.Sprintf("da(%d)", int(d))
}

// Plan is how one channel is built and sent.
type Plan struct {
	DA DA
	// MaxFrameSize bounds an encoded frame (calldata: max tx size − 1; blobs: 130043).
	MaxFrameSize int
	// FramesPerTx: blobs per blob transaction; 1 for calldata and AltDA.
	FramesPerTx int
}

// Config configures a Manager.
type Config struct {
	Rollup *rollup.Config
	// MaxChannelDuration in L1 blocks; 0 disables the duration deadline.
	MaxChannelDuration uint64
	SubSafetyMargin    uint64
	// NewChannelOut opens a channel for a plan; Plan picks the plan of each new channel.
	NewChannelOut func(Plan) (ChannelOut, error)
	Plan          func() Plan
	Log           *slog.Logger
	// Events, when set, hears about channels opening and closing.
	Events Events
}

// Events reports channel life-cycle changes (for metrics).
type Events interface {
	ChannelOpened(p Plan)
	// ChannelClosed: reason is full, duration, seq_window, channel_timeout or flush;
	// inputBytes the uncompressed batch data and outputBytes the framed bytes.
	ChannelClosed(p Plan, reason string, blocks, inputBytes, outputBytes int)
	ChannelInvalidated(reason string)
}

type noEvents struct{}

func (noEvents) ChannelOpened(Plan)                        {}
func (noEvents) ChannelClosed(Plan, string, int, int, int) {}
func (noEvents) ChannelInvalidated(string)                 {}

// GraniteChannelTimeout is the channel timeout from Granite on, in L1 blocks.
const GraniteChannelTimeout = 50

// ChannelTimeout is the protocol's channel timeout for an L1 block with time t.
func ChannelTimeout(cfg *rollup.Config, t uint64) uint64 {
	if cfg.GraniteTime != nil && t >= *cfg.GraniteTime {
		return GraniteChannelTimeout
	}
	return cfg.ChannelTimeout
}

// TxData is the data of one L1 transaction: frames of one channel.
type TxData struct {
	ID      string
	Channel [16]byte
	Frames  []Frame
	DA      DA
}

// Data is the transaction payload for calldata and AltDA: the version byte, then the
// frames (an AltDA PUT body is this too).
func (t TxData) Data() []byte {
	n := 1
	for _, f := range t.Frames {
		n += len(f.Bytes)
	}
	b := make([]byte, 1, n)
	for _, f := range t.Frames {
		b = append(b, f.Bytes...)
	}
	return b
}

// FrameData is one frame as the content of a blob: the version byte, then the frame.
func (f Frame) FrameData() []byte { return append([]byte{0}, f.Bytes...) }

type channel struct {
	id       [16]byte
	plan     Plan
	out      ChannelOut // nil once the channel is closed and framed
	firstIdx uint64     // L2 number of its first block
	blocks   []*types.Block
	oldest   eth.BlockID // oldest L1 origin
	latest   eth.BlockID // latest L1 origin
	timeout  uint64      // L1 block at which it must close; 0 none
	reason   string
	closed   bool
	frames   []Frame
	cursor   int
	pending  map[string]int // tx id -> index of its first frame
	confirm  map[string]uint64
	minIncl  uint64
	maxIncl  uint64
	input    int
	output   int
}

func (c *channel) setTimeout(block uint64, reason string) {
	if c.timeout == 0 || block < c.timeout {
		c.timeout, c.reason = block, reason
	}
}

func (c *channel) fullySubmitted() bool {
	return c.closed && c.cursor == len(c.frames) && len(c.pending) == 0
}

// Manager is the channel manager.
type Manager struct {
	cfg Config
	log *slog.Logger

	blocks  []*types.Block // blocks[0] is the one after the safe head
	cursor  int            // first block not in a channel
	origins []eth.BlockID  // L1 origin of each queued block
	sizes   []int          // non-deposit transaction bytes of each queued block

	channels []*channel // oldest first; the last may be open
	current  *channel
	txs      map[string]*channel

	lastSubmittedOrigin eth.BlockID
	l1Time              uint64 // time of the L1 head last seen, for fork-dependent rules
}

// New returns an empty manager.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Events == nil {
		cfg.Events = noEvents{}
	}
	return &Manager{cfg: cfg, log: cfg.Log, txs: map[string]*channel{}}
}

// Clear drops every block and channel; lastOrigin is the L1 origin of the safe head,
// from which the duration deadline of the next channel counts.
func (m *Manager) Clear(lastOrigin eth.BlockID) {
	m.blocks, m.origins, m.sizes, m.cursor = nil, nil, nil, 0
	m.channels, m.current = nil, nil
	m.txs = map[string]*channel{}
	m.lastSubmittedOrigin = lastOrigin
}

// ErrReorg: the block does not extend the queued chain.
var ErrReorg = errors.New("L2 reorg: block does not extend the queued chain")

// AddBlock queues the next unsafe block.
func (m *Manager) AddBlock(b *types.Block) error {
	if n := len(m.blocks); n > 0 {
		last := m.blocks[n-1]
		if b.ParentHash() != last.Hash() || b.NumberU64() != last.NumberU64()+1 {
			return fmt.Errorf("%w: block %d %s has parent %s, queued tip is %d %s", ErrReorg, b.NumberU64(), b.Hash(), b.ParentHash(), last.NumberU64(), last.Hash())
		}
	}
	ref, err := m.cfg.Rollup.L2BlockRef(b)
	if err != nil {
		return fmt.Errorf("read L1 origin: %w", err)
	}
	m.blocks = append(m.blocks, b)
	m.origins = append(m.origins, ref.L1Origin)
	m.sizes = append(m.sizes, txBytes(b))
	return nil
}

// Blocks is the number of queued blocks: loaded after the safe head, whatever their
// state.
func (m *Manager) Blocks() int { return len(m.blocks) }

// Pending is the number of queued blocks not yet on L1 in full: blocks not in a
// channel, in the open channel, and in closed channels with a frame not yet sent or
// sent and not yet confirmed. Only blocks of channels whose every frame is confirmed
// (waiting for the node to derive them) are left out. PendingBytes is their size: the
// transactions' encoded bytes, deposits excluded, as the batch data carries them.
//
// Blocks go into the open channel as soon as they are loaded, so the blocks not in
// any channel are nearly always none: counting only those would read 0 while a long
// backlog waits for the channel to close or its transactions to confirm.
func (m *Manager) Pending() int {
	n, _ := m.pending()
	return n
}

// PendingBytes: see Pending. It is the backlog throttling looks at.
func (m *Manager) PendingBytes() int {
	_, b := m.pending()
	return b
}

func (m *Manager) pending() (blocks, bytes int) {
	blocks = len(m.blocks)
	for _, sz := range m.sizes {
		bytes += sz
	}
	if blocks == 0 {
		return 0, 0
	}
	first := m.blocks[0].NumberU64()
	for _, c := range m.channels {
		if !c.fullySubmitted() || len(c.blocks) == 0 {
			continue
		}
		// The channel's blocks still queued (a pruned prefix is gone already).
		lo := max(c.firstIdx, first)
		hi := c.firstIdx + uint64(len(c.blocks)) // exclusive
		for n := lo; n < hi && n-first < uint64(len(m.blocks)); n++ {
			blocks--
			bytes -= m.sizes[n-first]
		}
	}
	return blocks, bytes
}

// txBytes is the size of b's non-deposit transactions.
func txBytes(b *types.Block) int {
	n := 0
	for _, tx := range b.Transactions() {
		if tx.Type() != types.DepositTxType {
			n += int(tx.Size())
		}
	}
	return n
}

// Oldest and Newest are the queued blocks at either end (nil when empty).
func (m *Manager) Oldest() *types.Block {
	if len(m.blocks) == 0 {
		return nil
	}
	return m.blocks[0]
}

func (m *Manager) Newest() *types.Block {
	if len(m.blocks) == 0 {
		return nil
	}
	return m.blocks[len(m.blocks)-1]
}

// PruneSafe drops the first n blocks (now safe) and every channel whose last block is
// safe.
func (m *Manager) PruneSafe(n int) {
	if n <= 0 {
		return
	}
	if n > len(m.blocks) {
		n = len(m.blocks)
	}
	safe := m.blocks[n-1].NumberU64()
	m.blocks, m.origins, m.sizes = m.blocks[n:], m.origins[n:], m.sizes[n:]
	m.cursor = max(0, m.cursor-n)
	keep := m.channels[:0]
	for _, c := range m.channels {
		last := c.firstIdx + uint64(len(c.blocks)) - 1
		if len(c.blocks) > 0 && last <= safe {
			if c == m.current {
				m.current = nil
			}
			for id, ch := range m.txs {
				if ch == c {
					delete(m.txs, id)
				}
			}
			continue
		}
		keep = append(keep, c)
	}
	m.channels = keep
}

// ChannelStatus summarises a channel for sync decisions.
type ChannelStatus struct {
	FullySubmitted bool
	TimedOut       bool
	MaxInclusion   uint64
	LatestL2       uint64
}

// Channels reports the channels, oldest first.
func (m *Manager) Channels() []ChannelStatus {
	out := make([]ChannelStatus, 0, len(m.channels))
	for _, c := range m.channels {
		s := ChannelStatus{FullySubmitted: c.fullySubmitted(), TimedOut: m.timedOut(c), MaxInclusion: c.maxIncl}
		if len(c.blocks) > 0 {
			s.LatestL2 = c.firstIdx + uint64(len(c.blocks)) - 1
		}
		out = append(out, s)
	}
	return out
}

func (m *Manager) timedOut(c *channel) bool {
	return len(c.confirm) > 0 && c.maxIncl-c.minIncl >= ChannelTimeout(m.cfg.Rollup, m.l1Time)
}

func (m *Manager) openChannel() error {
	plan := m.cfg.Plan()
	out, err := m.cfg.NewChannelOut(plan)
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	c := &channel{id: out.ID(), plan: plan, out: out, pending: map[string]int{}, confirm: map[string]uint64{}}
	if len(m.blocks) > m.cursor {
		c.firstIdx = m.blocks[m.cursor].NumberU64()
	}
	if d := m.cfg.MaxChannelDuration; d > 0 {
		c.setTimeout(m.lastSubmittedOrigin.Number+d, "duration")
	}
	m.current = c
	m.channels = append(m.channels, c)
	m.cfg.Events.ChannelOpened(plan)
	m.log.Debug("channel opened", "channel", fmt.Sprintf("%x", c.id), "da", plan.DA, "max_frame", plan.MaxFrameSize)
	return nil
}

// Step adds pending blocks to the open channel (opening one if needed), closes it on a
// deadline at l1Head, and frames closed channels.
func (m *Manager) Step(l1Head eth.L1BlockRef) error {
	m.l1Time = l1Head.Time
	for m.cursor < len(m.blocks) {
		if m.current == nil {
			if err := m.openChannel(); err != nil {
				return err
			}
		}
		c := m.current
		b := m.blocks[m.cursor]
		if len(c.blocks) == 0 {
			c.firstIdx = b.NumberU64()
		}
		err := c.out.AddBlock(b)
		if errors.Is(err, ErrFull) {
			if len(c.blocks) == 0 {
				return fmt.Errorf("block %d does not fit an empty channel: %w", b.NumberU64(), err)
			}
			if err := m.closeCurrent("full"); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("add block %d to channel: %w", b.NumberU64(), err)
		}
		origin := m.origins[m.cursor]
		if len(c.blocks) == 0 || origin.Number < c.oldest.Number {
			c.oldest = origin
		}
		if origin.Number > c.latest.Number || len(c.blocks) == 0 {
			c.latest = origin
		}
		c.blocks = append(c.blocks, b)
		m.cursor++
		sw := m.cfg.Rollup.SeqWindowSize
		if sw > m.cfg.SubSafetyMargin {
			c.setTimeout(c.oldest.Number+sw-m.cfg.SubSafetyMargin, "seq_window")
		}
	}
	if c := m.current; c != nil && c.timeout != 0 && l1Head.Number >= c.timeout {
		if err := m.closeCurrent(c.reason); err != nil {
			return err
		}
	}
	return nil
}

// Flush closes the open channel now, whatever its deadlines.
func (m *Manager) Flush() error {
	if m.current == nil || len(m.current.blocks) == 0 {
		return nil
	}
	return m.closeCurrent("flush")
}

func (m *Manager) closeCurrent(reason string) error {
	c := m.current
	m.current = nil
	if err := c.out.Close(); err != nil {
		return fmt.Errorf("close channel %x: %w", c.id, err)
	}
	c.closed = true
	c.reason = reason
	c.input = c.out.InputBytes()
	for {
		f, err := c.out.OutputFrame(c.plan.MaxFrameSize)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("frame channel %x: %w", c.id, err)
		}
		c.frames = append(c.frames, f)
		c.output += len(f.Bytes)
		if f.IsLast {
			break
		}
	}
	// The frames are all cut: the builder (its compressor alone is over a megabyte at
	// zlib's best level) is not needed while the frames wait for their confirmations.
	c.out = nil
	m.cfg.Events.ChannelClosed(c.plan, reason, len(c.blocks), c.input, c.output)
	m.log.Info("channel closed", "channel", fmt.Sprintf("%x", c.id), "reason", reason, "da", c.plan.DA,
		"blocks", len(c.blocks), "first", c.firstIdx, "frames", len(c.frames), "input_bytes", c.input, "output_bytes", c.output)
	return nil
}

// NextTxData returns the next transaction's data, io.EOF when nothing is ready. Only
// the oldest channel with frames left is served, so frames reach L1 in channel order.
func (m *Manager) NextTxData() (TxData, error) {
	for _, c := range m.channels {
		if !c.closed {
			break
		}
		if c.cursor == len(c.frames) {
			continue
		}
		n := 1
		if c.plan.DA == Blobs {
			n = max(1, c.plan.FramesPerTx)
		}
		n = min(n, len(c.frames)-c.cursor)
		frames := c.frames[c.cursor : c.cursor+n]
		id := fmt.Sprintf("%x:%d+%d", c.id, frames[0].Number, n)
		c.pending[id] = c.cursor
		c.cursor += n
		m.txs[id] = c
		if c.latest.Number > m.lastSubmittedOrigin.Number {
			m.lastSubmittedOrigin = c.latest
		}
		return TxData{ID: id, Channel: c.id, Frames: frames, DA: c.plan.DA}, nil
	}
	return TxData{}, io.EOF
}

// TxFailed puts a transaction's frames back to be sent again.
func (m *Manager) TxFailed(id string) {
	c, ok := m.txs[id]
	if !ok {
		return
	}
	delete(m.txs, id)
	first, ok := c.pending[id]
	if !ok {
		return
	}
	delete(c.pending, id)
	if first < c.cursor {
		c.cursor = first
	}
}

// FailOver sends the rest of the transaction's channel by another DA plan (an AltDA
// channel moving to Ethereum); the transaction itself counts as failed.
func (m *Manager) FailOver(id string, p Plan) {
	c, ok := m.txs[id]
	m.TxFailed(id)
	if ok {
		c.plan.DA, c.plan.FramesPerTx = p.DA, p.FramesPerTx
	}
}

// ChannelDA is the DA of the channel of a transaction.
func (m *Manager) ChannelDA(id string) (DA, bool) {
	c, ok := m.txs[id]
	if !ok {
		return 0, false
	}
	return c.plan.DA, true
}

// TxConfirmed records a transaction's inclusion. It reports whether its channel timed
// out on chain, in which case the channel and all newer ones were dropped and their
// blocks queued again.
func (m *Manager) TxConfirmed(id string, inclusion eth.BlockID) bool {
	c, ok := m.txs[id]
	if !ok {
		return false
	}
	delete(m.txs, id)
	if _, ok := c.pending[id]; !ok {
		return false
	}
	delete(c.pending, id)
	if len(c.confirm) == 0 {
		c.minIncl, c.maxIncl = inclusion.Number, inclusion.Number
		if !c.closed {
			c.setTimeout(inclusion.Number+ChannelTimeout(m.cfg.Rollup, m.l1Time)-m.cfg.SubSafetyMargin, "channel_timeout")
		}
	}
	c.confirm[id] = inclusion.Number
	c.minIncl, c.maxIncl = min(c.minIncl, inclusion.Number), max(c.maxIncl, inclusion.Number)
	if m.timedOut(c) {
		m.log.Warn("channel timed out on L1: its blocks go out again", "channel", fmt.Sprintf("%x", c.id), "min_inclusion", c.minIncl, "max_inclusion", c.maxIncl)
		m.invalidate(c, "channel_timeout")
		return true
	}
	return false
}

// invalidate drops c and every newer channel and rewinds the block cursor to c's first
// block.
func (m *Manager) invalidate(c *channel, reason string) {
	idx := -1
	for i, ch := range m.channels {
		if ch == c {
			idx = i
			break
		}
	}
	if idx < 0 {
		return
	}
	if len(c.blocks) > 0 && len(m.blocks) > 0 {
		first := 0
		if c.firstIdx > m.blocks[0].NumberU64() {
			first = int(c.firstIdx - m.blocks[0].NumberU64())
		}
		m.cursor = min(m.cursor, first)
	}
	for _, ch := range m.channels[idx:] {
		for id, owner := range m.txs {
			if owner == ch {
				delete(m.txs, id)
			}
		}
	}
	m.channels = m.channels[:idx]
	m.current = nil
	m.cfg.Events.ChannelInvalidated(reason)
}

// SafeHash is the hash the block before blocks[0] must have: the safe head it was
// loaded on.
func (m *Manager) SafeHash() common.Hash {
	if len(m.blocks) == 0 {
		return common.Hash{}
	}
	return m.blocks[0].ParentHash()
}

// BlockAt returns the queued block with number n, if any.
func (m *Manager) BlockAt(n uint64) *types.Block {
	if len(m.blocks) == 0 || n < m.blocks[0].NumberU64() {
		return nil
	}
	i := n - m.blocks[0].NumberU64()
	if i >= uint64(len(m.blocks)) {
		return nil
	}
	return m.blocks[i]
}

// OpenChannels is 1 while a channel takes blocks, else 0.
func (m *Manager) OpenChannels() int {
	if m.current != nil {
		return 1
	}
	return 0
}
