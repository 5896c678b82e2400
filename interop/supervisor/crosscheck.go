package supervisor

import (
	"fmt"

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

func (v verdict) String() string {
	switch v {
	case valid:
		return "valid"
	case wait:
		return "wait"
	default:
		return "invalid"
	}
}

// level is the safety a block is checked for.
type level int

const (
	unsafeLevel level = iota
	safeLevel
)

// crossView is what the cross-safety rules read: every chain's heads and indexed blocks.
// A read error is returned as an error, never taken for a missing block.
type crossView interface {
	chainState(c interop.ChainID) (*chainState, bool)
	block(c interop.ChainID, n uint64) (*blockEntry, error)
}

// blockAt names one block of one chain.
type blockAt struct {
	chain  interop.ChainID
	number uint64
}

// decision is what checking a candidate block concluded.
type decision struct {
	verdict verdict
	why     string
	// scope is the L1 block the candidate is cross-safe from (safe level, valid only):
	// the latest L1 block any block it depends on was derived from, and never before the
	// candidate's own source or its chain's current cross-safe source.
	scope eth.BlockRef
}

// checkCandidate decides whether block b, the block after chain c's cross head at lvl,
// may join it.
//
// A message whose initiating block is older than b must point at a block that is already
// cross at lvl (and, at the safe level, cross-safe from L1 no later than the scope). A
// message initiated at b's own timestamp on a block that is not cross yet pulls that
// block into the candidate's hazard set, which is decided as a whole: every block in it
// must pass the same rules, and the messages between them must not form a cycle. This is
// what lets two chains exchange messages within one timestamp without waiting on each
// other forever.
func checkCandidate(v crossView, deps *interop.DependencySet, c interop.ChainID, b *blockEntry, lvl level) (decision, error) {
	T := b.Ref.Time
	d := decision{verdict: valid}
	if lvl == safeLevel {
		if b.Source == nil {
			return decision{verdict: wait, why: "block is not local-safe"}, nil
		}
		d.scope = *b.Source
		if st, ok := v.chainState(c); ok && st.CrossSafe.Source.Number > d.scope.Number {
			d.scope = st.CrossSafe.Source
		}
	}
	raise := func(src eth.BlockRef) {
		if src.Number > d.scope.Number {
			d.scope = src
		}
	}
	hazards := map[blockAt]*blockEntry{{c, b.Ref.Number}: b}
	order := []blockAt{{c, b.Ref.Number}}
	for i := 0; i < len(order); i++ {
		at := order[i]
		blk := hazards[at]
		for li, l := range blk.Logs {
			if l.Exec == nil {
				continue
			}
			id := l.Exec.Identifier
			switch {
			case !deps.HasChain(id.ChainID):
				return decision{verdict: invalid, why: "initiating chain is not in the dependency set"}, nil
			case id.Timestamp > blk.Ref.Time:
				return decision{verdict: invalid, why: "initiating message is newer than the executing block"}, nil
			case blk.Ref.Time > id.Timestamp+interop.MessageExpiryWindow:
				return decision{verdict: invalid, why: "initiating message expired"}, nil
			}
			ist, ok := v.chainState(id.ChainID)
			if !ok {
				return decision{verdict: wait, why: "initiating chain not synced yet"}, nil
			}
			known, cross := ist.LocalUnsafe.Number, ist.CrossUnsafe.Number
			if lvl == safeLevel {
				known, cross = ist.LocalSafe.Derived.Number, ist.CrossSafe.Derived.Number
			}
			if id.BlockNumber > known {
				return decision{verdict: wait, why: "initiating block not known yet"}, nil
			}
			ib, err := v.block(id.ChainID, id.BlockNumber)
			if err != nil {
				return decision{}, fmt.Errorf("read initiating block %d of chain %s: %w", id.BlockNumber, id.ChainID, err)
			}
			if ib == nil {
				if id.BlockNumber < ist.Anchor.Derived.Number {
					return decision{verdict: invalid, why: "initiating block precedes interop"}, nil
				}
				return decision{verdict: wait, why: "initiating block not indexed"}, nil
			}
			if ib.Ref.Time != id.Timestamp {
				return decision{verdict: invalid, why: "initiating block has another timestamp"}, nil
			}
			if int(id.LogIndex) >= len(ib.Logs) {
				return decision{verdict: invalid, why: "no log at the initiating log index"}, nil
			}
			il := ib.Logs[id.LogIndex]
			if il.Address != id.Origin || il.Hash != l.Exec.PayloadHash {
				return decision{verdict: invalid, why: "initiating log does not match the message"}, nil
			}
			initAt := blockAt{id.ChainID, id.BlockNumber}
			if initAt == at {
				if int(id.LogIndex) >= li {
					return decision{verdict: invalid, why: "message executed before it was initiated"}, nil
				}
				continue
			}
			if id.BlockNumber <= cross {
				if lvl == safeLevel {
					raise(ib.crossSource(ist))
				}
				continue
			}
			if ib.Ref.Time != T || id.BlockNumber != cross+1 {
				return decision{verdict: wait, why: "initiating block not cross-safe enough yet"}, nil
			}
			// Initiated at the candidate's own timestamp, on the next block of its chain:
			// decide that block together with the candidate.
			if _, seen := hazards[initAt]; !seen {
				if lvl == safeLevel {
					if ib.Source == nil {
						return decision{verdict: wait, why: "initiating block not local-safe yet"}, nil
					}
					raise(*ib.Source)
				}
				hazards[initAt] = ib
				order = append(order, initAt)
			}
		}
	}
	if len(hazards) > 1 && hasCycle(hazards) {
		return decision{verdict: invalid, why: "messages at one timestamp depend on each other in a cycle"}, nil
	}
	if lvl == safeLevel {
		// The candidate can only be cross-safe from an L1 block its own chain has been
		// derived up to.
		if st, ok := v.chainState(c); !ok || d.scope.Number > st.LocalSafe.Source.Number {
			return decision{verdict: wait, why: "initiating block derived from later L1 than the chain has reached"}, nil
		}
	}
	return d, nil
}

// crossSource is the L1 block b became cross-safe from: recorded when it was promoted,
// or, for the anchor and blocks promoted before the record existed, its own source.
func (b *blockEntry) crossSource(st *chainState) eth.BlockRef {
	switch {
	case b.CrossSource != nil:
		return *b.CrossSource
	case b.Source != nil:
		return *b.Source
	default:
		return st.CrossSafe.Source
	}
}

// logAt names one log of one block in a hazard set.
type logAt struct {
	block blockAt
	index int
}

// hasCycle reports whether the messages among the hazard blocks form a cycle. Each log
// depends on the log before it in its block (a block executes in order) and an executing
// message depends on the log it executes; the set is consistent only if those
// dependencies can be ordered.
func hasCycle(hazards map[blockAt]*blockEntry) bool {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[logAt]int{}
	var visit func(n logAt) bool
	visit = func(n logAt) bool {
		switch state[n] {
		case visiting:
			return true
		case done:
			return false
		}
		state[n] = visiting
		blk := hazards[n.block]
		if n.index > 0 && visit(logAt{n.block, n.index - 1}) {
			return true
		}
		if x := blk.Logs[n.index].Exec; x != nil {
			dep := blockAt{x.Identifier.ChainID, x.Identifier.BlockNumber}
			if ib, ok := hazards[dep]; ok && int(x.Identifier.LogIndex) < len(ib.Logs) {
				if visit(logAt{dep, int(x.Identifier.LogIndex)}) {
					return true
				}
			}
		}
		state[n] = done
		return false
	}
	for at, blk := range hazards {
		if len(blk.Logs) > 0 && visit(logAt{at, len(blk.Logs) - 1}) {
			return true
		}
	}
	return false
}
