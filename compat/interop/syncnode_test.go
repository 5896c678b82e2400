package interop_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/processors"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/syncnode"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/types"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	gethtypes "github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	oketh "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/interop/managed/memchain"
)

var secret = interop.Secret{0x42, 1}

var anchorL1 = oketh.BlockRef{Hash: common.Hash{0xa1}, Number: 7, ParentHash: common.Hash{0xa0}, Time: 1000}

func startManaged(t *testing.T) (*memchain.Chain, *managed.Server) {
	t.Helper()
	chain := memchain.New(901, 2000, 2, anchorL1)
	srv, err := managed.NewServer(managed.Config{Secret: secret}, chain)
	if err != nil {
		t.Fatal(err)
	}
	chain.SetSink(srv)
	t.Cleanup(func() { _ = srv.Close() })
	return chain, srv
}

func dialSyncNode(t testing.TB, endpoint string) syncnode.SyncNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	setup := &syncnode.RPCDialSetup{JWTSecret: eth.Bytes32(secret), Endpoint: endpoint}
	node, err := setup.Setup(ctx, log.NewLogger(log.DiscardHandler()), &opmetrics.NoopRPCMetrics{})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSyncNodeCallsEveryMethod drives opkit's managed server with op-supervisor's own
// client over an authenticated websocket.
func TestSyncNodeCallsEveryMethod(t *testing.T) {
	chain, srv := startManaged(t)
	initLog := &gethtypes.Log{Address: common.Address{0x77}, Topics: []common.Hash{{1}, {2}}, Data: []byte("hello")}
	b1 := chain.AddBlock(anchorL1.ID(), initLog)
	b2 := chain.AddBlock(anchorL1.ID())
	node := dialSyncNode(t, srv.WSEndpoint())
	ctx := ctxT(t)

	// Events first: the subscription is what the supervisor relies on.
	events := make(chan *types.IndexingEvent, 16)
	sub, err := node.SubscribeEvents(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	first := <-events
	if first.UnsafeBlock == nil || first.UnsafeBlock.Hash != b2.Hash || first.DerivationUpdate == nil {
		t.Fatalf("first event %+v, want the node's heads", first)
	}
	b3 := chain.AddBlock(anchorL1.ID())
	if ev := <-events; ev.UnsafeBlock == nil || *ev.UnsafeBlock != toOpRef(b3.BlockRef()) {
		t.Fatalf("event %+v, want unsafe block 3", ev)
	}

	id, err := node.ChainID(ctx)
	if err != nil || id != eth.ChainIDFromUInt64(901) {
		t.Fatalf("ChainID = %v, %v", id, err)
	}
	anchor, err := node.AnchorPoint(ctx)
	if err != nil || anchor.Source != toOpRef(anchorL1) || anchor.Derived.Number != 0 {
		t.Fatalf("AnchorPoint = %+v, %v", anchor, err)
	}
	ref, err := node.L2BlockRefByNumber(ctx, 1)
	if err != nil || ref != toOpL2Ref(b1) {
		t.Fatalf("L2BlockRefByNumber = %+v, %v", ref, err)
	}
	if _, err := node.L2BlockRefByNumber(ctx, 99); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("missing block: %v, want ethereum.NotFound after the client's mapping", err)
	}
	if ref, err := node.L2BlockRefByTimestamp(ctx, b2.Time); err != nil || ref != toOpL2Ref(b2) {
		t.Fatalf("L2BlockRefByTimestamp = %+v, %v", ref, err)
	}
	receipts, err := node.FetchReceipts(ctx, b1.Hash)
	if err != nil || len(receipts) != 1 || receipts[0].Logs[0].Address != initLog.Address {
		t.Fatalf("FetchReceipts = %+v, %v", receipts, err)
	}
	if _, err := node.FetchReceipts(ctx, common.Hash{9}); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("receipts of a missing block: %v", err)
	}
	out, err := node.OutputV0AtTimestamp(ctx, b1.Time)
	if err != nil || out.BlockHash != b1.Hash {
		t.Fatalf("OutputV0AtTimestamp = %+v, %v", out, err)
	}
	if p, err := node.PendingOutputV0AtTimestamp(ctx, b1.Time); err != nil || *p != *out {
		t.Fatalf("PendingOutputV0AtTimestamp = %+v, %v", p, err)
	}
	// Contains checks a message's checksum against the node's own log: it exercises
	// receipts, log indexing and the chain ID together.
	logHash := processors.LogToLogHash(receipts[0].Logs[0])
	checksum := types.ChecksumArgs{BlockNumber: 1, LogIndex: 0, Timestamp: b1.Time, ChainID: id, LogHash: logHash}.Checksum()
	seal, err := node.Contains(ctx, types.ContainsQuery{Timestamp: b1.Time, BlockNum: 1, LogIdx: 0, Checksum: checksum})
	if err != nil || seal.Hash != b1.Hash {
		t.Fatalf("Contains = %+v, %v", seal, err)
	}

	if err := node.UpdateCrossUnsafe(ctx, toOpID(b2.ID())); err != nil {
		t.Fatal(err)
	}
	if err := node.UpdateCrossSafe(ctx, toOpID(b1.ID()), toOpID(anchorL1.ID())); err != nil {
		t.Fatal(err)
	}
	if err := node.UpdateFinalized(ctx, toOpID(b1.ID())); err != nil {
		t.Fatal(err)
	}
	if h := chain.Heads(); h.CrossUnsafe != b2 || h.CrossSafe != b1 || h.Finalized != b1 {
		t.Fatalf("heads after promotions %+v", h)
	}
	next := eth.BlockRef{Hash: common.Hash{0xa2}, Number: 8, ParentHash: anchorL1.Hash, Time: 1012}
	if err := node.ProvideL1(ctx, next); err != nil {
		t.Fatal(err)
	}
	if p := chain.Provided(); len(p) != 1 || p[0].Hash != next.Hash {
		t.Fatalf("provided %+v", p)
	}

	// A conflicting reset target is refused with the node's block; a good one applies.
	g, _ := chain.L2BlockRefByNumber(ctx, 0)
	err = node.Reset(ctx, eth.BlockID{Hash: common.Hash{5}, Number: 2}, toOpID(g.ID()), toOpID(g.ID()), toOpID(g.ID()), toOpID(g.ID()))
	var rpcErr gethrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.ErrorCode() != -39002 {
		t.Fatalf("conflicting reset: %v", err)
	}
	if err := node.Reset(ctx, toOpID(b2.ID()), toOpID(b1.ID()), toOpID(b1.ID()), toOpID(b1.ID()), toOpID(g.ID())); err != nil {
		t.Fatal(err)
	}
	if h := chain.Heads(); h.LocalUnsafe != b2 || h.LocalSafe != b1 || chain.Resets() != 1 {
		t.Fatalf("heads after reset %+v", h)
	}
	b1 = chain.Heads().LocalSafe
	if err := node.InvalidateBlock(ctx, types.BlockSeal{Hash: b1.Hash, Number: b1.Number, Timestamp: b1.Time}); err != nil {
		t.Fatal(err)
	}
	var replaced *types.BlockReplacement
	for replaced == nil {
		select {
		case ev := <-events:
			replaced = ev.ReplaceBlock
		case <-ctx.Done():
			t.Fatal("no replaceBlock event")
		}
	}
	if replaced.Invalidated != b1.Hash || replaced.Replacement.Number != b1.Number {
		t.Fatalf("replacement %+v", replaced)
	}
	if err := node.ResetPreInterop(ctx); err != nil {
		t.Fatal(err)
	}
	if chain.Heads().LocalUnsafe.Number != 0 {
		t.Fatal("pre-interop reset not applied")
	}
}

