package supervisor

import (
	"context"
	"fmt"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// An L1 reorg that drops the L1 block a local-safe (or cross-safe) block was derived from
// makes that block unsafe again: it may well be derived again, with the same hash, from
// the new L1 branch, but until then nothing proves it. The nodes do not notice on their
// own in managed mode (they read only the L1 blocks the supervisor provides), so the
// supervisor looks: every L1 poll checks that each chain's local-safe and cross-safe
// sources are still canonical. When one is not, the chain's records are lowered to the
// last block whose source is canonical, the blocks above stay indexed as unsafe, and the
// chain's nodes are reset there, so that they derive again from the canonical L1.

// canonical reports whether ref is the canonical L1 block at its height.
func (s *Supervisor) canonical(ctx context.Context, ref eth.BlockRef) (bool, error) {
	got, err := s.l1.byNumber(ctx, ref.Number)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return got.Hash == ref.Hash, nil
}

// checkL1Reorg lowers the records of every chain whose local-safe or cross-safe source
// left the canonical L1 chain and asks the chain's nodes for a reset. It reports whether
// any chain was lowered.
func (s *Supervisor) checkL1Reorg(ctx context.Context) (bool, error) {
	s.mu.Lock()
	chains := make([]interop.ChainID, 0, len(s.chains))
	for c := range s.chains {
		chains = append(chains, c)
	}
	s.mu.Unlock()
	lowered := false
	for _, c := range chains {
		ok, err := s.lowerToCanonical(ctx, c)
		if err != nil {
			return lowered, fmt.Errorf("chain %s: %w", c, err)
		}
		if !ok {
			continue
		}
		lowered = true
		for _, n := range s.nodes {
			if n.chainID() == c {
				n.requestReset()
			}
		}
	}
	if lowered {
		s.update()
	}
	return lowered, nil
}

// lowerToCanonical lowers chain c's local-safe and cross-safe heads to the highest blocks
// whose sources are canonical, reporting whether it changed anything.
func (s *Supervisor) lowerToCanonical(ctx context.Context, c interop.ChainID) (bool, error) {
	st, ok := s.heads(c)
	if !ok {
		return false, nil
	}
	localOK, err := s.canonical(ctx, st.LocalSafe.Source)
	if err != nil {
		return false, err
	}
	crossOK, err := s.canonical(ctx, st.CrossSafe.Source)
	if err != nil {
		return false, err
	}
	if localOK && crossOK {
		return false, nil
	}
	// Canonical sources are a prefix of the local-safe chain: sources grow with the block
	// number, and the anchor's source is below every reorg a chain survives.
	localTo, err := s.lastCanonical(ctx, c, &st, st.Anchor.Derived.Number, st.LocalSafe.Derived.Number, localOK, func(b *blockEntry) *eth.BlockRef { return b.Source })
	if err != nil {
		return false, err
	}
	top := min(st.CrossSafe.Derived.Number, localTo.Ref.Number)
	crossTop, err := s.db.block(c, top)
	if err != nil {
		return false, err
	}
	if crossTop == nil {
		return false, fmt.Errorf("block %d below local-safe is not indexed", top)
	}
	topOK, err := s.canonical(ctx, crossTop.crossSource(&st))
	if err != nil {
		return false, err
	}
	crossTo, err := s.lastCanonical(ctx, c, &st, st.Anchor.Derived.Number, top, topOK, func(b *blockEntry) *eth.BlockRef {
		src := b.crossSource(&st)
		return &src
	})
	if err != nil {
		return false, err
	}
	changed := false
	err = s.locked(func() error {
		cur := s.chains[c]
		if cur.LocalSafe != st.LocalSafe || cur.CrossSafe != st.CrossSafe {
			return nil // moved meanwhile; the next poll looks again
		}
		next := *cur
		next.LocalSafe = eth.DerivedBlockRefPair{Source: *localTo.Source, Derived: localTo.Ref}
		next.CrossSafe = eth.DerivedBlockRefPair{Source: crossTo.crossSource(cur), Derived: crossTo.Ref}
		if next.Finalized.Number > crossTo.Ref.Number {
			// Finalized L1 does not reorg: this is a broken L1, and finality stays.
			s.log.Error("An L1 reorg dropped the source of a finalized block", "chain", c, "finalized", next.Finalized, "crossSafe", crossTo.Ref)
		}
		w := s.db.batch()
		for n := crossTo.Ref.Number + 1; n <= cur.LocalSafe.Derived.Number; n++ {
			b, err := s.db.block(c, n)
			if err != nil {
				w.b.Close()
				return err
			}
			if b == nil {
				w.b.Close()
				return fmt.Errorf("local-safe block %d is not indexed", n)
			}
			b.CrossSource = nil
			if n > localTo.Ref.Number {
				b.Source = nil
			}
			w.putJSON(blockKey(c, n), b)
		}
		w.putJSON(stateKey(c), &next)
		if err := w.commit(); err != nil {
			return err
		}
		*cur = next
		s.m.setHeads(c, cur)
		changed = true
		s.m.l1Reorgs.Inc()
		s.log.Warn("L1 reorg dropped the source of safe blocks, lowering the chain's safe heads",
			"chain", c, "localSafe", localTo.Ref, "localSource", localTo.Source, "crossSafe", crossTo.Ref, "was", st.LocalSafe.Derived)
		return nil
	})
	return changed, err
}

// lastCanonical bisects [lo, hi] for the highest block whose source (as src names it) is
// canonical; lo's must be, and hi's is when hiOK.
func (s *Supervisor) lastCanonical(ctx context.Context, c interop.ChainID, st *chainState, lo, hi uint64, hiOK bool, src func(*blockEntry) *eth.BlockRef) (*blockEntry, error) {
	load := func(n uint64) (*blockEntry, error) {
		b, err := s.db.block(c, n)
		if err != nil {
			return nil, err
		}
		if b == nil || src(b) == nil {
			return nil, fmt.Errorf("local-safe block %d is not indexed with its source", n)
		}
		return b, nil
	}
	if hiOK {
		return load(hi)
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		b, err := load(mid)
		if err != nil {
			return nil, err
		}
		ok, err := s.canonical(ctx, *src(b))
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return load(lo)
}
