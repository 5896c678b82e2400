package batch

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/batch/batchtest"
)

// FuzzDiffSingular decodes the same singular batch bytes with both decoders and
// re-encodes what they accept.
func FuzzDiffSingular(f *testing.F) {
	g := batchtest.New(1, chainID)
	for _, b := range g.Blocks(batchtest.Chain{GenesisTime: genesisTime, MaxTxs: 3}, 4) {
		sb, _, err := batch.BlockToSingularBatch(b)
		if err != nil {
			f.Fatal(err)
		}
		enc, _ := sb.MarshalBinary()
		f.Add(enc[1:])
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		data := append([]byte{batch.SingularBatchType}, payload...)
		var op derive.BatchData
		opErr := op.UnmarshalBinary(data)
		ok, okErr := batch.UnmarshalBatch(data)
		if (opErr == nil) != (okErr == nil) {
			t.Fatalf("op-node err %v, opkit err %v", opErr, okErr)
		}
		if opErr != nil {
			return
		}
		opSB, err := derive.GetSingularBatch(&op)
		if err != nil {
			t.Fatal(err)
		}
		okSB := ok.(*batch.SingularBatch)
		sameSingular(t, opSB, okSB)
		opEnc, err := op.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		okEnc, err := okSB.MarshalBinary()
		if err != nil || !bytes.Equal(opEnc, okEnc) {
			t.Fatalf("re-encodings differ (%v)", err)
		}
	})
}

// spanSeeds are span batches opkit encoded from generated blocks of every tx kind.
func spanSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for seed := uint64(0); seed < 6; seed++ {
		g := batchtest.New(seed, chainID)
		if seed < 5 {
			g.TxTypes = []batchtest.TxKind{batchtest.TxKind(seed)}
		}
		g.MaxDataLen = 40
		blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 9, FirstSeq: seed % 2, MaxTxs: 3}, 4)
		sb := batch.NewSpanBatchBuilder(genesisTime, chainID)
		for _, b := range blocks {
			s, info, err := batch.BlockToSingularBatch(b)
			if err != nil {
				f.Fatal(err)
			}
			if err := sb.AppendSingular(s, info.SequenceNumber); err != nil {
				f.Fatal(err)
			}
		}
		enc, err := sb.Raw().MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, enc)
	}
	return out
}

// FuzzDiffSpan decodes and derives the same span batch bytes with both codecs: the
// same accept/reject at each step, the same elements, the same re-encoding.
func FuzzDiffSpan(f *testing.F) {
	for _, s := range spanSeeds(f) {
		f.Add(s[1:], uint64(genesisTime), uint64(blockTime))
	}
	f.Fuzz(func(t *testing.T, payload []byte, genesis, bt uint64) {
		diffSpan(t, append([]byte{batch.SpanBatchType}, payload...), genesis, bt)
	})
}

func diffSpan(t *testing.T, data []byte, genesis, bt uint64) {
	var op derive.BatchData
	opErr := op.UnmarshalBinary(data)
	ok, okErr := batch.UnmarshalBatch(data)
	if (opErr == nil) != (okErr == nil) {
		t.Fatalf("decode: op-node err %v, opkit err %v", opErr, okErr)
	}
	if opErr != nil {
		return
	}
	raw := ok.(*batch.RawSpanBatch)
	opEnc, err := op.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	okEnc, err := raw.MarshalBinary()
	if err != nil || !bytes.Equal(opEnc, okEnc) {
		t.Fatalf("re-encodings differ (%v)", err)
	}
	opSpan, opErr := derive.DeriveSpanBatch(&op, bt, genesis, chainID)
	okSpan, okErr := raw.Derive(genesis, bt, chainID)
	if (opErr == nil) != (okErr == nil) {
		t.Fatalf("derive: op-node err %v, opkit err %v", opErr, okErr)
	}
	if opErr == nil {
		sameSpan(t, opSpan, okSpan)
	}
}

