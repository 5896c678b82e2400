package reset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// L1 reads canonical L1 block references. L1BlockRefByNumber wraps ethereum.NotFound
// for a number past the head.
type L1 interface {
	L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error)
	L1BlockRefByHash(ctx context.Context, h common.Hash) (eth.L1BlockRef, error)
}

// L2 reads L2 block references from the execution client.
type L2 interface {
	L2BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error)
}

// Heads are the three forkchoice heads a reset starts from and ends with.
type Heads struct {
	Unsafe    eth.L2BlockRef
	Safe      eth.L2BlockRef
	Finalized eth.L2BlockRef
}

var (
	// ErrFinalizedReorg: the walk met a block at the finalized height that is not the
	// finalized block; the node cannot follow a chain that rewrites finality.
	ErrFinalizedReorg = errors.New("cannot reorg the finalized L2 block")
	// ErrWrongChain: the L2 or L1 genesis is not the rollup config's.
	ErrWrongChain = errors.New("wrong chain")
	// ErrTooDeep: the new unsafe head is more than MaxReorgSeqWindows sequencing
	// windows of L1 below the old one.
	ErrTooDeep = errors.New("reorg is too deep")
	// ErrInconsistent: consecutive L2 blocks whose L1 origins or sequence numbers do not
	// fit together.
	ErrInconsistent = errors.New("inconsistent L2 chain")
)

// MaxReorgSeqWindows bounds how far (in sequencing windows of L1 origin) the walk may
// move the unsafe head back.
const MaxReorgSeqWindows = 5

// FindL2Heads walks back from cur.Unsafe and returns the heads derivation restarts from.
// cur holds the heads the execution client had before the reset.
func FindL2Heads(ctx context.Context, cfg *rollup.Config, l1 L1, l2 L2, cur Heads, log *slog.Logger) (Heads, error) {
	if cur.Unsafe.Number < cur.Safe.Number || cur.Safe.Number < cur.Finalized.Number {
		return Heads{}, fmt.Errorf("%w: unsafe %d, safe %d, finalized %d out of order", ErrInconsistent, cur.Unsafe.Number, cur.Safe.Number, cur.Finalized.Number)
	}
	window := lookback(cfg)
	res := Heads{Finalized: cur.Finalized}
	var (
		// origin is the canonical L1 block at the height of n's origin (zero when L1 has
		// no block there yet: ahead).
		origin eth.L1BlockRef
		ahead  bool
		// highest is the highest L2 block seen so far whose origin is canonical, since
		// the last block with a non-canonical or unseen origin.
		highest eth.L2BlockRef
		unsafe  eth.L2BlockRef
		done    bool
	)
	n := cur.Unsafe
	for {
		if err := ctx.Err(); err != nil {
			return Heads{}, err
		}
		switch {
		case !origin.IsZero() && n.L1Origin.Hash == origin.ParentHash:
			// Stepping to the previous epoch on the same L1 branch: follow the parent hash.
			ref, err := l1.L1BlockRefByHash(ctx, n.L1Origin.Hash)
			if err != nil {
				return Heads{}, fmt.Errorf("read L1 block %s: %w", n.L1Origin, err)
			}
			origin, ahead = ref, false
		case origin.IsZero() || n.L1Origin.Hash != origin.Hash:
			ref, err := l1.L1BlockRefByNumber(ctx, n.L1Origin.Number)
			switch {
			case errors.Is(err, ethereum.NotFound):
				origin, ahead = eth.L1BlockRef{}, true
			case err != nil:
				return Heads{}, fmt.Errorf("read L1 block %d to compare with origin %s: %w", n.L1Origin.Number, n.L1Origin.Hash, err)
			default:
				origin, ahead = ref, false
			}
		}
		if n.Number == cfg.Genesis.L2.Number {
			if n.Hash != cfg.Genesis.L2.Hash {
				return Heads{}, fmt.Errorf("%w: L2 genesis is %s, rollup config says %s", ErrWrongChain, n.ID(), cfg.Genesis.L2)
			}
			if !ahead && origin.Hash != cfg.Genesis.L1.Hash {
				return Heads{}, fmt.Errorf("%w: L1 block %d is %s, rollup genesis says %s", ErrWrongChain, origin.Number, origin.Hash, cfg.Genesis.L1.Hash)
			}
		}
		if n.Number == cur.Finalized.Number && n.Hash != cur.Finalized.Hash {
			return Heads{}, fmt.Errorf("%w: finalized %s, chain has %s", ErrFinalizedReorg, cur.Finalized.ID(), n.ID())
		}
		if unsafe.IsZero() {
			unsafe = n
			if n.L1Origin.Number+MaxReorgSeqWindows*window < cur.Unsafe.L1Origin.Number {
				return Heads{}, fmt.Errorf("%w: walked back to %s (origin %d) from %s (origin %d)", ErrTooDeep, n.ID(), n.L1Origin.Number, cur.Unsafe.ID(), cur.Unsafe.L1Origin.Number)
			}
		}
		canonical := !ahead && origin.Hash == n.L1Origin.Hash
		switch {
		case ahead:
			highest = eth.L2BlockRef{}
		case canonical:
			if highest.IsZero() {
				highest = n
			}
		default:
			// n builds on a dropped L1 block: it and everything above it must go.
			unsafe, highest = eth.L2BlockRef{}, eth.L2BlockRef{}
		}
		if n.Number <= cur.Safe.Number && n.SequenceNumber == 0 && !highest.IsZero() &&
			n.L1Origin.Number+window < highest.L1Origin.Number {
			done = true
		}
		if n.Number == cur.Finalized.Number {
			if !ahead && !canonical {
				// Finalized L2 blocks come from finalized L1: an L1 that dropped the
				// origin of one broke finality, and no reset can repair that.
				return Heads{}, fmt.Errorf("%w: origin %s of finalized %s is not canonical on L1 (L1 has %s)", ErrFinalizedReorg, n.L1Origin, n.ID(), origin.Hash)
			}
			res.Unsafe, res.Safe = unsafe, n
			logResult(log, cur, res)
			return res, nil
		}
		parent, err := l2.L2BlockRefByHash(ctx, n.ParentHash)
		if err != nil {
			return Heads{}, fmt.Errorf("read L2 block %s, parent of %s: %w", n.ParentHash, n.ID(), err)
		}
		if err := checkParent(parent, n, origin); err != nil {
			return Heads{}, err
		}
		n = parent
		if done {
			res.Unsafe, res.Safe = unsafe, n
			logResult(log, cur, res)
			return res, nil
		}
	}
}

