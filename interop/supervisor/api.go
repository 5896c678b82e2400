package supervisor

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// CodeUnknownChain is op-supervisor's error code for a chain outside the dependency set
// or not synced yet.
const CodeUnknownChain = -320501

// API is the public supervisor namespace, with op-supervisor's method names and shapes.
type API struct {
	s *Supervisor
}

// ChainSyncStatus is one chain in SyncStatus.
type ChainSyncStatus struct {
	LocalUnsafe eth.BlockRef `json:"localUnsafe"`
	LocalSafe   eth.BlockID  `json:"localSafe"`
	CrossUnsafe eth.BlockID  `json:"crossUnsafe"`
	// CrossSafe is named "safe" on the wire, as op-supervisor names it.
	CrossSafe eth.BlockID `json:"safe"`
	Finalized eth.BlockID `json:"finalized"`
}

// SyncStatus is supervisor_syncStatus.
type SyncStatus struct {
	MinSyncedL1        eth.BlockRef                         `json:"minSyncedL1"`
	SafeTimestamp      uint64                               `json:"safeTimestamp"`
	FinalizedTimestamp uint64                               `json:"finalizedTimestamp"`
	Chains             map[interop.ChainID]*ChainSyncStatus `json:"chains"`
}

func (a *API) chain(c interop.ChainID) (chainState, error) {
	st, ok := a.s.heads(c)
	if !ok {
		return chainState{}, &interop.Error{Code: CodeUnknownChain, Message: fmt.Sprintf("unknown chain %s", c)}
	}
	return st, nil
}

// SyncStatus is supervisor_syncStatus.
func (a *API) SyncStatus(ctx context.Context) (SyncStatus, error) {
	status := a.s.Status()
	out := SyncStatus{Chains: make(map[interop.ChainID]*ChainSyncStatus)}
	first := true
	for c, st := range status.Chains {
		out.Chains[c] = &ChainSyncStatus{
			LocalUnsafe: st.LocalUnsafe, LocalSafe: st.LocalSafe.Derived.ID(), CrossUnsafe: st.CrossUnsafe.ID(),
			CrossSafe: st.CrossSafe.Derived.ID(), Finalized: st.Finalized.ID(),
		}
		if first || st.LocalSafe.Source.Number < out.MinSyncedL1.Number {
			out.MinSyncedL1 = st.LocalSafe.Source
		}
		if first || st.CrossSafe.Derived.Time < out.SafeTimestamp {
			out.SafeTimestamp = st.CrossSafe.Derived.Time
		}
		if first || st.Finalized.Time < out.FinalizedTimestamp {
			out.FinalizedTimestamp = st.Finalized.Time
		}
		first = false
	}
	return out, nil
}

// LocalUnsafe is supervisor_localUnsafe.
func (a *API) LocalUnsafe(ctx context.Context, c interop.ChainID) (eth.BlockID, error) {
	st, err := a.chain(c)
	return st.LocalUnsafe.ID(), err
}

// CrossUnsafe is supervisor_crossUnsafe.
func (a *API) CrossUnsafe(ctx context.Context, c interop.ChainID) (eth.BlockID, error) {
	st, err := a.chain(c)
	return st.CrossUnsafe.ID(), err
}

// LocalSafe is supervisor_localSafe.
func (a *API) LocalSafe(ctx context.Context, c interop.ChainID) (eth.DerivedIDPair, error) {
	st, err := a.chain(c)
	return st.LocalSafe.IDs(), err
}

// CrossSafe is supervisor_crossSafe.
func (a *API) CrossSafe(ctx context.Context, c interop.ChainID) (eth.DerivedIDPair, error) {
	st, err := a.chain(c)
	return st.CrossSafe.IDs(), err
}

// Finalized is supervisor_finalized.
func (a *API) Finalized(ctx context.Context, c interop.ChainID) (eth.BlockID, error) {
	st, err := a.chain(c)
	return st.Finalized.ID(), err
}

// FinalizedL1 is supervisor_finalizedL1.
func (a *API) FinalizedL1(ctx context.Context) (eth.BlockRef, error) {
	return a.s.Status().FinalizedL1, nil
}

