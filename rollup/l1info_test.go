package rollup

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

func sampleInfo() *L1BlockInfo {
	return &L1BlockInfo{
		Number: 0x1122, Time: 0x6000_0000, BaseFee: big.NewInt(7_000_000_000),
		BlockHash:      common.HexToHash("0xabababababababababababababababababababababababababababababababab"),
		SequenceNumber: 3, BatcherAddr: common.HexToAddress("0x1111111111111111111111111111111111111111"),
		BlobBaseFee: big.NewInt(1), BaseFeeScalar: 1368, BlobBaseFeeScalar: 810949,
		OperatorFeeScalar: 0x01020304, OperatorFeeConstant: 0x0506070809101112,
	}
}

// TestL1InfoIsthmusLayout checks every field's offset against the layout written out by
// hand from the OP Stack specification.
func TestL1InfoIsthmusLayout(t *testing.T) {
	data, err := sampleInfo().MarshalIsthmus()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 176 {
		t.Fatalf("%d bytes, want 176", len(data))
	}
	want := "" +
		hex.EncodeToString(crypto.Keccak256([]byte("setL1BlockValuesIsthmus()"))[:4]) +
		"00000558" + "000c5fc5" + // base fee scalar 1368, blob base fee scalar 810949
		"0000000000000003" + "0000000060000000" + "0000000000001122" + // seq, time, number
		"00000000000000000000000000000000000000000000000000000001a13b8600" + // base fee 7 gwei
		"0000000000000000000000000000000000000000000000000000000000000001" + // blob base fee
		"abababababababababababababababababababababababababababababababab" +
		"0000000000000000000000001111111111111111111111111111111111111111" +
		"01020304" + "0506070809101112"
	if got := hex.EncodeToString(data); got != want {
		t.Fatalf("calldata\n got %s\nwant %s", got, want)
	}
	if hex.EncodeToString(data[:4]) != "098999be" {
		t.Fatalf("selector %x", data[:4])
	}
	back, err := UnmarshalL1InfoIsthmus(data)
	if err != nil {
		t.Fatal(err)
	}
	orig := sampleInfo()
	if back.Number != orig.Number || back.Time != orig.Time || back.BaseFee.Cmp(orig.BaseFee) != 0 || back.BlockHash != orig.BlockHash ||
		back.SequenceNumber != orig.SequenceNumber || back.BatcherAddr != orig.BatcherAddr || back.BlobBaseFee.Cmp(orig.BlobBaseFee) != 0 ||
		back.BaseFeeScalar != orig.BaseFeeScalar || back.BlobBaseFeeScalar != orig.BlobBaseFeeScalar ||
		back.OperatorFeeScalar != orig.OperatorFeeScalar || back.OperatorFeeConstant != orig.OperatorFeeConstant {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestL1InfoRejects(t *testing.T) {
	data, _ := sampleInfo().MarshalIsthmus()
	cases := map[string][]byte{
		"short":           data[:100],
		"long":            append(append([]byte{}, data...), 0),
		"wrong selector":  append([]byte{1, 2, 3, 4}, data[4:]...),
		"batcher padding": func() []byte { d := append([]byte{}, data...); d[4+128] = 1; return d }(),
	}
	for name, in := range cases {
		if _, err := UnmarshalL1InfoIsthmus(in); !errors.Is(err, ErrInvalidL1Info) {
			t.Errorf("%s: %v", name, err)
		}
	}
	neg := sampleInfo()
	neg.BaseFee = big.NewInt(-1)
	if _, err := neg.MarshalIsthmus(); err == nil {
		t.Error("negative base fee encoded")
	}
}

func TestL1InfoDepositFields(t *testing.T) {
	h := &types.Header{Number: big.NewInt(77), Time: 1234, BaseFee: big.NewInt(9), ParentHash: common.Hash{1}}
	sys := SystemConfig{BatcherAddr: common.Address{9}, Scalar: EncodeScalars(10, 20), GasLimit: 30_000_000}
	sys.OperatorFeeParams[23] = 5
	sys.OperatorFeeParams[31] = 6
	dep, err := L1InfoDeposit(sys, 2, L1Origin{Header: h, BlobBaseFee: big.NewInt(3)})
	if err != nil {
		t.Fatal(err)
	}
	if dep.From != L1InfoDepositor || *dep.To != L1BlockAddress || dep.Gas != 1_000_000 || dep.IsSystemTransaction || dep.Mint != nil || dep.Value.Sign() != 0 {
		t.Fatalf("deposit fields %+v", dep)
	}
	// Source hash from its definition, built independently.
	var seqWord [32]byte
	seqWord[31] = 2
	inner := crypto.Keccak256(h.Hash().Bytes(), seqWord[:])
	var domain [32]byte
	domain[31] = 1
	if want := crypto.Keccak256Hash(domain[:], inner); dep.SourceHash != want {
		t.Fatalf("source hash %s, want %s", dep.SourceHash, want)
	}
	info, err := L1InfoFromBlockTx(types.NewTx(dep))
	if err != nil {
		t.Fatal(err)
	}
	if info.BaseFeeScalar != 10 || info.BlobBaseFeeScalar != 20 || info.OperatorFeeScalar != 5 || info.OperatorFeeConstant != 6 ||
		info.BlobBaseFee.Int64() != 3 || info.Number != 77 || info.SequenceNumber != 2 || info.BlockHash != h.Hash() {
		t.Fatalf("decoded %+v", info)
	}
	if _, err := L1InfoFromBlockTx(types.NewTx(&types.LegacyTx{To: &L1BlockAddress})); !errors.Is(err, ErrInvalidL1Info) {
		t.Fatalf("a legacy tx was read as L1 info: %v", err)
	}
}

func TestScalars(t *testing.T) {
	var v0 common.Hash
	v0[31] = 42
	if b, bl, err := (SystemConfig{Scalar: v0}).Scalars(); err != nil || b != 42 || bl != 0 {
		t.Fatalf("v0: %d %d %v", b, bl, err)
	}
	v0[5] = 1 // junk in the padding of a version-0 scalar: charge the maximum
	if b, _, err := (SystemConfig{Scalar: v0}).Scalars(); err != nil || b != ^uint32(0) {
		t.Fatalf("v0 padding: %d %v", b, err)
	}
	v1 := EncodeScalars(7, 8)
	if b, bl, err := (SystemConfig{Scalar: v1}).Scalars(); err != nil || b != 7 || bl != 8 {
		t.Fatalf("v1: %d %d %v", b, bl, err)
	}
	v1[3] = 1
	if _, _, err := (SystemConfig{Scalar: v1}).Scalars(); err == nil {
		t.Fatal("v1 padding accepted")
	}
	if _, _, err := (SystemConfig{Scalar: common.Hash{2}}).Scalars(); err == nil {
		t.Fatal("version 2 accepted")
	}
}

// FuzzUnmarshalL1InfoIsthmus: any input either fails cleanly or round-trips exactly.
func FuzzUnmarshalL1InfoIsthmus(f *testing.F) {
	data, _ := sampleInfo().MarshalIsthmus()
	f.Add(data)
	f.Add(data[:4])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, L1InfoIsthmusLen))
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := UnmarshalL1InfoIsthmus(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidL1Info) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		out, err := info.MarshalIsthmus()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip changed the calldata")
		}
	})
}
