package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/derive"
	enginepkg "github.com/opkit/opkit/rollup/engine"
)

// fakeEngine is a state machine standing in for the engine controller.
type fakeEngine struct {
	mu                      sync.Mutex
	unsafe, safe, finalized eth.L2BlockRef
	inserted                []uint64
}

func ref(n uint64) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: common.Hash{byte(n), byte(n >> 8), 0xaa}, Number: n, ParentHash: common.Hash{byte(n - 1), byte((n - 1) >> 8), 0xaa}, Time: 1000 + 2*n}
}

func (e *fakeEngine) Heads() (eth.L2BlockRef, eth.L2BlockRef, eth.L2BlockRef) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unsafe, e.safe, e.finalized
}

func (e *fakeEngine) State() enginepkg.Heads {
	e.mu.Lock()
	defer e.mu.Unlock()
	return enginepkg.Heads{Unsafe: e.unsafe, CrossUnsafe: e.unsafe, PendingSafe: e.safe, LocalSafe: e.safe, Safe: e.safe, Finalized: e.finalized}
}

func (e *fakeEngine) InsertUnsafePayload(_ context.Context, env *engine.ExecutionPayloadEnvelope) (eth.L2BlockRef, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := env.ExecutionPayload
	if p.ParentHash != e.unsafe.Hash {
		return eth.L2BlockRef{}, enginepkg.ErrNotNext
	}
	e.unsafe = ref(p.Number)
	e.inserted = append(e.inserted, p.Number)
	return e.unsafe, nil
}

func (e *fakeEngine) setSafe(n uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.safe = ref(n)
}

// fakeSequencer extends the unsafe head by one block per action.
type fakeSequencer struct {
	e    *fakeEngine
	runs atomic.Int64
	ran  chan uint64
	fail error

	mu        sync.Mutex
	failSince time.Time
	failWith  error
}

func (s *fakeSequencer) Failing() (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failSince, s.failWith
}

func (s *fakeSequencer) PlanNextAction() time.Duration { return 0 }
func (s *fakeSequencer) BuildingOnto() eth.L2BlockRef  { return eth.L2BlockRef{} }
func (s *fakeSequencer) SetL1Head(eth.L1BlockRef)      {}
func (s *fakeSequencer) RunNextAction(context.Context) (*engine.ExecutionPayloadEnvelope, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.e.mu.Lock()
	s.e.unsafe = ref(s.e.unsafe.Number + 1)
	n := s.e.unsafe.Number
	s.e.mu.Unlock()
	s.runs.Add(1)
	select {
	case s.ran <- n:
	default:
	}
	return nil, nil
}

type nopMetrics struct {
	mu      sync.Mutex
	resets  int
	paused  bool
	results []string
}

func (m *nopMetrics) RecordStep(o string) {
	m.mu.Lock()
	m.results = append(m.results, o)
	m.mu.Unlock()
}
func (m *nopMetrics) RecordPipelineReset() {
	m.mu.Lock()
	m.resets++
	m.mu.Unlock()
}
func (m *nopMetrics) SetSafeLagPaused(p bool)    { m.mu.Lock(); m.paused = p; m.mu.Unlock() }
func (m *nopMetrics) RecordUnsafePayload(string) {}

type harness struct {
	t   *testing.T
	d   *Driver
	p   *derive.Scripted
	e   *fakeEngine
	s   *fakeSequencer
	clk *clock.Fake
	m   *nopMetrics
	ctx context.Context
}

func newHarness(t *testing.T, cfg Config, script ...error) *harness {
	t.Helper()
	e := &fakeEngine{unsafe: ref(10), safe: ref(10), finalized: ref(10)}
	h := &harness{
		t: t, p: derive.NewScripted(script...), e: e,
		s:   &fakeSequencer{e: e, ran: make(chan uint64, 1000)},
		clk: clock.NewFake(time.Unix(1_700_000_000, 0)), m: &nopMetrics{},
	}
	if cfg.SyncCheckInterval == 0 {
		cfg.SyncCheckInterval = time.Hour
	}
	h.d = New(cfg, Deps{Pipeline: h.p, Engine: e, Sequencer: h.s, Metrics: h.m, Clock: h.clk,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	h.ctx = ctx
	if err := h.d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.d.Close() })
	return h
}

