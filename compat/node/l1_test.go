package node_test

import (
	"bytes"
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/node/runcfg"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum-optimism/optimism/op-service/client"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
)

func testLogger() log.Logger { return log.NewLogger(quiet().Handler()) }

// TestDevL1BlobsThroughOpNodeBeaconClient: blobs posted to the dev L1 come back through
// op-node's own beacon client (genesis, spec, slot arithmetic, blob matching), and decode
// to the data that was put in them.
func TestDevL1BlobsThroughOpNodeBeaconClient(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var payloads [][]byte
	var blobs []kzg4844.Blob
	for i := 0; i < 2; i++ {
		data := bytes.Repeat([]byte{byte(i + 1), 0x00, 0xff}, 1000*(i+1))
		var b opeth.Blob
		if err := b.FromData(data); err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, data)
		blobs = append(blobs, *b.KZGBlob())
	}
	// Two blocks with blobs and one without between them.
	r1, err := l1.SendBlobs(ctx, l1.Accounts()[3], common.Address{0xff}, blobs[:1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l1.Mine(); err != nil {
		t.Fatal(err)
	}
	r2, err := l1.SendBlobs(ctx, l1.Accounts()[3], common.Address{0xff}, blobs[1:])
	if err != nil {
		t.Fatal(err)
	}

	beacon := sources.NewL1BeaconClient(sources.NewBeaconHTTPClient(client.NewBasicHTTPClient(l1.BeaconURL(), testLogger())), sources.L1BeaconClientConfig{})
	if v, err := beacon.GetVersion(ctx); err != nil || v == "" {
		t.Fatalf("version %q, %v", v, err)
	}
	at := 0
	for _, r := range []*types.Receipt{r1, r2} {
		block := l1.Backend().BlockChain().GetBlockByHash(r.BlockHash)
		hashes := block.Transactions()[0].BlobHashes()
		got, err := beacon.GetBlobsByHash(ctx, block.Time(), hashes)
		if err != nil {
			t.Fatalf("op-node's beacon client: %v", err)
		}
		for i, b := range got {
			data, err := b.ToData()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, payloads[at+i]) {
				t.Fatalf("blob %d decodes to other data", at+i)
			}
		}
		at += len(got)
	}
	if at != 2 {
		t.Fatalf("%d blobs fetched", at)
	}
}

// TestDevL1SystemConfigThroughOpNode: op-node's runtime config loads the unsafe block
// signer with a verified storage proof (no trusted RPC), and op-node's ConfigUpdate
// processing applies every update type the stand-in emits.
func TestDevL1SystemConfigThroughOpNode(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900})
	if err != nil {
		t.Fatal(err)
	}
	theirs := opNodeConfig(t, cfg)

	rpcClient, err := rpc.DialContext(ctx, l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer rpcClient.Close()
	l1Client, err := sources.NewL1Client(client.NewBaseRPCClient(rpcClient), testLogger(), nil,
		sources.L1ClientDefaultConfig(theirs, false, sources.RPCKindStandard))
	if err != nil {
		t.Fatal(err)
	}
	runtime := runcfg.NewRuntimeConfig(testLogger(), l1Client, theirs)
	loadAt := func() {
		t.Helper()
		ref, err := l1Client.L1BlockRefByLabel(ctx, opeth.Unsafe)
		if err != nil {
			t.Fatal(err)
		}
		if err := runtime.Load(ctx, ref); err != nil {
			t.Fatalf("op-node's runtime config: %v", err)
		}
	}
	loadAt()
	if runtime.P2PSequencerAddress() != l1.Accounts()[0].Address {
		t.Fatalf("unsafe signer %s", runtime.P2PSequencerAddress())
	}

	sys := opeth.SystemConfig{BatcherAddr: cfg.Genesis.SystemConfig.BatcherAddr, GasLimit: cfg.Genesis.SystemConfig.GasLimit}
	newBatcher, newSigner := common.Address{0xba, 0x7c}, common.Address{0x51}
	var receipts []*types.Receipt
	for _, send := range []func() (*types.Receipt, error){
		func() (*types.Receipt, error) { return l1.SetBatcher(ctx, newBatcher) },
		func() (*types.Receipt, error) { return l1.SetGasConfigEcotone(ctx, 7, 1<<31+5) },
		func() (*types.Receipt, error) { return l1.SetGasLimit(ctx, 45_000_000) },
		func() (*types.Receipt, error) { return l1.SetUnsafeBlockSigner(ctx, newSigner) },
		func() (*types.Receipt, error) { return l1.SetEIP1559Params(ctx, 1<<31, 9) },
		func() (*types.Receipt, error) { return l1.SetOperatorFeeScalars(ctx, 0xfffffff0, 1<<63+1) },
		func() (*types.Receipt, error) { return l1.SetMinBaseFee(ctx, 1<<40) },
		func() (*types.Receipt, error) { return l1.SetDAFootprintGasScalar(ctx, 0xfffe) },
	} {
		r, err := send()
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, r)
	}
	// A malformed update (a batcher word with high bits set) is emitted, and op-node
	// rejects it without touching the config.
	bad := make([]byte, 32)
	bad[0] = 1
	r, err := l1.SendConfigUpdate(ctx, devnet.UpdateBatcher, devnet.ConfigUpdateData(bad))
	if err != nil {
		t.Fatal(err)
	}
	receipts = append(receipts, r)

	err = derive.UpdateSystemConfigWithL1Receipts(&sys, receipts, theirs, l1.Head().Time)
	if err == nil {
		t.Fatal("op-node accepted the malformed update")
	}
	if sys.BatcherAddr != newBatcher || sys.GasLimit != 45_000_000 || sys.MinBaseFee != 1<<40 || sys.DAFootprintGasScalar != 0xfffe {
		t.Fatalf("op-node applied %+v", sys)
	}
	scalars, err := sys.EcotoneScalars()
	if err != nil || scalars.BaseFeeScalar != 7 || scalars.BlobBaseFeeScalar != 1<<31+5 {
		t.Fatalf("scalars %+v %v", scalars, err)
	}
	if d, e := eip1559.DecodeHolocene1559Params(sys.EIP1559Params[:]); d != 1<<31 || e != 9 {
		t.Fatalf("eip1559 %d %d", d, e)
	}
	if s, c := sys.OperatorFee().Scalar, sys.OperatorFee().Constant; s != 0xfffffff0 || c != 1<<63+1 {
		t.Fatalf("operator fee %d %d", s, c)
	}
	loadAt()
	if runtime.P2PSequencerAddress() != newSigner {
		t.Fatalf("unsafe signer after the update %s", runtime.P2PSequencerAddress())
	}
}

