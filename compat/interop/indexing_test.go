package interop_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-node/rollup/engine"
	"github.com/ethereum-optimism/optimism/op-node/rollup/interop/indexing"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/event"
	opmetrics "github.com/ethereum-optimism/optimism/op-service/metrics"
	"github.com/ethereum/go-ethereum/common"
	gethtypes "github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"

	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/l1test"
	"github.com/opkit/opkit/interop/managed/memchain"
	"github.com/opkit/opkit/interop/supervisor"
)

// l2Source serves op-node's indexing mode from an in-memory chain.
type l2Source struct{ c *memchain.Chain }

func (s l2Source) L2BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error) {
	r, err := s.c.L2BlockRefByHash(ctx, h)
	return toOpL2Ref(r), err
}

func (s l2Source) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	r, err := s.c.L2BlockRefByNumber(ctx, n)
	if errors.Is(err, interop.ErrNotFound) {
		return eth.L2BlockRef{}, fmt.Errorf("%w: %w", err, ethereumNotFound)
	}
	return toOpL2Ref(r), err
}

func (s l2Source) L2BlockRefByLabel(ctx context.Context, label eth.BlockLabel) (eth.L2BlockRef, error) {
	return toOpL2Ref(s.c.Heads().LocalUnsafe), nil
}

func (s l2Source) BlockRefByHash(ctx context.Context, h common.Hash) (eth.BlockRef, error) {
	r, err := s.L2BlockRefByHash(ctx, h)
	return r.BlockRef(), err
}

func (s l2Source) BlockRefByNumber(ctx context.Context, n uint64) (eth.BlockRef, error) {
	r, err := s.L2BlockRefByNumber(ctx, n)
	return r.BlockRef(), err
}

func (s l2Source) PayloadByHash(ctx context.Context, h common.Hash) (*eth.ExecutionPayloadEnvelope, error) {
	return nil, errors.New("payloads are not kept by this test chain")
}

func (s l2Source) FetchReceipts(ctx context.Context, h common.Hash) (eth.BlockInfo, gethtypes.Receipts, error) {
	r, err := s.c.Receipts(ctx, h)
	return nil, r, err
}

func (s l2Source) OutputV0AtBlock(ctx context.Context, h common.Hash) (*eth.OutputV0, error) {
	o, err := s.c.OutputV0(ctx, h)
	if err != nil {
		return nil, err
	}
	return &eth.OutputV0{StateRoot: eth.Bytes32(o.StateRoot), MessagePasserStorageRoot: eth.Bytes32(o.MessagePasserStorageRoot), BlockHash: o.BlockHash}, nil
}

// l1Source reads the dev L1.
type l1Source struct{ l1 *devnet.L1 }

func (s l1Source) L1BlockRefByHash(ctx context.Context, h common.Hash) (eth.L1BlockRef, error) {
	hdr := s.l1.Backend().BlockChain().GetHeaderByHash(h)
	if hdr == nil {
		return eth.L1BlockRef{}, ethereumNotFound
	}
	return toOpRef(oketh.BlockRefFromHeader(hdr)), nil
}

func (s l1Source) L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error) {
	hdr := s.l1.Backend().BlockChain().GetHeaderByNumber(n)
	if hdr == nil {
		return eth.L1BlockRef{}, ethereumNotFound
	}
	return toOpRef(oketh.BlockRefFromHeader(hdr)), nil
}

// recorder stands in for op-node's engine and event system: it records what the
// indexing mode asks of them.
type recorder struct {
	mu         sync.Mutex
	crossUns   eth.L2BlockRef
	safe       eth.L2BlockRef
	safeSource eth.L1BlockRef
	finalized  eth.L2BlockRef
	provided   []eth.L1BlockRef
	resets     [][5]eth.L2BlockRef
}

func (r *recorder) Emit(ctx context.Context, ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch x := ev.(type) {
	case engine.PromoteCrossUnsafeEvent:
		r.crossUns = x.Ref
	case derive.ProvideL1Traversal:
		r.provided = append(r.provided, x.NextL1)
	}
}

func (r *recorder) ForceReset(ctx context.Context, lu, xu, ls, xs, fin eth.L2BlockRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets = append(r.resets, [5]eth.L2BlockRef{lu, xu, ls, xs, fin})
}

func (r *recorder) PromoteSafe(ctx context.Context, ref eth.L2BlockRef, source eth.L1BlockRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.safe, r.safeSource = ref, source
}

func (r *recorder) PromoteFinalized(ctx context.Context, ref eth.L2BlockRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finalized = ref
}

