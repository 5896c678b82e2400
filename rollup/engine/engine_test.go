package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	enginepkg "github.com/opkit/opkit/rollup/engine"
)

type rig struct {
	l1     *devnet.L1
	l2     *devnet.L2
	cfg    *rollup.Config
	eng    *enginepkg.Engine
	origin *types.Header
	ctx    context.Context
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func newRig(t testing.TB) *rig {
	t.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	origin := l1.Backend().BlockChain().Genesis().Header()
	g, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: origin, L1ChainID: 900, BlockTime: 2})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c, err := enginepkg.Dial(ctx, l2.EngineEndpoint(), l2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	eng := enginepkg.New(cfg, c, quietLog())
	if err := eng.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return &rig{l1: l1, l2: l2, cfg: cfg, eng: eng, origin: origin, ctx: ctx}
}

func (r *rig) attrs(t testing.TB, parent eth.L2BlockRef, txs [][]byte) *engine.PayloadAttributes {
	t.Helper()
	a, err := r.cfg.PayloadAttributes(r.l1.ChainConfig(), r.cfg.Genesis.SystemConfig, parent, r.origin, txs, true)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (r *rig) build(t testing.TB, txs [][]byte) (*engine.ExecutionPayloadEnvelope, eth.L2BlockRef) {
	t.Helper()
	parent := r.eng.UnsafeHead()
	id, err := r.eng.StartBuilding(r.ctx, parent, r.attrs(t, parent, txs))
	if err != nil {
		t.Fatal(err)
	}
	env, ref, err := r.eng.SealBuilding(r.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return env, ref
}

func TestBuildSealInsert(t *testing.T) {
	r := newRig(t)
	genesis := r.eng.UnsafeHead()
	if genesis.Number != 0 || genesis.Hash != r.cfg.Genesis.L2.Hash || genesis.L1Origin != r.cfg.Genesis.L1 {
		t.Fatalf("initial head %+v", genesis)
	}
	var last eth.L2BlockRef
	for i := 1; i <= 3; i++ {
		_, ref := r.build(t, nil)
		if ref.Number != uint64(i) || ref.SequenceNumber != uint64(i) || ref.L1Origin.Hash != r.origin.Hash() {
			t.Fatalf("block %d: %+v", i, ref)
		}
		last = ref
	}
	if r.eng.UnsafeHead() != last {
		t.Fatal("unsafe head not advanced")
	}
	got, err := r.eng.BlockRefByNumber(r.ctx, 3)
	if err != nil || got != last {
		t.Fatalf("block 3 from the engine %+v, %v; sealed %+v", got, err, last)
	}
	head := r.l2.Backend().BlockChain().CurrentBlock()
	if head.Hash() != last.Hash {
		t.Fatalf("op-geth head %s, want %s", head.Hash(), last.Hash)
	}
	// Isthmus: the header commits to the message passer's storage root.
	root, err := r.eng.Client().StorageRoot(r.ctx, rollup.L2ToL1MessagePasser, head.Hash())
	if err != nil || head.WithdrawalsHash == nil || *head.WithdrawalsHash != root {
		t.Fatalf("withdrawals root %v, storage root %s, %v", head.WithdrawalsHash, root, err)
	}
	// Safe and finalized are recorded and survive a fresh Init.
	if err := r.eng.SetSafeAndFinalized(r.ctx, got, genesis); err != nil {
		t.Fatal(err)
	}
	again := enginepkg.New(r.cfg, r.eng.Client(), quietLog())
	if err := again.Init(r.ctx); err != nil {
		t.Fatal(err)
	}
	if u, s, f := again.Heads(); u != last || s != last || f != genesis {
		t.Fatalf("restored heads %d %d %d", u.Number, s.Number, f.Number)
	}
	// Rewinding the unsafe head (an L2 reorg) works down to safe and not below it.
	if err := r.eng.SetUnsafeHead(r.ctx, genesis); !errors.Is(err, enginepkg.ErrInvalid) {
		t.Fatalf("rewind below safe: %v", err)
	}
}

func TestRewindUnsafeHead(t *testing.T) {
	r := newRig(t)
	_, one := r.build(t, nil)
	_, two := r.build(t, nil)
	if err := r.eng.SetUnsafeHead(r.ctx, one); err != nil {
		t.Fatal(err)
	}
	if r.eng.UnsafeHead() != one {
		t.Fatal("unsafe head not rewound")
	}
	// A different block 2 now builds on block 1.
	parent := r.eng.UnsafeHead()
	a := r.attrs(t, parent, nil)
	a.Timestamp += 2 // later than the first block 2: a different block
	id, err := r.eng.StartBuilding(r.ctx, parent, a)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := r.eng.SealBuilding(r.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if other.Number != 2 || other.Hash == two.Hash {
		t.Fatalf("rebuilt block %+v, old %s", other, two.Hash)
	}
	// op-geth reorged onto the new block 2 (OP engines allow a proposer to reorg its own
	// chain: the old block 2 stops being canonical once the new one is chosen).
	if h := r.l2.Backend().BlockChain().CurrentBlock(); h.Hash() != other.Hash {
		t.Fatalf("op-geth head %d %s, want the new block 2", h.Number, h.Hash())
	}
	if got, err := r.eng.BlockRefByNumber(r.ctx, 2); err != nil || got.Hash != other.Hash {
		t.Fatalf("canonical block 2 %s, %v", got.Hash, err)
	}
}

func TestEngineErrorClasses(t *testing.T) {
	r := newRig(t)
	env, _ := r.build(t, nil)

	// A payload whose hash does not match its contents is INVALID_BLOCK_HASH.
	bad := *env.ExecutionPayload
	bad.BlockHash = common.Hash{0xde, 0xad}
	if err := r.eng.Client().NewPayload(r.ctx, &bad, *env.ParentBeaconBlockRoot); !errors.Is(err, enginepkg.ErrInvalid) {
		t.Fatalf("tampered hash: %v", err)
	}
	// A consistent payload on an unknown parent makes the engine sync: SYNCING/ACCEPTED.
	orphan := *env.ExecutionPayload
	orphan.ParentHash = common.Hash{0x42}
	orphan.Number += 10
	block, err := engine.ExecutableDataToBlockNoHash(orphan, nil, env.ParentBeaconBlockRoot, [][]byte{}, types.DefaultBlockConfig)
	if err != nil {
		t.Fatal(err)
	}
	orphan.BlockHash = block.Hash()
	if err := r.eng.Client().NewPayload(r.ctx, &orphan, *env.ParentBeaconBlockRoot); !errors.Is(err, enginepkg.ErrSyncing) {
		t.Fatalf("unknown parent: %v", err)
	}
	// The engine refuses to insert an unsafe payload that does not extend the head.
	if _, err := r.eng.InsertUnsafePayload(r.ctx, &engine.ExecutionPayloadEnvelope{ExecutionPayload: &orphan, ParentBeaconBlockRoot: env.ParentBeaconBlockRoot}); !errors.Is(err, enginepkg.ErrNotNext) {
		t.Fatalf("non-extending payload: %v", err)
	}
	// Attributes with a timestamp not after the parent are invalid attributes (-38003).
	parent := r.eng.UnsafeHead()
	a := r.attrs(t, parent, nil)
	a.Timestamp = parent.Time
	if _, err := r.eng.StartBuilding(r.ctx, parent, a); !errors.Is(err, enginepkg.ErrInvalid) {
		t.Fatalf("stale timestamp: %v", err)
	}
	// A payload ID the engine never issued: temporary (the block can be rebuilt). The
	// first byte is the payload version the ID was issued for (V3 for getPayloadV4).
	if _, err := r.eng.Client().GetPayload(r.ctx, engine.PayloadID{byte(engine.PayloadV3), 2, 3}); !errors.Is(err, enginepkg.ErrTemporary) {
		t.Fatalf("unknown payload: %v", err)
	}
	// An ID of another payload version is an unsupported fork (-38005): no retry helps.
	if _, err := r.eng.Client().GetPayload(r.ctx, engine.PayloadID{1, 2, 3}); !errors.Is(err, enginepkg.ErrUnsupported) {
		t.Fatalf("payload ID of another version: %v", err)
	}
	// A wrong JWT secret is refused before any method runs.
	wrong, err := enginepkg.Dial(r.ctx, r.l2.EngineEndpoint(), [32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, err := wrong.Eth.BlockNumber(r.ctx); err == nil {
		t.Fatal("a wrong JWT secret was accepted")
	}
	// With the engine gone, every call is temporary.
	r.l2.Close()
	if _, err := r.eng.StartBuilding(r.ctx, parent, r.attrs(t, parent, nil)); !errors.Is(err, enginepkg.ErrTemporary) {
		t.Fatalf("engine down: %v", err)
	}
}

func TestInsertUnsafePayloadFromAnotherEngine(t *testing.T) {
	// Two execution clients on the same genesis: blocks built on one are inserted into
	// the other as unsafe payloads, as a follower node does with gossip.
	r := newRig(t)
	origin := r.origin
	g, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: origin, L1ChainID: 900, BlockTime: 2})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Genesis.L2 != r.cfg.Genesis.L2 {
		t.Fatal("PlanL2 is not deterministic")
	}
	follower, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	fc, err := enginepkg.Dial(r.ctx, follower.EngineEndpoint(), follower.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	feng := enginepkg.New(cfg, fc, quietLog())
	if err := feng.Init(r.ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		env, ref := r.build(t, nil)
		got, err := feng.InsertUnsafePayload(r.ctx, env)
		if err != nil || got != ref {
			t.Fatalf("insert %d: %+v %v", ref.Number, got, err)
		}
	}
	if follower.Backend().BlockChain().CurrentBlock().Hash() != r.eng.UnsafeHead().Hash {
		t.Fatal("follower did not reach the same head")
	}
}
