package sequencer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/clock"
	enginepkg "github.com/opkit/opkit/rollup/engine"
)

// fakeL1 is a chain of headers with a canonical index, which tests can reorg.
type fakeL1 struct {
	byHash map[common.Hash]*types.Header
	canon  []*types.Header
}

func newFakeL1(times ...uint64) *fakeL1 {
	l := &fakeL1{byHash: map[common.Hash]*types.Header{}}
	for _, tm := range times {
		l.add(tm, 0)
	}
	return l
}

func (l *fakeL1) add(tm uint64, salt byte) *types.Header {
	parent := common.Hash{}
	if len(l.canon) > 0 {
		parent = l.canon[len(l.canon)-1].Hash()
	}
	h := &types.Header{Number: big.NewInt(int64(len(l.canon))), Time: tm, ParentHash: parent, BaseFee: big.NewInt(1), Extra: []byte{salt}}
	l.canon = append(l.canon, h)
	l.byHash[h.Hash()] = h
	return h
}

func (l *fakeL1) head() eth.L1BlockRef { return eth.BlockRefFromHeader(l.canon[len(l.canon)-1]) }

func (l *fakeL1) HeaderByNumber(_ context.Context, n *big.Int) (*types.Header, error) {
	if n.Uint64() >= uint64(len(l.canon)) {
		return nil, ethereum.NotFound
	}
	return l.canon[n.Uint64()], nil
}

func (l *fakeL1) FetchReceipts(ctx context.Context, h common.Hash) (*types.Header, types.Receipts, error) {
	hd, err := l.HeaderByHash(ctx, h)
	return hd, nil, err
}

func (l *fakeL1) HeaderByHash(_ context.Context, h common.Hash) (*types.Header, error) {
	if hd, ok := l.byHash[h]; ok {
		return hd, nil
	}
	return nil, errors.New("not found")
}

func testConfig(blockTime uint64) *rollup.Config {
	zero := uint64(0)
	return &rollup.Config{BlockTime: blockTime, MaxSequencerDrift: 600, FjordTime: &zero}
}

func l2At(origin *types.Header, tm, seq uint64) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: common.Hash{byte(tm)}, Number: tm, Time: tm, SequenceNumber: seq,
		L1Origin: eth.BlockID{Hash: origin.Hash(), Number: origin.Number.Uint64()}}
}

func TestOriginStaysUntilNextIsDue(t *testing.T) {
	l1 := newFakeL1(100, 112, 124)
	s := NewOriginSelector(testConfig(2), l1, 0)
	ctx := context.Background()
	// Next block at 102: L1 block 1 (time 112) is not due yet.
	sel, err := s.FindL1Origin(ctx, l2At(l1.canon[0], 100, 0), l1.head())
	if err != nil || sel.Origin.Hash() != l1.canon[0].Hash() || sel.PastDrift {
		t.Fatalf("%v %v", sel, err)
	}
	// Next block at 112: block 1 is due exactly at its time.
	sel, err = s.FindL1Origin(ctx, l2At(l1.canon[0], 110, 5), l1.head())
	if err != nil || sel.Origin.Hash() != l1.canon[1].Hash() {
		t.Fatalf("at 112: %v %v", sel, err)
	}
	// Never more than one step: far behind, the origin still advances by one.
	sel, err = s.FindL1Origin(ctx, l2At(l1.canon[0], 200, 50), l1.head())
	if err != nil || sel.Origin.Number.Uint64() != 1 {
		t.Fatalf("far behind: %v %v", sel, err)
	}
}

func TestOriginRespectsConfirmations(t *testing.T) {
	l1 := newFakeL1(100, 112, 124)
	ctx := context.Background()
	s := NewOriginSelector(testConfig(2), l1, 2) // block 1 needs head >= 3
	sel, err := s.FindL1Origin(ctx, l2At(l1.canon[0], 120, 0), l1.head())
	if err != nil || sel.Origin.Number.Uint64() != 0 {
		t.Fatalf("unconfirmed origin adopted: %v %v", sel, err)
	}
	l1.add(136, 0)
	sel, err = s.FindL1Origin(ctx, l2At(l1.canon[0], 120, 0), l1.head())
	if err != nil || sel.Origin.Number.Uint64() != 1 {
		t.Fatalf("confirmed origin not adopted: %v %v", sel, err)
	}
}

