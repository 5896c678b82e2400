package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/clock"
	enginepkg "github.com/opkit/opkit/rollup/engine"
)

// Engine is what the sequencer needs from the engine controller.
type Engine interface {
	UnsafeHead() eth.L2BlockRef
	Heads() (unsafe, safe, finalized eth.L2BlockRef)
	StartBuilding(ctx context.Context, parent eth.L2BlockRef, attrs *engine.PayloadAttributes) (engine.PayloadID, error)
	SealBuilding(ctx context.Context, id engine.PayloadID) (*engine.ExecutionPayloadEnvelope, eth.L2BlockRef, error)
	SetUnsafeHead(ctx context.Context, ref eth.L2BlockRef) error
	BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error)
	// SystemConfigByL2Hash is the system config a block was built with: the next
	// block's attributes start from it, so the sequencer follows L1's config changes.
	SystemConfigByL2Hash(ctx context.Context, h common.Hash) (rollup.SystemConfig, error)
}

// Config tunes the sequencer.
type Config struct {
	// L1Confs keeps the origin this many blocks below the L1 head, so that shallow L1
	// reorgs do not reorg L2.
	L1Confs uint64
	// L1ChainConfig prices the L1 blob base fee the L1-attributes deposit carries.
	L1ChainConfig *params.ChainConfig
	// SealingDuration is how long before a block's timestamp sealing starts; default 50ms.
	SealingDuration time.Duration
	// MaxBackoff caps the retry delay after execution-client or L1 failures; default 10s.
	MaxBackoff time.Duration
	// L1CallTimeout bounds every L1 read; default 10s. A hung L1 then costs one retry
	// instead of freezing the driver's loop.
	L1CallTimeout time.Duration
	// MaxInvalidBuilds is how many builds in a row the engine may refuse (attributes or
	// payload invalid) before the sequencer gives up with a critical error; default 10.
	MaxInvalidBuilds int
}

// ErrCritical wraps the failures the sequencer cannot retry its way out of: the engine
// does not support the chain's fork, or refuses every block built for it.
var ErrCritical = errors.New("sequencer cannot continue")

// Metrics receives the sequencer's counters; nil-safe implementations are not required,
// the node always passes one.
type Metrics interface {
	RecordSequencedBlock(ref eth.L2BlockRef, buildTime time.Duration)
	RecordSequencerError(class string)
	RecordSequencerReset()
}

type job struct {
	parent  eth.L2BlockRef
	id      engine.PayloadID
	time    uint64
	started time.Time
}

// Sequencer builds L2 blocks in two actions per block: start building when the parent's
// slot begins, and seal just before the new block's timestamp. A node that is behind the
// wall clock runs both at once, block after block, until it catches up.
type Sequencer struct {
	cfg      Config
	rcfg     *rollup.Config
	receipts rollup.L1ReceiptsFetcher
	engine   Engine
	origins  *OriginSelector
	clock    clock.Clock
	log      *slog.Logger
	metrics  Metrics

	building *job
	retryAt  time.Time
	attempts int
	invalid  int
	l1Head   eth.L1BlockRef
	// failSince is when actions started failing in a row; lastErr the last failure.
	failSince time.Time
	lastErr   error
}

// New returns a sequencer building on engine with origins from l1 and the origins'
// receipts (user deposits, system config updates) from receipts.
func New(cfg Config, rcfg *rollup.Config, eng Engine, l1 L1Source, receipts rollup.L1ReceiptsFetcher, clk clock.Clock, log *slog.Logger, m Metrics) *Sequencer {
	if cfg.SealingDuration == 0 {
		cfg.SealingDuration = 50 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.L1CallTimeout == 0 {
		cfg.L1CallTimeout = 10 * time.Second
	}
	if cfg.MaxInvalidBuilds == 0 {
		cfg.MaxInvalidBuilds = 10
	}
	l1 = deadlineL1{src: l1, timeout: cfg.L1CallTimeout}
	return &Sequencer{
		cfg: cfg, rcfg: rcfg, receipts: receipts, engine: eng,
		origins: NewOriginSelector(rcfg, l1, cfg.L1Confs), clock: clk, log: log, metrics: m,
	}
}

// deadlineL1 puts a deadline on every L1 read.
type deadlineL1 struct {
	src     L1Source
	timeout time.Duration
}

func (d deadlineL1) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.src.HeaderByNumber(ctx, n)
}

func (d deadlineL1) HeaderByHash(ctx context.Context, h common.Hash) (*types.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.src.HeaderByHash(ctx, h)
}

// Failing reports since when every action has failed, zero after a success, and the
// last failure: the node's health check reads it.
func (s *Sequencer) Failing() (time.Time, error) { return s.failSince, s.lastErr }

