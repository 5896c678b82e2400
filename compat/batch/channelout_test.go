package batch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/ethereum-optimism/optimism/op-batcher/compressor"
	oprollup "github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/batch/batchtest"
)

// channelRun is what one channel builder made of a block sequence.
type channelRun struct {
	blocks []int    // blocks per channel
	frames [][]byte // every frame, encoded
	in     []int    // InputBytes per channel
}

// codec is a compression with its level; opkit's zero level means op-batcher's default.
type codec struct {
	algo  batch.Compression
	level int
}

func (c codec) String() string { return fmt.Sprintf("%v-%d", c.algo, c.level) }

func (c codec) op() derive.CompressionAlgo {
	switch {
	case c.algo == batch.Zlib:
		return derive.Zlib
	case c.level == 9:
		return derive.Brotli9
	case c.level == 11:
		return derive.Brotli11
	}
	return derive.Brotli10
}

var (
	zlib9    = codec{batch.Zlib, 9}
	brotli9  = codec{batch.Brotli, 9}
	brotli10 = codec{batch.Brotli, 10}
)

// runOp fills op-batcher channels (op-node's span channel out, or the singular one
// behind op-batcher's shadow compressor) with blocks until each is full, as the
// batcher's channel builder does, and returns the channel IDs it picked.
func runOp(t testing.TB, blocks []*types.Block, span bool, c codec, target uint64, frameSize int) (channelRun, []derive.ChannelID) {
	return runOpMax(t, blocks, span, c, target, frameSize, 0)
}

func runOpMax(t testing.TB, blocks []*types.Block, span bool, c codec, target uint64, frameSize, maxPerSpan int) (channelRun, []derive.ChannelID) {
	cfg := opConfig()
	spec := oprollup.NewChainSpec(cfg)
	var run channelRun
	var ids []derive.ChannelID
	next := 0
	for next < len(blocks) {
		var co derive.ChannelOut
		var err error
		if span {
			co, err = derive.NewSpanChannelOut(target, c.op(), spec, derive.WithMaxBlocksPerSpanBatch(maxPerSpan))
		} else {
			var comp derive.Compressor
			comp, err = compressor.NewShadowCompressor(compressor.Config{TargetOutputSize: target, CompressionAlgo: c.op()})
			if err == nil {
				co, err = derive.NewSingularChannelOut(comp, spec)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, co.ID())
		n := 0
		for next < len(blocks) {
			_, err := co.AddBlock(cfg, blocks[next])
			if errors.Is(err, derive.ErrCompressorFull) || errors.Is(err, derive.ErrTooManyRLPBytes) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			next++
			n++
			if co.FullErr() != nil {
				break
			}
		}
		run.blocks = append(run.blocks, n)
		run.in = append(run.in, co.InputBytes())
		if err := co.Close(); err != nil {
			t.Fatal(err)
		}
		for {
			var buf bytes.Buffer
			_, err := co.OutputFrame(&buf, uint64(frameSize))
			run.frames = append(run.frames, buf.Bytes())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return run, ids
}

func runOpkit(t testing.TB, blocks []*types.Block, span bool, c codec, target uint64, frameSize int, ids []derive.ChannelID) channelRun {
	return runOpkitMax(t, blocks, span, c, target, frameSize, ids, 0)
}

func runOpkitMax(t testing.TB, blocks []*types.Block, span bool, c codec, target uint64, frameSize int, ids []derive.ChannelID, maxPerSpan int) channelRun {
	var run channelRun
	next := 0
	for ch := 0; next < len(blocks); ch++ {
		cfg := batch.ChannelOutConfig{TargetSize: target, Compression: c.algo, Level: c.level, ChainID: chainID, GenesisTime: genesisTime,
			MaxBlocksPerSpanBatch: maxPerSpan}
		if ch < len(ids) {
			cfg.ID = batch.ChannelID(ids[ch])
		}
		var co batch.ChannelOut
		var err error
		if span {
			co, err = batch.NewSpanChannelOut(cfg)
		} else {
			co, err = batch.NewSingularChannelOut(cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		for next < len(blocks) {
			_, err := co.AddBlock(blocks[next])
			if errors.Is(err, batch.ErrChannelFull) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			next++
			if co.FullErr() != nil {
				break
			}
		}
		run.blocks = append(run.blocks, co.Blocks())
		run.in = append(run.in, co.InputBytes())
		if err := co.Close(); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := co.OutputFrame(frameSize)
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := f.MarshalBinary()
			run.frames = append(run.frames, enc)
			if f.IsLast {
				break
			}
		}
	}
	return run
}

// compareRuns checks the channel split and the frames; input bytes only for span
// channels, because op-node's singular channel out counts a refused block's RLP in its
// InputBytes while opkit counts only what the channel holds.
func compareRuns(t *testing.T, op, ok channelRun, span bool) {
	t.Helper()
	if fmt.Sprint(op.blocks) != fmt.Sprint(ok.blocks) {
		t.Fatalf("blocks per channel: op-batcher %v, opkit %v", op.blocks, ok.blocks)
	}
	if span && fmt.Sprint(op.in) != fmt.Sprint(ok.in) {
		t.Fatalf("input bytes per channel: op-batcher %v, opkit %v", op.in, ok.in)
	}
	if len(op.frames) != len(ok.frames) {
		t.Fatalf("op-batcher %d frames, opkit %d", len(op.frames), len(ok.frames))
	}
	for i := range op.frames {
		if !bytes.Equal(op.frames[i], ok.frames[i]) {
			t.Fatalf("frame %d differs (%d vs %d bytes)", i, len(op.frames[i]), len(ok.frames[i]))
		}
	}
}

// TestChannelOutMatchesOpBatcher fills channels from the same blocks with op-batcher's
// channel outs and opkit's: the same split into channels and byte-identical frames.
func TestChannelOutMatchesOpBatcher(t *testing.T) {
	g := batchtest.New(5, chainID)
	blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 20, MaxTxs: 12}, 40)
	cases := []struct {
		c       codec
		blocks  int
		targets []uint64
	}{
		{zlib9, 40, []uint64{300, 5_000, 20_000, 1 << 20}},
		{brotli9, 20, []uint64{300, 5_000, 1 << 20}},
		{brotli10, 8, []uint64{2_000}},
	}
	for _, span := range []bool{true, false} {
		for _, tc := range cases {
			for _, target := range tc.targets {
				t.Run(fmt.Sprintf("span=%v/%v/%d", span, tc.c, target), func(t *testing.T) {
					op, ids := runOp(t, blocks[:tc.blocks], span, tc.c, target, 2_000)
					ok := runOpkit(t, blocks[:tc.blocks], span, tc.c, target, 2_000, ids)
					compareRuns(t, op, ok, span)
				})
			}
		}
	}
}

// TestMaxBlocksPerSpanBatchMatchesOpBatcher: several span batches per channel.
func TestMaxBlocksPerSpanBatchMatchesOpBatcher(t *testing.T) {
	g := batchtest.New(6, chainID)
	blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 2, MaxTxs: 6}, 30)
	for _, target := range []uint64{2_000, 1 << 20} {
		op, ids := runOpMax(t, blocks, true, zlib9, target, 3_000, 4)
		ok := runOpkitMax(t, blocks, true, zlib9, target, 3_000, ids, 4)
		compareRuns(t, op, ok, true)
	}
}

