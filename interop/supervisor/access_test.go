package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/supervisor"
)

// supervisor_checkAccessList, as op-geth's pool filter calls it over RPC, accepts the
// access list of a message that exists at the asked safety and refuses every other.
func TestCheckAccessList(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	a := startNode(t, 901, anchor)
	b := startNode(t, 902, anchor)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{a.ws(), b.ws()}, 901, 902)
	waitFor(t, "subscriptions", func() bool { return a.subscribed() && b.subscribed() })
	initLog := &types.Log{Address: common.Address{0xaa}, Topics: []common.Hash{{1}}, Data: []byte("init")}
	a1 := a.chain.AddBlock(anchor.ID(), initLog)
	waitFor(t, "chain 901 cross-unsafe at 1", func() bool { return a.chain.Heads().CrossUnsafe.Number == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := rpc.DialContext(ctx, sup.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	good := msgFor(a1, 901, 0, initLog)
	check := func(m interop.ExecutingMessage, safety string, at uint64) error {
		desc := supervisor.ExecutingDescriptor{ChainID: 902, Timestamp: hexutil.Uint64(at)}
		return cl.CallContext(ctx, nil, "supervisor_checkAccessList", interop.AccessListEntries(m.Identifier, m.PayloadHash), safety, desc)
	}
	if err := check(good, "cross-unsafe", a1.Time+2); err != nil {
		t.Fatalf("valid message refused: %v", err)
	}
	if err := check(good, "safe", a1.Time+2); err == nil {
		t.Fatal("an unsafe message passed as cross-safe")
	}
	if err := check(good, "cross-unsafe", a1.Time-1); err == nil {
		t.Fatal("a message executed before it was initiated passed")
	}
	bad := good
	bad.Identifier.LogIndex = 99
	if err := check(bad, "cross-unsafe", a1.Time+2); err == nil {
		t.Fatal("a message naming a log that does not exist passed")
	}
	bad = good
	bad.PayloadHash = common.Hash{9}
	if err := check(bad, "cross-unsafe", a1.Time+2); err == nil {
		t.Fatal("a message with the wrong payload passed")
	}
	bad = good
	bad.Identifier.BlockNumber = 7
	if err := check(bad, "unsafe", a1.Time+2); err == nil {
		t.Fatal("a message in a block that does not exist passed")
	}
	if err := cl.CallContext(ctx, nil, "supervisor_checkAccessList", []common.Hash{{1}}, "cross-unsafe", supervisor.ExecutingDescriptor{}); err == nil {
		t.Fatal("a malformed access list passed")
	}
	if err := check(good, "bogus", a1.Time+2); err == nil {
		t.Fatal("an unknown safety level passed")
	}
}