// TestSyncNodePullMode: over plain HTTP the client pulls, reading the out-of-events code
// as io.EOF.
func TestSyncNodePullMode(t *testing.T) {
	chain, srv := startManaged(t)
	node := dialSyncNode(t, srv.HTTPEndpoint())
	ctx := ctxT(t)
	// op-service's client refuses subscriptions over HTTP outright, so the supervisor
	// side must pull (op-supervisor does, for nodes attached without subscription).
	if _, err := node.SubscribeEvents(ctx, make(chan *types.IndexingEvent, 1)); err == nil {
		t.Fatal("subscription over HTTP accepted")
	}
	if _, err := node.PullEvent(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("empty queue: %v, want io.EOF", err)
	}
	b1 := chain.AddBlock(anchorL1.ID())
	if _, err := chain.MarkSafe(1, anchorL1); err != nil {
		t.Fatal(err)
	}
	chain.ReportExhaustL1(anchorL1)
	ev, err := node.PullEvent(ctx)
	if err != nil || ev.UnsafeBlock == nil || ev.UnsafeBlock.Hash != b1.Hash {
		t.Fatalf("pulled %+v, %v", ev, err)
	}
	ev, err = node.PullEvent(ctx)
	if err != nil || ev.DerivationUpdate == nil || ev.DerivationUpdate.Derived.Hash != b1.Hash || ev.DerivationUpdate.Source != toOpRef(anchorL1) {
		t.Fatalf("pulled %+v, %v", ev, err)
	}
	ev, err = node.PullEvent(ctx)
	if err != nil || ev.ExhaustL1 == nil || ev.ExhaustL1.Source != toOpRef(anchorL1) {
		t.Fatalf("pulled %+v, %v", ev, err)
	}
	if _, err := node.PullEvent(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("drained queue: %v", err)
	}
}
