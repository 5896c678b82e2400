package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/derive"
	enginepkg "github.com/opkit/opkit/rollup/engine"
	"github.com/opkit/opkit/rollup/node"
)

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// chainRig is a dev L1 and two op-geth L2s on one genesis: "seq" holds a chain built
// by hand (as a sequencer would), "ver" starts empty (a verifier's execution client).
type chainRig struct {
	t        *testing.T
	ctx      context.Context
	l1       *devnet.L1
	l1c      *ethclient.Client
	cfg      *rollup.Config
	seq, ver *enginepkg.Engine
	seqL2    *devnet.L2
	verL2    *devnet.L2
}

func newChainRig(t *testing.T) *chainRig {
	t.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	for i := 0; i < 12; i++ {
		if _, err := l1.MineWithGap(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	g, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900, BlockTime: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	r := &chainRig{t: t, ctx: ctx, l1: l1, cfg: cfg}
	r.l1c, err = ethclient.DialContext(ctx, l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.l1c.Close)
	start := func() (*devnet.L2, *enginepkg.Engine) {
		l2, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l2.Close() })
		c, err := enginepkg.Dial(ctx, l2.EngineEndpoint(), l2.JWTSecret())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		e := enginepkg.New(cfg, c, quietLog())
		if err := e.Init(ctx); err != nil {
			t.Fatal(err)
		}
		return l2, e
	}
	r.seqL2, r.seq = start()
	r.verL2, r.ver = start()
	return r
}

// buildSeq extends the hand-built chain by n blocks, each with the L1 origin a
// sequencer would take (L1 block k every second L2 block).
func (r *chainRig) buildSeq(n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		parent := r.seq.UnsafeHead()
		originNum := (parent.Number + 1) / 2
		origin := r.l1.Backend().BlockChain().GetHeaderByNumber(originNum)
		a, err := r.cfg.PayloadAttributes(r.l1.ChainConfig(), r.cfg.Genesis.SystemConfig, parent, origin, nil, true)
		if err != nil {
			r.t.Fatal(err)
		}
		id, err := r.seq.StartBuilding(r.ctx, parent, a)
		if err != nil {
			r.t.Fatal(err)
		}
		if _, _, err := r.seq.SealBuilding(r.ctx, id); err != nil {
			r.t.Fatal(err)
		}
	}
}

// replayDeriver derives, for the block after safe, the attributes of the hand-built
// chain's block at that height: a stand-in for L1 batches holding exactly that chain.
// Every block is its own batch (concluding), derived from the L1 block two above its
// origin.
type replayDeriver struct {
	r       *chainRig
	src     *devnet.L2
	corrupt map[uint64]bool // heights whose attributes get an undecodable transaction
	// depositsOnlyJunk marks every block deposits-only and adds an undecodable deposit.
	depositsOnlyJunk bool
	resets           []eth.L2BlockRef
	invalid          int
	origin           eth.L1BlockRef
}

func (d *replayDeriver) Reset(_ context.Context, safe eth.L2BlockRef) error {
	d.resets = append(d.resets, safe)
	return nil
}

func (d *replayDeriver) Origin() eth.L1BlockRef { return d.origin }
func (d *replayDeriver) OnInvalidPayload()      { d.invalid++ }

