// Package node_test checks opkit's rollup node encodings against op-node's own code: the
// L1-attributes deposit of every block the sequencer builds on a real devnet, and the
// rollup.json opkit writes, as op-node's loader and Check() see it.
package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/devnet"
	opkitrollup "github.com/opkit/opkit/rollup"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// opNodeConfig decodes opkit's rollup.json with op-node's types, strictly.
func opNodeConfig(t *testing.T, cfg *opkitrollup.Config) *rollup.Config {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var theirs rollup.Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&theirs); err != nil {
		t.Fatalf("op-node cannot decode opkit's rollup.json: %v\n%s", err, data)
	}
	return &theirs
}

func TestRollupJSONPassesOpNodeCheck(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	_, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900})
	if err != nil {
		t.Fatal(err)
	}
	theirs := opNodeConfig(t, cfg)
	if err := theirs.Check(); err != nil {
		t.Fatalf("op-node's Check refuses opkit's rollup.json: %v", err)
	}
	tm := cfg.Genesis.L2Time
	if !theirs.IsIsthmus(tm) || !theirs.IsHolocene(tm) || theirs.IsJovian(tm) || theirs.IsIsthmusActivationBlock(tm+cfg.BlockTime) {
		t.Fatal("op-node sees another fork schedule")
	}
	if theirs.Genesis.L2.Hash != cfg.Genesis.L2.Hash || theirs.BlockTime != cfg.BlockTime || theirs.Genesis.SystemConfig.GasLimit != cfg.Genesis.SystemConfig.GasLimit {
		t.Fatalf("op-node decoded %+v", theirs.Genesis)
	}
	scalars, err := theirs.Genesis.SystemConfig.EcotoneScalars()
	base, blob, _ := cfg.Genesis.SystemConfig.Scalars()
	if err != nil || scalars.BaseFeeScalar != base || scalars.BlobBaseFeeScalar != blob {
		t.Fatalf("scalars %+v %v", scalars, err)
	}
	// And the other way: op-node's encoding of the same config parses in opkit.
	back, err := json.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := opkitrollup.ParseConfig(back)
	if err != nil {
		t.Fatalf("opkit refuses op-node's encoding: %v", err)
	}
	if mine.Genesis != cfg.Genesis {
		t.Fatal("genesis differs after the round trip through op-node")
	}
}

// TestSequencedDepositsMatchOpNode runs a devnet and rebuilds the L1-attributes deposit of
// every block with op-node's derive.L1InfoDeposit: the bytes must be identical, and
// op-node's decoder must read back the block's L1 origin.
func TestSequencedDepositsMatchOpNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	theirs := opNodeConfig(t, d.Rollup)
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	const blocks = 6
	deadline := time.Now().Add(90 * time.Second)
	for d.Node.Engine().UnsafeHead().Number < blocks {
		if time.Now().After(deadline) {
			t.Fatalf("only %d blocks sequenced", d.Node.Engine().UnsafeHead().Number)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sys := opeth.SystemConfig{
		BatcherAddr:       d.Rollup.Genesis.SystemConfig.BatcherAddr,
		Overhead:          opeth.Bytes32(d.Rollup.Genesis.SystemConfig.Overhead),
		Scalar:            opeth.Bytes32(d.Rollup.Genesis.SystemConfig.Scalar),
		GasLimit:          d.Rollup.Genesis.SystemConfig.GasLimit,
		OperatorFeeParams: opeth.Bytes32(d.Rollup.Genesis.SystemConfig.OperatorFeeParams),
	}
	for n := uint64(1); n <= blocks; n++ {
		block, err := l2.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		got := block.Transactions()[0]
		info, err := derive.L1BlockInfoFromBytes(theirs, block.Time(), got.Data())
		if err != nil {
			t.Fatalf("block %d: op-node cannot decode the deposit: %v", n, err)
		}
		origin := d.L1.Backend().BlockChain().GetHeaderByHash(info.BlockHash)
		if origin == nil || origin.Number.Uint64() != info.Number {
			t.Fatalf("block %d: op-node reads origin %d %s, not an L1 block", n, info.Number, info.BlockHash)
		}
		dep, err := derive.L1InfoDeposit(theirs, d.L1.ChainConfig(), sys, info.SequenceNumber, opeth.HeaderBlockInfo(origin), block.Time())
		if err != nil {
			t.Fatal(err)
		}
		want, err := types.NewTx(dep).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		have, err := got.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Fatalf("block %d: deposit differs from op-node's\n got %x\nwant %x", n, have, want)
		}
	}
}

// TestDepositEncoderAgainstOpNode compares the calldata encoders directly over varied
// inputs, including values at the edges of each field.
func TestDepositEncoderAgainstOpNode(t *testing.T) {
	zero := uint64(0)
	theirs := &rollup.Config{BlockTime: 2, RegolithTime: &zero, CanyonTime: &zero, DeltaTime: &zero, EcotoneTime: &zero,
		FjordTime: &zero, GraniteTime: &zero, HoloceneTime: &zero, IsthmusTime: &zero}
	excess := uint64(1 << 27) // a blob base fee near 4e11 wei
	for i, h := range []*types.Header{
		{Number: big.NewInt(1), Time: 10, BaseFee: big.NewInt(1), ExcessBlobGas: &zero},
		{Number: big.NewInt(1 << 40), Time: 1 << 40, BaseFee: new(big.Int).Lsh(big.NewInt(1), 200), ExcessBlobGas: &excess, MixDigest: common.Hash{7}},
	} {
		for _, seq := range []uint64{0, 1, 1 << 63} {
			sysMine := opkitrollup.SystemConfig{BatcherAddr: common.Address{byte(i + 1)}, Scalar: opkitrollup.EncodeScalars(uint32(seq), ^uint32(0)), GasLimit: 1}
			sysMine.OperatorFeeParams[20] = 0xff
			sysMine.OperatorFeeParams[31] = byte(seq)
			sysTheirs := opeth.SystemConfig{BatcherAddr: sysMine.BatcherAddr, Scalar: opeth.Bytes32(sysMine.Scalar), OperatorFeeParams: opeth.Bytes32(sysMine.OperatorFeeParams)}
			l1cfg := devnetL1Config(t)
			mine, err := opkitrollup.L1InfoDeposit(sysMine, seq, opkitrollup.L1Origin{Header: h, BlobBaseFee: opkitrollup.BlobBaseFee(l1cfg, h)})
			if err != nil {
				t.Fatal(err)
			}
			want, err := derive.L1InfoDeposit(theirs, l1cfg, sysTheirs, seq, opeth.HeaderBlockInfo(h), 100)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := types.NewTx(mine).MarshalBinary()
			b, _ := types.NewTx(want).MarshalBinary()
			if !bytes.Equal(a, b) {
				t.Fatalf("header %d seq %d: %x\nop-node: %x", i, seq, a, b)
			}
		}
	}
}

func devnetL1Config(t *testing.T) *params.ChainConfig {
	t.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	return l1.ChainConfig()
}
