package derive

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

// zlibChannel compresses batches into a channel body.
func zlibChannel(t testing.TB, bs ...batch.Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	for _, b := range bs {
		if err := batch.WriteChannelEntry(w, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testEngine plays the execution client: every attributes' block becomes the safe head,
// its hash fixed by parent and timestamp so batches can name parents in advance.
type testEngine struct {
	t    testing.TB
	cfg  *rollup.Config
	l2   *derivetest.L2
	safe eth.L2BlockRef
	sys  rollup.SystemConfig
	got  []*Attributes
}

func l2Hash(parent common.Hash, ts uint64) common.Hash {
	return crypto.Keccak256Hash(parent[:], []byte{byte(ts >> 8), byte(ts)})
}

func (e *testEngine) apply(a *Attributes) {
	e.t.Helper()
	if a.Parent != e.safe {
		e.t.Fatalf("attributes on %v, safe head is %v", a.Parent.ID(), e.safe.ID())
	}
	var dep types.Transaction
	if err := dep.UnmarshalBinary(a.Payload.Transactions[0]); err != nil {
		e.t.Fatal(err)
	}
	info, err := rollup.L1InfoFromBlockTx(&dep)
	if err != nil {
		e.t.Fatal(err)
	}
	ref := eth.L2BlockRef{
		Number: e.safe.Number + 1, Hash: l2Hash(e.safe.Hash, a.Payload.Timestamp), ParentHash: e.safe.Hash, Time: a.Payload.Timestamp,
		L1Origin: eth.BlockID{Hash: info.BlockHash, Number: info.Number}, SequenceNumber: info.SequenceNumber,
	}
	e.l2.Add(ref, e.sys)
	e.safe = ref
	e.got = append(e.got, a)
}

// run derives until io.EOF.
func (e *testEngine) run(d *Derivation) {
	e.t.Helper()
	for i := 0; i < 100_000; i++ {
		a, err := d.NextAttributes(context.Background(), e.safe)
		switch {
		case err == nil:
			e.apply(a)
		case errors.Is(err, ErrNotEnoughData):
		case errors.Is(err, io.EOF):
			return
		default:
			e.t.Fatalf("derivation: %v", err)
		}
	}
	e.t.Fatal("derivation does not go idle")
}

type fakeChain struct {
	cfg     *rollup.Config
	l1      *derivetest.L1
	l2      *derivetest.L2
	data    *derivetest.Data
	metrics *derivetest.Metrics
	engine  *testEngine
	d       *Derivation
}

func newFakeChain(t *testing.T) *fakeChain {
	cfg := testConfig()
	l1 := derivetest.NewL1(0, 1000)
	cfg.Genesis.L1 = l1.Ref(0).ID()
	l2 := derivetest.NewL2()
	genesis := eth.L2BlockRef{Hash: cfg.Genesis.L2.Hash, Time: cfg.Genesis.L2Time, L1Origin: cfg.Genesis.L1}
	l2.Add(genesis, cfg.Genesis.SystemConfig)
	f := &fakeChain{cfg: cfg, l1: l1, l2: l2, data: derivetest.NewData(), metrics: &derivetest.Metrics{}}
	f.engine = &testEngine{t: t, cfg: cfg, l2: l2, safe: genesis, sys: cfg.Genesis.SystemConfig}
	f.d = New(cfg, nil, Deps{L1: l1, Data: f.data, L2: l2, Metrics: f.metrics})
	if err := f.d.Reset(context.Background(), genesis); err != nil {
		t.Fatal(err)
	}
	return f
}

// batches makes singular batches for the n blocks after parent in epoch, with one
// transaction each, naming the parents the test engine will give them.
func batchesAfter(parent eth.L2BlockRef, epoch eth.L1BlockRef, n int, blockTime uint64) []batch.Batch {
	var out []batch.Batch
	p, ts := parent.Hash, parent.Time
	for i := 0; i < n; i++ {
		ts += blockTime
		out = append(out, &batch.SingularBatch{ParentHash: p, EpochNum: epoch.Number, EpochHash: epoch.Hash, Timestamp: ts,
			Transactions: [][]byte{{0x02, 0xc1, byte(i)}}})
		p = l2Hash(p, ts)
	}
	return out
}

func TestDerivationFromFakeL1(t *testing.T) {
	f := newFakeChain(t)
	ctx := context.Background()
	body := zlibChannel(t, batchesAfter(f.engine.safe, f.l1.Ref(0), 5, 2)...)
	half := len(body) / 2
	b1 := f.l1.Mine(12, nil)
	other := common.Address{0x07}
	// Noise first: a stranger's valid channel, the batcher's garbage, a bad version.
	f.data.Add(b1.Hash, other, txData(t, batch.Frame{ID: cid(9), Data: body, IsLast: true}))
	f.data.Add(b1.Hash, testBatcher, []byte{0, 0xde, 0xad})
	f.data.Add(b1.Hash, testBatcher, []byte{1, 2, 3})
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(3), Data: []byte{0x78, 0xda, 1, 2, 3}, IsLast: true}))
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(4), Data: []byte{0x05, 1, 2, 3}, IsLast: true}))
	// The real channel in two transactions.
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(1), Number: 0, Data: body[:half]}))
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(1), Number: 1, Data: body[half:], IsLast: true}))
	f.l1.Mine(12, nil)
	f.l1.Mine(12, nil)

	f.engine.run(f.d)
	if len(f.engine.got) != 5 {
		t.Fatalf("%d attributes, want 5", len(f.engine.got))
	}
	for i, a := range f.engine.got {
		p := a.Payload
		if p.Timestamp != 1002+2*uint64(i) || len(p.Transactions) != 2 || !bytes.Equal(p.Transactions[1], []byte{0x02, 0xc1, byte(i)}) ||
			!p.NoTxPool || a.DerivedFrom != b1 || !a.IsLastInSpan || a.DepositsOnly {
			t.Fatalf("attributes %d: ts %d, %d txs, derived from %v", i, p.Timestamp, len(p.Transactions), a.DerivedFrom.ID())
		}
	}
	if f.d.Origin() != f.l1.Head() {
		t.Fatalf("origin %v, want the L1 head %v", f.d.Origin().ID(), f.l1.Head().ID())
	}
	if f.metrics.Count("data/"+DropDataMalformed) != 1 || f.metrics.Count("data/"+DropDataVersion) != 1 ||
		f.metrics.Count("channel/"+DropChannelCompression) != 1 {
		t.Fatalf("counts %v", f.metrics.Counts())
	}

	// A reset at the safe head reads the same L1 again: every batch is past now.
	if err := f.d.Reset(ctx, f.engine.safe); err != nil {
		t.Fatal(err)
	}
	if f.d.Origin() != f.l1.Ref(0) {
		t.Fatalf("reset origin %v, want L1 genesis (within a channel timeout)", f.d.Origin().ID())
	}
	f.engine.run(f.d)
	if len(f.engine.got) != 5 {
		t.Fatalf("%d attributes after the reset, want no new ones", len(f.engine.got))
	}

	// No more batches: once epoch 0's window (10 L1 blocks) passes, empty blocks follow.
	for f.l1.Head().Number < 11 {
		f.l1.Mine(12, nil)
	}
	f.engine.run(f.d)
	// At L1 11 epoch 1's window has passed too: its blocks 1012..1022 are forced; epoch 0
	// had no room left after 1010.
	got := f.engine.got[5:]
	if len(got) != 6 {
		t.Fatalf("%d forced blocks, want 6 (all of epoch 1)", len(got))
	}
	for i, a := range got {
		if !a.DepositsOnly || len(a.Payload.Transactions) != 1 || a.Payload.Timestamp != 1012+2*uint64(i) {
			t.Fatalf("forced block %d: deposits-only %v, %d txs, ts %d", i, a.DepositsOnly, len(a.Payload.Transactions), a.Payload.Timestamp)
		}
	}
	if f.engine.safe.L1Origin != f.l1.Ref(1).ID() || f.engine.safe.SequenceNumber != 5 {
		t.Fatalf("safe head %+v, want epoch 1 sequence 5", f.engine.safe)
	}
}

