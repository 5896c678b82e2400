package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/derive"
	enginepkg "github.com/opkit/opkit/rollup/engine"
)

// Engine is the driver's view of the engine controller.
type Engine interface {
	Heads() (unsafe, safe, finalized eth.L2BlockRef)
	State() enginepkg.Heads
	InsertUnsafePayload(ctx context.Context, env *engine.ExecutionPayloadEnvelope) (eth.L2BlockRef, error)
}

// Sequencer is the driver's view of the block producer.
type Sequencer interface {
	PlanNextAction() time.Duration
	RunNextAction(ctx context.Context) (*engine.ExecutionPayloadEnvelope, error)
	BuildingOnto() eth.L2BlockRef
	SetL1Head(eth.L1BlockRef)
	// Failing reports since when every action has failed (zero while the last one
	// succeeded) and the last failure.
	Failing() (since time.Time, err error)
}

// Network publishes sequenced blocks to peers; optional.
type Network interface {
	PublishL2Payload(ctx context.Context, env *engine.ExecutionPayloadEnvelope) error
}

// AltSync fetches missing unsafe blocks from another source when the node sees a gap;
// optional. end is zero for an open-ended request.
type AltSync interface {
	RequestL2Range(ctx context.Context, start, end eth.L2BlockRef) error
}

// Metrics receives the driver's events.
type Metrics interface {
	RecordStep(outcome string)
	RecordPipelineReset()
	SetSafeLagPaused(paused bool)
	// RecordUnsafePayload counts a received payload by result: inserted, queued
	// (ahead of the head, waiting for its parent) or dropped.
	RecordUnsafePayload(result string)
}

// Config holds the driver's settings.
type Config struct {
	SequencerEnabled bool
	// SequencerStopped starts the node with the sequencer enabled but not producing.
	SequencerStopped bool
	// SequencerMaxSafeLag pauses the sequencer while safe + lag <= unsafe; 0 disables.
	SequencerMaxSafeLag uint64
	// SyncCheckInterval is the unsafe-gap ticker's period; default 2 L2 block times.
	SyncCheckInterval time.Duration
	// MaxStepBackoff caps the delay between failing derivation steps; default 10s.
	MaxStepBackoff time.Duration
	// StallTimeout is how long derivation steps or sequencer actions may keep failing
	// before Health reports the node stalled; default 30s.
	StallTimeout time.Duration
	// MaxQueuedPayloads bounds the unsafe payloads kept while they wait for their
	// parent; default 256.
	MaxQueuedPayloads int
}

// Deps are the parts the driver drives. Network and AltSync may be nil.
type Deps struct {
	Pipeline  derive.Pipeline
	Engine    Engine
	Sequencer Sequencer
	Network   Network
	AltSync   AltSync
	Metrics   Metrics
	Clock     clock.Clock
	Log       *slog.Logger
}

// ErrStopped is returned by every call made after the loop has stopped.
var ErrStopped = errors.New("driver stopped")

type startReq struct {
	hash common.Hash
	err  chan error
}

type stopResp struct {
	hash common.Hash
	err  error
}

// Driver runs the event loop.
type Driver struct {
	cfg Config
	d   Deps

	l1HeadSig      chan eth.L1BlockRef
	l1SafeSig      chan eth.L1BlockRef
	l1FinalizedSig chan eth.L1BlockRef
	unsafePayloads chan *engine.ExecutionPayloadEnvelope
	stateReq       chan func()
	forceReset     chan chan error
	startSeq       chan startReq
	stopSeq        chan chan stopResp
	seqActive      chan chan bool
	stepSig        chan struct{}

	// Loop-owned state: touched only by the loop goroutine.
	l1Head, l1Safe, l1Finalized eth.L1BlockRef
	syncTarget                  eth.L2BlockRef
	queue                       payloadQueue
	seqRunning                  bool
	// stepFailSince is when derivation steps started failing in a row (zero while the
	// last step made progress or went idle normally); stepErr is the last failure.
	stepFailSince time.Time
	stepErr       error

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped chan struct{}
	errMu   sync.Mutex
	err     error
}

