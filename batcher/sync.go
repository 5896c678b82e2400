package batcher

import (
	"github.com/opkit/opkit/batcher/channels"
	"github.com/opkit/opkit/eth"
)

// syncActions is what one sync status asks of the channel manager.
type syncActions struct {
	// clear: drop all state and load again from the safe head (whose L1 origin is
	// clearOrigin).
	clear       bool
	clearOrigin eth.BlockID
	reason      string
	prune       int // blocks that became safe
	// loadFrom..loadTo (inclusive) are the blocks to load; loadFrom > loadTo: none.
	loadFrom, loadTo uint64
}

// queueView is what the decision needs to know of the queued state.
type queueView struct {
	blocks   int
	oldest   uint64 // number of the oldest queued block
	newest   uint64
	hashAt   func(n uint64) (hashOK bool, hash [32]byte)
	channels []channels.ChannelStatus
}

// computeSyncActions decides, from a fresh sync status, how the queue follows the safe
// head: prune what became safe, load what is new, or start afresh when the queue no
// longer lines up with the safe chain (a safe reorg, a safe head beyond the queue, or a
// submitted channel the node has read past without deriving: its data was lost, for
// example to an L1 reorg). skip reports a status too incomplete to act on.
func computeSyncActions(st *eth.SyncStatus, prevCurrentL1 eth.L1BlockRef, q queueView) (a syncActions, skip bool) {
	safe := st.LocalSafeL2
	if safe.IsZero() {
		safe = st.SafeL2
	}
	if st.UnsafeL2.IsZero() || st.HeadL1.IsZero() || safe.Hash == ([32]byte{}) {
		return syncActions{}, true
	}
	if st.CurrentL1.Number < prevCurrentL1.Number {
		// The node went back on L1 (it is resetting); wait until it settles.
		return syncActions{}, true
	}
	load := func(from uint64) (uint64, uint64) { return from, st.UnsafeL2.Number }
	afresh := syncActions{clear: true, clearOrigin: safe.L1Origin}
	afresh.loadFrom, afresh.loadTo = load(safe.Number + 1)
	if q.blocks == 0 {
		a.loadFrom, a.loadTo = load(safe.Number + 1)
		return a, false
	}
	next := safe.Number + 1
	if next < q.oldest {
		afresh.reason = "safe head below the queue"
		return afresh, false
	}
	drop := next - q.oldest
	if drop > uint64(q.blocks) {
		afresh.reason = "safe head above the queue"
		return afresh, false
	}
	if drop > 0 {
		if ok, h := q.hashAt(safe.Number); !ok || h != safe.Hash {
			afresh.reason = "safe chain reorg"
			return afresh, false
		}
	}
	for _, c := range q.channels {
		if c.FullySubmitted && !c.TimedOut && st.CurrentL1.Number > c.MaxInclusion && safe.Number < c.LatestL2 {
			afresh.reason = "node read past a submitted channel without deriving it"
			return afresh, false
		}
	}
	a.prune = int(drop)
	a.loadFrom, a.loadTo = load(q.newest + 1)
	return a, false
}
