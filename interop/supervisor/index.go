package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// errInconsistent says a node reported something that contradicts the supervisor's
// local-safe records; the node needs a consistency check and possibly a reset.
var errInconsistent = errors.New("node is inconsistent with the supervisor's local-safe chain")

// blockSource is what indexing needs of a node.
type blockSource interface {
	l2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error)
	fetchReceipts(ctx context.Context, ref eth.BlockRef) (types.Receipts, error)
}

// indexLogs turns receipts into the log entries of a block, in log-index order.
func indexLogs(receipts types.Receipts) []logEntry {
	var logs []logEntry
	for _, r := range receipts {
		for _, l := range r.Logs {
			e := logEntry{Address: l.Address, Hash: interop.PayloadHash(l)}
			if m, err := interop.DecodeExecutingMessage(l); err == nil {
				e.Exec = m
			}
			logs = append(logs, e)
		}
	}
	return logs
}

// ensureChain starts tracking a chain at its anchor, once.
func (s *Supervisor) ensureChain(c interop.ChainID, anchor eth.DerivedBlockRefPair) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chains[c]; ok {
		return nil
	}
	st := &chainState{
		Anchor: anchor, LocalUnsafe: anchor.Derived, CrossUnsafe: anchor.Derived,
		LocalSafe: anchor, CrossSafe: anchor, Finalized: anchor.Derived,
	}
	src := anchor.Source
	w := s.db.batch()
	w.putJSON(blockKey(c, anchor.Derived.Number), &blockEntry{Ref: anchor.Derived, Source: &src})
	w.putJSON(stateKey(c), st)
	if err := w.commit(); err != nil {
		return err
	}
	s.chains[c] = st
	s.m.setHeads(c, st)
	s.log.Info("Tracking chain", "chain", c, "anchorL2", anchor.Derived, "anchorL1", anchor.Source)
	return nil
}

// heads returns a copy of a chain's state.
func (s *Supervisor) heads(c interop.ChainID) (chainState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.chains[c]
	if !ok {
		return chainState{}, false
	}
	return *st, true
}

// durableHeads is heads once every cross head written so far is on disk, for what is
// sent to a node.
func (s *Supervisor) durableHeads(c interop.ChainID) (chainState, bool) {
	s.durable.Lock()
	defer s.durable.Unlock()
	return s.heads(c)
}

// rewindUnsafeLocked drops the unsafe blocks above to; to is never below local-safe.
func (s *Supervisor) rewindUnsafeLocked(c interop.ChainID, to uint64) error {
	st := s.chains[c]
	b, err := s.db.block(c, to)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("rewind chain %s to %d: block not indexed", c, to)
	}
	w := s.db.batch()
	w.deleteBlocksFrom(c, to+1)
	next := *st
	next.LocalUnsafe = b.Ref
	if next.CrossUnsafe.Number > to {
		next.CrossUnsafe = b.Ref
	}
	capped, err := s.capDependentsLocked(w, c, to+1, next)
	if err != nil {
		w.b.Close()
		return err
	}
	if err := w.commit(); err != nil {
		return err
	}
	s.applyCappedLocked(capped)
	s.log.Info("Rewound unsafe blocks", "chain", c, "to", b.Ref)
	return nil
}

