package rollup

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

var testSysCfgAddr = common.HexToAddress("0x00000000000000000000000000000000000d0002")

// updateLog builds a ConfigUpdate log the way the SystemConfig contract emits it:
// abi.encode(bytes payload).
func updateLog(typ byte, payload ...[]byte) *types.Log {
	var body []byte
	for _, p := range payload {
		body = append(body, common.LeftPadBytes(p, 32)...)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint64(data[24:32], 32)
	binary.BigEndian.PutUint64(data[56:64], uint64(len(body)))
	return &types.Log{
		Address: testSysCfgAddr,
		Topics:  []common.Hash{ConfigUpdateTopic, {}, {31: typ}},
		Data:    append(data, body...),
	}
}

func be(v uint64, n int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[8-n:]
}

func testConfig(t *testing.T) *Config {
	t.Helper()
	c, err := ParseConfig([]byte(opNodeRollupJSON))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseConfigUpdatesEachType(t *testing.T) {
	cfg := testConfig(t)
	batcher := common.HexToAddress("0x9999999999999999999999999999999999999999")
	scalar := EncodeScalars(11, 22)
	eip := []byte{0, 0, 0, 8, 0, 0, 0, 2}
	opFee := common.HexToHash("0x0000000000000000000000000000000000000000000000050000000000000007")
	logs := []*types.Log{
		updateLog(0, batcher[:]),
		updateLog(1, common.Hash{31: 5}.Bytes(), scalar[:]),
		updateLog(2, be(30_000_000, 8)),
		updateLog(3, []byte{1}),
		updateLog(4, eip),
		updateLog(5, opFee[:]),
		updateLog(6, be(1_000_000_000, 8)),
		updateLog(7, be(777, 2)),
	}
	sys, err := ParseConfigUpdates(cfg.Genesis.SystemConfig, types.Receipts{{Status: 1, Logs: logs}}, testSysCfgAddr, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := SystemConfig{
		BatcherAddr: batcher, Scalar: scalar, GasLimit: 30_000_000, EIP1559Params: Bytes8(eip),
		OperatorFeeParams: opFee, MinBaseFee: 1_000_000_000, DAFootprintGasScalar: 777,
	}
	if sys != want {
		t.Fatalf("got  %+v\nwant %+v", sys, want)
	}
}

func TestParseConfigUpdatesSkips(t *testing.T) {
	cfg := testConfig(t)
	base := cfg.Genesis.SystemConfig
	good := updateLog(2, be(1234, 8))
	other := updateLog(2, be(99, 8))
	other.Address = common.Address{1}
	truncated := updateLog(2, be(5, 8))
	truncated.Data = truncated.Data[:90]
	dirtyPad := updateLog(2, common.Hash{0: 1, 31: 5}.Bytes())
	badVersion := updateLog(2, be(6, 8))
	badVersion.Topics[1] = common.Hash{31: 1}
	unknownType := updateLog(8, be(7, 8))
	badEIP := updateLog(4, []byte{0, 0, 0, 0, 0, 0, 0, 2})
	badScalar := updateLog(1, common.Hash{}.Bytes(), common.Hash{0: 7}.Bytes())
	sys, err := ParseConfigUpdates(base, types.Receipts{
		{Status: 0, Logs: []*types.Log{updateLog(2, be(1, 8))}}, // failed receipt: ignored
		{Status: 1, Logs: []*types.Log{other, truncated, dirtyPad, badVersion, unknownType, badEIP, badScalar, good}},
	}, testSysCfgAddr, 0, cfg)
	if !errors.Is(err, ErrBadConfigUpdate) {
		t.Fatalf("want ErrBadConfigUpdate, got %v", err)
	}
	want := base
	want.GasLimit = 1234
	if sys != want {
		t.Fatalf("got %+v", sys)
	}
}

// FuzzApplyConfigUpdate: arbitrary data and type never panic, and a refused event leaves
// the config unchanged.
func FuzzApplyConfigUpdate(f *testing.F) {
	for typ := byte(0); typ < 9; typ++ {
		f.Add(typ, updateLog(typ, be(uint64(typ)+1, 8)).Data)
	}
	f.Add(byte(1), updateLog(1, be(1, 8), EncodeScalars(1, 2).Bytes()).Data)
	f.Fuzz(func(t *testing.T, typ byte, data []byte) {
		cfg := &Config{EcotoneTime: new(uint64)}
		base := SystemConfig{GasLimit: 1, BatcherAddr: common.Address{9}}
		lg := &types.Log{Address: testSysCfgAddr, Topics: []common.Hash{ConfigUpdateTopic, {}, {31: typ}}, Data: data}
		got, err := ApplyConfigUpdate(base, lg, 0, cfg)
		if err != nil && got != base {
			t.Fatalf("refused update changed the config: %v", err)
		}
		if err != nil && !errors.Is(err, ErrBadConfigUpdate) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