// SetL1Head tells the sequencer the latest L1 head; origins are confirmed against it.
func (s *Sequencer) SetL1Head(h eth.L1BlockRef) { s.l1Head = h }

// BuildingOnto is the block the sequencer is building on, or the zero ref when idle; the
// driver re-plans when the unsafe head moves away from it.
func (s *Sequencer) BuildingOnto() eth.L2BlockRef {
	if s.building == nil {
		return eth.L2BlockRef{}
	}
	return s.building.parent
}

// PlanNextAction returns how long until the next action is due.
func (s *Sequencer) PlanNextAction() time.Duration {
	now := s.clock.Now()
	if now.Before(s.retryAt) {
		return s.retryAt.Sub(now)
	}
	head := s.engine.UnsafeHead()
	var due time.Time
	if s.building != nil && s.building.parent.Hash == head.Hash {
		due = time.Unix(int64(s.building.time), 0).Add(-s.cfg.SealingDuration)
	} else {
		due = time.Unix(int64(head.Time), 0)
	}
	if d := due.Sub(now); d > 0 {
		return d
	}
	return 0
}

// RunNextAction starts or seals a block. It returns the sealed payload when one was
// sealed. Execution-client and L1 failures are handled here, by backing off and retrying;
// an error is returned only when ctx is done.
func (s *Sequencer) RunNextAction(ctx context.Context) (*engine.ExecutionPayloadEnvelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	head := s.engine.UnsafeHead()
	if s.building != nil && s.building.parent.Hash == head.Hash {
		return s.seal(ctx)
	}
	s.building = nil
	return nil, s.start(ctx, head)
}

func (s *Sequencer) start(ctx context.Context, head eth.L2BlockRef) error {
	sel, err := s.origins.FindL1Origin(ctx, head, s.l1Head)
	if err != nil {
		if errors.Is(err, ErrL1Reorg) {
			return s.recoverFromL1Reorg(ctx, head, err)
		}
		return s.retry(ctx, "origin", err)
	}
	sys, err := s.engine.SystemConfigByL2Hash(ctx, head.Hash)
	if err != nil {
		return s.retry(ctx, classOf(err), fmt.Errorf("system config of %s: %w", head.ID(), err))
	}
	attrs, _, err := s.buildAttributes(ctx, sys, head, sel.Origin)
	switch {
	case errors.Is(err, rollup.ErrCriticalAttrs):
		return fmt.Errorf("%w: attributes on %s: %w", ErrCritical, head.ID(), err)
	case errors.Is(err, rollup.ErrResetAttrs):
		return s.recoverFromL1Reorg(ctx, head, err)
	case err != nil:
		return s.retry(ctx, "attributes", err)
	}
	// Past the drift limit, and at a Jovian activation block (its upgrade transactions
	// must run alone), the block takes no mempool transactions.
	attrs.NoTxPool = sel.PastDrift || s.rcfg.IsJovianActivationBlock(attrs.Timestamp)
	id, err := s.engine.StartBuilding(ctx, head, attrs)
	if err != nil {
		if cerr := s.critical(err); cerr != nil {
			return cerr
		}
		return s.retry(ctx, classOf(err), err)
	}
	s.building = &job{parent: head, id: id, time: attrs.Timestamp, started: s.clock.Now()}
	s.log.Debug("started building", "parent", head.ID(), "origin", sel.Origin.Number.Uint64(), "time", attrs.Timestamp, "past_drift", sel.PastDrift)
	return nil
}

// buildAttributes builds the attributes of the block after head in origin's epoch with
// the L1 reads under the call deadline: a new epoch's user deposits and ConfigUpdate
// events come from the origin's receipts.
func (s *Sequencer) buildAttributes(ctx context.Context, sys rollup.SystemConfig, head eth.L2BlockRef, origin *types.Header) (*engine.PayloadAttributes, rollup.SystemConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.L1CallTimeout)
	defer cancel()
	return s.rcfg.BuildAttributes(ctx, s.receipts, s.cfg.L1ChainConfig, sys, head, eth.BlockID{Hash: origin.Hash(), Number: origin.Number.Uint64()})
}

func (s *Sequencer) seal(ctx context.Context) (*engine.ExecutionPayloadEnvelope, error) {
	j := s.building
	env, ref, err := s.engine.SealBuilding(ctx, j.id)
	if err != nil {
		// A payload that failed to seal is dropped: after an engine restart its ID is
		// unknown, and after a rejection it cannot succeed. The next action rebuilds.
		s.building = nil
		if cerr := s.critical(err); cerr != nil {
			return nil, cerr
		}
		return nil, s.retry(ctx, classOf(err), err)
	}
	s.building = nil
	s.attempts, s.invalid = 0, 0
	s.retryAt = time.Time{}
	s.failSince, s.lastErr = time.Time{}, nil
	took := s.clock.Now().Sub(j.started)
	s.metrics.RecordSequencedBlock(ref, took)
	s.log.Debug("sequenced block", "block", ref.ID(), "origin", ref.L1Origin.Number, "seq", ref.SequenceNumber, "txs", len(env.ExecutionPayload.Transactions))
	return env, nil
}