// New returns a driver; call Start to run it.
func New(cfg Config, d Deps) *Driver {
	if cfg.SyncCheckInterval == 0 {
		cfg.SyncCheckInterval = 4 * time.Second
	}
	if cfg.MaxStepBackoff == 0 {
		cfg.MaxStepBackoff = 10 * time.Second
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 30 * time.Second
	}
	if cfg.MaxQueuedPayloads == 0 {
		cfg.MaxQueuedPayloads = 256
	}
	if d.Clock == nil {
		d.Clock = clock.System
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Driver{
		cfg: cfg, d: d,
		l1HeadSig:      make(chan eth.L1BlockRef, 10),
		l1SafeSig:      make(chan eth.L1BlockRef, 10),
		l1FinalizedSig: make(chan eth.L1BlockRef, 10),
		unsafePayloads: make(chan *engine.ExecutionPayloadEnvelope, 10),
		stateReq:       make(chan func()),
		forceReset:     make(chan chan error),
		startSeq:       make(chan startReq),
		stopSeq:        make(chan chan stopResp),
		seqActive:      make(chan chan bool),
		stepSig:        make(chan struct{}, 1),
		ctx:            ctx, cancel: cancel,
		stopped: make(chan struct{}),
		queue:   payloadQueue{max: cfg.MaxQueuedPayloads},
	}
}

// Start resets the pipeline and starts the loop.
func (s *Driver) Start() error {
	if err := s.d.Pipeline.Reset(s.ctx); err != nil {
		return fmt.Errorf("reset derivation pipeline: %w", err)
	}
	s.d.Log.Info("driver started", "sequencer_enabled", s.cfg.SequencerEnabled, "sequencer_stopped", s.cfg.SequencerStopped, "max_safe_lag", s.cfg.SequencerMaxSafeLag)
	s.wg.Add(1)
	go s.eventLoop()
	return nil
}

// Close stops the loop and waits for it; safe to call more than once and after a
// critical error stopped the loop on its own.
func (s *Driver) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Done is closed when the loop has stopped, by Close or by a critical error.
func (s *Driver) Done() <-chan struct{} { return s.stopped }

// Err is the critical error that stopped the loop, if any.
func (s *Driver) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *Driver) fail(err error) {
	s.errMu.Lock()
	s.err = err
	s.errMu.Unlock()
}

// send delivers v on ch unless ctx ends or the loop has stopped.
func send[T any](ctx context.Context, s *Driver, ch chan T, v T) error {
	select {
	case <-s.stopped:
		return ErrStopped // checked first: buffered signal channels would still accept
	default:
	}
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopped:
		return ErrStopped
	}
}

// recv waits for the loop's answer unless ctx ends or the loop has stopped.
func recv[T any](ctx context.Context, s *Driver, ch chan T) (T, error) {
	var zero T
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-s.stopped:
		return zero, ErrStopped
	}
}

// OnL1Head signals a new L1 head (latest block).
func (s *Driver) OnL1Head(ctx context.Context, ref eth.L1BlockRef) error {
	return send(ctx, s, s.l1HeadSig, ref)
}

// OnL1Safe signals a new L1 safe block.
func (s *Driver) OnL1Safe(ctx context.Context, ref eth.L1BlockRef) error {
	return send(ctx, s, s.l1SafeSig, ref)
}

// OnL1Finalized signals a new L1 finalized block.
func (s *Driver) OnL1Finalized(ctx context.Context, ref eth.L1BlockRef) error {
	return send(ctx, s, s.l1FinalizedSig, ref)
}

// OnUnsafeL2Payload queues a payload received from a peer.
func (s *Driver) OnUnsafeL2Payload(ctx context.Context, env *engine.ExecutionPayloadEnvelope) error {
	return send(ctx, s, s.unsafePayloads, env)
}

// RequestStep asks the loop to step derivation now, without waiting for a backoff: a
// supervisor gave a managed node new L1 data, or reset it.
func (s *Driver) RequestStep() {
	select {
	case s.stepSig <- struct{}{}:
	default:
	}
}

// WithState runs fn on the loop goroutine, between events: whatever fn reads (sync
// status, engine heads, blocks at those heads) is one consistent view.
func (s *Driver) WithState(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	if err := send(ctx, s, s.stateReq, func() { fn(); close(done) }); err != nil {
		return err
	}
	_, err := recv(ctx, s, done)
	return err
}

