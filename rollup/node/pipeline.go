package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/engine"
	"github.com/opkit/opkit/rollup/finality"
	"github.com/opkit/opkit/rollup/reset"
)

// Deriver is the derivation pipeline's stages as the node drives them: it turns L1 data
// into the attributes of the block after the pending-safe head.
type Deriver interface {
	// Reset restarts derivation for the chain whose safe head is safe.
	Reset(ctx context.Context, safe eth.L2BlockRef) error
	// Next returns the attributes of the block after safe (the pending-safe head), or an
	// error of the derive classes: io.EOF (L1 exhausted), ErrNotEnoughData, ErrReset,
	// ErrTemporary, ErrCritical.
	Next(ctx context.Context, safe eth.L2BlockRef) (*engine.Derived, error)
	// Origin is the L1 block fully read.
	Origin() eth.L1BlockRef
	// OnInvalidPayload drops the rest of the channel whose batch made an invalid block.
	OnInvalidPayload()
}

// L1Refs is the L1 chain as reset and finality read it.
type L1Refs interface {
	reset.L1
	finality.L1
}

// PipelineMetrics counts derived blocks.
type PipelineMetrics interface {
	RecordDerived(outcome string)
	RecordInvalidPayload()
}

// Pipeline implements derive.Pipeline by feeding the Deriver's attributes to the engine:
// it is the only place derived blocks enter the chain, and it runs on the driver's loop.
type Pipeline struct {
	cfg       *rollup.Config
	d         Deriver
	eng       *engine.Engine
	l1        L1Refs
	fin       *finality.Tracker
	safeHeads *finality.SafeHeads
	metrics   PipelineMetrics
	log       *slog.Logger

	// managed, set in managed mode (managed.go), runs derivation for a supervisor: L1
	// only as provided, resets without L1 reorg detection of its own, finality as told.
	managed *managedNode

	needReset bool
	// pending holds attributes the engine has not taken yet (a temporary failure, or
	// the deposits-only replacement of an invalid payload), tried again next step.
	pending *engine.Derived

	// Finality is tried once per L1 block derivation reads from, not per derived block
	// (each try reads two L1 headers, and every block concludes under Holocene), and
	// again when derivation goes idle: finalizeTriedAt is the L1 block derivation was
	// reading at the last try, finalizeDue that safe moved since.
	finalizeTriedAt eth.BlockID
	finalizeDue     bool
}

// NewPipeline returns the derivation side of a node: d's attributes go to eng, resets
// and finality read l1.
func NewPipeline(cfg *rollup.Config, d Deriver, eng *engine.Engine, l1 L1Refs, m PipelineMetrics, log *slog.Logger) *Pipeline {
	return &Pipeline{
		cfg: cfg, d: d, eng: eng, l1: l1, metrics: m, log: log,
		fin: finality.New(finalityLookback(cfg)), safeHeads: finality.NewSafeHeads(0),
		needReset: true,
	}
}

// finalityLookback keeps derivation progress for 129 L1 blocks, or with AltDA for the
// challenge and resolve windows when longer: data can be challenged that long.
func finalityLookback(cfg *rollup.Config) int {
	n := uint64(finality.DefaultLookback)
	if a := cfg.AltDAConfig; a != nil && a.DAChallengeWindow+a.DAResolveWindow+1 > n {
		n = a.DAChallengeWindow + a.DAResolveWindow + 1
	}
	return int(n)
}

// Reset asks for a reset; the next Step performs it, so that a failing L1 or engine
// during the reset is retried with the driver's backoff rather than failing the caller.
func (p *Pipeline) Reset(context.Context) error {
	p.needReset = true
	p.pending = nil
	return nil
}

func (p *Pipeline) Origin() eth.L1BlockRef {
	if p.needReset {
		return eth.L1BlockRef{} // nothing derived since the reset began
	}
	return p.d.Origin()
}

func (p *Pipeline) OnL1Finalized(ctx context.Context, l1 eth.L1BlockRef) {
	if p.managed != nil {
		return // the supervisor decides finality
	}
	p.fin.OnL1Finalized(l1)
	if err := p.tryFinalize(ctx); err != nil {
		p.log.Warn("failed to finalize L2 blocks", "l1_finalized", l1.ID(), "err", err)
	}
}

// SafeHeadAt is the safe-head record at L1 block n (optimism_safeHeadAtL1Block).
func (p *Pipeline) SafeHeadAt(n uint64) (l1 eth.BlockID, safe eth.BlockID, err error) {
	return p.safeHeads.At(n)
}

// FinalizedL1 is the newest finalized L1 block the pipeline was told of.
func (p *Pipeline) FinalizedL1() eth.L1BlockRef { return p.fin.FinalizedL1() }