// lookback is how far below the highest canonical origin the safe head restarts: a
// sequencing window, or with AltDA the challenge and resolve windows when longer, since
// data may still arrive (or be lost) that late.
func lookback(cfg *rollup.Config) uint64 {
	w := cfg.SeqWindowSize
	if a := cfg.AltDAConfig; a != nil && a.DAChallengeWindow+a.DAResolveWindow > w {
		w = a.DAChallengeWindow + a.DAResolveWindow
	}
	return w
}

// checkParent checks that parent and n fit together: the same origin with consecutive
// sequence numbers, or the next origin with sequence number 0 whose L1 parent is the
// parent's origin.
func checkParent(parent, n eth.L2BlockRef, nOrigin eth.L1BlockRef) error {
	if parent.L1Origin == n.L1Origin {
		if parent.SequenceNumber+1 != n.SequenceNumber {
			return fmt.Errorf("%w: sequence numbers %d then %d in blocks %s and %s", ErrInconsistent, parent.SequenceNumber, n.SequenceNumber, parent.ID(), n.ID())
		}
		return nil
	}
	if parent.L1Origin.Number+1 != n.L1Origin.Number {
		return fmt.Errorf("%w: block %s has origin %d after its parent's %d", ErrInconsistent, n.ID(), n.L1Origin.Number, parent.L1Origin.Number)
	}
	if n.SequenceNumber != 0 {
		return fmt.Errorf("%w: block %s starts epoch %d with sequence number %d", ErrInconsistent, n.ID(), n.L1Origin.Number, n.SequenceNumber)
	}
	if nOrigin.Hash == n.L1Origin.Hash && nOrigin.ParentHash != parent.L1Origin.Hash {
		return fmt.Errorf("%w: parent %s has origin %s, L1 says %s", ErrInconsistent, parent.ID(), parent.L1Origin.Hash, nOrigin.ParentHash)
	}
	return nil
}

func logResult(log *slog.Logger, before, after Heads) {
	if log == nil {
		return
	}
	log.Info("found L2 heads to restart derivation from",
		"unsafe", after.Unsafe.ID(), "safe", after.Safe.ID(), "finalized", after.Finalized.ID(),
		"safe_origin", after.Safe.L1Origin.Number, "old_unsafe", before.Unsafe.ID(), "old_safe", before.Safe.ID())
}