// ExecutingDescriptor describes where a message would be executed: supervisor_checkAccessList's
// third argument, as op-geth sends it.
type ExecutingDescriptor struct {
	// ChainID of the executing chain; zero means the initiating chain, as op-supervisor
	// assumes for clients that do not send it.
	ChainID   interop.ChainID `json:"chainID"`
	Timestamp hexutil.Uint64  `json:"timestamp"`
	// Timeout, when set, asks that the message stay executable until Timestamp+Timeout.
	Timeout hexutil.Uint64 `json:"timeout,omitempty"`
}

// CodeConflict is the error code of an access list naming a message that is not there, or
// not at the safety level asked for.
const CodeConflict = -321300

// CheckAccessList is supervisor_checkAccessList: every message the CrossL2Inbox
// access-list entries name must exist (its block indexed, with that timestamp, and a log
// at that index whose checksum matches), be executable at the descriptor's time by the
// dependency set's rules, and be at minSafety or safer. Execution clients call it before a
// transaction enters their pool.
func (a *API) CheckAccessList(ctx context.Context, entries []common.Hash, minSafety string, desc ExecutingDescriptor) error {
	head, ok := safetyHead[minSafety]
	if !ok {
		return fmt.Errorf("unexpected min-safety level %q", minSafety)
	}
	accesses, err := interop.ParseAccessList(entries)
	if err != nil {
		return err
	}
	conflict := func(format string, args ...any) error {
		return &interop.Error{Code: CodeConflict, Message: "conflicting data: " + fmt.Sprintf(format, args...)}
	}
	deps := a.s.cfg.DependencySet
	for _, acc := range accesses {
		if err := ctx.Err(); err != nil {
			return err
		}
		exec := desc.ChainID
		if exec == 0 {
			exec = acc.ChainID
		}
		if !deps.HasChain(acc.ChainID) || !deps.HasChain(exec) {
			return conflict("chain %s or %s is not in the dependency set", acc.ChainID, exec)
		}
		at := uint64(desc.Timestamp)
		if acc.Timestamp > at || acc.Timestamp+interop.MessageExpiryWindow < at+uint64(desc.Timeout) {
			return conflict("message of time %d cannot be executed at %d (timeout %d)", acc.Timestamp, at, uint64(desc.Timeout))
		}
		st, ok := a.s.heads(acc.ChainID)
		if !ok {
			return &interop.Error{Code: CodeUnknownChain, Message: fmt.Sprintf("unknown chain %s", acc.ChainID)}
		}
		b, err := a.s.db.block(acc.ChainID, acc.BlockNumber)
		if err != nil {
			return err // a read error is an error, never a verdict
		}
		if b == nil || b.Ref.Number > st.LocalUnsafe.Number {
			return conflict("block %d of chain %s is not known", acc.BlockNumber, acc.ChainID)
		}
		if b.Ref.Time != acc.Timestamp {
			return conflict("block %d of chain %s has time %d, not %d", acc.BlockNumber, acc.ChainID, b.Ref.Time, acc.Timestamp)
		}
		if int(acc.LogIndex) >= len(b.Logs) {
			return conflict("block %d of chain %s has no log %d", acc.BlockNumber, acc.ChainID, acc.LogIndex)
		}
		l := b.Logs[acc.LogIndex]
		id := interop.Identifier{Origin: l.Address, BlockNumber: acc.BlockNumber, LogIndex: acc.LogIndex, Timestamp: acc.Timestamp, ChainID: acc.ChainID}
		if interop.MessageChecksum(id, l.Hash) != acc.Checksum {
			return conflict("log %d of block %d of chain %s does not match the checksum", acc.LogIndex, acc.BlockNumber, acc.ChainID)
		}
		if top := head(&st); acc.BlockNumber > top {
			return conflict("block %d of chain %s is not %s (that head is %d)", acc.BlockNumber, acc.ChainID, minSafety, top)
		}
	}
	return nil
}

// safetyHead maps op-supervisor's safety level names to the head a message's block must be
// at or below.
var safetyHead = map[string]func(*chainState) uint64{
	"unsafe":       func(st *chainState) uint64 { return st.LocalUnsafe.Number },
	"cross-unsafe": func(st *chainState) uint64 { return st.CrossUnsafe.Number },
	"local-safe":   func(st *chainState) uint64 { return st.LocalSafe.Derived.Number },
	"safe":         func(st *chainState) uint64 { return st.CrossSafe.Derived.Number },
	"finalized":    func(st *chainState) uint64 { return st.Finalized.Number },
}
