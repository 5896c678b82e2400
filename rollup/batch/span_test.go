package batch

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch/batchtest"
)

var testChainID = big.NewInt(901)

const (
	testGenesis   = 1_700_000_000
	testBlockTime = 2
)

func testChain() batchtest.Chain {
	return batchtest.Chain{GenesisTime: testGenesis, BlockTime: testBlockTime, FirstNumber: 10, L1Start: 50, MaxTxs: 6}
}

func userTxs(t testing.TB, b *types.Block) [][]byte {
	var out [][]byte
	for _, tx := range b.Transactions() {
		if tx.Type() == types.DepositTxType {
			continue
		}
		enc, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, enc)
	}
	return out
}

func checkElements(t *testing.T, blocks []*types.Block, els []SpanBatchElement) {
	t.Helper()
	if len(els) != len(blocks) {
		t.Fatalf("%d elements for %d blocks", len(els), len(blocks))
	}
	for i, b := range blocks {
		sb, _, err := BlockToSingularBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		e := els[i]
		if e.Timestamp != b.Time() || e.EpochNum != sb.EpochNum {
			t.Fatalf("block %d: element ts %d epoch %d, want %d %d", i, e.Timestamp, e.EpochNum, b.Time(), sb.EpochNum)
		}
		want := userTxs(t, b)
		if len(e.Transactions) != len(want) {
			t.Fatalf("block %d: %d txs, want %d", i, len(e.Transactions), len(want))
		}
		for j := range want {
			if !bytes.Equal(e.Transactions[j], want[j]) {
				t.Fatalf("block %d tx %d differs:\n got %x\nwant %x", i, j, e.Transactions[j], want[j])
			}
		}
	}
}

func TestSpanBatchRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		g := batchtest.New(seed, testChainID)
		c := testChain()
		c.FirstSeq = seed % 3
		blocks := g.Blocks(c, 1+int(seed)*3)
		sb := NewSpanBatchBuilder(testGenesis, testChainID)
		for _, b := range blocks {
			single, info, err := BlockToSingularBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := sb.AppendSingular(single, info.SequenceNumber); err != nil {
				t.Fatal(err)
			}
		}
		enc, err := sb.Raw().MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != sb.WireLen() {
			t.Fatalf("seed %d: WireLen %d, encoding %d", seed, sb.WireLen(), len(enc))
		}
		dec, err := UnmarshalBatch(enc)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		raw := dec.(*RawSpanBatch)
		re, _ := raw.MarshalBinary()
		if !bytes.Equal(re, enc) {
			t.Fatalf("seed %d: re-encoding differs", seed)
		}
		span, err := raw.Derive(testGenesis, testBlockTime, testChainID)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkElements(t, blocks, span.Elements)
		if !span.CheckParent(blocks[0].ParentHash()) {
			t.Fatal("parent check mismatch")
		}
		if !span.CheckOrigin(batchtest.L1Hash(span.LastEpoch())) {
			t.Fatal("origin check mismatch")
		}
		// The first origin bit says whether the span starts an epoch.
		if got := raw.OriginBits.Bit(0) == 1; got != (c.FirstSeq == 0) {
			t.Fatalf("origin bit 0 = %v with first seq %d", got, c.FirstSeq)
		}
	}
}