func (p *Pipeline) Step(ctx context.Context) error {
	if p.needReset {
		reset := p.reset
		if p.managed != nil {
			reset = p.managed.resetDerivation
		}
		if err := reset(ctx); err != nil {
			return err
		}
		p.needReset = false
		return nil
	}
	if p.pending == nil {
		a, err := p.d.Next(ctx, p.eng.PendingSafe())
		if p.managed != nil {
			err = p.managed.afterNext(err)
		}
		if errors.Is(err, io.EOF) && p.finalizeDue && p.managed == nil {
			p.tryFinalizeDerived(ctx, p.d.Origin().ID())
		}
		if err != nil {
			return err
		}
		p.pending = a
	}
	a := p.pending
	ref, outcome, err := p.eng.ProcessDerived(ctx, a)
	if err != nil {
		return p.onEngineError(a, err)
	}
	p.pending = nil
	p.metrics.RecordDerived(outcome.String())
	p.log.Debug("derived block", "block", ref.ID(), "outcome", outcome, "concluding", a.Concluding, "derived_from", a.DerivedFrom.ID())
	if a.Concluding && p.managed != nil {
		p.managed.derived(ref, a.DerivedFrom)
	} else if a.Concluding {
		p.fin.OnSafe(ref, a.DerivedFrom)
		p.safeHeads.Update(ref, a.DerivedFrom.ID())
		p.finalizeDue = true
		if a.DerivedFrom.ID() != p.finalizeTriedAt {
			p.tryFinalizeDerived(ctx, a.DerivedFrom.ID())
		}
	}
	return nil
}

// tryFinalizeDerived tries to finalize what derivation made safe, reading L1 block from.
func (p *Pipeline) tryFinalizeDerived(ctx context.Context, from eth.BlockID) {
	p.finalizeTriedAt, p.finalizeDue = from, false
	if err := p.tryFinalize(ctx); err != nil {
		p.log.Warn("failed to finalize L2 blocks", "err", err)
	}
}

// onEngineError maps an engine failure on derived attributes to a pipeline outcome.
func (p *Pipeline) onEngineError(a *engine.Derived, err error) error {
	switch {
	case errors.Is(err, engine.ErrInvalid) && a.DepositsOnly:
		return derive.NewCriticalError(fmt.Errorf("deposits-only block on %s was invalid: %w", a.Parent.ID(), err))
	case errors.Is(err, engine.ErrInvalid) && p.cfg.IsHolocene(a.DerivedFrom.Time):
		// Holocene: the batch's block is replaced by one with its deposits only, and the
		// rest of its channel is dropped.
		p.metrics.RecordInvalidPayload()
		p.log.Warn("derived payload invalid, replacing it with its deposits only", "parent", a.Parent.ID(), "derived_from", a.DerivedFrom.ID(), "err", err)
		p.d.OnInvalidPayload()
		rep := *a
		rep.Attrs = engine.DepositsOnly(a.Attrs)
		rep.DepositsOnly = true
		p.pending = &rep
		return nil
	case errors.Is(err, engine.ErrInvalid):
		// Before Holocene the batch is just dropped; derivation will find another.
		p.metrics.RecordInvalidPayload()
		p.pending = nil
		return derive.NewTemporaryError(err)
	case errors.Is(err, engine.ErrNotOnPendingSafe), errors.Is(err, engine.ErrMissingUnsafe):
		p.pending = nil
		return derive.NewResetError(err)
	case errors.Is(err, engine.ErrSyncing):
		return fmt.Errorf("%w: %w", derive.ErrEngineSyncing, err)
	case errors.Is(err, engine.ErrUnsupported):
		return derive.NewCriticalError(err)
	default:
		return derive.NewTemporaryError(err)
	}
}

// reset finds the heads to restart from, installs them in the engine and restarts
// derivation at the safe head.
func (p *Pipeline) reset(ctx context.Context) error {
	h := p.eng.State()
	heads, err := reset.FindL2Heads(ctx, p.cfg, p.l1, p.eng, reset.Heads{Unsafe: h.Unsafe, Safe: h.Safe, Finalized: h.Finalized}, p.log)
	if err != nil {
		if errors.Is(err, reset.ErrFinalizedReorg) || errors.Is(err, reset.ErrWrongChain) || errors.Is(err, reset.ErrTooDeep) || errors.Is(err, reset.ErrInconsistent) {
			return derive.NewCriticalError(fmt.Errorf("find L2 heads: %w", err))
		}
		return derive.NewTemporaryError(fmt.Errorf("find L2 heads: %w", err))
	}
	if err := p.eng.Reset(ctx, heads.Unsafe, heads.Safe, heads.Finalized); err != nil {
		return derive.NewTemporaryError(err)
	}
	if err := p.d.Reset(ctx, heads.Safe); err != nil {
		if errors.Is(err, derive.ErrCritical) {
			return err
		}
		return derive.NewTemporaryError(fmt.Errorf("reset derivation at %s: %w", heads.Safe.ID(), err))
	}
	p.fin.Reset()
	p.safeHeads.Reset(heads.Safe)
	p.finalizeTriedAt, p.finalizeDue = eth.BlockID{}, false
	p.log.Info("derivation reset", "unsafe", heads.Unsafe.ID(), "safe", heads.Safe.ID(), "finalized", heads.Finalized.ID(), "origin", p.d.Origin().ID())
	return nil
}

func (p *Pipeline) tryFinalize(ctx context.Context) error {
	_, _, finalized := p.eng.Heads()
	ref, ok, err := p.fin.Next(ctx, p.l1, finalized)
	if errors.Is(err, finality.ErrReorg) {
		p.needReset = true
		return err
	}
	if err != nil || !ok {
		return err
	}
	if err := p.eng.Finalize(ctx, ref); err != nil {
		return err
	}
	p.log.Debug("finalized", "block", ref.ID())
	return nil
}
