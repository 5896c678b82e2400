package supervisor_test

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/supervisor"
)

// TestExecutingMessageRules checks each rule an executing message must pass: a block of
// chain 902 executes a message initiated on chain 901 (or on itself), and must end
// cross-safe as it is, or be invalidated and replaced.
func TestExecutingMessageRules(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	src := l1Ref(t, l1, 1)
	initLog := &types.Log{Address: common.Address{0xaa}, Topics: []common.Hash{{1}}, Data: []byte("init")}

	cases := []struct {
		name string
		// execGenesisTime shifts the executing chain's clock.
		execGenesisTime uint64
		// msg builds the message from the initiating block, or nil for a same-block case.
		msg   func(init eth.L2BlockRef) interop.ExecutingMessage
		same  bool
		valid bool
	}{
		{name: "valid", valid: true, msg: func(i eth.L2BlockRef) interop.ExecutingMessage { return msgFor(i, 901, 0, initLog) }},
		{name: "valid at the edge of expiry", valid: true, execGenesisTime: anchor.Time + interop.MessageExpiryWindow,
			msg: func(i eth.L2BlockRef) interop.ExecutingMessage { return msgFor(i, 901, 0, initLog) }},
		{name: "expired", execGenesisTime: anchor.Time + interop.MessageExpiryWindow + 2,
			msg: func(i eth.L2BlockRef) interop.ExecutingMessage { return msgFor(i, 901, 0, initLog) }},
		{name: "initiated after it is executed", msg: func(i eth.L2BlockRef) interop.ExecutingMessage {
			m := msgFor(i, 901, 0, initLog)
			m.Identifier.Timestamp += 2
			return m
		}},
		{name: "wrong timestamp", msg: func(i eth.L2BlockRef) interop.ExecutingMessage {
			m := msgFor(i, 901, 0, initLog)
			m.Identifier.Timestamp--
			return m
		}},
		{name: "wrong origin", msg: func(i eth.L2BlockRef) interop.ExecutingMessage {
			m := msgFor(i, 901, 0, initLog)
			m.Identifier.Origin = common.Address{0xbb}
			return m
		}},
		{name: "no such log", msg: func(i eth.L2BlockRef) interop.ExecutingMessage { return msgFor(i, 901, 5, initLog) }},
		{name: "chain outside the dependency set", msg: func(i eth.L2BlockRef) interop.ExecutingMessage { return msgFor(i, 999, 0, initLog) }},
		{name: "same block, earlier log", same: true, valid: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, 901, anchor)
			genesisB := anchor.Time
			if tc.execGenesisTime != 0 {
				genesisB = tc.execGenesisTime
			}
			b := startNode(t, 902, anchor)
			if genesisB != anchor.Time {
				b.stop()
				b = startNodeAt(t, 902, anchor, genesisB)
			}
			startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{a.ws(), b.ws()}, 901, 902)
			waitFor(t, "subscriptions", func() bool { return a.subscribed() && b.subscribed() })
			a1 := a.chain.AddBlock(anchor.ID(), initLog)
			var b1 eth.L2BlockRef
			if tc.same {
				// A block of chain 902 that initiates a message in log 0 and executes it in log 1.
				next, _, _ := b.chain.BlockByNumber(0)
				self := eth.L2BlockRef{Number: 1, Time: next.Time + 2}
				m := msgFor(self, 902, 0, initLog)
				b1 = b.chain.AddBlock(anchor.ID(), initLog, interop.EncodeExecutingMessage(m))
			} else {
				b1 = b.chain.AddBlock(anchor.ID(), interop.EncodeExecutingMessage(tc.msg(a1)))
			}
			if _, err := a.chain.MarkSafe(1, src); err != nil {
				t.Fatal(err)
			}
			if _, err := b.chain.MarkSafe(1, src); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "chain 902 cross-safe at 1", func() bool { return b.chain.Heads().CrossSafe.Number == 1 })
			got := b.chain.Heads().CrossSafe
			if tc.valid && got != b1 {
				t.Fatalf("valid message: cross-safe %s, want the block itself %s", got.Hash, b1.Hash)
			}
			if !tc.valid && got.Hash == b1.Hash {
				t.Fatal("invalid message: the block became cross-safe")
			}
		})
	}
}

func msgFor(init eth.L2BlockRef, chain interop.ChainID, logIndex uint32, l *types.Log) interop.ExecutingMessage {
	return interop.ExecutingMessage{
		Identifier:  interop.Identifier{Origin: l.Address, BlockNumber: init.Number, LogIndex: logIndex, Timestamp: init.Time, ChainID: chain},
		PayloadHash: interop.PayloadHash(l),
	}
}
