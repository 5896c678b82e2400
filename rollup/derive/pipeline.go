package derive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opkit/opkit/eth"
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

// Idle is the pipeline of a node that only sequences: there is nothing to derive yet, so
// every step is idle. Its origin follows the L1 head so the sync status shows where L1 is.
type Idle struct {
	mu     sync.Mutex
	origin eth.L1BlockRef
	resets int
}

// SetOrigin moves the reported origin.
func (p *Idle) SetOrigin(ref eth.L1BlockRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.origin = ref
}

func (p *Idle) Step(context.Context) error { return io.EOF }

func (p *Idle) Reset(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resets++
	return nil
}

func (p *Idle) Origin() eth.L1BlockRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.origin
}

func (p *Idle) OnL1Finalized(context.Context, eth.L1BlockRef) {}

// Resets counts Reset calls.
func (p *Idle) Resets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets
}