// FuzzDiffSpanChannelOut draws blocks and a target from the fuzz input and compares the
// two span channel outs' frames, then reads opkit's channel back with op-node.
func FuzzDiffSpanChannelOut(f *testing.F) {
	f.Add(uint64(1), uint16(3000), uint8(10), false)
	f.Add(uint64(2), uint16(200), uint8(30), true)
	f.Fuzz(func(t *testing.T, seed uint64, target uint16, n uint8, brotli bool) {
		g := batchtest.New(seed, chainID)
		g.MaxDataLen = 100
		blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 1 + seed%5, FirstSeq: seed % 3, MaxTxs: 5}, 1+int(n)%40)
		c := zlib9
		if brotli {
			c = brotli9
		}
		op, ids := runOp(t, blocks, true, c, uint64(target)+30, 1000)
		ok := runOpkit(t, blocks, true, c, uint64(target)+30, 1000, ids)
		compareRuns(t, op, ok, true)
		// Read opkit's frames back with op-node, channel by channel.
		var elems int
		var body []byte
		for _, enc := range ok.frames {
			frames, err := derive.ParseFrames(append([]byte{0}, enc...))
			if err != nil || len(frames) != 1 {
				t.Fatalf("op-node cannot parse opkit's frame: %v", err)
			}
			body = append(body, frames[0].Data...)
			if !frames[0].IsLast {
				continue
			}
			next, err := derive.BatchReader(bytes.NewReader(body), batch.MaxRLPBytesPerChannelFjord, true)
			if err != nil {
				t.Fatal(err)
			}
			bd, err := next()
			if err != nil {
				t.Fatal(err)
			}
			sp, err := derive.DeriveSpanBatch(bd, blockTime, genesisTime, chainID)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range sp.Batches {
				b := blocks[elems+i]
				if e.Timestamp != b.Time() {
					t.Fatalf("element at %d for block at %d", e.Timestamp, b.Time())
				}
			}
			elems += len(sp.Batches)
			body = nil
		}
		if elems != len(blocks) {
			t.Fatalf("op-node derived %d blocks of %d", elems, len(blocks))
		}
	})
}
