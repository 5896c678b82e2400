package interop_test

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/syncnode"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/types"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/log"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
)

// syncNodeDriver plays the supervisor's part with op-supervisor's own client: it answers
// every exhaustL1 with the next L1 block and remembers what the node reported.
type syncNodeDriver struct {
	t      *testing.T
	node   syncnode.SyncNode
	l1     *ethclient.Client
	events chan *types.IndexingEvent

	localSafe types.DerivedBlockRefPair
	replaced  *types.BlockReplacement
}

func (d *syncNodeDriver) l1Ref(ctx context.Context, n uint64) (eth.BlockRef, error) {
	h, err := d.l1.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if err != nil {
		return eth.BlockRef{}, err
	}
	return eth.BlockRef{Hash: h.Hash(), Number: n, ParentHash: h.ParentHash, Time: h.Time}, nil
}

// until handles events until cond holds.
func (d *syncNodeDriver) until(ctx context.Context, what string, cond func() bool) {
	d.t.Helper()
	for !cond() {
		var ev *types.IndexingEvent
		select {
		case ev = <-d.events:
		case <-ctx.Done():
			d.t.Fatalf("waiting for %s: %v (local-safe %d from L1 %d)", what, ctx.Err(), d.localSafe.Derived.Number, d.localSafe.Source.Number)
		}
		if ev.DerivationUpdate != nil && ev.DerivationUpdate.Derived.Number >= d.localSafe.Derived.Number {
			d.localSafe = *ev.DerivationUpdate
		}
		if ev.ReplaceBlock != nil {
			d.replaced = ev.ReplaceBlock
		}
		if ev.ExhaustL1 != nil {
			for {
				next, err := d.l1Ref(ctx, ev.ExhaustL1.Source.Number+1)
				if errors.Is(err, ethereum.NotFound) {
					select {
					case <-time.After(100 * time.Millisecond):
						continue
					case <-ctx.Done():
						d.t.Fatalf("L1 block %d never came", ev.ExhaustL1.Source.Number+1)
					}
				}
				if err != nil {
					d.t.Fatal(err)
				}
				if err := d.node.ProvideL1(ctx, next); err != nil {
					d.t.Fatalf("ProvideL1(%d): %v", next.Number, err)
				}
				break
			}
		}
	}
}