func TestOriginDriftRule(t *testing.T) {
	l1 := newFakeL1(100)
	ctx := context.Background()
	cfg := testConfig(2)
	drift := cfg.MaxSequencerDriftAt(100) // Fjord: 1800
	if drift != rollup.FjordMaxSequencerDrift {
		t.Fatalf("drift %d", drift)
	}
	s := NewOriginSelector(cfg, l1, 0)
	// Up to origin time + drift the block keeps its origin with transactions allowed.
	if sel, err := s.FindL1Origin(ctx, l2At(l1.canon[0], 100+drift-2, 0), l1.head()); err != nil || sel.PastDrift {
		t.Fatalf("at the limit: %v %v", sel, err)
	}
	// One block past it, with no next L1 block: wait.
	if _, err := s.FindL1Origin(ctx, l2At(l1.canon[0], 100+drift, 0), l1.head()); !errors.Is(err, ErrPastDrift) {
		t.Fatalf("past drift without next origin: %v", err)
	}
	// With a next L1 block still in the future of the L2 block: keep the origin but no
	// mempool transactions.
	l1.add(100+drift+100, 0)
	sel, err := s.FindL1Origin(ctx, l2At(l1.canon[0], 100+drift, 0), l1.head())
	if err != nil || !sel.PastDrift || sel.Origin.Number.Uint64() != 0 {
		t.Fatalf("past drift, next origin later: %v %v", sel, err)
	}
	// Before Fjord the configured drift applies.
	pre := &rollup.Config{BlockTime: 2, MaxSequencerDrift: 10}
	s = NewOriginSelector(pre, l1, 0)
	if sel, err := s.FindL1Origin(ctx, l2At(l1.canon[0], 110, 0), l1.head()); err != nil || !sel.PastDrift {
		t.Fatalf("pre-Fjord drift 10: %v %v", sel, err)
	}
}

func TestOriginDetectsL1Reorg(t *testing.T) {
	l1 := newFakeL1(100, 112)
	ctx := context.Background()
	s := NewOriginSelector(testConfig(2), l1, 0)
	parent := l2At(l1.canon[1], 114, 0)
	// Replace block 1 with a sibling.
	l1.canon = l1.canon[:1]
	l1.add(113, 1)
	if _, err := s.FindL1Origin(ctx, parent, l1.head()); !errors.Is(err, ErrL1Reorg) {
		t.Fatalf("stale origin accepted: %v", err)
	}
	// L1 reorged to a shorter chain that ends below the origin: also a reorg, not an
	// "L1 unavailable" to wait out.
	l1.canon = l1.canon[:1]
	if _, err := s.FindL1Origin(ctx, parent, l1.head()); !errors.Is(err, ErrL1Reorg) {
		t.Fatalf("origin above a shorter L1: %v", err)
	}
}

// flakyEngine fails StartBuilding a given number of times.
type flakyEngine struct {
	head    eth.L2BlockRef
	safe    eth.L2BlockRef
	fails   int
	err     error
	calls   int
	rewinds int
}

func (e *flakyEngine) UnsafeHead() eth.L2BlockRef { return e.head }
func (e *flakyEngine) Heads() (eth.L2BlockRef, eth.L2BlockRef, eth.L2BlockRef) {
	return e.head, e.safe, eth.L2BlockRef{}
}
func (e *flakyEngine) StartBuilding(context.Context, eth.L2BlockRef, *engine.PayloadAttributes) (engine.PayloadID, error) {
	e.calls++
	if e.calls <= e.fails {
		return engine.PayloadID{}, e.err
	}
	return engine.PayloadID{1}, nil
}
func (e *flakyEngine) SealBuilding(context.Context, engine.PayloadID) (*engine.ExecutionPayloadEnvelope, eth.L2BlockRef, error) {
	e.head = eth.L2BlockRef{Hash: common.Hash{byte(e.head.Number + 1)}, Number: e.head.Number + 1, Time: e.head.Time + 2, L1Origin: e.head.L1Origin}
	return &engine.ExecutionPayloadEnvelope{ExecutionPayload: &engine.ExecutableData{}}, e.head, nil
}
func (e *flakyEngine) SetUnsafeHead(_ context.Context, r eth.L2BlockRef) error {
	e.rewinds++
	e.head = r
	return nil
}
func (e *flakyEngine) SystemConfigByL2Hash(context.Context, common.Hash) (rollup.SystemConfig, error) {
	return rollup.SystemConfig{Scalar: rollup.EncodeScalars(1, 1), GasLimit: 30_000_000}, nil
}
func (e *flakyEngine) BlockRefByHash(context.Context, common.Hash) (eth.L2BlockRef, error) {
	return eth.L2BlockRef{}, errors.New("unused")
}