func (d *replayDeriver) Next(_ context.Context, safe eth.L2BlockRef) (*enginepkg.Derived, error) {
	b := d.src.Backend().BlockChain().GetBlockByNumber(safe.Number + 1)
	if b == nil {
		return nil, io.EOF
	}
	if b.ParentHash() != safe.Hash {
		return nil, derive.NewResetError(errors.New("replayed chain does not extend safe"))
	}
	h := b.Header()
	var txs [][]byte
	for _, tx := range b.Transactions() {
		enc, err := tx.MarshalBinary()
		if err != nil {
			return nil, err
		}
		txs = append(txs, enc)
	}
	if d.corrupt[b.NumberU64()] {
		txs = append(txs, []byte{0x02, 0xde, 0xad})
	}
	if d.depositsOnlyJunk {
		txs = append(txs, []byte{types.DepositTxType, 0xde, 0xad})
	}
	gas := h.GasLimit
	info, err := rollup.L1InfoFromBlockTx(b.Transactions()[0])
	if err != nil {
		return nil, err
	}
	from := d.r.l1.Backend().BlockChain().GetHeaderByNumber(info.Number + 2)
	d.origin = eth.BlockRefFromHeader(from)
	return &enginepkg.Derived{
		Parent: safe,
		Attrs: &engine.PayloadAttributes{
			Timestamp: h.Time, Random: h.MixDigest, SuggestedFeeRecipient: h.Coinbase,
			Withdrawals: []*types.Withdrawal{}, BeaconRoot: h.ParentBeaconRoot, Transactions: txs,
			NoTxPool: true, GasLimit: &gas, EIP1559Params: append([]byte(nil), h.Extra[1:9]...),
		},
		DerivedFrom:  d.origin,
		Concluding:   true,
		DepositsOnly: d.depositsOnlyJunk,
	}, nil
}

type countingMetrics struct {
	derived map[string]int
	invalid int
}

func (m *countingMetrics) RecordDerived(o string) { m.derived[o]++ }
func (m *countingMetrics) RecordInvalidPayload()  { m.invalid++ }

func (r *chainRig) pipeline(eng *enginepkg.Engine, d *replayDeriver) (*node.Pipeline, *countingMetrics) {
	m := &countingMetrics{derived: map[string]int{}}
	return node.NewPipeline(r.cfg, d, eng, node.NewL1Refs(r.l1c, 5*time.Second), m, quietLog()), m
}

// run steps p until it goes idle.
func (r *chainRig) run(p *node.Pipeline) {
	r.t.Helper()
	for i := 0; i < 1000; i++ {
		err := p.Step(r.ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			r.t.Fatalf("step %d: %v", i, err)
		}
	}
	r.t.Fatal("the pipeline never went idle")
}

