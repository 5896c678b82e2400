package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/supervisor"
)

func execOf(init eth.L2BlockRef, chain interop.ChainID, index uint32, l *types.Log) *types.Log {
	return interop.EncodeExecutingMessage(msgFor(init, chain, index, l))
}

// Two chains whose blocks at one timestamp execute each other's messages both become
// cross-safe: neither waits for the other to be cross-safe first.
func TestMessagesAtOneTimestampBecomeCrossSafe(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	a := startNode(t, 901, anchor)
	b := startNode(t, 902, anchor)
	startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{a.ws(), b.ws()}, 901, 902)
	waitFor(t, "subscriptions", func() bool { return a.subscribed() && b.subscribed() })

	pingA := &types.Log{Address: common.Address{0xaa}, Topics: []common.Hash{{1}}, Data: []byte("from 901")}
	pingB := &types.Log{Address: common.Address{0xbb}, Topics: []common.Hash{{2}}, Data: []byte("from 902")}
	// Both chains start at one genesis time with one block time: their blocks 1 share a
	// timestamp, and each executes the other's first log.
	next, _, _ := a.chain.BlockByNumber(0)
	at := eth.L2BlockRef{Number: 1, Time: next.Time + 2}
	a1 := a.chain.AddBlock(anchor.ID(), pingA, execOf(at, 902, 0, pingB))
	b1 := b.chain.AddBlock(anchor.ID(), pingB, execOf(at, 901, 0, pingA))
	if a1.Time != b1.Time {
		t.Fatalf("blocks at %d and %d", a1.Time, b1.Time)
	}
	waitFor(t, "both cross-unsafe", func() bool {
		return a.chain.Heads().CrossUnsafe == a1 && b.chain.Heads().CrossUnsafe == b1
	})
	src := l1Ref(t, l1, 1)
	if _, err := a.chain.MarkSafe(1, src); err != nil {
		t.Fatal(err)
	}
	if _, err := b.chain.MarkSafe(1, src); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both cross-safe", func() bool {
		return a.chain.Heads().CrossSafe == a1 && b.chain.Heads().CrossSafe == b1
	})
}

// When the block that initiated a message is reorged away, the block that executed it is
// no longer cross-unsafe.
func TestReorgOfInitiatingBlockLowersDependents(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	a := startNode(t, 901, anchor)
	b := startNode(t, 902, anchor)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{a.ws(), b.ws()}, 901, 902)
	waitFor(t, "subscriptions", func() bool { return a.subscribed() && b.subscribed() })
	cl, err := rpc.Dial(sup.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	crossUnsafe := func(c interop.ChainID) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var id eth.BlockID
		if err := cl.CallContext(ctx, &id, "supervisor_crossUnsafe", c); err != nil {
			t.Fatal(err)
		}
		return id.Number
	}

	ping := &types.Log{Address: common.Address{0xaa}, Topics: []common.Hash{{1}}, Data: []byte("ping")}
	a1 := a.chain.AddBlock(anchor.ID(), ping)
	b.chain.AddBlock(anchor.ID(), execOf(a1, 901, 0, ping))
	waitFor(t, "the executing block cross-unsafe", func() bool { return crossUnsafe(902) == 1 })

	// 901 reorgs its block 1 to one without the initiating log, and builds on it.
	a.chain.Fork(0)
	a.chain.AddBlock(anchor.ID())
	waitFor(t, "the executing block no longer cross-unsafe", func() bool { return crossUnsafe(902) == 0 })
	// 901's new blocks are fine.
	waitFor(t, "901's new blocks cross-unsafe", func() bool { return crossUnsafe(901) == 2 })
	if got := crossUnsafe(902); got != 0 {
		t.Fatalf("902 cross-unsafe %d after 901 moved on", got)
	}
}