// indexUnsafe makes ref the local-unsafe head, indexing every block between the current
// head and ref. Blocks above local-safe are the node's to change: a reorg there is
// followed. A change at or below local-safe gives errInconsistent.
func (s *Supervisor) indexUnsafe(ctx context.Context, c interop.ChainID, src blockSource, ref eth.BlockRef) error {
	for {
		st, ok := s.heads(c)
		if !ok {
			return fmt.Errorf("chain %s is not tracked yet", c)
		}
		head, safeN := st.LocalUnsafe, st.LocalSafe.Derived.Number
		if ref.Number <= head.Number {
			known, err := s.db.block(c, ref.Number)
			if err != nil {
				return err
			}
			if known != nil && known.Ref.Hash == ref.Hash {
				return nil
			}
			if ref.Number <= safeN {
				return fmt.Errorf("block %s at or below local-safe %d: %w", ref, safeN, errInconsistent)
			}
			if err := s.locked(func() error { return s.rewindUnsafeLocked(c, ref.Number-1) }); err != nil {
				return err
			}
			continue
		}
		next := ref
		if head.Number+1 != ref.Number {
			l2, err := src.l2BlockRefByNumber(ctx, head.Number+1)
			if err != nil {
				return fmt.Errorf("catch up to block %d: %w", head.Number+1, err)
			}
			next = l2.BlockRef()
		}
		if next.ParentHash != head.Hash {
			if head.Number <= safeN {
				return fmt.Errorf("block %s does not build on local-safe %s: %w", next, head, errInconsistent)
			}
			if err := s.locked(func() error { return s.rewindUnsafeLocked(c, head.Number-1) }); err != nil {
				return err
			}
			continue
		}
		receipts, err := src.fetchReceipts(ctx, next)
		if err != nil {
			return fmt.Errorf("receipts of block %s: %w", next, err)
		}
		entry := &blockEntry{Ref: next, Logs: indexLogs(receipts)}
		err = s.locked(func() error {
			st := s.chains[c]
			if st.LocalUnsafe != head {
				return nil // raced with another node of the chain; the loop looks again
			}
			nextState := *st
			nextState.LocalUnsafe = next
			w := s.db.batch()
			w.putJSON(blockKey(c, next.Number), entry)
			w.putJSON(stateKey(c), &nextState)
			if err := w.commitRecoverable(); err != nil {
				return err
			}
			*st = nextState
			s.m.setHeads(c, st)
			return nil
		})
		if err != nil {
			return err
		}
		if next == ref {
			return nil
		}
	}
}

// onUnsafeBlock handles an unsafeBlock event.
func (s *Supervisor) onUnsafeBlock(ctx context.Context, c interop.ChainID, src blockSource, ref eth.BlockRef) error {
	if err := s.indexUnsafe(ctx, c, src, ref); err != nil {
		return err
	}
	s.update()
	return nil
}

// onDerivation records that derived, and every indexed block before it that was not yet
// local-safe, was derived from source.
func (s *Supervisor) onDerivation(ctx context.Context, c interop.ChainID, src blockSource, pair eth.DerivedBlockRefPair) error {
	st, ok := s.heads(c)
	if !ok {
		return fmt.Errorf("chain %s is not tracked yet", c)
	}
	if pair.Derived.Number <= st.LocalSafe.Derived.Number {
		known, err := s.db.block(c, pair.Derived.Number)
		if err != nil {
			return err
		}
		if known == nil || known.Ref.Hash != pair.Derived.Hash {
			if !s.rederived(c, known, pair) {
				return fmt.Errorf("derived block %s differs from local-safe records: %w", pair.Derived, errInconsistent)
			}
			// L1 changed under the node and it derived another block from another L1
			// block: drop the records from there and take the node's.
			if err := s.locked(func() error { return s.rewindSafeLocked(c, pair.Derived.Number-1) }); err != nil {
				return err
			}
			return s.onDerivation(ctx, c, src, pair)
		}
		if pair.Derived == st.LocalSafe.Derived && pair.Source.Number > st.LocalSafe.Source.Number {
			// Derivation moved on in L1 without new L2 blocks: the local-safe head is now
			// known to hold up to the newer L1 block.
			return s.locked(func() error {
				st := s.chains[c]
				next := *st
				next.LocalSafe.Source = pair.Source
				w := s.db.batch()
				w.putJSON(stateKey(c), &next)
				if err := w.commit(); err != nil {
					return err
				}
				*st = next
				return nil
			})
		}
		return nil
	}
	if err := s.indexUnsafe(ctx, c, src, pair.Derived); err != nil {
		return err
	}
	err := s.locked(func() error {
		st := s.chains[c]
		if pair.Derived.Number <= st.LocalSafe.Derived.Number {
			return nil
		}
		w := s.db.batch()
		source := pair.Source
		for n := st.LocalSafe.Derived.Number + 1; n <= pair.Derived.Number; n++ {
			b, err := s.db.block(c, n)
			if err != nil {
				return err
			}
			if b == nil {
				return fmt.Errorf("block %d of chain %s is not indexed", n, c)
			}
			b.Source = &source
			w.putJSON(blockKey(c, n), b)
		}
		next := *st
		next.LocalSafe = pair
		w.putJSON(stateKey(c), &next)
		if err := w.commit(); err != nil {
			return err
		}
		*st = next
		s.m.setHeads(c, st)
		return nil
	})
	if err != nil {
		return err
	}
	s.update()
	return nil
}

