package batcher

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/batcher/channels"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/batch/batchtest"
)

func testRollup() *rollup.Config {
	zero := uint64(0)
	return &rollup.Config{
		Genesis:   rollup.Genesis{L2Time: 0, L2: eth.BlockID{Number: 0}},
		BlockTime: 2, SeqWindowSize: 20, ChannelTimeout: 300, GraniteTime: &zero,
		L2ChainID: big.NewInt(901), L1ChainID: big.NewInt(900),
	}
}

func testBlocks(n, maxTxs int) []*types.Block {
	g := batchtest.New(1, big.NewInt(901))
	return g.Blocks(batchtest.Chain{BlockTime: 2, MaxTxs: maxTxs, EpochEvery: 3, L1Start: 3}, n)
}

type managerT struct {
	*channels.Manager
	plan channels.Plan
}

func newTestManager(t *testing.T, frameSize, targetFrames int, duration uint64) *managerT {
	t.Helper()
	return newTestManagerWith(t, frameSize, duration, ChannelSettings{TargetNumFrames: targetFrames, Compression: "zlib", BatchType: SpanBatchType})
}

func newTestManagerWith(t *testing.T, frameSize int, duration uint64, s ChannelSettings) *managerT {
	t.Helper()
	rcfg := testRollup()
	m := &managerT{plan: channels.Plan{DA: channels.Calldata, MaxFrameSize: frameSize, FramesPerTx: 1}}
	m.Manager = channels.New(channels.Config{
		Rollup: rcfg, MaxChannelDuration: duration, SubSafetyMargin: 10,
		NewChannelOut: func(p channels.Plan) (channels.ChannelOut, error) {
			return newChannelOut(rcfg, p, s)
		},
		Plan: func() channels.Plan { return m.plan },
	})
	return m
}

func addAll(t *testing.T, m *managerT, blocks []*types.Block) {
	t.Helper()
	for _, b := range blocks {
		if err := m.AddBlock(b); err != nil {
			t.Fatal(err)
		}
	}
}

func drain(m *managerT) []channels.TxData {
	var out []channels.TxData
	for {
		td, err := m.NextTxData()
		if errors.Is(err, io.EOF) {
			return out
		}
		out = append(out, td)
	}
}

// readChannels decodes the frames (in order) back into block timestamps.
func readChannels(t *testing.T, tds []channels.TxData) []uint64 {
	t.Helper()
	rcfg := testRollup()
	bodies := map[[16]byte][]byte{}
	var times []uint64
	for _, td := range tds {
		frames, err := batch.ParseTxData(td.Data())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			bodies[f.ID] = append(bodies[f.ID], f.Data...)
			if !f.IsLast {
				continue
			}
			r, err := batch.NewChannelReader(bytes.NewReader(bodies[f.ID]), batch.MaxRLPBytesPerChannelFjord, true)
			if err != nil {
				t.Fatal(err)
			}
			for {
				b, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch b := b.(type) {
				case *batch.SingularBatch:
					times = append(times, b.Timestamp)
				case *batch.RawSpanBatch:
					els, err := b.Batches(rcfg.Genesis.L2Time, rcfg.BlockTime, rcfg.L2ChainID)
					if err != nil {
						t.Fatal(err)
					}
					for _, el := range els {
						times = append(times, el.Timestamp)
					}
				default:
					t.Fatalf("unexpected batch %T", b)
				}
			}
		}
	}
	return times
}

