package derive

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

// FuzzFrameStages feeds arbitrary batcher data items (split at 0xff 0xfe) through the
// frame queue, channel assembler and channel reader: nothing may panic, and every
// channel the assembler emits must have come from frames of one channel in order.
func FuzzFrameStages(f *testing.F) {
	body := zlibChannel(f, &batch.SingularBatch{Timestamp: 1002, Transactions: [][]byte{{2, 0xc0}}})
	item := func(frames ...batch.Frame) []byte {
		d, err := batch.TxData(frames...)
		if err != nil {
			f.Fatal(err)
		}
		return d
	}
	f.Add(item(fr(0, 0, true, body...)))
	f.Add(append(append(item(fr(0, 0, false, body[:3]...)), 0xff, 0xfe), item(fr(0, 1, true, body[3:]...))...))
	f.Add(item(fr(0, 0, false, 1), fr(1, 0, true, body...), fr(1, 1, true)))
	f.Add([]byte{0, 0xff, 0xfe, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var items [][]byte
		for start, i := 0, 0; i <= len(data); i++ {
			if i == len(data) || (i+1 < len(data) && data[i] == 0xff && data[i+1] == 0xfe) {
				items = append(items, data[start:i])
				start = i + 2
				i++
			}
		}
		m := &derivetest.Metrics{}
		src := &dataList{items: items}
		cfg := testConfig()
		q := newFrameQueue(src, cfg, quietLog(), m)
		a := newChannelAssembler(q, cfg, quietLog(), m)
		r := newChannelReader(a, cfg, quietLog(), m)
		for i := 0; i < 1_000_000; i++ {
			_, err := r.NextBatch(context.Background())
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && !errors.Is(err, ErrNotEnoughData) {
				t.Fatalf("stage error on garbage: %v", err)
			}
		}
		t.Fatal("frame stages do not end")
	})
}

// FuzzPruneFrames checks the pruned frames keep their order and leave no pair the
// Holocene rules would still prune.
func FuzzPruneFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 1, 1, 0, 1})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var in []batch.Frame
		for i := 0; i+2 < len(data); i += 3 {
			in = append(in, fr(data[i]%3, uint16(data[i+1]%4), data[i+2]%2 == 1, byte(i>>8), byte(i)))
		}
		dropped := 0
		out := pruneFrames(append([]batch.Frame(nil), in...), func(batch.Frame) { dropped++ })
		if len(out)+dropped != len(in) {
			t.Fatalf("%d kept + %d dropped != %d", len(out), dropped, len(in))
		}
		for i := 1; i < len(out); i++ {
			cur, next := out[i-1], out[i]
			if string(cur.Data) >= string(next.Data) {
				t.Fatal("order changed")
			}
			if cur.ID == next.ID && (cur.IsLast || next.Number != cur.Number+1) {
				t.Fatalf("kept %v then %v", cur, next)
			}
			if cur.ID != next.ID && (next.Number != 0 || !cur.IsLast) {
				t.Fatalf("kept %v then %v", cur, next)
			}
		}
	})
}

// FuzzBatchStage runs the batch stage over arbitrary singular and span batches on a
// short L1 chain: it must never panic, and every batch it hands out must be the next
// block on the safe head.
func FuzzBatchStage(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 1, 0, 2, 0, 1, 3, 1, 2, 2, 0, 0})
	f.Add([]byte{1, 3, 0, 1, 0, 1, 1, 2, 0, 0, 0, 7})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		l1 := l1Line(14)
		safe := genesisSafe(l1)
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		// Each record: kind, timestamp step, epoch, parent choice, tx count (spans: block
		// count first).
		var items []decodedBatch
		p, ts := safe.Hash, safe.Time
		for len(data) > 0 && len(items) < 64 {
			kind := next() % 3
			// 0: repeats the previous timestamp (past), 1: next, 2: skips one (future).
			ts += 2 * uint64(next()%3)
			epoch := uint64(next() % 6)
			parent := p
			if next()%4 == 0 {
				parent = common.Hash{next()}
			}
			txs := make([][]byte, next()%3)
			for i := range txs {
				txs[i] = []byte{next(), 0xc0}
			}
			if kind < 2 {
				items = append(items, decodedBatch{singular: &batch.SingularBatch{ParentHash: parent, EpochNum: epoch, EpochHash: l1[epoch].Hash, Timestamp: ts, Transactions: txs}})
				p = l2Hash(p, ts)
				continue
			}
			n := int(next()%4) + 1
			s := &spanBatch{}
			copy(s.parentCheck[:], parent[:20])
			for i := 0; i < n; i++ {
				e := epoch + uint64(i)*uint64(next()%2)
				s.blocks = append(s.blocks, &batch.SingularBatch{EpochNum: e % 14, Timestamp: ts + 2*uint64(i), Transactions: txs})
				p = l2Hash(p, ts+2*uint64(i))
			}
			copy(s.originCheck[:], l1[s.lastEpoch()].Hash[:20])
			ts += 2 * uint64(n-1)
			items = append(items, decodedBatch{span: s})
		}
		src := &batchList{fixedOrigin: fixedOrigin{l1[0]}, items: items}
		l2 := derivetest.NewL2()
		l2.Add(safe, safeSys)
		s := newBatchStage(src, testConfig(), l2, quietLog(), &derivetest.Metrics{})
		s.reset(l1[0])
		origin := uint64(0)
		for i := 0; i < 100_000; i++ {
			b, err := s.NextBatch(context.Background(), safe)
			switch {
			case err == nil:
				if b.ParentHash != safe.Hash || b.Timestamp != safe.Time+2 || b.EpochHash != l1[b.EpochNum].Hash {
					t.Fatalf("batch %+v on safe head %+v", b.SingularBatch, safe)
				}
				ref := eth.L2BlockRef{Number: safe.Number + 1, Hash: l2Hash(safe.Hash, b.Timestamp), ParentHash: safe.Hash,
					Time: b.Timestamp, L1Origin: eth.BlockID{Hash: b.EpochHash, Number: b.EpochNum}}
				l2.Add(ref, safeSys)
				safe = ref
			case errors.Is(err, ErrNotEnoughData):
			case errors.Is(err, io.EOF):
				if origin+1 >= uint64(len(l1)) {
					return
				}
				origin++
				src.origin = l1[origin]
			default:
				t.Fatalf("batch stage: %v", err)
			}
		}
		t.Fatal("batch stage does not settle")
	})
}

var safeSys = testConfig().Genesis.SystemConfig