// onReplace records that a block the supervisor invalidated was replaced; the replacement
// is local-safe from the same L1 block.
func (s *Supervisor) onReplace(ctx context.Context, c interop.ChainID, src blockSource, r eth.BlockReplacement) error {
	n := r.Replacement.Number
	old, err := s.db.block(c, n)
	if err != nil {
		return err
	}
	if old != nil && old.Ref.Hash == r.Replacement.Hash {
		return nil // already recorded
	}
	if old == nil || old.Ref.Hash != r.Invalidated || old.Source == nil {
		return fmt.Errorf("replacement of unknown block %s at %d: %w", r.Invalidated, n, errInconsistent)
	}
	receipts, err := src.fetchReceipts(ctx, r.Replacement)
	if err != nil {
		return fmt.Errorf("receipts of replacement block %s: %w", r.Replacement, err)
	}
	source := *old.Source
	err = s.locked(func() error {
		st := s.chains[c]
		next := *st
		next.LocalUnsafe = r.Replacement
		next.LocalSafe = eth.DerivedBlockRefPair{Source: source, Derived: r.Replacement}
		if next.Finalized.Number >= n {
			return fmt.Errorf("replaced block %d is finalized on chain %s", n, c)
		}
		// The replaced block was not cross-safe (it was invalidated for failing the
		// check), but it may have been cross-unsafe; so may blocks of other chains that
		// executed its messages.
		w := s.db.batch()
		if next.CrossUnsafe.Number >= n || next.CrossSafe.Derived.Number >= n {
			parent, err := s.db.block(c, n-1)
			if err != nil || parent == nil {
				w.b.Close()
				return fmt.Errorf("parent of replaced block %d of chain %s: %w", n, c, errors.Join(err, errInconsistent))
			}
			if next.CrossUnsafe.Number >= n {
				next.CrossUnsafe = parent.Ref
			}
			if next.CrossSafe.Derived.Number >= n {
				next.CrossSafe = eth.DerivedBlockRefPair{Source: parent.crossSource(&next), Derived: parent.Ref}
			}
		}
		w.deleteBlocksFrom(c, n)
		w.putJSON(blockKey(c, n), &blockEntry{Ref: r.Replacement, Logs: indexLogs(receipts), Source: &source})
		capped, err := s.capDependentsLocked(w, c, n, next)
		if err != nil {
			w.b.Close()
			return err
		}
		if err := w.commit(); err != nil {
			return err
		}
		s.applyCappedLocked(capped)
		delete(s.pending, c)
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("Block replaced", "chain", c, "invalidated", r.Invalidated, "replacement", r.Replacement)
	s.update()
	return nil
}

// rederived reports whether the node derived pair on top of the recorded chain but from a
// different L1 block than the one recorded: the mark of an L1 reorg, not of a broken node.
func (s *Supervisor) rederived(c interop.ChainID, known *blockEntry, pair eth.DerivedBlockRefPair) bool {
	if known == nil || known.Source == nil || known.Source.Hash == pair.Source.Hash || pair.Derived.Number == 0 {
		return false
	}
	parent, err := s.db.block(c, pair.Derived.Number-1)
	if err != nil || parent == nil || parent.Source == nil {
		return false
	}
	return parent.Ref.Hash == pair.Derived.ParentHash
}

// rewindSafeLocked drops every block above to, local-safe or not, and caps the heads.
func (s *Supervisor) rewindSafeLocked(c interop.ChainID, to uint64) error {
	st := s.chains[c]
	b, err := s.db.block(c, to)
	if err != nil {
		return err
	}
	if b == nil || b.Source == nil {
		return fmt.Errorf("rewind chain %s to %d: block not local-safe", c, to)
	}
	next := *st
	next.LocalUnsafe = b.Ref
	next.LocalSafe = eth.DerivedBlockRefPair{Source: *b.Source, Derived: b.Ref}
	if next.CrossUnsafe.Number > to {
		next.CrossUnsafe = b.Ref
	}
	if next.CrossSafe.Derived.Number > to {
		next.CrossSafe = eth.DerivedBlockRefPair{Source: b.crossSource(&next), Derived: b.Ref}
	}
	if next.Finalized.Number > to {
		next.Finalized = b.Ref
	}
	w := s.db.batch()
	w.deleteBlocksFrom(c, to+1)
	capped, err := s.capDependentsLocked(w, c, to+1, next)
	if err != nil {
		w.b.Close()
		return err
	}
	if err := w.commit(); err != nil {
		return err
	}
	s.applyCappedLocked(capped)
	s.log.Warn("Rewound local-safe records after the node re-derived", "chain", c, "to", b.Ref)
	return nil
}

func (s *Supervisor) locked(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn()
}