type countMetrics struct {
	sealed int
	errs   map[string]int
}

func (m *countMetrics) RecordSequencedBlock(eth.L2BlockRef, time.Duration) { m.sealed++ }
func (m *countMetrics) RecordSequencerError(c string)                      { m.errs[c]++ }
func (m *countMetrics) RecordSequencerReset()                              {}

func TestEngineFailuresBackOffWithoutHotLoop(t *testing.T) {
	for _, class := range []error{enginepkg.ErrTemporary, enginepkg.ErrSyncing, enginepkg.ErrInvalid} {
		t.Run(class.Error(), func(t *testing.T) {
			l1 := newFakeL1(1000)
			clk := clock.NewFake(time.Unix(5000, 0)) // far behind: build at once
			e := &flakyEngine{head: l2At(l1.canon[0], 1000, 0), fails: 3, err: fmt.Errorf("fcu: %w", class)}
			zero := uint64(0)
			cfg := &rollup.Config{BlockTime: 2, FjordTime: &zero, Genesis: rollup.Genesis{SystemConfig: rollup.SystemConfig{Scalar: rollup.EncodeScalars(1, 1), GasLimit: 30_000_000}}}
			m := &countMetrics{errs: map[string]int{}}
			s := New(Config{MaxBackoff: time.Second}, cfg, e, l1, l1, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
			s.SetL1Head(l1.head())
			ctx := context.Background()
			for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
				if d := s.PlanNextAction(); d != 0 {
					t.Fatalf("attempt %d planned after %s, want at once", i+1, d)
				}
				if _, err := s.RunNextAction(ctx); err != nil {
					t.Fatalf("engine errors must not reach the driver: %v", err)
				}
				if d := s.PlanNextAction(); d != want {
					t.Fatalf("after failure %d: next action in %s, want %s", i+1, d, want)
				}
				clk.Advance(want)
			}
			// The engine recovers: start, then seal.
			if _, err := s.RunNextAction(ctx); err != nil || s.BuildingOnto().Number != 1000 {
				t.Fatalf("start after recovery: %v, building onto %v", err, s.BuildingOnto())
			}
			env, err := s.RunNextAction(ctx)
			if err != nil || env == nil || m.sealed != 1 || e.head.Number != 1001 {
				t.Fatalf("seal: %v %v sealed %d head %d", env, err, m.sealed, e.head.Number)
			}
			if d := s.PlanNextAction(); d != 0 {
				t.Fatalf("backoff not cleared after success: %s", d)
			}
			if m.errs[classOf(e.err)] != 3 {
				t.Fatalf("error metrics %v", m.errs)
			}
		})
	}
}

func TestPlanFollowsTheClock(t *testing.T) {
	l1 := newFakeL1(1000)
	clk := clock.NewFake(time.Unix(990, 0))
	e := &flakyEngine{head: l2At(l1.canon[0], 1000, 0)}
	zero := uint64(0)
	cfg := &rollup.Config{BlockTime: 2, FjordTime: &zero, Genesis: rollup.Genesis{SystemConfig: rollup.SystemConfig{Scalar: rollup.EncodeScalars(1, 1), GasLimit: 30_000_000}}}
	s := New(Config{}, cfg, e, l1, l1, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), &countMetrics{errs: map[string]int{}})
	s.SetL1Head(l1.head())
	// Building the block at 1002 starts when its parent's time (1000) is reached...
	if d := s.PlanNextAction(); d != 10*time.Second {
		t.Fatalf("start planned in %s, want 10s", d)
	}
	clk.Advance(10 * time.Second)
	if _, err := s.RunNextAction(context.Background()); err != nil {
		t.Fatal(err)
	}
	// ...and sealing 50ms before its own timestamp.
	if d := s.PlanNextAction(); d != 2*time.Second-50*time.Millisecond {
		t.Fatalf("seal planned in %s", d)
	}
}

func newTestSequencer(t *testing.T, e *flakyEngine, l1 interface {
	L1Source
	rollup.L1ReceiptsFetcher
}, clk clock.Clock, cfg Config) (*Sequencer, *countMetrics) {
	t.Helper()
	zero := uint64(0)
	rcfg := &rollup.Config{BlockTime: 2, FjordTime: &zero, Genesis: rollup.Genesis{SystemConfig: rollup.SystemConfig{Scalar: rollup.EncodeScalars(1, 1), GasLimit: 30_000_000}}}
	m := &countMetrics{errs: map[string]int{}}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Second
	}
	return New(cfg, rcfg, e, l1, l1, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), m), m
}

