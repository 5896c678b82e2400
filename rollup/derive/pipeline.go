package derive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// The outcome classes of Pipeline.Step. A step returns nil (progress: step again), io.EOF
// (idle: nothing to do until L1 moves), or an error wrapping one of these.
var (
	// ErrEngineSyncing: the execution client is syncing; go idle like io.EOF.
	ErrEngineSyncing = errors.New("engine is syncing")
	// ErrReset: the pipeline's view is inconsistent (an L1 reorg); reset it.
	ErrReset = errors.New("derivation pipeline must be reset")
	// ErrTemporary: a transient failure (an RPC timed out); step again after a backoff.
	ErrTemporary = errors.New("temporary derivation error")
	// ErrCritical: the node cannot continue safely; the driver stops.
	ErrCritical = errors.New("critical derivation error")
	// ErrNotEnoughData: progress needs another step right away, without backoff.
	ErrNotEnoughData = errors.New("not enough data")
)

// NewResetError, NewTemporaryError and NewCriticalError wrap a cause in a class.
func NewResetError(err error) error     { return fmt.Errorf("%w: %w", ErrReset, err) }
func NewTemporaryError(err error) error { return fmt.Errorf("%w: %w", ErrTemporary, err) }
func NewCriticalError(err error) error  { return fmt.Errorf("%w: %w", ErrCritical, err) }

// Pipeline derives L2 blocks from L1. The driver calls it from its event loop only, so
// implementations need no locking of their own for these calls.
type Pipeline interface {
	// Step makes one unit of progress.
	Step(ctx context.Context) error
	// Reset discards in-flight state and restarts derivation from the engine's safe head.
	Reset(ctx context.Context) error
	// Origin is the L1 block derivation has read up to (sync status current_l1).
	Origin() eth.L1BlockRef
	// OnL1Finalized tells the pipeline which L1 block is finalized, so L2 blocks derived
	// only from data up to it can be finalized.
	OnL1Finalized(ctx context.Context, l1 eth.L1BlockRef)
}

// Idle is the pipeline of a node that only sequences: it derives nothing, so every step
// is idle and its origin stays zero. It must not follow the L1 head: a batcher reads a
// current_l1 past its channels' inclusion with no safe-head progress as channels that
// were derived and dropped, and posts them again.
type Idle struct {
	mu     sync.Mutex
	resets int
}

func (p *Idle) Step(context.Context) error { return io.EOF }

func (p *Idle) Reset(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resets++
	return nil
}

// Origin is always zero: nothing was derived.
func (p *Idle) Origin() eth.L1BlockRef { return eth.L1BlockRef{} }

func (p *Idle) OnL1Finalized(context.Context, eth.L1BlockRef) {}

// Resets counts Reset calls.
func (p *Idle) Resets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets
}

// Derivation is the derivation pipeline: L1 traversal, data retrieval, frame queue,
// channel assembler, channel reader, batch stage and attributes stage, each reading from
// the one before. The node steps it with NextAttributes from one goroutine; it is not
// safe for concurrent use.
type Derivation struct {
	cfg     *rollup.Config
	deps    Deps
	log     *slog.Logger
	metrics Metrics

	traversal *l1Traversal
	retrieval *l1Retrieval
	frames    *frameQueue
	channels  *channelAssembler
	reader    *channelReader
	batches   *batchStage
	attrs     *attributesStage

	origin eth.L1BlockRef
	ready  bool // Reset succeeded since New
}

// New builds a pipeline; it derives nothing until Reset.
func New(cfg *rollup.Config, l1ChainCfg *params.ChainConfig, deps Deps) *Derivation {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("part", "derive")
	m := deps.Metrics
	if m == nil {
		m = NoMetrics{}
	}
	d := &Derivation{cfg: cfg, deps: deps, log: log, metrics: m}
	d.traversal = newL1Traversal(cfg, deps.L1, log)
	d.retrieval = newL1Retrieval(d.traversal, deps.Data)
	d.frames = newFrameQueue(d.retrieval, cfg, log, m)
	d.channels = newChannelAssembler(d.frames, cfg, log, m)
	d.reader = newChannelReader(d.channels, cfg, log, m)
	d.batches = newBatchStage(d.reader, cfg, deps.L2, log, m)
	d.attrs = newAttributesStage(d.batches, cfg, l1ChainCfg, deps.L1, deps.L2, log)
	return d
}

