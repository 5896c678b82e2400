package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/rollup/batch/batchtest"
)

// A closed span channel keeps no compressor state: Close drops the compressor's writer
// and the span builder, and the last frame drops the body. InputBytes still answers,
// and no frame follows the last.
func TestSpanChannelOutReleasesCompressorWhenDone(t *testing.T) {
	g := batchtest.New(12, testChainID)
	c := testChain()
	c.MaxTxs = 20
	blocks := g.Blocks(c, 10)
	for _, full := range []bool{false, true} {
		target := uint64(1 << 20)
		if full {
			target = 2_000
		}
		co, err := NewSpanChannelOut(ChannelOutConfig{TargetSize: target, ChainID: testChainID, GenesisTime: testGenesis})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if _, err := co.AddBlock(b); errors.Is(err, ErrChannelFull) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if full != (co.FullErr() != nil) {
			t.Fatalf("full %v: channel full: %v", full, co.FullErr())
		}
		input := co.InputBytes()
		if err := co.Close(); err != nil {
			t.Fatal(err)
		}
		if co.comp.w != nil || co.comp.zw != nil || co.span != nil || co.scratch != nil {
			t.Fatalf("full %v: the closed channel keeps its compressor or span builder", full)
		}
		if co.InputBytes() != input {
			t.Fatalf("full %v: input bytes %d after close, %d before", full, co.InputBytes(), input)
		}
		frames := drainFrames(t, co, 500)
		if co.comp != nil {
			t.Fatalf("full %v: the body is kept after the last frame", full)
		}
		if _, err := co.OutputFrame(500); !errors.Is(err, io.EOF) {
			t.Fatalf("full %v: after the last frame: %v", full, err)
		}
		batches := readChannel(t, frames)
		span, err := batches[0].(*RawSpanBatch).Derive(testGenesis, testBlockTime, testChainID)
		if err != nil {
			t.Fatal(err)
		}
		checkElements(t, blocks[:co.Blocks()], span.Elements)
	}
}

// fillSpanChannels cuts blocks into span channels at target, as the batcher does (a
// refused block opens the next channel), and returns every channel's frames.
func fillSpanChannels(tb testing.TB, blocks []*types.Block, cfg ChannelOutConfig, frameSize int) [][]Frame {
	tb.Helper()
	var out [][]Frame
	for next := 0; next < len(blocks); {
		cfg.ID = ChannelID{byte(len(out)), 1}
		co, err := NewSpanChannelOut(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		for next < len(blocks) {
			if _, err := co.AddBlock(blocks[next]); errors.Is(err, ErrChannelFull) {
				break
			} else if err != nil {
				tb.Fatal(err)
			}
			next++
		}
		if err := co.Close(); err != nil {
			tb.Fatal(err)
		}
		var frames []Frame
		for {
			f, err := co.OutputFrame(frameSize)
			if err != nil {
				tb.Fatal(err)
			}
			frames = append(frames, f)
			if f.IsLast {
				break
			}
		}
		out = append(out, frames)
	}
	return out
}

func framesDigest(chans [][]Frame) string {
	h := sha256.New()
	for _, fs := range chans {
		for _, f := range fs {
			enc, _ := f.MarshalBinary()
			h.Write(enc)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The span channel out's output for fixed blocks and settings is pinned: a change to
// when it compresses must not change a byte of what it posts.
func TestSpanChannelOutOutputIsPinned(t *testing.T) {
	g := batchtest.New(13, testChainID)
	c := testChain()
	c.MaxTxs = 30
	blocks := g.Blocks(c, 120)
	for _, tc := range []struct {
		name string
		cfg  ChannelOutConfig
		want string
	}{
		{"zlib-20k", ChannelOutConfig{TargetSize: 20_000}, "27221a2b5ad00542ff42e91c42293569754078cbfb964a77dd033d7439d2a38a"},
		{"zlib-7k", ChannelOutConfig{TargetSize: 7_000}, "e679023e127b527ad2cfb5ebc8bb64b3ae3bd9c430aaa7f05db9a260ee83ff71"},
		{"zlib-20k-span2", ChannelOutConfig{TargetSize: 20_000, MaxBlocksPerSpanBatch: 2}, "08d4a182169276c248c806a9c62cc40368ba5b2151bc10acc52ccee4237532ba"},
		{"zlib-rlp-bound", ChannelOutConfig{TargetSize: 1 << 20, MaxRLPBytes: 30_000}, "9da3edd1526a1de5746d9fe2f0dbe8b5b70e53517102cfe8e4796de3279fef0e"},
		{"brotli9-20k", ChannelOutConfig{TargetSize: 20_000, Compression: Brotli, Level: 9}, "4697d6bddba07c7b60b397e94716341ed000accc9154b0788c9b47c830c58c1f"},
	} {
		tc.cfg.ChainID, tc.cfg.GenesisTime = testChainID, testGenesis
		got := framesDigest(fillSpanChannels(t, blocks, tc.cfg, 3_000))
		if got != tc.want {
			t.Errorf("%s: output digest %s, want %s", tc.name, got, tc.want)
		}
	}
}

// BenchmarkSpanChannelOutBlobs fills six-blob span channels (zlib 9) from the same
// blocks and reports the process CPU time (user + system, from getrusage) per MB of
// batch data taken in.
func BenchmarkSpanChannelOutBlobs(b *testing.B) {
	g := batchtest.New(14, testChainID)
	g.MaxDataLen = 200
	c := testChain()
	c.MaxTxs = 50
	blocks := g.Blocks(c, 1500)
	cfg := ChannelOutConfig{TargetSize: 6 * (130_044 - 1 - FrameOverhead), ChainID: testChainID, GenesisTime: testGenesis}
	var input int
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime(b)
		for _, fs := range fillSpanChannels(b, blocks, cfg, 130_044-1) {
			_ = fs
		}
		cpu += cpuTime(b) - start
	}
	for _, blk := range blocks {
		for _, tx := range blk.Transactions() {
			input += int(tx.Size())
		}
	}
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N)/(float64(input)/1e6), "cpu-ms/MB")
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