// TestReorgBelowSafeWaitsForTheReset: the safe head's own origin was reorged out. The
// sequencer cannot rewind below safe, so it must back off (the pipeline's reset moves
// safe), not rewind to safe again and again in a hot loop.
func TestReorgBelowSafeWaitsForTheReset(t *testing.T) {
	l1 := newFakeL1(1000, 1012)
	safe := l2At(l1.canon[1], 1014, 0)
	l1.canon = l1.canon[:1]
	l1.add(1013, 1) // block 1 replaced: safe's origin is gone
	clk := clock.NewFake(time.Unix(5000, 0))
	e := &flakyEngine{head: safe, safe: safe}
	s, m := newTestSequencer(t, e, l1, clk, Config{})
	s.SetL1Head(l1.head())
	ctx := context.Background()
	var delays []time.Duration
	for i := 0; i < 3; i++ {
		if d := s.PlanNextAction(); d != 0 {
			clk.Advance(d)
		}
		if _, err := s.RunNextAction(ctx); err != nil {
			t.Fatal(err)
		}
		delays = append(delays, s.PlanNextAction())
	}
	if fmt.Sprint(delays) != "[100ms 200ms 400ms]" {
		t.Fatalf("delays after each attempt %v: want a growing backoff", delays)
	}
	if e.rewinds != 0 || m.errs["l1_reorg_below_safe"] != 3 {
		t.Fatalf("rewinds %d, errors %v", e.rewinds, m.errs)
	}
	if since, err := s.Failing(); since.IsZero() || err == nil {
		t.Fatal("the sequencer does not report it is failing")
	}
}

func TestUnsupportedEngineIsCritical(t *testing.T) {
	l1 := newFakeL1(1000)
	e := &flakyEngine{head: l2At(l1.canon[0], 1000, 0), fails: 1, err: fmt.Errorf("fcu: %w", enginepkg.ErrUnsupported)}
	s, _ := newTestSequencer(t, e, l1, clock.NewFake(time.Unix(5000, 0)), Config{})
	s.SetL1Head(l1.head())
	if _, err := s.RunNextAction(context.Background()); !errors.Is(err, ErrCritical) {
		t.Fatalf("unsupported fork: %v", err)
	}
}

func TestEngineRefusingEveryBuildIsCritical(t *testing.T) {
	l1 := newFakeL1(1000)
	clk := clock.NewFake(time.Unix(5000, 0))
	e := &flakyEngine{head: l2At(l1.canon[0], 1000, 0), fails: 1 << 30, err: fmt.Errorf("fcu: %w", enginepkg.ErrInvalid)}
	s, _ := newTestSequencer(t, e, l1, clk, Config{MaxInvalidBuilds: 4})
	s.SetL1Head(l1.head())
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		clk.Advance(s.PlanNextAction())
		_, err = s.RunNextAction(context.Background())
	}
	if !errors.Is(err, ErrCritical) || e.calls != 4 {
		t.Fatalf("after %d refused builds: %v", e.calls, err)
	}
}

// hungL1 answers nothing until the caller gives up.
type hungL1 struct{ calls int }

func (h *hungL1) HeaderByNumber(ctx context.Context, _ *big.Int) (*types.Header, error) {
	h.calls++
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h *hungL1) FetchReceipts(ctx context.Context, hash common.Hash) (*types.Header, types.Receipts, error) {
	hd, err := h.HeaderByHash(ctx, hash)
	return hd, nil, err
}

func (h *hungL1) HeaderByHash(ctx context.Context, _ common.Hash) (*types.Header, error) {
	h.calls++
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestHungL1DoesNotBlockTheSequencer(t *testing.T) {
	l1 := newFakeL1(1000)
	e := &flakyEngine{head: l2At(l1.canon[0], 1000, 0)}
	hung := &hungL1{}
	s, m := newTestSequencer(t, e, hung, clock.NewFake(time.Unix(5000, 0)), Config{L1CallTimeout: 50 * time.Millisecond})
	s.SetL1Head(l1.head())
	done := make(chan error, 1)
	go func() {
		_, err := s.RunNextAction(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sequencer is stuck on a hung L1")
	}
	if hung.calls != 1 || m.errs["origin"] != 1 || s.PlanNextAction() == 0 {
		t.Fatalf("calls %d errors %v next %s", hung.calls, m.errs, s.PlanNextAction())
	}
}