// Origin is the L1 block derivation is reading (sync status current_l1): every block
// before it is fully read, and when NextAttributes last returned io.EOF it is too. Zero
// before the first Reset.
func (d *Derivation) Origin() eth.L1BlockRef { return d.origin }

// SetL1Limit caps the highest L1 block number derivation reads; NoL1Limit lifts it.
// Beyond the cap NextAttributes ends with io.EOF as if L1 ended there.
func (d *Derivation) SetL1Limit(n uint64) { d.traversal.limit = n }

// Reset restarts derivation for the safe head safe. Batches for the blocks after safe
// may have been posted up to a channel timeout before safe's L1 origin, so it walks L2
// back from safe to the first block whose origin is at least a channel timeout older
// (or genesis), and restarts traversal at that block's origin with the system config of
// that block. The blocks until safe are then read again and skipped as past.
func (d *Derivation) Reset(ctx context.Context, safe eth.L2BlockRef) error {
	d.metrics.PipelineReset()
	d.ready = false
	l2 := safe
	origin, err := d.deps.L1.L1BlockRefByHash(ctx, l2.L1Origin.Hash)
	if err != nil {
		return NewTemporaryError(fmt.Errorf("L1 origin %s of safe head %s: %w", l2.L1Origin, safe.ID(), err))
	}
	for l2.Number > d.cfg.Genesis.L2.Number && l2.L1Origin.Number > d.cfg.Genesis.L1.Number &&
		l2.L1Origin.Number+ChannelTimeout(d.cfg, origin.Time) > safe.L1Origin.Number {
		parent, err := d.deps.L2.L2BlockRefByHash(ctx, l2.ParentHash)
		if err != nil {
			return NewResetError(fmt.Errorf("parent %s of L2 block %s: %w", l2.ParentHash, l2.ID(), err))
		}
		l2 = parent
		if l2.L1Origin.Hash == origin.Hash {
			continue // most L2 blocks share their origin with their parent
		}
		if origin, err = d.deps.L1.L1BlockRefByHash(ctx, l2.L1Origin.Hash); err != nil {
			return NewTemporaryError(fmt.Errorf("L1 origin %s of L2 block %s: %w", l2.L1Origin, l2.ID(), err))
		}
	}
	sys, err := d.deps.L2.SystemConfigByL2Hash(ctx, l2.Hash)
	if err != nil {
		return NewTemporaryError(fmt.Errorf("system config of L2 block %s: %w", l2.ID(), err))
	}
	d.traversal.reset(origin, sys)
	d.retrieval.reset()
	d.frames.reset()
	d.channels.reset()
	d.reader.reset()
	d.batches.reset(origin)
	d.attrs.reset()
	d.origin = origin
	d.ready = true
	d.log.Info("derivation reset", "safe", safe.ID(), "from_l2", l2.ID(), "origin", origin.ID(), "batcher", sys.BatcherAddr)
	return nil
}

// NextAttributes derives the attributes of the block after safe, the engine's current
// safe head. io.EOF: L1 has nothing more yet; ErrNotEnoughData: progress was made, call
// again; other errors wrap ErrReset, ErrTemporary or ErrCritical.
func (d *Derivation) NextAttributes(ctx context.Context, safe eth.L2BlockRef) (*Attributes, error) {
	if !d.ready {
		return nil, NewResetError(errors.New("derivation was not reset"))
	}
	d.origin = d.attrs.Origin()
	a, err := d.attrs.NextAttributes(ctx, safe)
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, io.EOF):
		if err := d.traversal.advance(ctx); err != nil {
			return nil, err
		}
		return nil, ErrNotEnoughData
	default:
		return nil, classify(err)
	}
}

// OnInvalidPayload drops the rest of the channel and span batch whose block the engine
// refused (Holocene): the node replaces that block with a deposits-only one.
func (d *Derivation) OnInvalidPayload() {
	d.attrs.reset()
	d.batches.FlushChannel()
}
