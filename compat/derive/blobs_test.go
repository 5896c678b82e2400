package derive

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"reflect"
	"testing"
	"time"

	opaltda "github.com/ethereum-optimism/optimism/op-alt-da"
	opmetrics "github.com/ethereum-optimism/optimism/op-node/metrics"
	opderive "github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opclient "github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	gethlog "github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/derive/derivetest"
	"github.com/opkit/opkit/rollup/engine"
	rollupl1 "github.com/opkit/opkit/rollup/l1"
)

// TestDeriveBlobs posts a real sequencer's chain to the dev L1 in blobs (one frame per
// blob, as op-batcher does) and derives it through rollup/dasource, which fetches the
// blobs from the dev L1's beacon API: every attributes must be the sequencer's block,
// and the attributes op-node's own pipeline derives from the same L1, beacon and L2
// (its RPC L1 client and beacon client). It runs here because the main module's race
// detector makes KZG cell proofs take minutes.
func TestDeriveBlobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := devnet.Start(ctx, devnet.Config{
		L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true, L1PollInterval: 50 * time.Millisecond,
		Clock: clock.Scaled(time.Now(), 4), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	})
	cfg := d.Rollup
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	accts := devnet.DevAccounts(3)
	signer := types.LatestSignerForChainID(cfg.L2ChainID)
	for i := 0; i < 4; i++ {
		tx := types.MustSignNewTx(accts[2].Key, signer, &types.DynamicFeeTx{ChainID: cfg.L2ChainID, Nonce: uint64(i),
			GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e10), Gas: 21_000, To: &common.Address{0xee}, Value: big.NewInt(1)})
		if err := l2.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	var blocks []*types.Block
	deadline := time.Now().Add(time.Minute)
	for len(blocks) < 12 {
		if time.Now().After(deadline) {
			t.Fatalf("%d L2 blocks by the deadline", len(blocks))
		}
		b, err := l2.BlockByNumber(ctx, big.NewInt(int64(len(blocks)+1)))
		if err == nil {
			blocks = append(blocks, b)
			continue
		}
		time.Sleep(20 * time.Millisecond) // the sequencer makes a block every 250 ms
	}
	frames, err := derivetest.SpanFrames(cfg, blocks, 2)
	if err != nil {
		t.Fatal(err)
	}
	var blobs []kzg4844.Blob
	for _, f := range frames {
		data, err := batch.TxData(f)
		if err != nil {
			t.Fatal(err)
		}
		var b batch.Blob
		if err := b.FromData(data); err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, kzg4844.Blob(b))
	}
	// A valid KZG blob that does not decode (encoding version 5), between the two good
	// ones: skipped by the source.
	var bad kzg4844.Blob
	bad[1] = 5
	blobs = append(blobs[:1], bad, blobs[1])
	r, err := d.L1.SendBlobs(ctx, accts[1], cfg.BatchInboxAddress, blobs)
	if err != nil {
		t.Fatal(err)
	}
	l1src, err := rollupl1.Dial(ctx, d.L1.HTTPEndpoint(), rollupl1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l1src.Close()
	inclusion, err := l1src.L1BlockRefByHash(ctx, r.BlockHash)
	if err != nil {
		t.Fatal(err)
	}
	m := &derivetest.Metrics{}
	src, err := dasource.New(dasource.Config{Rollup: cfg, L1: l1src, Log: log, Metrics: m,
		Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: d.L1.BeaconURL()})})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := engine.Dial(ctx, d.L2.EngineEndpoint(), d.L2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	l2src := engine.New(cfg, ec, log)
	dv := derive.New(cfg, d.L1.ChainConfig(), derive.Deps{L1: l1src, Data: src, L2: l2src, Log: log, Metrics: m})
	safe, err := l2src.L2BlockRefByNumber(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dv.Reset(ctx, safe); err != nil {
		t.Fatal(err)
	}
	oplog := gethlog.NewLogger(gethlog.DiscardHandler())
	rpcClient, err := rpc.DialContext(ctx, d.L1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer rpcClient.Close()
	theirL1, err := sources.NewL1Client(opclient.NewBaseRPCClient(rpcClient), oplog, nil, sources.L1ClientSimpleConfig(true, sources.RPCKindStandard, 100))
	if err != nil {
		t.Fatal(err)
	}
	beacon := sources.NewL1BeaconClient(sources.NewBeaconHTTPClient(opclient.NewBasicHTTPClient(d.L1.BeaconURL(), oplog)), sources.L1BeaconClientConfig{})
	theirs := opderive.NewDerivationPipeline(oplog, opnodeConfig(t, cfg), nil, theirL1, beacon, opaltda.Disabled, opnodeL2{l2src},
		opmetrics.NoopMetrics, false, d.L1.ChainConfig())
	theirs.Reset()
	theirs.ConfirmEngineReset()
	opnodeNext := func(safe eth.L2BlockRef) derived {
		for {
			if time.Now().After(deadline) {
				t.Fatalf("op-node derived nothing after %d by the deadline", safe.Number)
			}
			a, err := theirs.Step(ctx, toOp(safe))
			if errors.Is(err, io.EOF) {
				time.Sleep(20 * time.Millisecond)
				continue
			} else if errors.Is(err, opderive.NotEnoughData) || (err == nil && a == nil) {
				continue
			} else if err != nil {
				t.Fatalf("op-node after %d: %v", safe.Number, err)
			}
			return fromOpnode(a)
		}
	}
	for safe.Number < uint64(len(blocks)) {
		if time.Now().After(deadline) {
			t.Fatalf("derived up to %d of %d, origin %v", safe.Number, len(blocks), dv.Origin().ID())
		}
		a, err := dv.NextAttributes(ctx, safe)
		if errors.Is(err, derive.ErrNotEnoughData) {
			continue
		} else if errors.Is(err, io.EOF) {
			time.Sleep(20 * time.Millisecond) // L1 seals a block every second
			continue
		} else if err != nil {
			t.Fatalf("derive after %d: %v", safe.Number, err)
		}
		want := blocks[safe.Number]
		if err := derivetest.SameBlock(a.Payload, a.Parent.Hash, want); err != nil {
			t.Fatalf("block %d: %v", want.NumberU64(), err)
		}
		if mine, theirs := fromOpkit(a), opnodeNext(safe); !reflect.DeepEqual(mine, theirs) {
			t.Fatalf("block %d: opkit %+v, op-node %+v", want.NumberU64(), mine, theirs)
		}
		if a.DerivedFrom != inclusion {
			t.Fatalf("block %d derived from %v, want the blob transaction's block %v", want.NumberU64(), a.DerivedFrom.ID(), inclusion.ID())
		}
		if safe, err = cfg.L2BlockRef(want); err != nil {
			t.Fatal(err)
		}
	}
	if m.Count("data/"+dasource.DropBadBlob) != 1 || m.Count("batch/span/accept") != 1 {
		t.Fatalf("counts %v", m.Counts())
	}
}