// TestSyncNodeDrivesOpkitNode: op-supervisor v1.16.13's syncnode client manages a real
// opkit node in managed mode (op-geth in process, a batcher posting to the dev L1): it
// feeds L1 block by block on exhaustL1 until blocks are local-safe, promotes them, is
// refused a conflicting reset and an L1 block that does not extend the last, and
// invalidates a block, which the node replaces.
func TestSyncNodeDrivesOpkitNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dn, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		ChainIDs: []uint64{901}, NoSupervisor: true, L1BlockTime: time.Second, L2BlockTime: 1, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := dn.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	}()
	ch := dn.Chains[0]
	setup := &syncnode.RPCDialSetup{JWTSecret: eth.Bytes32(ch.Secret), Endpoint: ch.Node.InteropEndpoint()}
	node, err := setup.Setup(ctx, log.NewLogger(log.DiscardHandler()), &opmetrics.NoopRPCMetrics{})
	if err != nil {
		t.Fatal(err)
	}
	l1, err := ethclient.Dial(dn.L1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := ethclient.Dial(ch.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	rollupRPC, err := gethrpc.Dial(ch.Node.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer rollupRPC.Close()

	d := &syncNodeDriver{t: t, node: node, l1: l1, events: make(chan *types.IndexingEvent, 256)}
	sub, err := node.SubscribeEvents(ctx, d.events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// The first event carries the heads, and the pending exhaustL1 when derivation has
	// already used up its L1; when it has not yet, the exhaustL1 follows on its own.
	first := <-d.events
	if first.UnsafeBlock == nil || first.DerivationUpdate == nil {
		t.Fatalf("first event %+v: want the heads", first)
	}
	d.events <- first // handled by until below
	d.until(ctx, "three local-safe blocks", func() bool { return d.localSafe.Derived.Number >= 3 })

	id, err := node.ChainID(ctx)
	if err != nil || id != eth.ChainIDFromUInt64(901) {
		t.Fatalf("ChainID = %v, %v", id, err)
	}
	anchor, err := node.AnchorPoint(ctx)
	if err != nil || anchor.Derived.Hash != ch.Rollup.Genesis.L2.Hash || anchor.Source.Hash != ch.Rollup.Genesis.L1.Hash {
		t.Fatalf("AnchorPoint = %+v, %v", anchor, err)
	}
	h2, err := l2.HeaderByNumber(ctx, big.NewInt(2))
	if err != nil {
		t.Fatal(err)
	}
	ref2, err := node.L2BlockRefByNumber(ctx, 2)
	if err != nil || ref2.Hash != h2.Hash() || ref2.Time != h2.Time || ref2.L1Origin.Number == 0 && ref2.SequenceNumber == 0 {
		t.Fatalf("L2BlockRefByNumber(2) = %+v, %v; header %s", ref2, err, h2.Hash())
	}
	if _, err := node.L2BlockRefByNumber(ctx, 1<<40); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("missing block: %v, want ethereum.NotFound", err)
	}
	if r, err := node.L2BlockRefByTimestamp(ctx, h2.Time); err != nil || r != ref2 {
		t.Fatalf("L2BlockRefByTimestamp = %+v, %v", r, err)
	}
	receipts, err := node.FetchReceipts(ctx, ref2.Hash)
	if err != nil || len(receipts) == 0 || receipts[0].BlockHash != ref2.Hash {
		t.Fatalf("FetchReceipts = %d receipts, %v", len(receipts), err)
	}
	out, err := node.OutputV0AtTimestamp(ctx, h2.Time)
	if err != nil || out.BlockHash != ref2.Hash || common.Hash(out.StateRoot) != h2.Root {
		t.Fatalf("OutputV0AtTimestamp = %+v, %v", out, err)
	}
	if p, err := node.PendingOutputV0AtTimestamp(ctx, h2.Time); err != nil || *p != *out {
		t.Fatalf("PendingOutputV0AtTimestamp of a plain block = %+v, %v", p, err)
	}
	// An L1 block that does not extend the last one provided is refused.
	if err := node.ProvideL1(ctx, eth.BlockRef{Hash: common.Hash{1}, Number: 1 << 30, ParentHash: common.Hash{2}}); err == nil {
		t.Fatal("ProvideL1 of an unrelated block was accepted")
	}

	ref1, err := node.L2BlockRefByNumber(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.UpdateCrossUnsafe(ctx, ref2.ID()); err != nil {
		t.Fatal(err)
	}
	if err := node.UpdateCrossSafe(ctx, ref2.ID(), d.localSafe.Source.ID()); err != nil {
		t.Fatal(err)
	}
	if err := node.UpdateFinalized(ctx, ref1.ID()); err != nil {
		t.Fatal(err)
	}
	var st oketh.SyncStatus
	if err := rollupRPC.CallContext(ctx, &st, "optimism_syncStatus"); err != nil {
		t.Fatal(err)
	}
	if st.CrossUnsafeL2.Hash != ref2.Hash || st.SafeL2.Hash != ref2.Hash || st.FinalizedL2.Hash != ref1.Hash || st.LocalSafeL2.Number < 3 {
		t.Fatalf("sync status after promotions: cross-unsafe %v, cross-safe %v, finalized %v, local-safe %v",
			st.CrossUnsafeL2.ID(), st.SafeL2.ID(), st.FinalizedL2.ID(), st.LocalSafeL2.ID())
	}

	g := eth.BlockID{Hash: ch.Rollup.Genesis.L2.Hash, Number: 0}
	err = node.Reset(ctx, eth.BlockID{Hash: common.Hash{5}, Number: 2}, g, g, g, g)
	var rpcErr gethrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.ErrorCode() != -39002 {
		t.Fatalf("conflicting reset: %v", err)
	}

	// Invalidate block 3: the node replaces it and reports the replacement.
	ref3, err := node.L2BlockRefByNumber(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.InvalidateBlock(ctx, types.BlockSeal{Hash: ref3.Hash, Number: 3, Timestamp: ref3.Time}); err != nil {
		t.Fatal(err)
	}
	d.until(ctx, "replaceBlock", func() bool { return d.replaced != nil })
	if d.replaced.Invalidated != ref3.Hash || d.replaced.Replacement.Number != 3 || d.replaced.Replacement.Hash == ref3.Hash {
		t.Fatalf("replacement %+v of %s", d.replaced, ref3.Hash)
	}
	pending, err := node.PendingOutputV0AtTimestamp(ctx, ref3.Time)
	if err != nil || pending.BlockHash != ref3.Hash {
		t.Fatalf("PendingOutputV0AtTimestamp of the replacement = %+v, %v; want the invalidated block's", pending, err)
	}
	if now, err := node.L2BlockRefByNumber(ctx, 3); err != nil || now.Hash != d.replaced.Replacement.Hash {
		t.Fatalf("block 3 is %+v, %v; want the replacement", now, err)
	}
	// The chain goes on from the replacement: new unsafe blocks build on it.
	waitCtx, cancelWait := context.WithTimeout(ctx, time.Minute)
	defer cancelWait()
	for {
		ref4, err := node.L2BlockRefByNumber(waitCtx, 4)
		if err == nil && ref4.ParentHash == d.replaced.Replacement.Hash {
			break
		}
		select {
		case <-d.events:
		case <-time.After(100 * time.Millisecond):
		case <-waitCtx.Done():
			t.Fatalf("no block 4 on the replacement: %+v, %v", ref4, err)
		}
	}
}