// Reset walks back from the safe head to a block whose origin is a channel timeout older,
// and starts with that block's system config.
func TestResetWalksBack(t *testing.T) {
	f := newFakeChain(t)
	for i := 0; i < 80; i++ {
		f.l1.Mine(12, nil)
	}
	// An L2 chain with one block per L1 block, the batcher changed at L2 block 20.
	sys2 := f.cfg.Genesis.SystemConfig
	sys2.BatcherAddr = common.Address{0x42}
	parent := f.engine.safe
	for n := uint64(1); n <= 70; n++ {
		o := f.l1.Ref(n)
		ref := eth.L2BlockRef{Number: n, Hash: l2Hash(parent.Hash, o.Time), ParentHash: parent.Hash, Time: o.Time, L1Origin: o.ID()}
		sys := f.cfg.Genesis.SystemConfig
		if n >= 20 {
			sys = sys2
		}
		f.l2.Add(ref, sys)
		parent = ref
	}
	if err := f.d.Reset(context.Background(), parent); err != nil {
		t.Fatal(err)
	}
	// 70 - 50 = 20: the first block whose origin plus the timeout is not past 70.
	if f.d.Origin() != f.l1.Ref(20) || f.d.traversal.SystemConfig() != sys2 {
		t.Fatalf("reset origin %v with batcher %s", f.d.Origin().ID(), f.d.traversal.SystemConfig().BatcherAddr)
	}
	f.l2.FailNext(1, errors.New("engine down"))
	if err := f.d.Reset(context.Background(), parent); !errors.Is(err, ErrReset) {
		t.Fatalf("reset with a failing L2: %v", err)
	}
	if _, err := f.d.NextAttributes(context.Background(), parent); !errors.Is(err, ErrReset) {
		t.Fatalf("derivation after a failed reset: %v, want a reset error", err)
	}
}

