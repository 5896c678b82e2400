package supervisor

import (
	"context"
	"fmt"

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
