package node_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// originNoticeSlack is how many chain seconds may pass between an L1 block's timestamp and
// the first L2 block that must adopt it as its origin: the L1 poll interval (1 chain second at
// 20x) plus scheduling delays of up to 350 ms of wall time.
const originNoticeSlack = 8

// TestSequencerOnOpGeth runs the sequencer against a real op-geth L2 and a real dev L1 and
// checks every block it produced the way a verifier would.
func TestSequencerOnOpGeth(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{}, 20)
	nodeRPC := dialNode(t, d.Node.RPCEndpoint())
	const target = 110
	waitUnsafe(t, nodeRPC, target, 90*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	l1, err := ethclient.DialContext(ctx, d.L1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()

	cfg := d.Rollup
	baseScalar, blobScalar, _ := cfg.Genesis.SystemConfig.Scalars()
	prev, err := l2.BlockByNumber(ctx, big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	prevOrigin := cfg.Genesis.L1
	var prevSeq uint64
	origins := map[uint64]bool{}
	for n := uint64(1); n <= target; n++ {
		block, err := l2.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if block.ParentHash() != prev.Hash() || block.Time() != prev.Time()+cfg.BlockTime {
			t.Fatalf("block %d: parent %s time %d, want parent %s time %d", n, block.ParentHash(), block.Time(), prev.Hash(), prev.Time()+cfg.BlockTime)
		}
		txs := block.Transactions()
		if len(txs) == 0 || txs[0].Type() != types.DepositTxType {
			t.Fatalf("block %d: first transaction is not a deposit", n)
		}
		dep := txs[0]
		if *dep.To() != common.HexToAddress("0x4200000000000000000000000000000000000015") || dep.Gas() != 1_000_000 || dep.Value().Sign() != 0 {
			t.Fatalf("block %d: deposit to %s gas %d value %v", n, dep.To(), dep.Gas(), dep.Value())
		}
		from, err := types.Sender(types.LatestSignerForChainID(cfg.L2ChainID), dep)
		if err != nil || from != common.HexToAddress("0xdeaddeaddeaddeaddeaddeaddeaddeaddead0001") {
			t.Fatalf("block %d: deposit from %s, %v", n, from, err)
		}
		rcpt, err := l2.TransactionReceipt(ctx, dep.Hash())
		if err != nil || rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("block %d: deposit receipt %v, %v", n, rcpt, err)
		}
		info, err := rollup.UnmarshalL1InfoIsthmus(dep.Data())
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		origin, err := l1.HeaderByNumber(ctx, new(big.Int).SetUint64(info.Number))
		if err != nil {
			t.Fatalf("block %d: L1 origin %d: %v", n, info.Number, err)
		}
		// The deposit describes its canonical L1 origin exactly.
		if origin.Hash() != info.BlockHash || origin.Time != info.Time || origin.BaseFee.Cmp(info.BaseFee) != 0 {
			t.Fatalf("block %d: deposit says origin %d %s time %d basefee %v; L1 has %s time %d basefee %v",
				n, info.Number, info.BlockHash, info.Time, info.BaseFee, origin.Hash(), origin.Time, origin.BaseFee)
		}
		if info.BatcherAddr != cfg.Genesis.SystemConfig.BatcherAddr || info.BaseFeeScalar != baseScalar || info.BlobBaseFeeScalar != blobScalar {
			t.Fatalf("block %d: system config fields %+v", n, info)
		}
		if info.BlobBaseFee.Cmp(rollup.BlobBaseFee(d.L1.ChainConfig(), origin)) != 0 {
			t.Fatalf("block %d: blob base fee %v", n, info.BlobBaseFee)
		}
		// Hand-built source hash: keccak(uint256(1) ‖ keccak(l1 hash ‖ uint256(seq))).
		seqWord := common.BigToHash(new(big.Int).SetUint64(info.SequenceNumber))
		inner := crypto.Keccak256(info.BlockHash[:], seqWord[:])
		want := crypto.Keccak256Hash(common.BigToHash(big.NewInt(1)).Bytes(), inner)
		if dep.SourceHash() != want {
			t.Fatalf("block %d: source hash %s, want %s", n, dep.SourceHash(), want)
		}
		// Origins advance by at most one block, epochs restart the sequence number, and
		// the drift rule holds: origin.time <= l2 time <= origin.time + max drift.
		switch info.Number {
		case prevOrigin.Number:
			if info.BlockHash != prevOrigin.Hash || info.SequenceNumber != prevSeq+1 {
				t.Fatalf("block %d: same origin but seq %d after %d", n, info.SequenceNumber, prevSeq)
			}
		case prevOrigin.Number + 1:
			if origin.ParentHash != prevOrigin.Hash || info.SequenceNumber != 0 {
				t.Fatalf("block %d: new origin does not extend the previous one or seq %d", n, info.SequenceNumber)
			}
		default:
			t.Fatalf("block %d: origin jumped from %d to %d", n, prevOrigin.Number, info.Number)
		}
		if block.Time() < origin.Time || block.Time() > origin.Time+cfg.MaxSequencerDriftAt(origin.Time) {
			t.Fatalf("block %d at %d breaks the drift rule for origin at %d", n, block.Time(), origin.Time)
		}
		// Next-origin timing: a block keeps its origin only while the next L1 block is
		// later than it (confirmation depth 0 in this devnet), or too recent for the node
		// to have seen it: the node learns of L1 blocks by polling, and on a loaded machine
		// polls and seals run late by a few chain seconds at 20x speed.
		if next, err := l1.HeaderByNumber(ctx, new(big.Int).SetUint64(info.Number+1)); err == nil && next.Time+originNoticeSlack <= block.Time() {
			t.Fatalf("block %d at %d kept origin %d although L1 block %d at %d was due", n, block.Time(), info.Number, next.Number, next.Time)
		}
		origins[info.Number] = true
		prevOrigin, prevSeq, prev = eth.BlockID{Hash: info.BlockHash, Number: info.Number}, info.SequenceNumber, block
	}
	if len(origins) < 20 {
		t.Fatalf("only %d distinct L1 origins over %d blocks", len(origins), target)
	}

	// optimism_outputAtBlock matches an output root computed here from the header and
	// eth_getProof of the L2ToL1MessagePasser.
	for _, n := range []uint64{0, 1, 57, 100} {
		var out eth.OutputResponse
		if err := nodeRPC.CallContext(ctx, &out, "optimism_outputAtBlock", hexutil.Uint64(n)); err != nil {
			t.Fatalf("optimism_outputAtBlock(%d): %v", n, err)
		}
		header, err := l2.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		var proof struct {
			StorageHash common.Hash `json:"storageHash"`
		}
		if err := l2.Client().CallContext(ctx, &proof, "eth_getProof", rollup.L2ToL1MessagePasser, []string{}, hexutil.EncodeUint64(n)); err != nil {
			t.Fatal(err)
		}
		preimage := make([]byte, 0, 128)
		preimage = append(preimage, make([]byte, 32)...)
		preimage = append(preimage, header.Root[:]...)
		preimage = append(preimage, proof.StorageHash[:]...)
		hash := header.Hash()
		preimage = append(preimage, hash[:]...)
		if want := crypto.Keccak256Hash(preimage); out.OutputRoot != want {
			t.Fatalf("block %d: output root %s, want %s", n, out.OutputRoot, want)
		}
		if out.BlockRef.Hash != hash || out.StateRoot != header.Root || out.WithdrawalStorageRoot != proof.StorageHash || out.Status == nil || out.Status.UnsafeL2.Number < n {
			t.Fatalf("block %d: response %+v", n, out)
		}
	}
	var out eth.OutputResponse
	if err := nodeRPC.CallContext(ctx, &out, "optimism_outputAtBlock", hexutil.Uint64(1<<40)); err == nil {
		t.Fatal("output above the unsafe head was answered")
	}
}