// SyncStatus returns a consistent snapshot of the node's view of L1 and L2.
func (s *Driver) SyncStatus(ctx context.Context) (*eth.SyncStatus, error) {
	var st *eth.SyncStatus
	if err := s.WithState(ctx, func() { st = s.syncStatus() }); err != nil {
		return nil, err
	}
	return st, nil
}

// SnapshotLocked is the sync status; call it only inside a WithState function, where the
// loop is paused.
func (s *Driver) SnapshotLocked() *eth.SyncStatus { return s.syncStatus() }

// syncStatus reports the heads as op-node does without interop: cross-unsafe and
// cross-safe are the engine's, which equal unsafe and local-safe; current_l1_finalized is
// the last finalized L1 block signalled, which is what op-node v1.16.13 reports there.
func (s *Driver) syncStatus() *eth.SyncStatus {
	h := s.d.Engine.State()
	return &eth.SyncStatus{
		CurrentL1:          s.d.Pipeline.Origin(),
		CurrentL1Finalized: s.l1Finalized,
		HeadL1:             s.l1Head,
		SafeL1:             s.l1Safe,
		FinalizedL1:        s.l1Finalized,
		UnsafeL2:           h.Unsafe,
		SafeL2:             h.Safe,
		FinalizedL2:        h.Finalized,
		PendingSafeL2:      h.PendingSafe,
		CrossUnsafeL2:      h.CrossUnsafe,
		LocalSafeL2:        h.LocalSafe,
	}
}

// ErrStalled wraps every reason Health reports the node unhealthy.
var ErrStalled = errors.New("rollup node stalled")

// Health reports whether the node is making progress: the loop answers within the
// context's deadline, derivation steps have not all failed for StallTimeout, and the
// sequencer (when it should be producing) has not failed every action for StallTimeout.
// A stopped driver reports its critical error.
func (s *Driver) Health(ctx context.Context) error {
	select {
	case <-s.stopped:
		if err := s.Err(); err != nil {
			return fmt.Errorf("driver stopped: %w", err)
		}
		return ErrStopped
	default:
	}
	var stepSince, seqSince time.Time
	var stepErr, seqErr error
	err := s.WithState(ctx, func() {
		stepSince, stepErr = s.stepFailSince, s.stepErr
		if s.cfg.SequencerEnabled && s.seqRunning {
			seqSince, seqErr = s.d.Sequencer.Failing()
		}
	})
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: the driver's event loop did not answer: %w", ErrStalled, err)
	}
	if err != nil {
		return err
	}
	now := s.d.Clock.Now()
	if !stepSince.IsZero() && now.Sub(stepSince) >= s.cfg.StallTimeout {
		return fmt.Errorf("%w: derivation failing for %s: %w", ErrStalled, now.Sub(stepSince).Round(time.Second), stepErr)
	}
	if !seqSince.IsZero() && now.Sub(seqSince) >= s.cfg.StallTimeout {
		return fmt.Errorf("%w: sequencer failing for %s: %w", ErrStalled, now.Sub(seqSince).Round(time.Second), seqErr)
	}
	return nil
}

// ResetDerivationPipeline forces a pipeline reset and waits for it.
func (s *Driver) ResetDerivationPipeline(ctx context.Context) error {
	resp := make(chan error, 1)
	if err := send(ctx, s, s.forceReset, resp); err != nil {
		return err
	}
	err, rerr := recv(ctx, s, resp)
	if rerr != nil {
		return rerr
	}
	return err
}

// ErrSequencerNotEnabled is returned by the admin calls of a node that is not a sequencer.
var ErrSequencerNotEnabled = errors.New("sequencer is not enabled")

// StartSequencer resumes sequencing on top of the given unsafe head hash, which must be
// the current unsafe head: a sequencer never builds on a head it was not told about.
func (s *Driver) StartSequencer(ctx context.Context, unsafeHead common.Hash) error {
	if !s.cfg.SequencerEnabled {
		return ErrSequencerNotEnabled
	}
	req := startReq{hash: unsafeHead, err: make(chan error, 1)}
	if err := send(ctx, s, s.startSeq, req); err != nil {
		return err
	}
	err, rerr := recv(ctx, s, req.err)
	if rerr != nil {
		return rerr
	}
	return err
}

