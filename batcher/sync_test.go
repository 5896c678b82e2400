package batcher

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/batcher/channels"
	"github.com/opkit/opkit/eth"
)

func ref(n uint64) eth.L2BlockRef {
	return eth.L2BlockRef{Number: n, Hash: common.Hash{byte(n), 1}, L1Origin: eth.BlockID{Number: n / 2, Hash: common.Hash{byte(n / 2), 2}}}
}

func status(safe, unsafe, currentL1 uint64) *eth.SyncStatus {
	return &eth.SyncStatus{
		SafeL2: ref(safe), LocalSafeL2: ref(safe), UnsafeL2: ref(unsafe),
		HeadL1: eth.L1BlockRef{Number: 100, Hash: common.Hash{9}}, CurrentL1: eth.L1BlockRef{Number: currentL1},
	}
}

func queue(from, to uint64, chans ...channels.ChannelStatus) queueView {
	return queueView{
		blocks: int(to - from + 1), oldest: from, newest: to, channels: chans,
		hashAt: func(n uint64) (bool, [32]byte) {
			if n < from || n > to {
				return false, [32]byte{}
			}
			return true, ref(n).Hash
		},
	}
}

func TestSyncActionsEmptyQueueLoadsAboveSafe(t *testing.T) {
	a, skip := computeSyncActions(status(5, 9, 50), eth.L1BlockRef{}, queueView{})
	if skip || a.clear || a.loadFrom != 6 || a.loadTo != 9 {
		t.Fatalf("%+v skip=%v", a, skip)
	}
}

func TestSyncActionsPrunesSafeAndLoadsNew(t *testing.T) {
	a, _ := computeSyncActions(status(7, 12, 50), eth.L1BlockRef{}, queue(6, 10))
	if a.clear || a.prune != 2 || a.loadFrom != 11 || a.loadTo != 12 {
		t.Fatalf("%+v", a)
	}
}

func TestSyncActionsSafeReorgStartsAfresh(t *testing.T) {
	q := queue(6, 10)
	q.hashAt = func(uint64) (bool, [32]byte) { return true, [32]byte{0xee} }
	a, _ := computeSyncActions(status(7, 12, 50), eth.L1BlockRef{}, q)
	if !a.clear || a.loadFrom != 8 || a.clearOrigin != ref(7).L1Origin {
		t.Fatalf("%+v", a)
	}
}

func TestSyncActionsSafeOutsideQueueStartsAfresh(t *testing.T) {
	for _, st := range []*eth.SyncStatus{status(20, 25, 50), status(2, 25, 50)} {
		a, _ := computeSyncActions(st, eth.L1BlockRef{}, queue(6, 10))
		if !a.clear || a.loadFrom != st.SafeL2.Number+1 || a.loadTo != 25 {
			t.Fatalf("safe %d: %+v", st.SafeL2.Number, a)
		}
	}
}

func TestSyncActionsLostChannelStartsAfresh(t *testing.T) {
	ch := channels.ChannelStatus{FullySubmitted: true, MaxInclusion: 40, LatestL2: 9}
	// The node has not reached the inclusion block yet: wait.
	if a, _ := computeSyncActions(status(5, 12, 40), eth.L1BlockRef{}, queue(6, 10, ch)); a.clear {
		t.Fatalf("cleared before the node read the channel: %+v", a)
	}
	// It read past it and the safe head did not move: the data is gone, send again.
	if a, _ := computeSyncActions(status(5, 12, 41), eth.L1BlockRef{}, queue(6, 10, ch)); !a.clear {
		t.Fatalf("did not start afresh: %+v", a)
	}
}

func TestSyncActionsSkipsIncompleteOrReversedStatus(t *testing.T) {
	st := status(5, 9, 50)
	st.UnsafeL2 = eth.L2BlockRef{}
	if _, skip := computeSyncActions(st, eth.L1BlockRef{}, queueView{}); !skip {
		t.Fatal("acted on a status without an unsafe head")
	}
	if _, skip := computeSyncActions(status(5, 9, 50), eth.L1BlockRef{Number: 51}, queueView{}); !skip {
		t.Fatal("acted on a status whose current L1 went back")
	}
}