// TestSpanBatchTxKinds checks each transaction kind on its own, the v each comes back
// with included.
func TestSpanBatchTxKinds(t *testing.T) {
	kinds := []batchtest.TxKind{batchtest.LegacyUnprotected, batchtest.LegacyProtected, batchtest.AccessList,
		batchtest.DynamicFee, batchtest.SetCode}
	for _, k := range kinds {
		g := batchtest.New(uint64(k)+100, testChainID)
		g.TxTypes = []batchtest.TxKind{k}
		blocks := g.Blocks(testChain(), 5)
		co, err := NewSpanChannelOut(ChannelOutConfig{TargetSize: 1 << 20, ChainID: testChainID, GenesisTime: testGenesis})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if _, err := co.AddBlock(b); err != nil {
				t.Fatal(err)
			}
		}
		raw := co.span.Raw()
		if k <= batchtest.LegacyProtected && raw.Txs.ProtectedBits.Len() != raw.TxCount() {
			t.Fatalf("kind %d: %d protected bits for %d txs", k, raw.Txs.ProtectedBits.Len(), raw.TxCount())
		}
		if k == batchtest.LegacyProtected && raw.Txs.ProtectedBits.Ones() != raw.TxCount() {
			t.Fatalf("protected legacy txs not marked protected")
		}
		enc, _ := raw.MarshalBinary()
		dec, err := UnmarshalBatch(enc)
		if err != nil {
			t.Fatal(err)
		}
		span, err := dec.(*RawSpanBatch).Derive(testGenesis, testBlockTime, testChainID)
		if err != nil {
			t.Fatalf("kind %d: %v", k, err)
		}
		checkElements(t, blocks, span.Elements)
	}
}

func TestSpanBatchRejectsWrongChain(t *testing.T) {
	g := batchtest.New(7, big.NewInt(5))
	g.TxTypes = []batchtest.TxKind{batchtest.DynamicFee}
	tx := g.Tx()
	sb := NewSpanBatchBuilder(testGenesis, testChainID)
	err := sb.AppendBlock([32]byte{}, 1, [32]byte{}, testGenesis+2, 0, []*types.Transaction{tx})
	if !errors.Is(err, ErrInvalidSpanTx) || sb.Len() != 0 || len(sb.Raw().Txs.Nonces) != 0 {
		t.Fatalf("foreign chain tx: %v, %d blocks", err, sb.Len())
	}
}