// StopSequencer stops sequencing and returns the last unsafe head hash, to pass to
// StartSequencer (here or on another node).
func (s *Driver) StopSequencer(ctx context.Context) (common.Hash, error) {
	if !s.cfg.SequencerEnabled {
		return common.Hash{}, ErrSequencerNotEnabled
	}
	resp := make(chan stopResp, 1)
	if err := send(ctx, s, s.stopSeq, resp); err != nil {
		return common.Hash{}, err
	}
	r, err := recv(ctx, s, resp)
	if err != nil {
		return common.Hash{}, err
	}
	return r.hash, r.err
}

// SequencerActive reports whether the sequencer is producing blocks.
func (s *Driver) SequencerActive(ctx context.Context) (bool, error) {
	if !s.cfg.SequencerEnabled {
		return false, nil
	}
	resp := make(chan bool, 1)
	if err := send(ctx, s, s.seqActive, resp); err != nil {
		return false, err
	}
	return recv(ctx, s, resp)
}

// stepOutcome names a step result for logs and metrics, and says what to do next.
func stepOutcome(err error) string {
	switch {
	case err == nil:
		return "progress"
	case errors.Is(err, io.EOF):
		return "idle"
	case errors.Is(err, derive.ErrEngineSyncing), errors.Is(err, enginepkg.ErrSyncing):
		return "engine_syncing"
	case errors.Is(err, derive.ErrReset):
		return "reset"
	case errors.Is(err, derive.ErrTemporary):
		return "temporary"
	case errors.Is(err, derive.ErrCritical):
		return "critical"
	case errors.Is(err, derive.ErrNotEnoughData):
		return "not_enough_data"
	default:
		return "unclassified"
	}
}