func TestPipelineVerifierBuildsTheSameChainAndFinalizes(t *testing.T) {
	r := newChainRig(t)
	r.buildSeq(16)
	p, m := r.pipeline(r.ver, &replayDeriver{r: r, src: r.seqL2})
	r.run(p)
	want := r.seq.UnsafeHead()
	h := r.ver.State()
	if h.Unsafe != want || h.Safe != want || h.LocalSafe != want || h.PendingSafe != want {
		t.Fatalf("verifier heads %+v, want all at %s", h, want.ID())
	}
	if m.derived["appended"] != 16 {
		t.Fatalf("outcomes %v", m.derived)
	}
	if p.Origin().IsZero() {
		t.Fatal("no origin after deriving")
	}
	// L1 finalizes in 32-block epochs: mine past block 32 and signal it.
	for r.l1.Head().Number.Uint64() < 33 {
		if _, err := r.l1.MineWithGap(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	fin, err := r.l1c.HeaderByNumber(r.ctx, big.NewInt(-3)) // finalized
	if err != nil {
		t.Fatal(err)
	}
	p.OnL1Finalized(r.ctx, eth.BlockRefFromHeader(fin))
	if _, _, f := r.ver.Heads(); f != want {
		t.Fatalf("finalized %d after L1 finalized %d (blocks derived from L1 <= 10)", f.Number, fin.Number.Uint64())
	}
	if got, err := r.verL2.Backend().APIBackend.BlockByNumber(r.ctx, -3); err != nil || got.Hash() != want.Hash {
		t.Fatalf("op-geth's finalized block %v, %v", got, err)
	}
	// The safe-head record answers per L1 block.
	l1b, safe, err := p.SafeHeadAt(100)
	if err != nil || safe != want.ID() || l1b.Number != want.L1Origin.Number+2 {
		t.Fatalf("safe head record %v %v %v", l1b, safe, err)
	}
}

func TestPipelineOnTheSequencersOwnChainConsolidates(t *testing.T) {
	r := newChainRig(t)
	r.buildSeq(10)
	head := r.seq.UnsafeHead()
	p, m := r.pipeline(r.seq, &replayDeriver{r: r, src: r.seqL2})
	r.run(p)
	if h := r.seq.State(); h.Safe != head || h.Unsafe != head {
		t.Fatalf("heads %+v", h)
	}
	if m.derived["consolidated"] != 10 || len(m.derived) != 1 {
		t.Fatalf("outcomes %v", m.derived)
	}
}

func TestPipelineReplacesAnInvalidPayloadWithItsDeposits(t *testing.T) {
	r := newChainRig(t)
	r.buildSeq(4)
	d := &replayDeriver{r: r, src: r.seqL2, corrupt: map[uint64]bool{3: true}}
	p, m := r.pipeline(r.ver, d)
	for i := 0; i < 8; i++ {
		if err := p.Step(r.ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if r.ver.State().Safe.Number == 3 {
			break
		}
	}
	if d.invalid != 1 || m.invalid != 1 {
		t.Fatalf("invalid payloads seen %d, pipeline told %d times", m.invalid, d.invalid)
	}
	b3 := r.verL2.Backend().BlockChain().GetBlockByNumber(3)
	if b3 == nil || len(b3.Transactions()) != 1 || b3.Transactions()[0].Type() != types.DepositTxType {
		t.Fatalf("block 3 %v: want the deposits-only replacement", b3)
	}
}

// TestPipelineInvalidDepositsOnlyBlockIsCritical: a forced deposits-only block the engine
// refuses has no replacement; derivation must stop.
func TestPipelineInvalidDepositsOnlyBlockIsCritical(t *testing.T) {
	r := newChainRig(t)
	r.buildSeq(2)
	d := &replayDeriver{r: r, src: r.seqL2, depositsOnlyJunk: true}
	p, _ := r.pipeline(r.ver, d)
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		err = p.Step(r.ctx)
	}
	if !errors.Is(err, derive.ErrCritical) {
		t.Fatalf("refused deposits-only block: %v", err)
	}
}

func TestPipelineResetAfterL1Reorg(t *testing.T) {
	r := newChainRig(t)
	r.buildSeq(20) // origins up to L1 10
	d := &replayDeriver{r: r, src: r.seqL2}
	p, _ := r.pipeline(r.seq, d)
	r.run(p)
	if len(d.resets) != 1 || d.resets[0].Number != 0 {
		t.Fatalf("first reset %v", d.resets)
	}
	// Drop L1 blocks from 8 up: L2 blocks with origins 8.. (16 and above) lose them.
	fork := r.l1.Backend().BlockChain().GetHeaderByNumber(7)
	if err := r.l1.Reorg(fork.Hash()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := r.l1.MineWithGap(3 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Reset(r.ctx); err != nil {
		t.Fatal(err)
	}
	if !p.Origin().IsZero() {
		t.Fatal("origin reported while the reset is pending")
	}
	if err := p.Step(r.ctx); err != nil {
		t.Fatal(err)
	}
	h := r.seq.State()
	// The newest block on a surviving origin is 15 (origin 7). Safe: the parent of the
	// first epoch start at or below it more than a window (SWS) below origin 7.
	if h.Unsafe.Number != 15 {
		t.Fatalf("unsafe after reset %d (origin %d)", h.Unsafe.Number, h.Unsafe.L1Origin.Number)
	}
	if h.Safe.Number > h.Unsafe.Number || len(d.resets) != 2 || d.resets[1] != h.Safe {
		t.Fatalf("safe %d, deriver reset at %v", h.Safe.Number, d.resets)
	}
	// op-geth keeps a canonical ancestor named as head as it is (the next block built on
	// it reorgs the rest out) but takes the new safe label at once.
	if got, err := r.seqL2.Backend().APIBackend.BlockByNumber(r.ctx, -4); err != nil || got.Hash() != h.Safe.Hash {
		t.Fatalf("op-geth's safe block %v, %v; want %d", got, err, h.Safe.Number)
	}
}
