package batch

import (
	"bytes"
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"

	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/batch/batchtest"
)

// BenchmarkSpanChannelOut fills span-batch channels from the same 200 blocks (up to 50
// transactions each) with op-batcher's channel out and opkit's, at the calldata
// batcher's default target (one 120,000-byte frame), and reports the L1 bytes each
// produced.
func BenchmarkSpanChannelOut(b *testing.B) {
	g := batchtest.New(99, chainID)
	g.MaxDataLen = 200
	blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 7, MaxTxs: 50}, 200)
	const target = 120_000 - 1 - 23
	for _, tc := range []struct {
		name string
		c    codec
	}{{"zlib", zlib9}, {"brotli10", brotli10}} {
		b.Run("op-batcher/"+tc.name, func(b *testing.B) {
			var out int
			for i := 0; i < b.N; i++ {
				run, _ := runOp(b, blocks, true, tc.c, target, 120_000-1)
				out = runBytes(run)
			}
			b.ReportMetric(float64(out), "L1-bytes")
		})
		b.Run("opkit/"+tc.name, func(b *testing.B) {
			var out int
			for i := 0; i < b.N; i++ {
				run := runOpkit(b, blocks, true, tc.c, target, 120_000-1, nil)
				out = runBytes(run)
			}
			b.ReportMetric(float64(out), "L1-bytes")
		})
	}
}

func runBytes(r channelRun) int {
	n := 0
	for _, f := range r.frames {
		n += len(f)
	}
	return n
}

// BenchmarkChannelRead decodes one span-batch channel body of 200 blocks (up to 50
// transactions each) into per-block transactions with op-node's reader and opkit's.
func BenchmarkChannelRead(b *testing.B) {
	g := batchtest.New(98, chainID)
	g.MaxDataLen = 200
	blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 7, MaxTxs: 50}, 200)
	co, err := batch.NewSpanChannelOut(batch.ChannelOutConfig{TargetSize: 1 << 30, ChainID: chainID, GenesisTime: genesisTime})
	if err != nil {
		b.Fatal(err)
	}
	for _, blk := range blocks {
		if _, err := co.AddBlock(blk); err != nil {
			b.Fatal(err)
		}
	}
	if err := co.Close(); err != nil {
		b.Fatal(err)
	}
	f, err := co.OutputFrame(1 << 30)
	if err != nil {
		b.Fatal(err)
	}
	body := f.Data
	b.Run("op-node", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			next, err := derive.BatchReader(bytes.NewReader(body), batch.MaxRLPBytesPerChannelFjord, true)
			if err != nil {
				b.Fatal(err)
			}
			bd, err := next()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := derive.DeriveSpanBatch(bd, blockTime, genesisTime, chainID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("opkit", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cr, err := batch.NewChannelReader(bytes.NewReader(body), batch.MaxRLPBytesPerChannelFjord, true)
			if err != nil {
				b.Fatal(err)
			}
			raw, err := cr.Next()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := raw.(*batch.RawSpanBatch).Derive(genesisTime, blockTime, chainID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
