package derive

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

// batchList feeds decoded batches then io.EOF, counting flushes.
type batchList struct {
	fixedOrigin
	items   []decodedBatch
	flushes int
}

func (b *batchList) NextBatch(context.Context) (decodedBatch, error) {
	if len(b.items) == 0 {
		return decodedBatch{}, io.EOF
	}
	d := b.items[0]
	b.items = b.items[1:]
	return d, nil
}

func (b *batchList) FlushChannel() { b.flushes++; b.items = nil }

// l1Line is L1 blocks 0..n-1, 12 s apart from t=1000.
func l1Line(n int) []eth.L1BlockRef {
	out := make([]eth.L1BlockRef, n)
	for i := range out {
		out[i] = eth.L1BlockRef{Number: uint64(i), Time: 1000 + 12*uint64(i), Hash: common.Hash{0xa1, byte(i)}}
		if i > 0 {
			out[i].ParentHash = out[i-1].Hash
		}
	}
	return out
}

// child is the L2 block built from b on parent.
func child(parent eth.L2BlockRef, b *batch.SingularBatch) eth.L2BlockRef {
	seq := uint64(0)
	if b.EpochNum == parent.L1Origin.Number {
		seq = parent.SequenceNumber + 1
	}
	return eth.L2BlockRef{
		Number: parent.Number + 1, Hash: crypto.Keccak256Hash(parent.Hash[:], b.EpochHash[:]), ParentHash: parent.Hash,
		Time: b.Timestamp, L1Origin: eth.BlockID{Hash: b.EpochHash, Number: b.EpochNum}, SequenceNumber: seq,
	}
}

// runBatchStage steps the stage as derivation would: each batch becomes the next safe
// block, io.EOF moves the origin along l1 until it runs out.
func runBatchStage(t *testing.T, s *batchStage, src *batchList, l1 []eth.L1BlockRef, safe eth.L2BlockRef) ([]readyBatch, eth.L2BlockRef) {
	t.Helper()
	var out []readyBatch
	next := src.origin.Number + 1
	for i := 0; i < 10_000; i++ {
		b, err := s.NextBatch(context.Background(), safe)
		switch {
		case err == nil:
			out = append(out, b)
			safe = child(safe, b.SingularBatch)
		case errors.Is(err, ErrNotEnoughData):
		case errors.Is(err, io.EOF):
			if next >= uint64(len(l1)) {
				return out, safe
			}
			src.origin = l1[next]
			next++
		default:
			t.Fatalf("batch stage: %v", err)
		}
	}
	t.Fatal("batch stage does not settle")
	return nil, safe
}

func genesisSafe(l1 []eth.L1BlockRef) eth.L2BlockRef {
	return eth.L2BlockRef{Number: 0, Hash: common.Hash{0x22}, Time: 1000, L1Origin: l1[0].ID()}
}

// With no batches at all, once each epoch's sequence window passes the stage makes
// empty blocks: one per block time until L2 time reaches the next L1 block's, at least
// one per epoch.
func TestForcedEmptyBatches(t *testing.T) {
	l1 := l1Line(16)
	m := &derivetest.Metrics{}
	src := &batchList{fixedOrigin: fixedOrigin{l1[0]}}
	s := newBatchStage(src, testConfig(), derivetest.NewL2(), quietLog(), m)
	s.reset(l1[0])
	got, _ := runBatchStage(t, s, src, l1, genesisSafe(l1))
	// Epochs 0..5 have windows ending at or before L1 15: L2 1002..1070.
	if len(got) != 35 {
		t.Fatalf("%d forced batches, want 35", len(got))
	}
	for i, b := range got {
		ts := 1002 + 2*uint64(i)
		if b.Timestamp != ts || b.EpochNum != (ts-1000)/12 || b.EpochHash != l1[b.EpochNum].Hash || len(b.Transactions) != 0 || !b.forcedEmpty || !b.lastInSpan {
			t.Fatalf("batch %d: %+v forced %v", i, b.SingularBatch, b.forcedEmpty)
		}
	}
	if m.Count("batch/singular/"+VerdictForcedEmpty) != 35 {
		t.Fatalf("counts %v", m.Counts())
	}
}

// An invalid batch flushes its channel; a past one is only skipped; blocks from a span
// batch come out one by one with their parent set, the last one marked.
func TestBatchStageVerdicts(t *testing.T) {
	l1 := l1Line(4)
	safe := genesisSafe(l1)
	good := &batch.SingularBatch{ParentHash: safe.Hash, EpochNum: 0, EpochHash: l1[0].Hash, Timestamp: 1002, Transactions: [][]byte{userTx}}
	past := &batch.SingularBatch{ParentHash: common.Hash{0x21}, EpochNum: 0, EpochHash: l1[0].Hash, Timestamp: 1000}
	wrongParent := &batch.SingularBatch{ParentHash: common.Hash{1}, EpochNum: 0, EpochHash: l1[0].Hash, Timestamp: 1002}

	m := &derivetest.Metrics{}
	src := &batchList{fixedOrigin: fixedOrigin{l1[0]}}
	s := newBatchStage(src, testConfig(), derivetest.NewL2(), quietLog(), m)
	s.reset(l1[0])
	// Move to L1 1 first: batches read while at the safe head's own origin are past.
	src.items = []decodedBatch{{singular: good}}
	if _, err := s.NextBatch(context.Background(), safe); !errors.Is(err, ErrNotEnoughData) {
		t.Fatalf("at the safe head's origin: %v", err)
	}
	src.origin = l1[1]
	src.items = []decodedBatch{{singular: past}, {singular: wrongParent}, {singular: good}}
	got, safe := runBatchStage(t, s, src, l1[:2], safe)
	if len(got) != 0 || src.flushes != 1 {
		t.Fatalf("accepted %d, flushed %d: the drop must flush the channel holding the good batch", len(got), src.flushes)
	}
	if m.Count("batch/singular/"+VerdictPast) != 2 || m.Count("batch/singular/"+VerdictDrop) != 1 {
		t.Fatalf("counts %v", m.Counts())
	}

	sp := span(safe.Hash, l1[0].Hash, blk(1002, 0, userTx), blk(1004, 0), blk(1006, 0, userTx))
	src.items = []decodedBatch{{span: sp}, {singular: &batch.SingularBatch{EpochNum: 0, EpochHash: l1[0].Hash, Timestamp: 1008}}}
	got, _ = runBatchStage(t, s, src, l1[:2], safe)
	if len(got) != 3 {
		t.Fatalf("accepted %d batches, want 3 from the span and none after (wrong parent)", len(got))
	}
	last := []bool{false, false, true}
	for i, b := range got {
		if b.lastInSpan != last[i] || b.forcedEmpty || b.Timestamp != 1002+2*uint64(i) {
			t.Fatalf("span block %d: last %v forced %v", i, b.lastInSpan, b.forcedEmpty)
		}
	}
}