// waitSteps waits until the pipeline has been stepped n times in total.
func (h *harness) waitSteps(n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.p.Steps() < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("pipeline stepped %d times, want %d", h.p.Steps(), n)
		}
		select {
		case <-h.p.Stepped():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// settle waits for the loop to finish the events queued so far: a state request is
// served only between events.
func (h *harness) settle() {
	h.t.Helper()
	// Signals wait in buffered channels and the loop's select takes ready cases in any
	// order: first wait until it has taken every queued signal, then for one more round,
	// which runs after the last of them.
	deadline := time.Now().Add(10 * time.Second)
	for len(h.d.l1HeadSig)+len(h.d.l1SafeSig)+len(h.d.l1FinalizedSig)+len(h.d.unsafePayloads) > 0 {
		if time.Now().After(deadline) {
			h.t.Fatal("the driver's loop did not take its queued signals")
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.d.WithState(h.ctx, func() {}); err != nil {
		h.t.Fatal(err)
	}
}

// retryArmed reports whether a timer other than the hour-long sync ticker is armed.
func (h *harness) retryArmed() bool {
	at, ok := h.clk.NextDeadline()
	return ok && at.Before(h.clk.Now().Add(30*time.Minute))
}

// waitTimer waits until the loop has armed a timer due d from now.
func (h *harness) waitTimer(d time.Duration) {
	h.t.Helper()
	want := h.clk.Now().Add(d)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if at, ok := h.clk.NextDeadline(); ok && at.Equal(want) {
			return
		}
		if time.Now().After(deadline) {
			at, ok := h.clk.NextDeadline()
			h.t.Fatalf("no timer due in %s (next: %v %v)", d, at, ok)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIdleStepWaitsForL1(t *testing.T) {
	h := newHarness(t, Config{}) // empty script: every step is io.EOF
	h.waitSteps(1)
	h.settle()
	if got := h.p.Steps(); got != 1 {
		t.Fatalf("an idle pipeline was stepped %d times without new L1 data", got)
	}
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 5, Hash: common.Hash{5}}); err != nil {
		t.Fatal(err)
	}
	h.waitSteps(2)
	h.settle()
	if got := h.p.Steps(); got != 2 {
		t.Fatalf("stepped %d times after one L1 head", got)
	}
}

func TestProgressStepsAgainAtOnce(t *testing.T) {
	h := newHarness(t, Config{}, nil, nil, nil) // three successful steps, then idle
	h.waitSteps(4)
	h.settle()
	if h.p.Steps() != 4 || h.p.Remaining() != 0 {
		t.Fatalf("steps %d, remaining %d", h.p.Steps(), h.p.Remaining())
	}
	if h.retryArmed() {
		t.Fatal("progress must not schedule a delayed step")
	}
}

func TestTemporaryErrorBacksOffExponentially(t *testing.T) {
	tmp := derive.NewTemporaryError(errors.New("rpc timeout"))
	h := newHarness(t, Config{}, tmp, tmp, tmp, nil)
	h.waitSteps(1)
	for i, delay := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		h.waitTimer(delay)
		steps := h.p.Steps()
		h.clk.Advance(delay - time.Millisecond)
		h.settle()
		if h.p.Steps() != steps {
			t.Fatalf("retry %d ran before its %s backoff", i+1, delay)
		}
		h.clk.Advance(time.Millisecond)
		h.waitSteps(steps + 1)
	}
	// The fourth step succeeded: the next one (idle) runs at once, no delay.
	h.waitSteps(5)
}

func TestEngineSyncingGoesIdleAndResetsBackoff(t *testing.T) {
	tmp := derive.NewTemporaryError(errors.New("boom"))
	syncing := fmt.Errorf("%w: forkchoice", derive.ErrEngineSyncing)
	h := newHarness(t, Config{}, tmp, tmp, syncing, tmp)
	h.waitSteps(1)
	h.waitTimer(100 * time.Millisecond)
	h.clk.Advance(100 * time.Millisecond)
	h.waitSteps(2)
	h.waitTimer(200 * time.Millisecond)
	h.clk.Advance(200 * time.Millisecond)
	h.waitSteps(3) // syncing: idle, attempts back to zero, no retry scheduled
	h.settle()
	if h.retryArmed() {
		t.Fatal("engine syncing must go idle, not retry")
	}
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	h.waitSteps(4) // temporary again: the backoff starts over at the first delay
	h.waitTimer(100 * time.Millisecond)
}

func TestEngineErrSyncingFromEngineIsIdleToo(t *testing.T) {
	h := newHarness(t, Config{}, fmt.Errorf("consolidate: %w", enginepkg.ErrSyncing))
	h.waitSteps(1)
	h.settle()
	if h.retryArmed() || h.p.Steps() != 1 {
		t.Fatal("an engine syncing error must leave derivation idle")
	}
}

func TestNotEnoughDataStepsAgainWithoutBackoff(t *testing.T) {
	ned := fmt.Errorf("frame queue: %w", derive.ErrNotEnoughData)
	h := newHarness(t, Config{}, ned, ned, ned)
	h.waitSteps(4) // three not-enough-data and the idle one, with the clock never moving
	h.settle()
	if h.retryArmed() {
		t.Fatal("not-enough-data must not back off")
	}
}

func TestResetErrorResetsPipeline(t *testing.T) {
	h := newHarness(t, Config{}, derive.NewResetError(errors.New("L1 reorg")))
	h.waitSteps(1)
	h.settle()
	// One reset at Start, one for the error.
	if got := h.p.Resets(); got != 2 {
		t.Fatalf("resets %d, want 2", got)
	}
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.m.resets != 1 {
		t.Fatalf("reset metric %d", h.m.resets)
	}
}

func TestCriticalErrorStopsDriver(t *testing.T) {
	h := newHarness(t, Config{SequencerEnabled: true}, derive.NewCriticalError(errors.New("corrupt")))
	select {
	case <-h.d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("driver kept running after a critical error")
	}
	if !errors.Is(h.d.Err(), derive.ErrCritical) {
		t.Fatalf("Err() = %v", h.d.Err())
	}
	if _, err := h.d.SyncStatus(h.ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("SyncStatus after stop: %v", err)
	}
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("OnL1Head after stop: %v", err)
	}
	if _, err := h.d.StopSequencer(h.ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("StopSequencer after stop: %v", err)
	}
}

func TestUnclassifiedErrorIsRetriedWithBackoff(t *testing.T) {
	h := newHarness(t, Config{}, errors.New("surprise"))
	h.waitSteps(1)
	h.waitTimer(100 * time.Millisecond)
	h.clk.Advance(100 * time.Millisecond)
	h.waitSteps(2)
}

func TestForcedResetAndFinalizedSignal(t *testing.T) {
	h := newHarness(t, Config{})
	h.waitSteps(1)
	if err := h.d.ResetDerivationPipeline(h.ctx); err != nil {
		t.Fatal(err)
	}
	if h.p.Resets() != 2 {
		t.Fatalf("resets %d", h.p.Resets())
	}
	fin := eth.L1BlockRef{Number: 3, Hash: common.Hash{3}}
	if err := h.d.OnL1Finalized(h.ctx, fin); err != nil {
		t.Fatal(err)
	}
	h.waitSteps(2) // finality may make more L2 finalizable: step
	if got := h.p.Finalized(); len(got) != 1 || got[0] != fin {
		t.Fatalf("pipeline finalized %v", got)
	}
	safe := eth.L1BlockRef{Number: 4, Hash: common.Hash{4}}
	if err := h.d.OnL1Safe(h.ctx, safe); err != nil {
		t.Fatal(err)
	}
	st, err := h.d.SyncStatus(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SafeL1 != safe || st.FinalizedL1 != fin || h.p.Steps() != 2 {
		t.Fatalf("status %+v after safe signal, steps %d (safe L1 must not step)", st, h.p.Steps())
	}
}

func TestSequencerRunsOnlyWithL1Head(t *testing.T) {
	h := newHarness(t, Config{SequencerEnabled: true})
	h.settle()
	if h.s.runs.Load() != 0 {
		t.Fatal("sequenced before any L1 head was known")
	}
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	waitRuns(t, h.s, 5)
}

func waitRuns(t *testing.T, s *fakeSequencer, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.runs.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("sequencer ran %d times, want %d", s.runs.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMaxSafeLagPausesSequencer(t *testing.T) {
	const lag = 5
	h := newHarness(t, Config{SequencerEnabled: true, SequencerMaxSafeLag: lag})
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	// Safe is 10: the sequencer may build up to unsafe 14 (10 + 5 > 14) and then stops,
	// because at 15 safe + lag <= unsafe.
	waitRuns(t, h.s, lag)
	h.settle()
	h.settle()
	if got := h.s.runs.Load(); got != lag {
		t.Fatalf("sequencer ran %d times with max safe lag %d", got, lag)
	}
	st, _ := h.d.SyncStatus(h.ctx)
	if st.UnsafeL2.Number != 15 || st.SafeL2.Number != 10 {
		t.Fatalf("unsafe %d safe %d", st.UnsafeL2.Number, st.SafeL2.Number)
	}
	h.m.mu.Lock()
	paused := h.m.paused
	h.m.mu.Unlock()
	if !paused {
		t.Fatal("paused metric not set")
	}
	// The safe head catches up by 3: three more blocks are allowed. Any event wakes the
	// loop to re-check; here the L1 safe signal.
	h.e.setSafe(13)
	if err := h.d.OnL1Safe(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	waitRuns(t, h.s, lag+3)
	h.settle()
	h.settle()
	if got := h.s.runs.Load(); got != lag+3 {
		t.Fatalf("sequencer ran %d times after safe moved to 13", got)
	}
}

func TestStartStopActive(t *testing.T) {
	h := newHarness(t, Config{SequencerEnabled: true, SequencerStopped: true})
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if active, err := h.d.SequencerActive(h.ctx); err != nil || active {
		t.Fatalf("active %v %v", active, err)
	}
	if h.s.runs.Load() != 0 {
		t.Fatal("a stopped sequencer ran")
	}
	if _, err := h.d.StopSequencer(h.ctx); err == nil {
		t.Fatal("stopping a stopped sequencer succeeded")
	}
	if err := h.d.StartSequencer(h.ctx, common.Hash{9}); err == nil {
		t.Fatal("start on a wrong head succeeded")
	}
	if err := h.d.StartSequencer(h.ctx, ref(10).Hash); err != nil {
		t.Fatal(err)
	}
	if err := h.d.StartSequencer(h.ctx, ref(10).Hash); err == nil {
		t.Fatal("starting a running sequencer succeeded")
	}
	waitRuns(t, h.s, 3)
	hash, err := h.d.StopSequencer(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := h.d.SyncStatus(h.ctx)
	if hash != st.UnsafeL2.Hash {
		t.Fatalf("stop returned %s, unsafe is %s", hash, st.UnsafeL2.Hash)
	}
	runs := h.s.runs.Load()
	h.settle()
	if h.s.runs.Load() != runs {
		t.Fatal("sequencer ran after stop")
	}
	if active, _ := h.d.SequencerActive(h.ctx); active {
		t.Fatal("active after stop")
	}
}

func TestAdminCallsOnNonSequencer(t *testing.T) {
	h := newHarness(t, Config{})
	if _, err := h.d.StopSequencer(h.ctx); !errors.Is(err, ErrSequencerNotEnabled) {
		t.Fatalf("stop: %v", err)
	}
	if err := h.d.StartSequencer(h.ctx, common.Hash{}); !errors.Is(err, ErrSequencerNotEnabled) {
		t.Fatalf("start: %v", err)
	}
	if active, err := h.d.SequencerActive(h.ctx); active || err != nil {
		t.Fatalf("active %v %v", active, err)
	}
}

func TestSequencerCriticalErrorStopsDriver(t *testing.T) {
	h := newHarness(t, Config{SequencerEnabled: true})
	h.s.fail = errors.New("context gone")
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("driver kept running")
	}
	if h.d.Err() == nil {
		t.Fatal("no error recorded")
	}
}

func TestUnsafePayloadsAreInsertedInOrder(t *testing.T) {
	h := newHarness(t, Config{})
	h.waitSteps(1)
	payload := func(n uint64) *engine.ExecutionPayloadEnvelope {
		r := ref(n)
		return &engine.ExecutionPayloadEnvelope{ExecutionPayload: &engine.ExecutableData{Number: n, BlockHash: r.Hash, ParentHash: r.ParentHash, Timestamp: r.Time}}
	}
	// 14 and 13 arrive ahead of their parents and wait; 12 lets all three in. A second
	// copy of 14 and the stale 11 are dropped.
	for _, n := range []uint64{11, 14, 13, 14, 11, 12} {
		if err := h.d.OnUnsafeL2Payload(h.ctx, payload(n)); err != nil {
			t.Fatal(err)
		}
	}
	// The payloads wait in the loop's buffered channel; the loop takes them in turn with
	// its other events, so wait for the head rather than for one round of the loop.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := h.d.SyncStatus(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.UnsafeL2.Number == 14 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unsafe %d, want 14", st.UnsafeL2.Number)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.waitSteps(2) // payloads request a step (coalesced while one is pending)
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	if fmt.Sprint(h.e.inserted) != "[11 12 13 14]" {
		t.Fatalf("inserted %v", h.e.inserted)
	}
}

func TestPayloadQueueIsBounded(t *testing.T) {
	h := newHarness(t, Config{MaxQueuedPayloads: 3})
	payload := func(n uint64) *engine.ExecutionPayloadEnvelope {
		r := ref(n)
		return &engine.ExecutionPayloadEnvelope{ExecutionPayload: &engine.ExecutableData{Number: n, BlockHash: r.Hash, ParentHash: r.ParentHash, Timestamp: r.Time}}
	}
	for n := uint64(20); n >= 12; n-- {
		if err := h.d.OnUnsafeL2Payload(h.ctx, payload(n)); err != nil {
			t.Fatal(err)
		}
	}
	h.settle()
	var kept []uint64
	if err := h.d.WithState(h.ctx, func() {
		for _, it := range h.d.queue.items {
			kept = append(kept, it.ExecutionPayload.Number)
		}
	}); err != nil {
		t.Fatal(err)
	}
	// The three nearest the head are kept.
	if fmt.Sprint(kept) != "[12 13 14]" {
		t.Fatalf("kept %v", kept)
	}
	if err := h.d.OnUnsafeL2Payload(h.ctx, payload(11)); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if st, _ := h.d.SyncStatus(h.ctx); st.UnsafeL2.Number != 14 {
		t.Fatalf("unsafe %d, want 14", st.UnsafeL2.Number)
	}
}

func TestHealthReportsAStalledPipeline(t *testing.T) {
	var script []error
	for i := 0; i < 50; i++ {
		script = append(script, derive.NewTemporaryError(errors.New("L1 timed out")))
	}
	h := newHarness(t, Config{StallTimeout: 20 * time.Second, MaxStepBackoff: time.Second}, script...)
	h.waitSteps(1)
	if err := h.d.Health(h.ctx); err != nil {
		t.Fatalf("healthy right after the first failure: %v", err)
	}
	start := h.clk.Now()
	steps := 1
	for h.clk.Now().Sub(start) < 25*time.Second { // keep failing, backoff after backoff
		h.advanceToRetry()
		steps++
		h.waitSteps(steps)
	}
	err := h.d.Health(h.ctx)
	if !errors.Is(err, ErrStalled) || !errors.Is(err, derive.ErrTemporary) {
		t.Fatalf("health after 25s of failing steps: %v", err)
	}
	// Once a step goes idle (the script runs out), health recovers.
	for h.p.Remaining() > 0 {
		h.advanceToRetry()
		steps++
		h.waitSteps(steps)
	}
	h.advanceToRetry()
	h.waitSteps(steps + 1)
	h.settle()
	if err := h.d.Health(h.ctx); err != nil {
		t.Fatalf("health after recovery: %v", err)
	}
}

// advanceToRetry waits for the loop to arm its retry timer and moves the clock to it.
func (h *harness) advanceToRetry() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !h.retryArmed() {
		if time.Now().After(deadline) {
			h.t.Fatal("no retry armed")
		}
		time.Sleep(time.Millisecond)
	}
	at, _ := h.clk.NextDeadline()
	h.clk.Advance(at.Sub(h.clk.Now()))
}

func TestHealthReportsAStalledSequencer(t *testing.T) {
	h := newHarness(t, Config{SequencerEnabled: true, StallTimeout: 20 * time.Second})
	h.s.mu.Lock()
	h.s.failSince, h.s.failWith = h.clk.Now(), errors.New("engine refused")
	h.s.mu.Unlock()
	// Not producing yet (no L1 head): not stalled.
	h.clk.Advance(time.Minute)
	if err := h.d.Health(h.ctx); err != nil {
		t.Fatalf("sequencer waiting for L1: %v", err)
	}
	if err := h.d.OnL1Head(h.ctx, eth.L1BlockRef{Number: 1, Hash: common.Hash{1}}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.settle()
	if err := h.d.Health(h.ctx); !errors.Is(err, ErrStalled) {
		t.Fatalf("sequencer failing for a minute: %v", err)
	}
}

// blockingPipeline's Step hangs until its context ends, like a pipeline whose L1 call
// has no deadline.
type blockingPipeline struct {
	derive.Scripted
	entered chan struct{}
}

func (p *blockingPipeline) Step(ctx context.Context) error {
	close(p.entered)
	<-ctx.Done()
	return ctx.Err()
}

func TestHealthReportsAnUnresponsiveLoop(t *testing.T) {
	e := &fakeEngine{unsafe: ref(10), safe: ref(10), finalized: ref(10)}
	p := &blockingPipeline{entered: make(chan struct{})}
	d := New(Config{}, Deps{Pipeline: p, Engine: e, Sequencer: &fakeSequencer{e: e, ran: make(chan uint64, 1)},
		Metrics: &nopMetrics{}, Clock: clock.NewFake(time.Unix(1_700_000_000, 0)), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	<-p.entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := d.Health(ctx); !errors.Is(err, ErrStalled) {
		t.Fatalf("health with the loop stuck in a step: %v", err)
	}
}

// TestSyncStatusIsConsistentUnderLoad reads status snapshots while the sequencer and L1
// signals mutate state; run with -race. Every snapshot must have safe <= unsafe and an
// L1 head that was actually signalled.
func TestSyncStatusIsConsistentUnderLoad(t *testing.T) {
	h := newHarness(t, Config{SequencerEnabled: true})
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= 200; i++ {
			if err := h.d.OnL1Head(ctx, eth.L1BlockRef{Number: i, Hash: common.Hash{byte(i)}}); err != nil {
				return
			}
		}
	}()
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				st, err := h.d.SyncStatus(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if st.SafeL2.Number > st.UnsafeL2.Number || (st.HeadL1.Number != 0 && st.HeadL1.Hash != (common.Hash{byte(st.HeadL1.Number)})) {
					t.Errorf("inconsistent snapshot %+v", st)
					return
				}
			}
		}()
	}
	wg.Wait()
}

type recordingAltSync struct {
	mu   sync.Mutex
	reqs [][2]uint64
}

func (a *recordingAltSync) RequestL2Range(_ context.Context, start, end eth.L2BlockRef) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, [2]uint64{start.Number, end.Number})
	return nil
}

func TestSyncGapTickerRequestsMissingRange(t *testing.T) {
	e := &fakeEngine{unsafe: ref(10), safe: ref(10), finalized: ref(10)}
	alt := &recordingAltSync{}
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	p := derive.NewScripted()
	d := New(Config{SyncCheckInterval: 4 * time.Second}, Deps{Pipeline: p, Engine: e, Sequencer: &fakeSequencer{e: e, ran: make(chan uint64, 1)},
		AltSync: alt, Metrics: &nopMetrics{}, Clock: clk, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	r := ref(20)
	if err := d.OnUnsafeL2Payload(ctx, &engine.ExecutionPayloadEnvelope{ExecutionPayload: &engine.ExecutableData{Number: 20, BlockHash: r.Hash, ParentHash: r.ParentHash}}); err != nil {
		t.Fatal(err)
	}
	if err := d.WithState(ctx, func() {}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		alt.mu.Lock()
		n := len(alt.reqs)
		alt.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no range requested for the gap 10..20")
		}
		time.Sleep(time.Millisecond)
	}
	alt.mu.Lock()
	defer alt.mu.Unlock()
	if alt.reqs[0] != [2]uint64{10, 20} {
		t.Fatalf("requested %v", alt.reqs[0])
	}
}