func (r *recorder) check(f func(r *recorder) bool) func() bool {
	return func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return f(r)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOpkitSupervisorDrivesOPNodeIndexing runs opkit's supervisor against op-node's own
// node-side server: events in, provideL1, promotions and a reset out.
func TestOpkitSupervisorDrivesOPNodeIndexing(t *testing.T) {
	l1 := l1test.Start(t)
	l1At := func(n uint64) oketh.BlockRef {
		return oketh.BlockRefFromHeader(l1.Backend().BlockChain().GetHeaderByNumber(n))
	}
	anchor := l1At(0)
	chain := memchain.New(901, anchor.Time, 2, anchor)
	genesis, _ := chain.L2BlockRefByNumber(context.Background(), 0)
	zero := uint64(0)
	cfg := &rollup.Config{
		Genesis:   rollup.Genesis{L1: toOpID(anchor.ID()), L2: toOpID(genesis.ID()), L2Time: genesis.Time},
		BlockTime: 2, SeqWindowSize: 100, L2ChainID: big.NewInt(901), InteropTime: &zero,
	}
	rec := &recorder{}
	im := indexing.NewIndexingMode(log.NewLogger(log.DiscardHandler()), cfg, "127.0.0.1", 0, eth.Bytes32(secret),
		l1Source{l1}, l2Source{chain}, &opmetrics.NoopRPCMetrics{}, 100)
	im.SetEngineController(rec)
	im.AttachEmitter(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := im.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = im.Stop(context.Background()) }()

	sup, err := supervisor.New(supervisor.Config{
		L1RPC: l1.HTTPEndpoint(), DataDir: t.TempDir(), DependencySet: interop.NewDependencySet(901),
		Nodes:          []supervisor.NodeConfig{{Endpoint: im.WSEndpoint(), Secret: secret}},
		L1PollInterval: 50 * time.Millisecond, RetryInterval: 50 * time.Millisecond, ReassertInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	waitFor(t, "supervisor connected", func() bool { return sup.ConnectedNodes() == 1 && len(sup.Status().Chains) == 1 })

	var refs []oketh.L2BlockRef
	for i := 0; i < 3; i++ {
		ref := chain.AddBlock(anchor.ID())
		refs = append(refs, ref)
		im.OnEvent(ctx, engine.UnsafeUpdateEvent{Ref: toOpL2Ref(ref)})
	}
	waitFor(t, "cross-unsafe promotion", rec.check(func(r *recorder) bool { return r.crossUns == toOpL2Ref(refs[2]) }))

	src := l1At(1)
	if _, err := chain.MarkSafe(3, src); err != nil {
		t.Fatal(err)
	}
	im.OnEvent(ctx, engine.LocalSafeUpdateEvent{Ref: toOpL2Ref(refs[2]), Source: toOpRef(src)})
	waitFor(t, "cross-safe promotion", rec.check(func(r *recorder) bool {
		return r.safe == toOpL2Ref(refs[2]) && r.safeSource == toOpRef(src)
	}))

	// Exhausting L1 at its head: the next block is provided once it exists.
	head := l1At(l1.Head().Number.Uint64())
	im.OnEvent(ctx, derive.ExhaustedL1Event{L1Ref: toOpRef(head), LastL2: toOpL2Ref(refs[2])})
	time.Sleep(200 * time.Millisecond) // several L1 polls: nothing may be provided yet
	if rec.check(func(r *recorder) bool { return len(r.provided) != 0 })() {
		t.Fatal("an L1 block was provided before it existed")
	}
	if err := l1test.SealWithin(l1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	next := l1At(head.Number + 1)
	waitFor(t, "next L1 block provided", rec.check(func(r *recorder) bool {
		return len(r.provided) == 1 && r.provided[0] == toOpRef(next)
	}))

	// Finality follows L1 finality through the derived-from record. L1 finalizes the
	// source block (as a beacon chain would two epochs later).
	l1.Backend().BlockChain().SetFinalized(l1.Backend().BlockChain().GetHeaderByNumber(src.Number))
	waitFor(t, "finalized promotion", rec.check(func(r *recorder) bool { return r.finalized == toOpL2Ref(refs[2]) }))

	// The node asks for a reset: the supervisor finds they agree at local-safe and resets it there.
	im.OnEvent(ctx, rollup.ResetEvent{Err: errors.New("derivation pipeline reset")})
	waitFor(t, "reset", rec.check(func(r *recorder) bool { return len(r.resets) == 1 }))
	got := rec.resets[0]
	want := toOpL2Ref(refs[2])
	for i, name := range []string{"local-unsafe", "cross-unsafe", "local-safe", "cross-safe", "finalized"} {
		if got[i] != want {
			t.Errorf("reset %s = %s, want %s", name, got[i], want)
		}
	}
}
