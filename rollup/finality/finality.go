package finality

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/opkit/opkit/eth"
)

// DefaultLookback is how many L1 blocks of derivation progress are remembered.
const DefaultLookback = 4*32 + 1

// ErrReorg: the L1 chain the candidate was derived from is no longer the finalizing one;
// derivation must reset.
var ErrReorg = errors.New("derived-from L1 block is not on the finalized L1 chain")

// L1 reads canonical L1 blocks by number.
type L1 interface {
	L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error)
}

type point struct {
	l2 eth.L2BlockRef
	l1 eth.BlockID
}

// Tracker remembers derivation progress per L1 block and picks what to finalize. It is
// driven from one goroutine; the mutex only guards the reads the status calls make.
type Tracker struct {
	lookback int

	mu          sync.Mutex
	points      []point
	finalizedL1 eth.L1BlockRef
}

// New returns a tracker keeping lookback L1 blocks (DefaultLookback when 0).
func New(lookback int) *Tracker {
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	return &Tracker{lookback: lookback}
}

// OnSafe records that safe became the safe head with L1 read up to derivedFrom. Later
// calls for the same L1 block replace the earlier one: the last safe block of each L1
// block is what counts.
func (t *Tracker) OnSafe(safe eth.L2BlockRef, derivedFrom eth.L1BlockRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.points); n > 0 && t.points[n-1].l1.Number >= derivedFrom.Number {
		t.points[n-1] = point{l2: safe, l1: t.points[n-1].l1}
		return
	}
	if len(t.points) >= t.lookback {
		copy(t.points, t.points[1:])
		t.points = t.points[:len(t.points)-1]
	}
	t.points = append(t.points, point{l2: safe, l1: derivedFrom.ID()})
}

// OnL1Finalized records L1's finalized block; an older one than already seen is ignored.
func (t *Tracker) OnL1Finalized(ref eth.L1BlockRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ref.Number >= t.finalizedL1.Number {
		t.finalizedL1 = ref
	}
}

// FinalizedL1 is the newest finalized L1 block seen.
func (t *Tracker) FinalizedL1() eth.L1BlockRef {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finalizedL1
}

// Reset forgets derivation progress (after a pipeline reset, the chain may change).
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.points = t.points[:0]
}

// Candidate returns the highest remembered L2 block above current whose data came from
// L1 at or below the finalized L1 block, and the L1 block it was derived from.
func (t *Tracker) Candidate(current eth.L2BlockRef) (eth.L2BlockRef, eth.BlockID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var best point
	for _, p := range t.points {
		if p.l1.Number <= t.finalizedL1.Number && p.l2.Number > current.Number && p.l2.Number > best.l2.Number {
			best = p
		}
	}
	return best.l2, best.l1, !best.l2.IsZero()
}

// Next returns the block to finalize after checking the L1 chain, or ok false when
// nothing new is final. ErrReorg means the candidate's L1 is no longer canonical.
func (t *Tracker) Next(ctx context.Context, l1 L1, current eth.L2BlockRef) (eth.L2BlockRef, bool, error) {
	cand, from, ok := t.Candidate(current)
	if !ok {
		return eth.L2BlockRef{}, false, nil
	}
	fin := t.FinalizedL1()
	for _, want := range []eth.BlockID{fin.ID(), from} {
		got, err := l1.L1BlockRefByNumber(ctx, want.Number)
		if err != nil {
			return eth.L2BlockRef{}, false, fmt.Errorf("check L1 block %d is canonical: %w", want.Number, err)
		}
		if got.Hash != want.Hash {
			return eth.L2BlockRef{}, false, fmt.Errorf("%w: L1 block %d is %s, expected %s", ErrReorg, want.Number, got.Hash, want.Hash)
		}
	}
	return cand, true, nil
}

// SafeHeads records, per L1 block, the safe head derivation had reached when it
// finished reading it: optimism_safeHeadAtL1Block. It keeps the newest max entries in
// memory; older L1 blocks answer "not found", as do L1 blocks before the first record.
type SafeHeads struct {
	max int

	mu      sync.Mutex
	entries []point // ascending by L1 number, one per L1 block
}

// ErrNotFound: no record at or below the L1 block asked for.
var ErrNotFound = errors.New("no safe head recorded at or before that L1 block")

// NewSafeHeads returns a record keeping max entries (65536 when 0).
func NewSafeHeads(max int) *SafeHeads {
	if max <= 0 {
		max = 1 << 16
	}
	return &SafeHeads{max: max}
}

// Update records that safe is the safe head once L1 block l1 was read.
func (s *SafeHeads) Update(safe eth.L2BlockRef, l1 eth.BlockID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.entries)
	if n > 0 && s.entries[n-1].l1.Number == l1.Number {
		s.entries[n-1] = point{l2: safe, l1: l1}
		return
	}
	if n > 0 && s.entries[n-1].l1.Number > l1.Number {
		// Derivation went back (a reset): drop what the new history replaces.
		i := sort.Search(n, func(i int) bool { return s.entries[i].l1.Number >= l1.Number })
		s.entries = s.entries[:i]
	}
	if len(s.entries) >= s.max {
		copy(s.entries, s.entries[1:])
		s.entries = s.entries[:len(s.entries)-1]
	}
	s.entries = append(s.entries, point{l2: safe, l1: l1})
}

// Reset drops the records made after the pipeline's new safe head became safe: entries
// whose safe head is at or above it. The entry where the new safe head first became
// safe is kept, rewritten to the new safe head, when an older record exists to show it
// was not safe before.
func (s *SafeHeads) Reset(safe eth.L2BlockRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].l2.Number >= safe.Number })
	if i == len(s.entries) {
		return
	}
	if i > 0 {
		s.entries[i] = point{l2: safe, l1: s.entries[i].l1}
		s.entries = s.entries[:i+1]
		return
	}
	s.entries = s.entries[:0]
}

// At returns the newest record at or below L1 block number n: the L1 block and the safe
// head derivation had reached by then.
func (s *SafeHeads) At(n uint64) (eth.BlockID, eth.BlockID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].l1.Number > n })
	if i == 0 {
		return eth.BlockID{}, eth.BlockID{}, ErrNotFound
	}
	e := s.entries[i-1]
	return e.l1, e.l2.ID(), nil
}