// After the engine refuses a derived block, the rest of its channel is dropped: the node
// builds the deposits-only replacement and derivation goes on from the next channel.
func TestOnInvalidPayloadFlushes(t *testing.T) {
	f := newFakeChain(t)
	ctx := context.Background()
	bs := batchesAfter(f.engine.safe, f.l1.Ref(0), 4, 2)
	b1 := f.l1.Mine(12, nil)
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(1), Data: zlibChannel(t, bs[:3]...), IsLast: true}))
	// The second channel repeats blocks 2..4 with other transactions.
	var again []batch.Batch
	for _, b := range bs[1:] {
		c := *b.(*batch.SingularBatch)
		c.Transactions = [][]byte{{0x02, 0xc1, 0x80 + c.Transactions[0][2]}}
		again = append(again, &c)
	}
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(2), Data: zlibChannel(t, again...), IsLast: true}))
	var first *Attributes
	for first == nil {
		a, err := f.d.NextAttributes(ctx, f.engine.safe)
		if err != nil && !errors.Is(err, ErrNotEnoughData) {
			t.Fatal(err)
		}
		first = a
	}
	f.d.OnInvalidPayload()
	// The replacement keeps only the deposits.
	first.Payload.Transactions = first.Payload.Transactions[:1]
	f.engine.apply(first)
	f.engine.run(f.d)
	// Blocks 2 and 3 of the first channel are gone; the second channel gives 2..4.
	if len(f.engine.got) != 4 || f.metrics.Count("channel/"+DropChannelFlushed) != 1 {
		t.Fatalf("%d blocks derived, counts %v: the rest of the first channel must be flushed", len(f.engine.got), f.metrics.Counts())
	}
	for i, a := range f.engine.got[1:] {
		if a.DerivedFrom != b1 || len(a.Payload.Transactions) != 2 || a.Payload.Transactions[1][2] < 0x80 || a.Payload.Timestamp != 1004+2*uint64(i) {
			t.Fatalf("block %d: %d txs at %d", i+2, len(a.Payload.Transactions), a.Payload.Timestamp)
		}
	}
}

// An L1 reorg under the origin surfaces as a reset error; after a reset derivation reads
// the new fork's batches.
func TestL1ReorgResets(t *testing.T) {
	f := newFakeChain(t)
	ctx := context.Background()
	genesis := f.engine.safe
	b1 := f.l1.Mine(12, nil)
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(1), Data: zlibChannel(t, batchesAfter(genesis, f.l1.Ref(0), 2, 2)...), IsLast: true}))
	f.engine.run(f.d)
	if len(f.engine.got) != 2 {
		t.Fatalf("%d blocks before the reorg", len(f.engine.got))
	}
	// L1 1 is replaced by a block holding a channel with three blocks.
	f.l1.Rewind(0)
	c1 := f.l1.Mine(12, nil, 0xf0)
	f.l1.Mine(12, nil, 0xf0)
	f.data.Add(c1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(2), Data: zlibChannel(t, batchesAfter(genesis, f.l1.Ref(0), 3, 2)...), IsLast: true}))
	var err error
	for err == nil || errors.Is(err, ErrNotEnoughData) {
		_, err = f.d.NextAttributes(ctx, f.engine.safe)
	}
	if !errors.Is(err, ErrReset) {
		t.Fatalf("derivation over a reorged L1: %v, want a reset error", err)
	}
	// The node finds genesis to be the last safe block still on L1 and resets there.
	f.engine.safe, f.engine.got = genesis, nil
	if err := f.d.Reset(ctx, genesis); err != nil {
		t.Fatal(err)
	}
	f.engine.run(f.d)
	if len(f.engine.got) != 3 || f.engine.got[0].DerivedFrom != c1 {
		t.Fatalf("%d blocks after the reset", len(f.engine.got))
	}
}

// With an L1 limit derivation reads no block past it, as if L1 ended there.
func TestL1Limit(t *testing.T) {
	f := newFakeChain(t)
	b1 := f.l1.Mine(12, nil)
	f.data.Add(b1.Hash, testBatcher, txData(t, batch.Frame{ID: cid(1), Data: zlibChannel(t, batchesAfter(f.engine.safe, f.l1.Ref(0), 2, 2)...), IsLast: true}))
	f.d.SetL1Limit(0)
	f.engine.run(f.d)
	if len(f.engine.got) != 0 || f.d.Origin() != f.l1.Ref(0) {
		t.Fatalf("%d blocks derived, origin %v, with L1 limited to block 0", len(f.engine.got), f.d.Origin().ID())
	}
	f.d.SetL1Limit(NoL1Limit)
	f.engine.run(f.d)
	if len(f.engine.got) != 2 || f.d.Origin() != b1 {
		t.Fatalf("%d blocks derived, origin %v, after lifting the limit", len(f.engine.got), f.d.Origin().ID())
	}
}