func (s *Driver) eventLoop() {
	defer s.wg.Done()
	defer close(s.stopped)
	log := s.d.Log
	ctx := s.ctx
	clk := s.d.Clock

	// stepReq holds at most one pending step request; more are redundant.
	stepReq := make(chan struct{}, 1)
	step := func() {
		select {
		case stepReq <- struct{}{}:
		default:
		}
	}
	// A delayed re-attempt after a failed step; other events keep flowing meanwhile.
	stepTimer := clk.NewTimer(time.Hour)
	stepTimer.Stop()
	defer stepTimer.Stop()
	var delayedStep <-chan time.Time
	attempts := 0
	reqStep := func() {
		if attempts == 0 {
			step()
			return
		}
		if delayedStep == nil {
			delay := clock.Backoff(attempts, s.cfg.MaxStepBackoff)
			log.Debug("scheduling derivation re-attempt", "attempts", attempts, "delay", delay)
			stepTimer.Reset(delay)
			delayedStep = stepTimer.C()
		}
	}
	reqStep()

	seqTimer := clk.NewTimer(time.Hour)
	seqTimer.Stop()
	defer seqTimer.Stop()
	var seqCh <-chan time.Time
	planSequencer := func() {
		seqTimer.Reset(s.d.Sequencer.PlanNextAction())
		seqCh = seqTimer.C()
	}
	stopped := s.cfg.SequencerStopped
	paused := false
	setRunning := func() { s.seqRunning = s.cfg.SequencerEnabled && !stopped && !paused && !s.l1Head.IsZero() }

	syncTicker := clk.NewTimer(s.cfg.SyncCheckInterval)
	defer syncTicker.Stop()
	lastUnsafe, _, _ := s.d.Engine.Heads()

	for {
		setRunning()
		unsafe, safe, _ := s.d.Engine.Heads()
		if s.cfg.SequencerEnabled && !stopped && !s.l1Head.IsZero() {
			lag := s.cfg.SequencerMaxSafeLag
			if lag > 0 && safe.Number+lag <= unsafe.Number {
				if !paused {
					log.Warn("pausing the sequencer: the safe head lags too far behind", "safe", safe.ID(), "unsafe", unsafe.ID(), "max_safe_lag", lag)
					paused = true
					s.d.Metrics.SetSafeLagPaused(true)
				}
				seqCh = nil
				seqTimer.Stop()
			} else {
				if paused {
					log.Info("resuming the sequencer: the safe head caught up", "safe", safe.ID(), "unsafe", unsafe.ID())
					paused = false
					s.d.Metrics.SetSafeLagPaused(false)
				}
				if seqCh == nil || s.d.Sequencer.BuildingOnto().ID() != unsafe.ID() {
					planSequencer()
				}
			}
		} else {
			seqCh = nil
			seqTimer.Stop()
		}
		if unsafe != lastUnsafe {
			// The chain is moving: no need to look for a gap yet.
			lastUnsafe = unsafe
			syncTicker.Reset(s.cfg.SyncCheckInterval)
		}

		select {
		case <-seqCh:
			if !s.runSequencer(ctx) {
				return
			}
			planSequencer()
		case <-syncTicker.C():
			syncTicker.Reset(s.cfg.SyncCheckInterval)
			s.checkForGap(ctx)
		case env := <-s.unsafePayloads:
			s.onUnsafePayload(ctx, env)
			reqStep()
		case h := <-s.l1HeadSig:
			s.l1Head = h
			s.d.Sequencer.SetL1Head(h)
			reqStep() // new L1 data may end an idle pipeline's wait
		case h := <-s.l1SafeSig:
			s.l1Safe = h // informational: safe L1 does not drive derivation
		case h := <-s.l1FinalizedSig:
			s.l1Finalized = h
			s.d.Pipeline.OnL1Finalized(ctx, h)
			reqStep() // more L2 may now be finalizable
		case <-delayedStep:
			delayedStep = nil
			step()
		case <-stepReq:
			// A due sequencer action goes before the step: block production keeps time,
			// while derivation catching up on L1 always has a step ready and would
			// otherwise take half of the turns. One action per step, so neither starves.
			select {
			case <-seqCh:
				if !s.runSequencer(ctx) {
					return
				}
				planSequencer()
			default:
			}
			err := s.d.Pipeline.Step(ctx)
			if err != nil && ctx.Err() != nil {
				return // stopping: the step was cut short, not failed
			}
			attempts++ // reset below when the step made healthy progress
			outcome := stepOutcome(err)
			s.d.Metrics.RecordStep(outcome)
			switch outcome {
			case "temporary", "unclassified", "reset":
				if s.stepFailSince.IsZero() {
					s.stepFailSince = clk.Now()
				}
				s.stepErr = err
			default:
				s.stepFailSince, s.stepErr = time.Time{}, nil
			}
			switch outcome {
			case "idle", "engine_syncing":
				log.Debug("derivation idle", "outcome", outcome, "origin", s.d.Pipeline.Origin().ID())
				attempts = 0
			case "reset":
				log.Warn("resetting the derivation pipeline", "err", err)
				if rerr := s.resetPipeline(ctx); rerr != nil {
					s.stepErr = rerr
					reqStep() // retried with backoff: attempts keeps counting
				} else {
					reqStep()
				}
			case "temporary", "unclassified":
				log.Warn("derivation step failed, retrying with backoff", "attempts", attempts, "err", err)
				reqStep()
			case "critical":
				log.Error("derivation critical error, stopping the driver", "err", err)
				s.fail(fmt.Errorf("derivation: %w", err))
				return
			case "not_enough_data":
				attempts = 0 // more data is one step away: no backoff
				reqStep()
			default: // progress
				attempts = 0
				if s.queue.len() > 0 {
					s.drainQueue(ctx) // derivation may have built the parent a payload waits for
				}
				reqStep()
			}
		case fn := <-s.stateReq:
			fn()
		case <-s.stepSig:
			attempts = 0
			reqStep()
		case resp := <-s.forceReset:
			log.Warn("derivation pipeline reset requested")
			resp <- s.resetPipeline(ctx)
		case req := <-s.startSeq:
			head, _, _ := s.d.Engine.Heads()
			switch {
			case !stopped:
				req.err <- errors.New("sequencer already running")
			case head.Hash != req.hash:
				req.err <- fmt.Errorf("block hash does not match: head %s, received %s", head.Hash, req.hash)
			default:
				stopped = false
				log.Info("sequencer started", "unsafe", head.ID())
				req.err <- nil
			}
		case resp := <-s.stopSeq:
			if stopped {
				resp <- stopResp{err: errors.New("sequencer not running")}
				continue
			}
			stopped = true
			head, _, _ := s.d.Engine.Heads()
			log.Warn("sequencer stopped", "unsafe", head.ID())
			resp <- stopResp{hash: head.Hash}
		case resp := <-s.seqActive:
			resp <- !stopped
		case <-ctx.Done():
			return
		}
	}
}