func wantTimes(blocks []*types.Block) []uint64 {
	var out []uint64
	for _, b := range blocks {
		out = append(out, b.Time())
	}
	return out
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestChannelsCloseWhenFull(t *testing.T) {
	m := newTestManager(t, 1000, 2, 0)
	blocks := testBlocks(40, 4)
	m.Clear(eth.BlockID{Number: 3})
	addAll(t, m, blocks)
	if err := m.Step(eth.L1BlockRef{Number: 4}); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	tds := drain(m)
	if len(tds) < 4 {
		t.Fatalf("%d transactions: the channels did not fill up", len(tds))
	}
	for _, td := range tds {
		for _, f := range td.Frames {
			if len(f.Bytes) > 1000 {
				t.Fatalf("frame of %d bytes over the 1000-byte limit", len(f.Bytes))
			}
		}
	}
	if got := readChannels(t, tds); !equalU64(got, wantTimes(blocks)) {
		t.Fatalf("channels carry blocks %v, want %v", got, wantTimes(blocks))
	}
	// Every block is in a channel, none is on L1 yet.
	if m.Pending() != len(blocks) {
		t.Fatalf("%d blocks pending before any confirmation, want %d", m.Pending(), len(blocks))
	}
	for _, td := range tds {
		m.TxConfirmed(td.ID, eth.BlockID{Number: 5})
	}
	if m.Pending() != 0 || m.PendingBytes() != 0 {
		t.Fatalf("%d blocks (%d bytes) pending after every frame was confirmed", m.Pending(), m.PendingBytes())
	}
}

// Pending counts the blocks not yet on L1 in full: those in the open channel, in a
// closed channel with frames unsent or unconfirmed; it drops a channel's blocks once its
// last frame is confirmed. PendingBytes is their transactions' size.
func TestPendingCountsBlocksUntilTheirChannelIsConfirmed(t *testing.T) {
	m := newTestManager(t, 300, 40, 0) // room for the six blocks in one channel of several frames
	blocks := testBlocks(9, 3)
	m.Clear(eth.BlockID{Number: 3})
	size := func(bs []*types.Block) int {
		n := 0
		for _, b := range bs {
			for _, tx := range b.Transactions() {
				if tx.Type() != types.DepositTxType {
					n += int(tx.Size())
				}
			}
		}
		return n
	}
	check := func(what string, want []*types.Block) {
		t.Helper()
		if m.Pending() != len(want) || m.PendingBytes() != size(want) {
			t.Fatalf("%s: %d blocks (%d bytes) pending, want %d (%d bytes)", what, m.Pending(), m.PendingBytes(), len(want), size(want))
		}
	}
	addAll(t, m, blocks[:6])
	if err := m.Step(eth.L1BlockRef{Number: 4}); err != nil {
		t.Fatal(err)
	}
	if m.OpenChannels() != 1 {
		t.Fatal("no open channel")
	}
	if size(blocks[:6]) == 0 {
		t.Fatal("test blocks carry no transactions")
	}
	check("in the open channel", blocks[:6])
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	check("closed, nothing sent", blocks[:6])
	tds := drain(m)
	if len(tds) < 2 || tds[0].Channel != tds[len(tds)-1].Channel {
		t.Fatalf("want one multi-frame channel, got %d transactions", len(tds))
	}
	check("sent, none confirmed", blocks[:6])
	for _, td := range tds[:len(tds)-1] {
		m.TxConfirmed(td.ID, eth.BlockID{Number: 5})
	}
	m.TxFailed(tds[len(tds)-1].ID)
	check("last frame failed", blocks[:6])
	last := drain(m)
	if len(last) != 1 {
		t.Fatalf("%d transactions resent, want 1", len(last))
	}
	addAll(t, m, blocks[6:])
	if err := m.Step(eth.L1BlockRef{Number: 5}); err != nil {
		t.Fatal(err)
	}
	check("old channel in flight, new one open", blocks)
	m.TxConfirmed(last[0].ID, eth.BlockID{Number: 6})
	check("old channel confirmed", blocks[6:])
	m.PruneSafe(6)
	check("old channel safe", blocks[6:])
}

func TestChannelClosesOnDuration(t *testing.T) {
	m := newTestManager(t, 100_000, 1, 2)
	m.Clear(eth.BlockID{Number: 5})
	addAll(t, m, testBlocks(3, 1))
	if err := m.Step(eth.L1BlockRef{Number: 6}); err != nil {
		t.Fatal(err)
	}
	if len(drain(m)) != 0 {
		t.Fatal("channel closed before its duration")
	}
	if err := m.Step(eth.L1BlockRef{Number: 7}); err != nil {
		t.Fatal(err)
	}
	if tds := drain(m); len(tds) != 1 {
		t.Fatalf("%d transactions after the duration", len(tds))
	}
}

func TestChannelClosesBeforeSequencingWindow(t *testing.T) {
	m := newTestManager(t, 100_000, 1, 0)
	m.Clear(eth.BlockID{Number: 3})
	addAll(t, m, testBlocks(3, 1)) // oldest origin 3; window 20, margin 10
	if err := m.Step(eth.L1BlockRef{Number: 12}); err != nil {
		t.Fatal(err)
	}
	if len(drain(m)) != 0 {
		t.Fatal("closed too early")
	}
	if err := m.Step(eth.L1BlockRef{Number: 13}); err != nil {
		t.Fatal(err)
	}
	if len(drain(m)) != 1 {
		t.Fatal("did not close at origin + window - margin")
	}
}

func TestFailedTxResendsSameFrames(t *testing.T) {
	m := newTestManager(t, 300, 4, 0)
	m.Clear(eth.BlockID{Number: 3})
	addAll(t, m, testBlocks(6, 3))
	_ = m.Step(eth.L1BlockRef{Number: 4})
	_ = m.Flush()
	first, err := m.NextTxData()
	if err != nil {
		t.Fatal(err)
	}
	second, _ := m.NextTxData()
	m.TxFailed(second.ID)
	m.TxFailed(first.ID)
	again, _ := m.NextTxData()
	if again.ID != first.ID || !bytes.Equal(again.Data(), first.Data()) {
		t.Fatalf("after a failure got %s, want %s again", again.ID, first.ID)
	}
}

func TestChannelTimedOutOnChainIsRebuilt(t *testing.T) {
	m := newTestManager(t, 300, 4, 0)
	blocks := testBlocks(6, 3)
	m.Clear(eth.BlockID{Number: 3})
	addAll(t, m, blocks)
	_ = m.Step(eth.L1BlockRef{Number: 4})
	_ = m.Flush()
	tds := drain(m)
	if len(tds) < 2 {
		t.Fatalf("want a multi-frame channel, got %d frames", len(tds))
	}
	if m.TxConfirmed(tds[0].ID, eth.BlockID{Number: 100}) {
		t.Fatal("timed out after one frame")
	}
	// The next frame lands a whole channel timeout (50 blocks from Granite) later.
	if !m.TxConfirmed(tds[1].ID, eth.BlockID{Number: 150}) {
		t.Fatal("channel spread over the channel timeout not reported as timed out")
	}
	if m.Pending() != len(blocks) {
		t.Fatalf("%d blocks requeued, want %d", m.Pending(), len(blocks))
	}
	_ = m.Step(eth.L1BlockRef{Number: 151})
	_ = m.Flush()
	again := drain(m)
	if len(again) == 0 || again[0].Channel == tds[0].Channel {
		t.Fatal("blocks not rebuilt into a new channel")
	}
	if got := readChannels(t, again); !equalU64(got, wantTimes(blocks)) {
		t.Fatalf("rebuilt channel carries %v", got)
	}
}

func TestL2ReorgIsDetected(t *testing.T) {
	m := newTestManager(t, 1000, 1, 0)
	blocks := testBlocks(3, 0)
	addAll(t, m, blocks[:2])
	other := testBlocks(3, 0)[2]
	h := other.Header()
	h.ParentHash = [32]byte{1}
	if err := m.AddBlock(types.NewBlockWithHeader(h).WithBody(*other.Body())); !errors.Is(err, channels.ErrReorg) {
		t.Fatalf("AddBlock with a foreign parent: %v", err)
	}
}

func TestFailOverMovesRestOfChannel(t *testing.T) {
	m := newTestManager(t, 300, 6, 0)
	m.plan = channels.Plan{DA: channels.AltDA, MaxFrameSize: 300, FramesPerTx: 1}
	m.Clear(eth.BlockID{Number: 3})
	addAll(t, m, testBlocks(8, 3))
	_ = m.Step(eth.L1BlockRef{Number: 4})
	_ = m.Flush()
	first, _ := m.NextTxData()
	if first.DA != channels.AltDA || len(first.Frames) != 1 {
		t.Fatalf("first tx %v with %d frames", first.DA, len(first.Frames))
	}
	m.FailOver(first.ID, channels.Plan{DA: channels.Blobs, MaxFrameSize: MaxBlobFrameSize, FramesPerTx: 6})
	next, _ := m.NextTxData()
	if next.DA != channels.Blobs || next.Frames[0].Number != 0 || len(next.Frames) < 2 {
		t.Fatalf("after failover: %v from frame %d with %d frames", next.DA, next.Frames[0].Number, len(next.Frames))
	}
}

func TestPruneSafeDropsSubmittedChannels(t *testing.T) {
	m := newTestManager(t, 100_000, 1, 0)
	blocks := testBlocks(4, 1)
	m.Clear(eth.BlockID{Number: 3})
	addAll(t, m, blocks)
	_ = m.Step(eth.L1BlockRef{Number: 4})
	_ = m.Flush()
	td, _ := m.NextTxData()
	m.TxConfirmed(td.ID, eth.BlockID{Number: 5})
	if st := m.Channels(); len(st) != 1 || !st[0].FullySubmitted || st[0].LatestL2 != 4 {
		t.Fatalf("channel status %+v", st)
	}
	m.PruneSafe(4)
	if m.Blocks() != 0 || len(m.Channels()) != 0 {
		t.Fatalf("left %d blocks, %d channels", m.Blocks(), len(m.Channels()))
	}
}

// --batch-type 0 and --max-blocks-per-span-batch: every block comes back out, in
// singular batches, or in span batches of at most the given length.
func TestBatchTypeSettings(t *testing.T) {
	blocks := testBlocks(30, 3)
	for _, tc := range []struct {
		name string
		s    ChannelSettings
		want func(batch.Batch) bool
	}{
		{"singular", ChannelSettings{TargetNumFrames: 1, Compression: "zlib", BatchType: SingularBatchType}, func(b batch.Batch) bool {
			_, ok := b.(*batch.SingularBatch)
			return ok
		}},
		{"span of 4", ChannelSettings{TargetNumFrames: 1, Compression: "zlib", BatchType: SpanBatchType, MaxBlocksPerSpanBatch: 4}, func(b batch.Batch) bool {
			s, ok := b.(*batch.RawSpanBatch)
			return ok && len(s.BlockTxCounts) <= 4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestManagerWith(t, 100_000, 0, tc.s)
			m.Clear(eth.BlockID{Number: 3})
			addAll(t, m, blocks)
			if err := m.Step(eth.L1BlockRef{Number: 4}); err != nil {
				t.Fatal(err)
			}
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
			tds := drain(m)
			if got := readChannels(t, tds); !equalU64(got, wantTimes(blocks)) {
				t.Fatalf("blocks out %v, want %v", got, wantTimes(blocks))
			}
			n := 0
			for _, td := range tds {
				frames, err := batch.ParseTxData(td.Data())
				if err != nil {
					t.Fatal(err)
				}
				var body []byte
				for _, f := range frames {
					body = append(body, f.Data...)
				}
				r, err := batch.NewChannelReader(bytes.NewReader(body), batch.MaxRLPBytesPerChannelFjord, true)
				if err != nil {
					t.Fatal(err)
				}
				for {
					b, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if !tc.want(b) {
						t.Fatalf("batch %T does not match the setting", b)
					}
					n++
				}
			}
			if n < 2 {
				t.Fatalf("%d batches", n)
			}
		})
	}
}

// Once a channel is closed and framed, the manager lets go of its builder (and with it
// the compressor, over a megabyte at zlib's best level) while the frames wait for their
// confirmations: the garbage collector frees it. The open channel's builder is kept.
func TestClosedChannelBuilderIsFreed(t *testing.T) {
	rcfg := testRollup()
	var opened, freed atomic.Int32
	s := ChannelSettings{TargetNumFrames: 4, Compression: "zlib", BatchType: SpanBatchType}
	m := channels.New(channels.Config{
		Rollup: rcfg, SubSafetyMargin: 10,
		NewChannelOut: func(p channels.Plan) (channels.ChannelOut, error) {
			out, err := newChannelOut(rcfg, p, s)
			if err == nil {
				opened.Add(1)
				runtime.AddCleanup(out.(*channelOut), func(struct{}) { freed.Add(1) }, struct{}{})
			}
			return out, err
		},
		Plan: func() channels.Plan {
			return channels.Plan{DA: channels.Calldata, MaxFrameSize: 100_000, FramesPerTx: 1}
		},
	})
	m.Clear(eth.BlockID{Number: 3})
	blocks := testBlocks(6, 3)
	for _, b := range blocks[:3] {
		if err := m.AddBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Step(eth.L1BlockRef{Number: 4}); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks[3:] {
		if err := m.AddBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Step(eth.L1BlockRef{Number: 4}); err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 2 {
		t.Fatalf("%d channels opened, want 2", opened.Load())
	}
	// The closed channel's frames are not even sent: the manager still holds the
	// channel, but not its builder.
	deadline := time.Now().Add(10 * time.Second)
	for freed.Load() == 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if freed.Load() != 1 {
		t.Fatalf("%d channel builders freed, want the closed one only", freed.Load())
	}
	tds := drain(&managerT{Manager: m})
	if len(tds) != 1 {
		t.Fatalf("%d transactions from the closed channel", len(tds))
	}
	if got := readChannels(t, tds); !equalU64(got, wantTimes(blocks[:3])) {
		t.Fatalf("closed channel carries %v", got)
	}
	if m.OpenChannels() != 1 {
		t.Fatal("the open channel is gone")
	}
	runtime.KeepAlive(m)
}
