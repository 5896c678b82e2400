package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	altda "github.com/ethereum-optimism/optimism/op-alt-da"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/client"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	opkitaltda "github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/devnet"
	opkiteth "github.com/opkit/opkit/eth"
	opkitrollup "github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/dasource"
	opkitderive "github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/l1"
)

// TestAltDASourceMatchesOpNode reads AltDA commitments posted on a real dev L1 with
// opkit's data source and with op-node's (its AltDA data source and DA manager with
// op-alt-da's client), both fetching from one opkit DA server: the same inputs come out,
// the same items are skipped, and an input the server lacks makes both wait while the
// challenge window runs and stop once L1 is past it.
func TestAltDASourceMatchesOpNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chain, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", Primary: store.NewMemory(), MaxInputBytes: 200_000, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	put, err := opkitaltda.NewClient(opkitaltda.ClientConfig{URL: srv.URL(), VerifyGets: true})
	if err != nil {
		t.Fatal(err)
	}
	batcher := chain.Accounts()[3]
	inbox := common.HexToAddress("0xff00000000000000000000000000000000000901")
	post := func(data []byte) {
		t.Helper()
		if _, err := chain.Transact(ctx, batcher, &inbox, nil, data); err != nil {
			t.Fatal(err)
		}
	}
	input := append([]byte{0}, bytes.Repeat([]byte{0xab}, 300)...)
	comm, err := put.Put(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	huge, err := put.Put(ctx, append([]byte{0}, bytes.Repeat([]byte{0xcd}, dasource.MaxAltDAInputSize)...))
	if err != nil {
		t.Fatal(err)
	}
	post(comm.TxData())
	post([]byte{0, 1, 2, 3})                                    // frames posted directly
	post([]byte{1, 0, 9})                                       // not a commitment
	post(opkitaltda.ContentAddressedGeneric(0, input).TxData()) // generic on a keccak chain
	post(huge.TxData())                                         // over the keccak input limit
	post(opkitaltda.Keccak256Commitment([]byte("never stored")).TxData())
	missingAt := chain.Head().Number.Uint64()

	after := uint64(0)
	mine, _ := attrsConfigs(t, &after)
	mine.L1ChainID = chain.ChainConfig().ChainID
	mine.AltDAConfig = &opkitrollup.AltDAConfig{DAChallengeAddress: common.HexToAddress("0x00000000000000000000000000000000000dac00"),
		CommitmentType: opkitrollup.KeccakCommitment, DAChallengeWindow: 3, DAResolveWindow: 3}
	if err := mine.Check(); err != nil {
		t.Fatal(err)
	}
	theirs := opNodeConfig(t, mine)

	src, err := l1.Dial(ctx, chain.HTTPEndpoint(), l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	getter, err := opkitaltda.NewClient(opkitaltda.ClientConfig{URL: srv.URL(), VerifyGets: true})
	if err != nil {
		t.Fatal(err)
	}
	data, err := dasource.New(dasource.Config{Rollup: mine, L1: src, AltDA: getter, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}

	oplog := log.NewLogger(log.DiscardHandler())
	rpcClient, err := rpc.DialContext(ctx, chain.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer rpcClient.Close()
	theirL1, err := sources.NewL1Client(client.NewBaseRPCClient(rpcClient), oplog, nil, sources.L1ClientSimpleConfig(true, sources.RPCKindStandard, 100))
	if err != nil {
		t.Fatal(err)
	}
	daCfg, err := theirs.GetOPAltDAConfig()
	if err != nil {
		t.Fatal(err)
	}
	da := altda.NewAltDA(oplog, altda.CLIConfig{Enabled: true, DAServerURL: srv.URL(), VerifyOnRead: true, PutTimeout: 5 * time.Second, GetTimeout: 5 * time.Second}, daCfg, &altda.NoopMetrics{})
	beacon := sources.NewL1BeaconClient(sources.NewBeaconHTTPClient(client.NewBasicHTTPClient(chain.BeaconURL(), oplog)), sources.L1BeaconClientConfig{})
	factory := derive.NewDataSourceFactory(oplog, theirs, theirL1, beacon, da)

	// theirNext drains op-node's source for one block: the items, and the error it ends
	// with (nil at io.EOF). A skip shows as NotEnoughData, after which it carries on.
	theirItems := func(ref opkiteth.L1BlockRef, maxPending int) ([][]byte, error) {
		iter, err := factory.OpenData(ctx, opeth.L1BlockRef{Hash: ref.Hash, Number: ref.Number, ParentHash: ref.ParentHash, Time: ref.Time}, batcher.Address)
		if err != nil {
			return nil, err
		}
		var out [][]byte
		pending := 0
		for {
			d, err := iter.Next(ctx)
			switch {
			case errors.Is(err, io.EOF):
				return out, nil
			case errors.Is(err, derive.NotEnoughData):
				if pending++; pending > maxPending {
					return out, err
				}
				continue
			case err != nil:
				return out, err
			}
			out = append(out, d)
		}
	}

	// The blocks with present or skipped data agree item for item.
	var mineAll, theirsAll [][]byte
	for n := uint64(1); n < missingAt; n++ {
		ref, err := src.L1BlockRefByNumber(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := data.TxData(ctx, ref, batcher.Address)
		if err != nil {
			t.Fatalf("L1 block %d: %v", n, err)
		}
		want, err := theirItems(ref, 10)
		if err != nil {
			t.Fatalf("L1 block %d: op-node: %v", n, err)
		}
		mineAll, theirsAll = append(mineAll, got...), append(theirsAll, want...)
	}
	if len(mineAll) != 2 || len(theirsAll) != len(mineAll) || !bytes.Equal(mineAll[0], input) {
		t.Fatalf("opkit read %d items, op-node %d", len(mineAll), len(theirsAll))
	}
	for i := range mineAll {
		if !bytes.Equal(mineAll[i], theirsAll[i]) {
			t.Fatalf("item %d: %x, op-node %x", i, mineAll[i], theirsAll[i])
		}
	}

	// The missing input: both wait while L1 has no block past the window...
	ref, err := src.L1BlockRefByNumber(ctx, missingAt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := theirItems(ref, 10); errors.Is(err, derive.ErrCritical) || err == nil {
		t.Fatalf("op-node, input missing inside the window: %v", err)
	}
	if _, err := data.TxData(ctx, ref, batcher.Address); !errors.Is(err, opkitderive.ErrTemporary) {
		t.Fatalf("opkit, input missing inside the window: %v", err)
	}
	// ...and both stop once it has one.
	for chain.Head().Number.Uint64() <= missingAt+mine.AltDAConfig.DAChallengeWindow {
		if _, err := chain.Mine(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := data.TxData(ctx, ref, batcher.Address); !errors.Is(err, opkitderive.ErrCritical) || !errors.Is(err, dasource.ErrMissingPastWindow) {
		t.Fatalf("opkit, input missing past the window: %v", err)
	}
	if _, err := theirItems(ref, 10); !errors.Is(err, derive.ErrCritical) || !errors.Is(err, altda.ErrMissingPastWindow) {
		t.Fatalf("op-node, input missing past the window: %v", err)
	}
}
