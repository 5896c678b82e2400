package batch

import (
	"errors"
	"io"
	"testing"

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