// critical returns a critical error for engine failures no retry can fix: an
// unsupported fork or method, or MaxInvalidBuilds refusals in a row.
func (s *Sequencer) critical(err error) error {
	switch {
	case errors.Is(err, enginepkg.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrCritical, err)
	case errors.Is(err, enginepkg.ErrInvalid):
		s.invalid++
		if s.invalid >= s.cfg.MaxInvalidBuilds {
			return fmt.Errorf("%w: the engine refused %d builds in a row: %w", ErrCritical, s.invalid, err)
		}
	default:
		s.invalid = 0
	}
	return nil
}

// recoverFromL1Reorg walks the unsafe chain back to the newest block whose L1 origin is
// still canonical (never below the safe head) and makes it the unsafe head, so the next
// block is built on a canonical origin and the stale L2 blocks are reorged out. Below
// the safe head the rewind is the derivation pipeline's: when even the safe head's
// origin is gone, the sequencer waits (with backoff) for the pipeline's reset.
func (s *Sequencer) recoverFromL1Reorg(ctx context.Context, head eth.L2BlockRef, cause error) error {
	s.log.Warn("L1 reorg below the sequencer's origin, rewinding the unsafe chain", "unsafe", head.ID(), "origin", head.L1Origin, "err", cause)
	_, safe, _ := s.engine.Heads()
	if head.Number <= safe.Number {
		return s.retry(ctx, "l1_reorg_below_safe", fmt.Errorf("origin %s of the safe head %s is not canonical; waiting for the derivation reset: %w", head.L1Origin, head.ID(), cause))
	}
	ref := head
	for ref.Number > safe.Number {
		ok, err := s.originCanonical(ctx, ref.L1Origin)
		if err != nil {
			return s.retry(ctx, "l1", err)
		}
		if ok {
			break
		}
		parent, err := s.engine.BlockRefByHash(ctx, ref.ParentHash)
		if err != nil {
			return s.retry(ctx, classOf(err), err)
		}
		ref = parent
	}
	if err := s.engine.SetUnsafeHead(ctx, ref); err != nil {
		return s.retry(ctx, classOf(err), err)
	}
	s.metrics.RecordSequencerReset()
	s.log.Warn("unsafe chain rewound", "from", head.ID(), "to", ref.ID(), "origin", ref.L1Origin)
	return nil
}

func (s *Sequencer) originCanonical(ctx context.Context, id eth.BlockID) (bool, error) {
	h, err := s.origins.l1.HeaderByNumber(ctx, bigU(id.Number))
	if errors.Is(err, ethereum.NotFound) {
		return false, nil // L1 ends below this origin
	}
	if err != nil {
		return false, fmt.Errorf("read L1 block %d: %w: %w", id.Number, ErrL1Unavailable, err)
	}
	return h.Hash() == id.Hash, nil
}

// retry records a failed action and schedules the next attempt; once ctx is done (the
// node is closing) the failure is the cancellation itself and is returned, not logged.
func (s *Sequencer) retry(ctx context.Context, class string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.fail(class, err)
	return nil
}

// fail schedules a retry with exponential backoff; repeated failures stretch the delay so
// a broken execution client or L1 is not hammered in a hot loop.
func (s *Sequencer) fail(class string, err error) {
	if s.failSince.IsZero() {
		s.failSince = s.clock.Now()
	}
	s.lastErr = err
	s.attempts++
	delay := clock.Backoff(s.attempts, s.cfg.MaxBackoff)
	s.retryAt = s.clock.Now().Add(delay)
	s.metrics.RecordSequencerError(class)
	level := slog.LevelWarn
	if errors.Is(err, ErrPastDrift) {
		level = slog.LevelDebug // waiting for L1 is normal when L1 is slow
	}
	s.log.Log(context.Background(), level, "sequencer action failed, retrying", "class", class, "attempts", s.attempts, "retry_in", delay, "err", err)
}

func classOf(err error) string {
	switch {
	case errors.Is(err, enginepkg.ErrSyncing):
		return "syncing"
	case errors.Is(err, enginepkg.ErrInvalid):
		return "invalid"
	case errors.Is(err, enginepkg.ErrTemporary):
		return "temporary"
	case errors.Is(err, ErrL1Unavailable):
		return "l1"
	default:
		return "other"
	}
}