// runSequencer runs one sequencer action and publishes a sealed block; false means the
// loop must stop (closing, or a critical sequencer error, recorded).
func (s *Driver) runSequencer(ctx context.Context) bool {
	env, err := s.d.Sequencer.RunNextAction(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		s.d.Log.Error("sequencer critical error, stopping the driver", "err", err)
		s.fail(fmt.Errorf("sequencer: %w", err))
		return false
	}
	if env != nil && s.d.Network != nil {
		if err := s.d.Network.PublishL2Payload(ctx, env); err != nil {
			s.d.Log.Warn("failed to publish sequenced block", "number", env.ExecutionPayload.Number, "err", err)
		}
	}
	return true
}

func (s *Driver) resetPipeline(ctx context.Context) error {
	s.d.Metrics.RecordPipelineReset()
	if err := s.d.Pipeline.Reset(ctx); err != nil {
		s.d.Log.Error("derivation pipeline reset failed", "err", err)
		return err
	}
	return nil
}

// onUnsafePayload inserts a payload that extends the unsafe head, keeps one that is
// ahead of it (its parent may arrive next, from gossip or alt-sync) and then inserts
// every kept payload that now extends the head, in order.
func (s *Driver) onUnsafePayload(ctx context.Context, env *engine.ExecutionPayloadEnvelope) {
	if env == nil || env.ExecutionPayload == nil {
		s.d.Metrics.RecordUnsafePayload("dropped")
		return
	}
	unsafe, _, _ := s.d.Engine.Heads()
	p := env.ExecutionPayload
	if p.Number <= unsafe.Number {
		s.d.Metrics.RecordUnsafePayload("dropped")
		s.d.Log.Debug("dropped unsafe payload at or below the unsafe head", "number", p.Number, "hash", p.BlockHash, "unsafe", unsafe.Number)
		return
	}
	if p.ParentHash != unsafe.Hash {
		if s.queue.push(env) {
			s.d.Metrics.RecordUnsafePayload("queued")
			s.d.Log.Debug("queued unsafe payload ahead of the head", "number", p.Number, "hash", p.BlockHash, "unsafe", unsafe.Number, "queued", s.queue.len())
		} else {
			s.d.Metrics.RecordUnsafePayload("dropped")
		}
		if p.Number > s.syncTarget.Number {
			s.syncTarget = eth.L2BlockRef{Hash: p.BlockHash, Number: p.Number, ParentHash: p.ParentHash, Time: p.Timestamp}
		}
		return
	}
	s.insertUnsafe(ctx, env)
	s.drainQueue(ctx)
}

func (s *Driver) insertUnsafe(ctx context.Context, env *engine.ExecutionPayloadEnvelope) bool {
	ref, err := s.d.Engine.InsertUnsafePayload(ctx, env)
	if err != nil {
		s.d.Metrics.RecordUnsafePayload("dropped")
		s.d.Log.Warn("dropped unsafe payload", "number", env.ExecutionPayload.Number, "hash", env.ExecutionPayload.BlockHash, "err", err)
		return false
	}
	s.d.Metrics.RecordUnsafePayload("inserted")
	s.d.Log.Debug("inserted unsafe payload", "block", ref.ID())
	return true
}

// drainQueue inserts queued payloads while the lowest one extends the unsafe head,
// dropping those the head has passed.
func (s *Driver) drainQueue(ctx context.Context) {
	for {
		unsafe, _, _ := s.d.Engine.Heads()
		s.queue.dropUpTo(unsafe.Number)
		next := s.queue.peek()
		if next == nil || next.ExecutionPayload.ParentHash != unsafe.Hash {
			return
		}
		s.queue.pop()
		if !s.insertUnsafe(ctx, next) {
			return
		}
	}
}

// checkForGap asks AltSync for the blocks between the unsafe head and the newest payload
// seen that could not be inserted because its parent was missing.
func (s *Driver) checkForGap(ctx context.Context) {
	if s.d.AltSync == nil {
		return
	}
	unsafe, _, _ := s.d.Engine.Heads()
	end := s.syncTarget
	if !end.IsZero() && end.Number <= unsafe.Number+1 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.d.AltSync.RequestL2Range(ctx, unsafe, end); err != nil {
		s.d.Log.Warn("failed to request missing unsafe blocks", "err", err)
	}
}