// TestDevL1DepositsThroughOpNode: op-node's deposit log parser reads the portal
// stand-in's events as the deposits that were made.
func TestDevL1DepositsThroughOpNode(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	user := l1.Accounts()[7]
	r1, err := l1.BridgeETH(ctx, user, big.NewInt(3e18))
	if err != nil {
		t.Fatal(err)
	}
	call := devnet.Deposit{To: common.Address{0x42}, Mint: big.NewInt(11), Value: big.NewInt(10), GasLimit: 300_000, Data: []byte("hello L2")}
	r2, err := l1.SendDeposit(ctx, user, call)
	if err != nil {
		t.Fatal(err)
	}
	create := devnet.Deposit{IsCreation: true, GasLimit: 1_000_000, Data: bytes.Repeat([]byte{0x60}, 33)}
	r3, err := l1.SendDeposit(ctx, user, create)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := derive.UserDeposits([]*types.Receipt{r1, r2, r3}, devnet.DepositContractAddress)
	if err != nil {
		t.Fatalf("op-node: %v", err)
	}
	if len(deps) != 3 {
		t.Fatalf("%d deposits", len(deps))
	}
	check := func(i int, to *common.Address, mint, value *big.Int, gas uint64, data []byte) {
		t.Helper()
		d := deps[i]
		if d.Mint == nil { // op-node leaves a zero mint unset
			d.Mint = new(big.Int)
		}
		if d.From != user.Address || (to == nil) != (d.To == nil) || (to != nil && *to != *d.To) ||
			d.Mint.Cmp(mint) != 0 || d.Value.Cmp(value) != 0 || d.Gas != gas || d.IsSystemTransaction || !bytes.Equal(d.Data, data) {
			t.Fatalf("deposit %d: %+v", i, d)
		}
	}
	check(0, &user.Address, big.NewInt(3e18), big.NewInt(3e18), devnet.ReceiveDefaultGasLimit, nil)
	check(1, &call.To, call.Mint, call.Value, call.GasLimit, call.Data)
	check(2, nil, new(big.Int), new(big.Int), create.GasLimit, create.Data)
	// op-node's own encoder of the same deposit gives the stand-in's log, byte for byte.
	for i, r := range []*types.Receipt{r1, r2, r3} {
		if deps[i].Mint.Sign() == 0 {
			deps[i].Mint = nil
		}
		want, err := derive.MarshalDepositLogEvent(devnet.DepositContractAddress, deps[i])
		if err != nil {
			t.Fatal(err)
		}
		got := r.Logs[0]
		if !bytes.Equal(want.Data, got.Data) || len(want.Topics) != len(got.Topics) {
			t.Fatalf("deposit %d: log data %x, op-node encodes %x", i, got.Data, want.Data)
		}
		for j := range want.Topics {
			if want.Topics[j] != got.Topics[j] {
				t.Fatalf("deposit %d: topic %d %s, op-node %s", i, j, got.Topics[j], want.Topics[j])
			}
		}
	}
}
