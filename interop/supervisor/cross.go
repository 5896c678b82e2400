package supervisor

import (
	"slices"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// verdict is the outcome of checking a block's executing messages.
type verdict int

const (
	valid   verdict = iota
	wait            // an initiating message is not yet known, or not yet safe enough
	invalid         // an executing message can never become valid
)

// level is the safety a block is checked for.
type level int

const (
	unsafeLevel level = iota
	safeLevel
)

// checkLocked decides whether every executing message of block b on chain c refers to an
// initiating message that exists and is itself at least at lvl.
func (s *Supervisor) checkLocked(c interop.ChainID, b *blockEntry, lvl level) (verdict, string) {
	for i, l := range b.Logs {
		if l.Exec == nil {
			continue
		}
		id := l.Exec.Identifier
		switch {
		case !s.cfg.DependencySet.HasChain(id.ChainID):
			return invalid, "initiating chain is not in the dependency set"
		case id.Timestamp > b.Ref.Time:
			return invalid, "initiating message is newer than the executing block"
		case b.Ref.Time > id.Timestamp+interop.MessageExpiryWindow:
			return invalid, "initiating message expired"
		}
		ist, ok := s.chains[id.ChainID]
		if !ok {
			return wait, "initiating chain not synced yet"
		}
		known := ist.LocalUnsafe.Number
		if lvl == safeLevel {
			known = ist.LocalSafe.Derived.Number
		}
		if id.BlockNumber > known {
			return wait, "initiating block not known yet"
		}
		ib, err := s.db.block(id.ChainID, id.BlockNumber)
		if err != nil || ib == nil {
			if id.BlockNumber < ist.Anchor.Derived.Number {
				return invalid, "initiating block precedes interop"
			}
			return wait, "initiating block not indexed"
		}
		if ib.Ref.Time != id.Timestamp {
			return invalid, "initiating block has another timestamp"
		}
		if int(id.LogIndex) >= len(ib.Logs) {
			return invalid, "no log at the initiating log index"
		}
		il := ib.Logs[id.LogIndex]
		if il.Address != id.Origin || il.Hash != l.Exec.PayloadHash {
			return invalid, "initiating log does not match the message"
		}
		if id.ChainID == c && id.BlockNumber == b.Ref.Number {
			if int(id.LogIndex) >= i {
				return invalid, "message executed before it was initiated"
			}
			continue
		}
		cross := ist.CrossUnsafe.Number
		if lvl == safeLevel {
			cross = ist.CrossSafe.Derived.Number
		}
		if id.BlockNumber > cross {
			return wait, "initiating block not cross-safe enough yet"
		}
	}
	return valid, ""
}

// invalidation asks the nodes of a chain to replace a block.
type invalidation struct {
	chain interop.ChainID
	seal  eth.BlockSeal
}

// update advances cross-unsafe, cross-safe and finalized heads as far as the rules allow,
// persists them, and tells the nodes.
func (s *Supervisor) update() {
	s.mu.Lock()
	changed, invalidations, err := s.updateLocked()
	s.mu.Unlock()
	if err != nil {
		s.log.Error("Cannot update cross-chain heads", "err", err)
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
	next := make(map[interop.ChainID]*chainState, len(chains))
	for _, c := range chains {
		cp := *s.chains[c]
		next[c] = &cp
	}
	// The checks read s.chains; work on copies and swap them in as heads move, so a
	// failed write leaves memory matching the database.
	orig := s.chains
	s.chains = next
	defer func() { s.chains = orig }()

	var invalidations []invalidation
	for progress := true; progress; {
		progress = false
		for _, c := range chains {
			st := next[c]
			for st.CrossUnsafe.Number < st.LocalUnsafe.Number {
				b, err := s.db.block(c, st.CrossUnsafe.Number+1)
				if err != nil {
					return nil, nil, err
				}
				if b == nil {
					break
				}
				if v, _ := s.checkLocked(c, b, unsafeLevel); v != valid {
					break
				}
				st.CrossUnsafe = b.Ref
				progress = true
			}
			for st.CrossSafe.Derived.Number < st.LocalSafe.Derived.Number {
				b, err := s.db.block(c, st.CrossSafe.Derived.Number+1)
				if err != nil {
					return nil, nil, err
				}
				if b == nil || b.Source == nil {
					break
				}
				v, why := s.checkLocked(c, b, safeLevel)
				if v == invalid {
					if _, ok := s.pending[c]; !ok {
						s.pending[c] = b.Ref.Seal()
						invalidations = append(invalidations, invalidation{chain: c, seal: b.Ref.Seal()})
						s.log.Debug("Block fails cross-safety", "chain", c, "block", b.Ref, "reason", why)
					}
					break
				}
				if v != valid {
					break
				}
				st.CrossSafe = eth.DerivedBlockRefPair{Source: *b.Source, Derived: b.Ref}
				if st.CrossUnsafe.Number < b.Ref.Number {
					st.CrossUnsafe = b.Ref
				}
				progress = true
			}
		}
	}
	for _, c := range chains {
		st := next[c]
		for st.Finalized.Number < st.CrossSafe.Derived.Number {
			b, err := s.db.block(c, st.Finalized.Number+1)
			if err != nil {
				return nil, nil, err
			}
			if b == nil || b.Source == nil || s.finL1.IsZero() || b.Source.Number > s.finL1.Number {
				break
			}
			st.Finalized = b.Ref
		}
	}
	var changed []interop.ChainID
	w := s.db.batch()
	for _, c := range chains {
		if *next[c] != *orig[c] {
			changed = append(changed, c)
			w.putJSON(stateKey(c), next[c])
		}
	}
	if len(changed) == 0 {
		w.b.Close()
		return nil, invalidations, nil
	}
	if err := w.commitRecoverable(); err != nil {
		return nil, nil, err
	}
	for _, c := range changed {
		*orig[c] = *next[c]
		s.m.setHeads(c, orig[c])
	}
	return changed, invalidations, nil
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