// TestSpanEncodingMatchesOpNode builds span batches from the same blocks with both
// codecs: identical bytes.
func TestSpanEncodingMatchesOpNode(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		// Odd seeds run Jovian, whose L1-info deposit has its own layout.
		jovian := seed%2 == 1
		cfg := opConfig()
		if jovian {
			zero := uint64(0)
			cfg.JovianTime = &zero
		}
		g := batchtest.New(seed+40, chainID)
		blocks := g.Blocks(batchtest.Chain{GenesisTime: genesisTime, BlockTime: blockTime, L1Start: 3, FirstSeq: seed % 3, MaxTxs: 8, Jovian: jovian}, 1+int(seed)*2)
		opSpan := derive.NewSpanBatch(genesisTime, chainID)
		okSpan := batch.NewSpanBatchBuilder(genesisTime, chainID)
		for _, b := range blocks {
			opSB, info, err := derive.BlockToSingularBatch(cfg, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := opSpan.AppendSingularBatch(opSB, info.SequenceNumber); err != nil {
				t.Fatal(err)
			}
			okSB, okInfo, err := batch.BlockToSingularBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			sameSingular(t, opSB, okSB)
			if okInfo.SequenceNumber != info.SequenceNumber {
				t.Fatalf("sequence numbers differ")
			}
			if err := okSpan.AppendSingular(okSB, okInfo.SequenceNumber); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := opSpan.ToRawSpanBatch()
		if err != nil {
			t.Fatal(err)
		}
		opEnc, err := derive.NewBatchData(raw).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		okEnc, err := okSpan.Raw().MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(opEnc, okEnc) {
			t.Fatalf("seed %d: span encodings differ (%d vs %d bytes)", seed, len(opEnc), len(okEnc))
		}
		// And op-node derives opkit's bytes to the blocks.
		diffSpan(t, okEnc, genesisTime, blockTime)
	}
}

// channelBody turns the fuzz input into a channel body: compressed with zlib or brotli,
// or used as it is.
func channelBody(t *testing.T, content []byte, mode byte) []byte {
	var buf bytes.Buffer
	switch mode % 3 {
	case 0:
		w, _ := zlib.NewWriterLevel(&buf, 9)
		_, _ = w.Write(content)
		_ = w.Close()
	case 1:
		buf.WriteByte(batch.ChannelVersionBrotli)
		w := brotli.NewWriterLevel(&buf, 5)
		_, _ = w.Write(content)
		_ = w.Close()
	default:
		return content
	}
	b := buf.Bytes()
	if mode&0x80 != 0 && len(b) > 4 {
		// Cut the stream short: the trailer (or more) goes missing.
		b = b[:len(b)-1-int(mode&0x0f)%len(b)]
	}
	return b
}

// FuzzDiffChannel reads the same channel body with op-node's BatchReader and opkit's
// ChannelReader: the same batches in the same order, ending the same way.
func FuzzDiffChannel(f *testing.F) {
	var content bytes.Buffer
	for _, s := range spanSeeds(f)[:3] {
		_ = rlp.Encode(&content, s)
	}
	g := batchtest.New(9, chainID)
	for _, b := range g.Blocks(batchtest.Chain{GenesisTime: genesisTime, MaxTxs: 2}, 2) {
		sb, _, _ := batch.BlockToSingularBatch(b)
		_ = batch.WriteChannelEntry(&content, sb)
	}
	for mode := byte(0); mode < 3; mode++ {
		f.Add(content.Bytes(), mode, true, uint32(0))
		f.Add(content.Bytes(), mode|0x80, true, uint32(3000))
	}
	f.Add(content.Bytes(), byte(1), false, uint32(0))
	f.Fuzz(func(t *testing.T, content []byte, mode byte, fjord bool, limit uint32) {
		body := channelBody(t, content, mode)
		max := uint64(limit)
		if max == 0 {
			max = batch.MaxRLPBytesPerChannel
		}
		diffChannel(t, body, max, fjord)
	})
}

func diffChannel(t *testing.T, body []byte, max uint64, fjord bool) {
	opNext, opErr := derive.BatchReader(bytes.NewReader(body), max, fjord)
	cr, okErr := batch.NewChannelReader(bytes.NewReader(body), max, fjord)
	if (opErr == nil) != (okErr == nil) {
		t.Fatalf("open: op-node err %v, opkit err %v", opErr, okErr)
	}
	if opErr != nil {
		return
	}
	for i := 0; ; i++ {
		opB, opErr := opNext()
		okB, okErr := cr.Next()
		// Either error ends the channel in op-node's channel stage, whatever it is: a
		// batch that fails to decode can even come back from op-node as a bare io.EOF
		// (an empty singular payload) or wrap one (a span cut short at its first field).
		// opkit returns io.EOF only for the clean end.
		if (opErr == nil) != (okErr == nil) || errors.Is(okErr, io.EOF) != (okErr == io.EOF) {
			t.Fatalf("batch %d: op-node err %v, opkit err %v", i, opErr, okErr)
		}
		if opErr != nil {
			return
		}
		if int(opB.GetBatchType()) != int(okB.BatchType()) {
			t.Fatalf("batch %d: types %d and %d", i, opB.GetBatchType(), okB.BatchType())
		}
		switch k := okB.(type) {
		case *batch.SingularBatch:
			opSB, err := derive.GetSingularBatch(opB)
			if err != nil {
				t.Fatal(err)
			}
			sameSingular(t, opSB, k)
		case *batch.RawSpanBatch:
			opSpan, opErr := derive.DeriveSpanBatch(opB, blockTime, genesisTime, chainID)
			okSpan, okErr := k.Derive(genesisTime, blockTime, chainID)
			if (opErr == nil) != (okErr == nil) {
				t.Fatalf("batch %d derive: op-node err %v, opkit err %v", i, opErr, okErr)
			}
			if opErr == nil {
				sameSpan(t, opSpan, okSpan)
			}
		}
	}
}

var _ = big.NewInt

// TestSpanTxDataLimitMatchesOpNode: a transaction's data at and one byte past
// MaxSpanBatchElementCount, header included.
func TestSpanTxDataLimitMatchesOpNode(t *testing.T) {
	for _, total := range []int{batch.MaxSpanBatchElementCount - 1, batch.MaxSpanBatchElementCount, batch.MaxSpanBatchElementCount + 1} {
		b := []byte{batch.SpanBatchType, 0, 0}
		b = append(b, make([]byte, 40)...)
		b = append(b, 1, 1, 1, 0, 0)
		b = append(b, make([]byte, 64+20)...)
		content := total - 4
		b = append(b, 0xFA, byte(content>>16), byte(content>>8), byte(content))
		b = append(b, make([]byte, content)...)
		b = append(b, 0, 0, 0)
		var op derive.BatchData
		opErr := op.UnmarshalBinary(b)
		_, okErr := batch.UnmarshalBatch(b)
		if (opErr == nil) != (okErr == nil) {
			t.Fatalf("%d bytes: op-node err %v, opkit err %v", total, opErr, okErr)
		}
		if (total <= batch.MaxSpanBatchElementCount) != (okErr == nil) {
			t.Fatalf("%d bytes: err %v", total, okErr)
		}
	}
}

// TestZlibTrailerLikeOpNode: op-node never relies on a zlib stream's checksum. A body
// cut inside its Adler-32 trailer ends cleanly after the batches it holds, and a wrong
// checksum only surfaces as an error after them; opkit reads both the same way.
func TestZlibTrailerLikeOpNode(t *testing.T) {
	var raw bytes.Buffer
	if err := batch.WriteChannelEntry(&raw, &batch.SingularBatch{Timestamp: 5, Transactions: [][]byte{{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	w, _ := zlib.NewWriterLevel(&body, 9)
	_, _ = w.Write(raw.Bytes())
	_ = w.Close()
	full := body.Bytes()
	bad := append([]byte{}, full...)
	bad[len(bad)-1] ^= 1
	for name, b := range map[string][]byte{"cut 1": full[:len(full)-1], "cut 4": full[:len(full)-4], "bad checksum": bad} {
		diffChannel(t, b, 1000, true)
		cr, err := batch.NewChannelReader(bytes.NewReader(b), 1000, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cr.Next(); err != nil {
			t.Fatalf("%s: the batch before the trailer: %v", name, err)
		}
		_, err = cr.Next()
		if (name == "bad checksum") == (err == io.EOF) {
			t.Fatalf("%s: end %v", name, err)
		}
	}
}