func TestSpanBatchDecodeLimits(t *testing.T) {
	g := batchtest.New(3, testChainID)
	blocks := g.Blocks(testChain(), 3)
	sb := NewSpanBatchBuilder(testGenesis, testChainID)
	for _, b := range blocks {
		s, info, _ := BlockToSingularBatch(b)
		if err := sb.AppendSingular(s, info.SequenceNumber); err != nil {
			t.Fatal(err)
		}
	}
	enc, _ := sb.Raw().MarshalBinary()
	// Every strict prefix fails to decode.
	for n := 1; n < len(enc); n++ {
		if _, err := UnmarshalBatch(enc[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded", n, len(enc))
		}
	}
	// Bytes after the last column are ignored, as op-node ignores them.
	if _, err := UnmarshalBatch(append(append([]byte{}, enc...), 1, 2, 3)); err != nil {
		t.Fatalf("trailing bytes: %v", err)
	}
	// A block count over the limit, or zero.
	prefix := []byte{SpanBatchType, 0, 0}
	prefix = append(prefix, make([]byte, 40)...)
	for _, count := range [][]byte{{0}, {0x81, 0xDA, 0xC4, 0x09}} { // 0, 10_000_001
		if _, err := UnmarshalBatch(append(append([]byte{}, prefix...), count...)); err == nil {
			t.Fatalf("block count %x accepted", count)
		}
	}
}

func drainFrames(t *testing.T, co ChannelOut, maxSize int) []Frame {
	t.Helper()
	var frames []Frame
	for {
		f, err := co.OutputFrame(maxSize)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
		if f.IsLast {
			return frames
		}
		if len(frames) > 10000 {
			t.Fatal("no last frame")
		}
	}
}

func readChannel(t *testing.T, frames []Frame) []Batch {
	t.Helper()
	var body []byte
	for i, f := range frames {
		if int(f.Number) != i {
			t.Fatalf("frame %d numbered %d", i, f.Number)
		}
		data, err := TxData(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseTxData(data)
		if err != nil || len(parsed) != 1 {
			t.Fatalf("frame %d: %v", i, err)
		}
		body = append(body, parsed[0].Data...)
	}
	cr, err := NewChannelReader(bytes.NewReader(body), MaxRLPBytesPerChannelFjord, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []Batch
	for {
		b, err := cr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func TestSpanChannelOutFills(t *testing.T) {
	for _, algo := range []Compression{Zlib, Brotli} {
		g := batchtest.New(11, testChainID)
		c := testChain()
		c.MaxTxs = 20
		blocks := g.Blocks(c, 50)
		const target = 20_000
		var derived []SpanBatchElement
		next := 0
		for next < len(blocks) {
			// Brotli at level 9: level 10's cost buys nothing this test looks at.
			co, err := NewSpanChannelOut(ChannelOutConfig{TargetSize: target, Compression: algo, Level: 9, ChainID: testChainID, GenesisTime: testGenesis})
			if err != nil {
				t.Fatal(err)
			}
			for next < len(blocks) {
				_, err := co.AddBlock(blocks[next])
				if errors.Is(err, ErrChannelFull) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				next++
			}
			if co.FullErr() != nil && co.Blocks() > 1 && uint64(co.ReadyBytes()) > target {
				t.Fatalf("%v: full channel of %d blocks is %d bytes, over the target", algo, co.Blocks(), co.ReadyBytes())
			}
			if err := co.Close(); err != nil {
				t.Fatal(err)
			}
			frames := drainFrames(t, co, 3000)
			batches := readChannel(t, frames)
			if len(batches) != 1 {
				t.Fatalf("%d batches in a span channel", len(batches))
			}
			span, err := batches[0].(*RawSpanBatch).Derive(testGenesis, testBlockTime, testChainID)
			if err != nil {
				t.Fatal(err)
			}
			if len(span.Elements) != co.Blocks() {
				t.Fatalf("%d elements, channel has %d blocks", len(span.Elements), co.Blocks())
			}
			derived = append(derived, span.Elements...)
		}
		checkElements(t, blocks, derived)
	}
}

func TestSingularChannelOut(t *testing.T) {
	g := batchtest.New(12, testChainID)
	c := testChain()
	c.MaxTxs = 10
	blocks := g.Blocks(c, 60)
	next := 0
	var got []*SingularBatch
	for next < len(blocks) {
		co, err := NewSingularChannelOut(ChannelOutConfig{TargetSize: 8000, ChainID: testChainID})
		if err != nil {
			t.Fatal(err)
		}
		for next < len(blocks) {
			if _, err := co.AddBlock(blocks[next]); errors.Is(err, ErrChannelFull) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			next++
		}
		if err := co.Close(); err != nil {
			t.Fatal(err)
		}
		if co.Blocks() == 0 {
			t.Fatal("empty channel")
		}
		for _, b := range readChannel(t, drainFrames(t, co, 1000)) {
			got = append(got, b.(*SingularBatch))
		}
	}
	if len(got) != len(blocks) {
		t.Fatalf("%d batches for %d blocks", len(got), len(blocks))
	}
	for i, b := range blocks {
		want, _, _ := BlockToSingularBatch(b)
		a, _ := got[i].MarshalBinary()
		w, _ := want.MarshalBinary()
		if !bytes.Equal(a, w) {
			t.Fatalf("block %d batch differs", i)
		}
	}
}

func TestChannelOutFrameRules(t *testing.T) {
	co, err := NewSpanChannelOut(ChannelOutConfig{TargetSize: 1 << 20, ChainID: testChainID, GenesisTime: testGenesis})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := co.OutputFrame(FrameOverhead - 1); !errors.Is(err, ErrMaxFrameSizeTooSmall) {
		t.Fatalf("tiny frame: %v", err)
	}
	blocks := batchtest.New(1, testChainID).Blocks(testChain(), 2)
	for _, b := range blocks {
		if _, err := co.AddBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	if co.ReadyBytes() != 0 {
		t.Fatal("ready bytes before close")
	}
	if err := co.Close(); err != nil {
		t.Fatal(err)
	}
	if err := co.Close(); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := co.AddBlock(blocks[0]); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("add after close: %v", err)
	}
	ready := co.ReadyBytes()
	frames := drainFrames(t, co, FrameOverhead+100)
	if want := (ready + 99) / 100; len(frames) != want {
		t.Fatalf("%d frames for %d bytes, want %d", len(frames), ready, want)
	}
}

func TestSpanSingularBatches(t *testing.T) {
	s := &SpanBatch{Elements: []SpanBatchElement{{EpochNum: 5, Timestamp: 10}, {EpochNum: 5, Timestamp: 12}, {EpochNum: 6, Timestamp: 14}, {EpochNum: 7, Timestamp: 16}}}
	origins := []eth.L1BlockRef{{Number: 4, Hash: common.Hash{4}}, {Number: 5, Hash: common.Hash{5}}, {Number: 6, Hash: common.Hash{6}}, {Number: 7, Hash: common.Hash{7}}}
	got, err := s.SingularBatches(origins, eth.L2BlockRef{Time: 10, L1Origin: eth.BlockID{Number: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Timestamp != 12 || got[0].EpochHash != (common.Hash{5}) || got[2].EpochHash != (common.Hash{7}) {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.SingularBatches(origins[:3], eth.L2BlockRef{Time: 10, L1Origin: eth.BlockID{Number: 5}}); err == nil {
		t.Fatal("missing origin accepted")
	}
	if _, err := s.SingularBatches(origins, eth.L2BlockRef{Time: 10, L1Origin: eth.BlockID{Number: 6}}); err == nil {
		t.Fatal("element behind the safe origin accepted")
	}
}

// spanWithTxList is a one-block, one-transaction span batch whose legacy tx data is an
// RLP list of total encoded size total (header included).
func spanWithTxList(total int) []byte {
	b := []byte{SpanBatchType, 0, 0}
	b = append(b, make([]byte, 40)...)
	b = append(b, 1, 1, 1) // one block, origin bit set, one tx
	b = append(b, 0, 0)    // contract creation, y parity
	b = append(b, make([]byte, 64+20)...)
	content := total - 4
	b = append(b, 0xFA, byte(content>>16), byte(content>>8), byte(content))
	b = append(b, make([]byte, content)...)
	return append(b, 0, 0, 0) // nonce, gas, protected bits
}

func TestSpanBatchTxDataLimit(t *testing.T) {
	if _, err := UnmarshalBatch(spanWithTxList(MaxSpanBatchElementCount)); err != nil {
		t.Fatalf("tx data of exactly the limit: %v", err)
	}
	if _, err := UnmarshalBatch(spanWithTxList(MaxSpanBatchElementCount + 1)); !errors.Is(err, ErrSpanBatchTooBig) {
		t.Fatalf("tx data past the limit: %v", err)
	}
}

// TestSpanBatchLayout pins a two-block span with no transactions against the wire
// format written out by hand from the specification.
func TestSpanBatchLayout(t *testing.T) {
	parent := common.Hash{0xaa, 0xbb}
	h6 := common.Hash{0x66, 0x01}
	sb := NewSpanBatchBuilder(testGenesis, testChainID)
	if err := sb.AppendBlock(parent, 5, common.Hash{0x55}, testGenesis+2, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := sb.AppendBlock(common.Hash{1}, 6, h6, testGenesis+4, 0, nil); err != nil {
		t.Fatal(err)
	}
	enc, err := sb.Raw().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{SpanBatchType, 2, 6} // rel timestamp 2, last origin 6
	want = append(want, parent[:20]...)
	want = append(want, h6[:20]...)
	want = append(want, 2, 0x03, 0, 0) // 2 blocks, both start an epoch, no txs in either
	if !bytes.Equal(enc, want) {
		t.Fatalf("got  %x\nwant %x", enc, want)
	}
	span, err := sb.Raw().Derive(testGenesis, testBlockTime, testChainID)
	if err != nil {
		t.Fatal(err)
	}
	if span.StartEpoch() != 5 || span.LastEpoch() != 6 || span.FirstTimestamp() != testGenesis+2 || span.LastTimestamp() != testGenesis+4 {
		t.Fatalf("derived %+v", span.Elements)
	}
}
