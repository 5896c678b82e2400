package supervisor

import (
	"fmt"
	"slices"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// invalidation asks the nodes of a chain to replace a block.
type invalidation struct {
	chain interop.ChainID
	seal  eth.BlockSeal
}

// update advances cross-unsafe, cross-safe and finalized heads as far as the rules allow,
// persists them, and tells the nodes.
func (s *Supervisor) update() {
	s.durable.RLock()
	s.mu.Lock()
	changed, invalidations, err := s.updateLocked()
	s.mu.Unlock()
	if err == nil && len(changed) > 0 {
		err = s.db.syncWAL()
	}
	s.durable.RUnlock()
	if err != nil {
		s.log.Error("Cannot update cross-chain heads", "err", err)
		return
	}
	for _, c := range changed {
		for _, n := range s.nodes {
			if n.chainID() == c {
				n.kickPromote()
			}
		}
	}
	for _, inv := range invalidations {
		s.log.Warn("Invalid executing message at local-safe, invalidating block", "chain", inv.chain, "block", inv.seal)
		s.m.invalidations.WithLabelValues(inv.chain.String()).Inc()
		for _, n := range s.nodes {
			if n.chainID() == inv.chain {
				n.kickPromote()
			}
		}
	}
}

func (s *Supervisor) updateLocked() ([]interop.ChainID, []invalidation, error) {
	chains := make([]interop.ChainID, 0, len(s.chains))
	for c := range s.chains {
		chains = append(chains, c)
	}
	slices.Sort(chains)
	// Work on copies; they are swapped in only once written, so a failed write leaves
	// memory matching the database.
	v := &updateView{s: s, next: make(map[interop.ChainID]*chainState, len(chains)), blocks: map[blockAt]*blockEntry{}}
	for _, c := range chains {
		cp := *s.chains[c]
		v.next[c] = &cp
	}
	var invalidations []invalidation
	for progress := true; progress; {
		progress = false
		for _, c := range chains {
			st := v.next[c]
			for st.CrossUnsafe.Number < st.LocalUnsafe.Number {
				b, err := v.block(c, st.CrossUnsafe.Number+1)
				if err != nil {
					return nil, nil, err
				}
				if b == nil {
					break
				}
				d, err := checkCandidate(v, s.cfg.DependencySet, c, b, unsafeLevel)
				if err != nil {
					return nil, nil, err
				}
				if d.verdict != valid {
					break
				}
				st.CrossUnsafe = b.Ref
				progress = true
			}
			for st.CrossSafe.Derived.Number < st.LocalSafe.Derived.Number {
				b, err := v.block(c, st.CrossSafe.Derived.Number+1)
				if err != nil {
					return nil, nil, err
				}
				if b == nil || b.Source == nil {
					break
				}
				d, err := checkCandidate(v, s.cfg.DependencySet, c, b, safeLevel)
				if err != nil {
					return nil, nil, err
				}
				if d.verdict == invalid {
					if _, ok := s.pending[c]; !ok {
						s.pending[c] = b.Ref.Seal()
						invalidations = append(invalidations, invalidation{chain: c, seal: b.Ref.Seal()})
						s.log.Debug("Block fails cross-safety", "chain", c, "block", b.Ref, "reason", d.why)
					}
					break
				}
				if d.verdict != valid {
					break
				}
				promoted := *b
				scope := d.scope
				promoted.CrossSource = &scope
				v.blocks[blockAt{c, b.Ref.Number}] = &promoted
				st.CrossSafe = eth.DerivedBlockRefPair{Source: scope, Derived: b.Ref}
				if st.CrossUnsafe.Number < b.Ref.Number {
					st.CrossUnsafe = b.Ref
				}
				progress = true
			}
		}
	}
	for _, c := range chains {
		st := v.next[c]
		for st.Finalized.Number < st.CrossSafe.Derived.Number {
			b, err := v.block(c, st.Finalized.Number+1)
			if err != nil {
				return nil, nil, err
			}
			if b == nil || b.Source == nil || s.finL1.IsZero() || b.crossSource(st).Number > s.finL1.Number {
				break
			}
			st.Finalized = b.Ref
		}
	}
	var changed []interop.ChainID
	w := s.db.batch()
	for at, b := range v.blocks {
		w.putJSON(blockKey(at.chain, at.number), b)
	}
	for _, c := range chains {
		if *v.next[c] != *s.chains[c] {
			changed = append(changed, c)
			w.putJSON(stateKey(c), v.next[c])
		}
	}
	if len(changed) == 0 {
		w.b.Close()
		return nil, invalidations, nil
	}
	// On disk before any node hears of them (update syncs before it lets promotionFor read
	// them): a supervisor that restarts never promotes less than it told.
	if err := w.commitRecoverable(); err != nil {
		return nil, nil, err
	}
	for _, c := range changed {
		*s.chains[c] = *v.next[c]
		s.m.setHeads(c, s.chains[c])
	}
	return changed, invalidations, nil
}

// updateView is the cross-safety rules' view during an update: the heads as they move,
// and the blocks promoted so far (with their cross-safe source) over the database.
type updateView struct {
	s      *Supervisor
	next   map[interop.ChainID]*chainState
	blocks map[blockAt]*blockEntry
}

func (v *updateView) chainState(c interop.ChainID) (*chainState, bool) {
	st, ok := v.next[c]
	return st, ok
}

func (v *updateView) block(c interop.ChainID, n uint64) (*blockEntry, error) {
	if b, ok := v.blocks[blockAt{c, n}]; ok {
		return b, nil
	}
	return v.s.db.block(c, n)
}

// setFinalizedL1 records a newer finalized L1 block and moves finality.
func (s *Supervisor) setFinalizedL1(fin eth.BlockRef) {
	s.mu.Lock()
	if fin.Number <= s.finL1.Number && !s.finL1.IsZero() {
		s.mu.Unlock()
		return
	}
	w := s.db.batch()
	w.putJSON(finalizedL1Key, fin)
	err := w.commit()
	if err == nil {
		s.finL1 = fin
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("Cannot record finalized L1 block", "err", err)
		return
	}
	s.update()
}

// promotion is what the nodes of a chain should be told.
type promotion struct {
	crossUnsafe eth.BlockID
	crossSafe   eth.DerivedIDPair
	finalized   eth.BlockID
	invalidate  *eth.BlockSeal
}

func (s *Supervisor) promotionFor(c interop.ChainID) (promotion, bool) {
	s.durable.Lock()
	defer s.durable.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.chains[c]
	if !ok {
		return promotion{}, false
	}
	p := promotion{crossUnsafe: st.CrossUnsafe.ID(), crossSafe: st.CrossSafe.IDs(), finalized: st.Finalized.ID()}
	if seal, ok := s.pending[c]; ok {
		p.invalidate = &seal
	}
	return p, true
}

// capDependentsLocked lowers the cross heads of every chain holding a cross block that
// executes a message initiated on chain c at or above block from, which is being dropped
// (a reorg or a replacement). Such a block was cross only because the dropped block
// existed; it is checked again against what replaces it. Dependents of lowered blocks are
// lowered in turn. cNext is chain c's own new state, its heads already below from. The
// new states, cNext's included, are written to w; apply them once w is committed.
func (s *Supervisor) capDependentsLocked(w *writeBatch, c interop.ChainID, from uint64, cNext chainState) (map[interop.ChainID]chainState, error) {
	capped := map[interop.ChainID]chainState{c: cNext}
	w.putJSON(stateKey(c), &cNext)
	current := func(y interop.ChainID) chainState {
		if st, ok := capped[y]; ok {
			return st
		}
		return *s.chains[y]
	}
	type drop struct {
		chain interop.ChainID
		from  uint64
	}
	work := []drop{{c, from}}
	for len(work) > 0 {
		d := work[0]
		work = work[1:]
		for y := range s.chains {
			st := current(y)
			first, err := s.firstDependent(y, st, d.chain, d.from)
			if err != nil {
				return nil, err
			}
			if first == 0 {
				continue
			}
			keep, err := s.db.block(y, first-1)
			if err != nil {
				return nil, err
			}
			if keep == nil {
				return nil, fmt.Errorf("block %d of chain %s below a cross head is not indexed", first-1, y)
			}
			if st.CrossUnsafe.Number >= first {
				st.CrossUnsafe = keep.Ref
			}
			if st.CrossSafe.Derived.Number >= first {
				st.CrossSafe = eth.DerivedBlockRefPair{Source: keep.crossSource(&st), Derived: keep.Ref}
			}
			if st.Finalized.Number >= first {
				s.log.Error("A finalized block depends on a dropped block", "chain", y, "block", first, "initiating chain", d.chain, "from", d.from)
			}
			s.log.Warn("Lowering cross heads: a block depends on a dropped block", "chain", y, "dependent", first, "initiating chain", d.chain, "from", d.from)
			capped[y] = st
			w.putJSON(stateKey(y), &st)
			work = append(work, drop{y, first})
		}
	}
	return capped, nil
}

// firstDependent is the lowest cross block of chain y (above its finalized head) that
// executes a message initiated on chain c at block from or later; 0 when there is none.
func (s *Supervisor) firstDependent(y interop.ChainID, st chainState, c interop.ChainID, from uint64) (uint64, error) {
	top := max(st.CrossUnsafe.Number, st.CrossSafe.Derived.Number)
	for n := st.Finalized.Number + 1; n <= top; n++ {
		b, err := s.db.block(y, n)
		if err != nil {
			return 0, err
		}
		if b == nil {
			return 0, nil
		}
		for _, l := range b.Logs {
			if l.Exec != nil && l.Exec.Identifier.ChainID == c && l.Exec.Identifier.BlockNumber >= from && !(y == c && n >= from) {
				return n, nil
			}
		}
	}
	return 0, nil
}

// applyCappedLocked installs the states capDependentsLocked computed, after their write.
func (s *Supervisor) applyCappedLocked(capped map[interop.ChainID]chainState) {
	for y, st := range capped {
		*s.chains[y] = st
		s.m.setHeads(y, s.chains[y])
	}
}
