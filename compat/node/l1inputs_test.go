package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/client"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	opkiteth "github.com/opkit/opkit/eth"
	opkitrollup "github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/l1"
)

// TestL1InputsFromDevL1MatchOpNode runs both sides over one real dev L1 whose SystemConfig
// and portal stand-ins emit ConfigUpdate and TransactionDeposited events, and whose
// batcher posts calldata and blobs: opkit reads it through rollup/l1 and rollup/dasource,
// op-node through its own L1 client, beacon client and data source. For every L1 block
// the deposits, the system config after its updates and the batcher data must be equal,
// and so must the attributes of an L2 chain that takes each L1 block as an origin in
// turn, with Jovian activating along the way.
func TestL1InputsFromDevL1MatchOpNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	chain, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	accts := chain.Accounts()
	user, batcher, newBatcher := accts[2], accts[3], accts[4]
	inbox := common.HexToAddress("0xff00000000000000000000000000000000000901")
	to := common.HexToAddress("0x5555555555555555555555555555555555555555")
	mustOK := func(_ *types.Receipt, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	blob := func(data []byte) kzg4844.Blob {
		var b batch.Blob
		if err := b.FromData(data); err != nil {
			t.Fatal(err)
		}
		return kzg4844.Blob(b)
	}
	bad := blob([]byte{0, 1})
	bad[1] = 1 // no such blob encoding version

	// Each call seals its own block.
	mustOK(chain.SendDeposit(ctx, user, devnet.Deposit{To: to, Mint: big.NewInt(1e15), Value: big.NewInt(5), GasLimit: 100_000, Data: []byte{1, 2, 3}}))
	mustOK(chain.Transact(ctx, batcher, &inbox, nil, []byte{0, 0xca, 0x11}))
	mustOK(chain.SetGasLimit(ctx, 45_000_000))
	mustOK(chain.SendBlobs(ctx, batcher, inbox, []kzg4844.Blob{blob([]byte{0, 0xb1}), bad, blob([]byte{0, 0xb2})}))
	mustOK(chain.SendDeposit(ctx, user, devnet.Deposit{IsCreation: true, GasLimit: 200_000, Data: bytes.Repeat([]byte{0x60}, 40)}))
	mustOK(chain.BridgeETH(ctx, user, big.NewInt(7)))
	mustOK(chain.SetEIP1559Params(ctx, 100, 4))
	mustOK(chain.SetMinBaseFee(ctx, 1_000_000))
	mustOK(chain.Transact(ctx, user, &inbox, nil, []byte{0, 0xde, 0xad})) // not the batcher
	mustOK(chain.SetDAFootprintGasScalar(ctx, 321))
	mustOK(chain.SetOperatorFeeScalars(ctx, 7, 9))
	mustOK(chain.SetGasConfigEcotone(ctx, 1000, 2000))
	mustOK(chain.SetBatcher(ctx, newBatcher.Address))
	mustOK(chain.Transact(ctx, newBatcher, &inbox, nil, []byte{0, 0x0e, 0x1f}))
	head := chain.Head().Number.Uint64()

	genesisL1 := chain.Backend().BlockChain().Genesis().Header()
	// L2 blocks 12 s apart stay ahead of the dev L1's real-time block timestamps.
	after := uint64(72) // Jovian from the sixth L2 block
	mine, _ := attrsConfigs(t, &after)
	mine.BlockTime = 12
	mine.Genesis.L1 = opkiteth.BlockID{Hash: genesisL1.Hash(), Number: 0}
	mine.Genesis.L2Time = genesisL1.Time
	j := mine.Genesis.L2Time + after
	mine.JovianTime = &j
	mine.Genesis.SystemConfig.BatcherAddr = batcher.Address
	mine.L1ChainID = chain.ChainConfig().ChainID
	if err := mine.Check(); err != nil {
		t.Fatal(err)
	}
	theirs := opNodeConfig(t, mine)

	// opkit's readers.
	src, err := l1.Dial(ctx, chain.HTTPEndpoint(), l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	data, err := dasource.New(dasource.Config{Rollup: mine, L1: src, Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: chain.BeaconURL()}), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// op-node's.
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
	beacon := sources.NewL1BeaconClient(sources.NewBeaconHTTPClient(client.NewBasicHTTPClient(chain.BeaconURL(), oplog)), sources.L1BeaconClientConfig{})
	factory := derive.NewDataSourceFactory(oplog, theirs, theirL1, beacon, nil)

	sysMine := mine.Genesis.SystemConfig
	sysTheirs := theirSys(t, sysMine)
	parent := opkiteth.L2BlockRef{Hash: mine.Genesis.L2.Hash, Time: mine.Genesis.L2Time, L1Origin: mine.Genesis.L1}
	var sawDeposits, sawBlobs, sawJovian int
	for n := uint64(1); n <= head; n++ {
		ref, err := src.L1BlockRefByNumber(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		// The data the batcher of this block (after its own updates) posted.
		_, receipts, err := src.FetchReceipts(ctx, ref.Hash)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := opkitrollup.ParseConfigUpdates(sysMine, receipts, mine.L1SystemConfigAddress, ref.Time, mine)
		got, err := data.TxData(ctx, ref, after.BatcherAddr)
		if err != nil {
			t.Fatalf("L1 block %d: %v", n, err)
		}
		iter, err := factory.OpenData(ctx, opeth.L1BlockRef{Hash: ref.Hash, Number: ref.Number, ParentHash: ref.ParentHash, Time: ref.Time}, after.BatcherAddr)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for {
			d, err := iter.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("L1 block %d: op-node data source: %v", n, err)
			}
			want = append(want, d)
		}
		if len(got) != len(want) {
			t.Fatalf("L1 block %d: %d data items, op-node %d", n, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("L1 block %d item %d: %x, op-node %x", n, i, got[i], want[i])
			}
		}
		if len(got) == 2 {
			sawBlobs++
		}

		// The next L2 block takes this L1 block as its origin.
		epoch := ref.ID()
		a, nextSys, err := mine.BuildAttributes(ctx, src, chain.ChainConfig(), sysMine, parent, epoch)
		if err != nil {
			t.Fatalf("L2 block %d: %v", n, err)
		}
		b, err := derive.NewFetchingAttributesBuilder(theirs, chain.ChainConfig(), nil, theirL1, fixedSys{sysTheirs}).
			PreparePayloadAttributes(ctx, opeth.L2BlockRef{
				Hash: parent.Hash, Number: parent.Number, Time: parent.Time, SequenceNumber: parent.SequenceNumber,
				L1Origin: opeth.BlockID{Hash: parent.L1Origin.Hash, Number: parent.L1Origin.Number},
			}, opeth.BlockID{Hash: epoch.Hash, Number: epoch.Number})
		if err != nil {
			t.Fatalf("L2 block %d: op-node: %v", n, err)
		}
		compareAttributes(t, n, a, b)
		_, theirReceipts, err := theirL1.FetchReceipts(ctx, epoch.Hash)
		if err != nil {
			t.Fatal(err)
		}
		_ = derive.UpdateSystemConfigWithL1Receipts(&sysTheirs, theirReceipts, theirs, ref.Time)
		if !sameSys(t, nextSys, sysTheirs) {
			t.Fatalf("L2 block %d: system config\n opkit   %+v\n op-node %+v", n, nextSys, sysTheirs)
		}
		upgrades := 0
		if mine.IsJovianActivationBlock(a.Timestamp) {
			upgrades = len(opkitrollup.JovianUpgradeTxs())
		}
		if len(a.Transactions) > 1+upgrades {
			sawDeposits++
		}
		if mine.IsJovian(a.Timestamp) {
			sawJovian++
		}
		parent = opkiteth.L2BlockRef{Hash: common.BigToHash(new(big.Int).SetUint64(n)), Number: n, Time: a.Timestamp, L1Origin: epoch}
		sysMine = nextSys
	}
	if sawDeposits < 3 || sawBlobs != 1 || sawJovian == 0 || sysMine.BatcherAddr != newBatcher.Address || sysMine.GasLimit != 45_000_000 || sysMine.DAFootprintGasScalar != 321 {
		t.Fatalf("the run did not cover its cases: deposits in %d blocks, blob blocks %d, Jovian blocks %d, final config %+v", sawDeposits, sawBlobs, sawJovian, sysMine)
	}
	if st := data.Stats(); st.BadBlobs != 1 {
		t.Fatalf("bad blobs counted: %+v", st)
	}
}
