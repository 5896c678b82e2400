package rollup

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/eth"
)

func TestL1InfoJovianLayout(t *testing.T) {
	info := sampleInfo()
	info.DAFootprintGasScalar = 0x0190
	data, err := info.MarshalJovian()
	if err != nil {
		t.Fatal(err)
	}
	isthmus, _ := info.MarshalIsthmus()
	if len(data) != 178 || hex.EncodeToString(data[:4]) != "3db6be2b" ||
		!bytes.Equal(data[4:176], isthmus[4:]) || !bytes.Equal(data[176:], []byte{0x01, 0x90}) {
		t.Fatalf("calldata %x", data)
	}
	back, err := UnmarshalL1Info(data)
	if err != nil || back.DAFootprintGasScalar != 0x0190 || back.BlockHash != info.BlockHash {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if _, err := UnmarshalL1InfoJovian(isthmus); !errors.Is(err, ErrInvalidL1Info) {
		t.Fatalf("isthmus calldata read as Jovian: %v", err)
	}
}

// jovianConfig is the test config with Jovian at genesis+at.
func jovianConfig(t *testing.T, at uint64) *Config {
	t.Helper()
	c := testConfig(t)
	j := c.Genesis.L2Time + at
	c.JovianTime = &j
	return c
}

func TestL1InfoDepositAtFollowsTheFork(t *testing.T) {
	c := jovianConfig(t, 10)
	h := &types.Header{Number: big.NewInt(5), Time: 100, BaseFee: big.NewInt(1)}
	g := c.Genesis.L2Time
	for _, tc := range []struct {
		t     uint64
		size  int
		scale uint16
	}{{g + 8, L1InfoIsthmusLen, 0}, {g + 10, L1InfoIsthmusLen, 0}, {g + 12, L1InfoJovianLen, DAFootprintGasScalarDefault}} {
		dep, err := c.L1InfoDepositAt(SystemConfig{Scalar: EncodeScalars(1, 1)}, 0, L1Origin{Header: h}, tc.t)
		if err != nil {
			t.Fatal(err)
		}
		if len(dep.Data) != tc.size {
			t.Errorf("time %d: %d bytes, want %d", tc.t, len(dep.Data), tc.size)
		}
		if tc.size == L1InfoJovianLen {
			info, _ := UnmarshalL1InfoJovian(dep.Data)
			if info.DAFootprintGasScalar != tc.scale {
				t.Errorf("time %d: DA footprint scalar %d", tc.t, info.DAFootprintGasScalar)
			}
		}
	}
	dep, _ := c.L1InfoDepositAt(SystemConfig{Scalar: EncodeScalars(1, 1), DAFootprintGasScalar: 9}, 0, L1Origin{Header: h}, g+12)
	if info, _ := UnmarshalL1InfoJovian(dep.Data); info.DAFootprintGasScalar != 9 {
		t.Errorf("explicit DA footprint scalar not kept: %d", info.DAFootprintGasScalar)
	}
}

func TestJovianUpgradeTxs(t *testing.T) {
	txs := JovianUpgradeTxs()
	if len(txs) != 5 {
		t.Fatalf("%d upgrade txs", len(txs))
	}
	l1Block := crypto.CreateAddress(JovianL1BlockDeployer, 0)
	if txs[0].To != nil || !bytes.HasPrefix(txs[0].Data, []byte{0x60, 0x80, 0x60, 0x40}) ||
		*txs[1].To != L1BlockAddress || !bytes.Equal(txs[1].Data[16:], l1Block[:]) ||
		hex.EncodeToString(txs[4].Data) != hex.EncodeToString(crypto.Keccak256([]byte("setJovian()"))[:4]) {
		t.Fatalf("upgrade txs %+v", txs)
	}
	seen := map[common.Hash]bool{}
	for _, tx := range txs {
		if seen[tx.SourceHash] {
			t.Fatal("duplicate source hash")
		}
		seen[tx.SourceHash] = true
	}
}

// mapFetcher serves L1 blocks from memory, for the attribute builder's state rules.
type mapFetcher struct {
	headers  map[common.Hash]*types.Header
	receipts map[common.Hash]types.Receipts
	err      error
}

func (m *mapFetcher) FetchReceipts(_ context.Context, h common.Hash) (*types.Header, types.Receipts, error) {
	if m.err != nil {
		return nil, nil, m.err
	}
	hd, ok := m.headers[h]
	if !ok {
		return nil, nil, errors.New("not found")
	}
	return hd, m.receipts[h], nil
}

func TestBuildAttributes(t *testing.T) {
	c := jovianConfig(t, 4)
	g := c.Genesis.L2Time
	genesisL1 := &types.Header{Number: big.NewInt(0), Time: g - 20, BaseFee: big.NewInt(1)}
	c.Genesis.L1 = eth.BlockID{Hash: genesisL1.Hash(), Number: 0}
	l1 := &types.Header{Number: big.NewInt(1), ParentHash: genesisL1.Hash(), Time: g + 1, BaseFee: big.NewInt(2), MixDigest: common.Hash{7}}
	dep, _ := MarshalDepositLog(c.DepositContractAddress, &types.DepositTx{Value: big.NewInt(1), Gas: 50_000})
	dep.BlockHash = l1.Hash()
	f := &mapFetcher{
		headers: map[common.Hash]*types.Header{genesisL1.Hash(): genesisL1, l1.Hash(): l1},
		receipts: map[common.Hash]types.Receipts{l1.Hash(): {{Status: 1, Logs: []*types.Log{
			dep, {Address: c.L1SystemConfigAddress, Topics: []common.Hash{ConfigUpdateTopic, {}, {31: 2}}, Data: updateLog(2, be(45_000_000, 8)).Data},
		}}}},
	}
	parent := eth.L2BlockRef{Hash: c.Genesis.L2.Hash, Number: 0, Time: g, L1Origin: c.Genesis.L1}
	// Block 1 (time g+2) stays on the genesis origin: just the L1-attributes deposit.
	a, sys, err := c.BuildAttributes(context.Background(), f, nil, c.Genesis.SystemConfig, parent, c.Genesis.L1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Transactions) != 1 || !a.NoTxPool || a.MinBaseFee != nil || *a.GasLimit != 60_000_000 || sys != c.Genesis.SystemConfig || a.Timestamp != g+2 {
		t.Fatalf("block 1: %+v", a)
	}
	// Block 2 (time g+4) is Jovian's first block and takes L1 block 1 as origin: deposit,
	// five upgrade txs, the gas limit update applied.
	parent = eth.L2BlockRef{Hash: common.Hash{1}, Number: 1, Time: g + 2, L1Origin: c.Genesis.L1}
	a, sys, err = c.BuildAttributes(context.Background(), f, nil, c.Genesis.SystemConfig, parent, eth.BlockID{Hash: l1.Hash(), Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Transactions) != 1+1+5 || sys.GasLimit != 45_000_000 || *a.GasLimit != 45_000_000 || a.MinBaseFee == nil || a.Random != l1.MixDigest {
		t.Fatalf("block 2: %d txs, %+v", len(a.Transactions), sys)
	}
	var info types.Transaction
	if err := info.UnmarshalBinary(a.Transactions[0]); err != nil || len(info.Data()) != L1InfoIsthmusLen {
		t.Fatalf("activation block deposit: %v %d", err, len(info.Data()))
	}

	// Errors keep their classes.
	wrongParent := parent
	wrongParent.L1Origin = eth.BlockID{Hash: common.Hash{9}, Number: 0}
	if _, _, err := c.BuildAttributes(context.Background(), f, nil, sys, wrongParent, eth.BlockID{Hash: l1.Hash(), Number: 1}); !errors.Is(err, ErrResetAttrs) {
		t.Errorf("origin not following the parent's: %v", err)
	}
	if _, _, err := c.BuildAttributes(context.Background(), f, nil, sys, wrongParent, eth.BlockID{Hash: common.Hash{8}, Number: 0}); !errors.Is(err, ErrResetAttrs) {
		t.Errorf("same-number origin conflict: %v", err)
	}
	if _, _, err := c.BuildAttributes(context.Background(), &mapFetcher{err: errors.New("timeout")}, nil, sys, parent, eth.BlockID{Hash: l1.Hash(), Number: 1}); !errors.Is(err, ErrFetch) {
		t.Errorf("fetch failure: %v", err)
	}
	dep.Data = dep.Data[:40]
	if _, _, err := c.BuildAttributes(context.Background(), f, nil, sys, parent, eth.BlockID{Hash: l1.Hash(), Number: 1}); !errors.Is(err, ErrCriticalAttrs) {
		t.Errorf("malformed deposit: %v", err)
	}
	old := parent
	old.Time = g - 30
	if _, _, err := c.BuildAttributes(context.Background(), f, nil, sys, old, c.Genesis.L1); !errors.Is(err, ErrResetAttrs) || !strings.Contains(err.Error(), "older") {
		t.Errorf("block before its origin: %v", err)
	}
}

// FuzzUnmarshalL1Info: either layout, any input fails cleanly or re-encodes exactly.
func FuzzUnmarshalL1Info(f *testing.F) {
	info := sampleInfo()
	isthmus, _ := info.MarshalIsthmus()
	info.DAFootprintGasScalar = 400
	jovian, _ := info.MarshalJovian()
	f.Add(isthmus)
	f.Add(jovian)
	f.Add(jovian[:100])
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := UnmarshalL1Info(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidL1Info) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		var out []byte
		if len(in) == L1InfoJovianLen {
			out, err = got.MarshalJovian()
		} else {
			out, err = got.MarshalIsthmus()
		}
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-encoded %x (%v), want %x", out, err, in)
		}
	})
}
