package rollup

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

var testPortal = common.HexToAddress("0x00000000000000000000000000000000000d0001")

func TestUserDepositsRoundTrip(t *testing.T) {
	to := common.HexToAddress("0x5555555555555555555555555555555555555555")
	in := []*types.DepositTx{
		{From: common.Address{1}, To: &to, Mint: big.NewInt(7), Value: big.NewInt(3), Gas: 100_000, Data: []byte{1, 2, 3}},
		{From: common.Address{2}, To: nil, Value: new(big.Int), Gas: 1, Data: bytes.Repeat([]byte{0xaa}, 64)},
		{From: common.Address{3}, To: &to, Value: big.NewInt(1), Gas: 21_000, Data: []byte{}},
	}
	l1Hash := common.HexToHash("0x77")
	var logs []*types.Log
	for i, d := range in {
		lg, err := MarshalDepositLog(testPortal, d)
		if err != nil {
			t.Fatal(err)
		}
		lg.BlockHash, lg.Index = l1Hash, uint(i+3)
		logs = append(logs, lg)
	}
	failed := *logs[0]
	out, err := UserDeposits(types.Receipts{
		{Status: 1, Logs: logs[:1]},
		{Status: 0, Logs: []*types.Log{&failed}},
		{Status: 1, Logs: logs[1:]},
	}, testPortal)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d deposits, want %d", len(out), len(in))
	}
	for i, d := range out {
		w := *in[i]
		w.SourceHash = UserDepositSourceHash(l1Hash, uint64(i+3))
		a, _ := types.NewTx(d).MarshalBinary()
		b, _ := types.NewTx(&w).MarshalBinary()
		if !bytes.Equal(a, b) {
			t.Errorf("deposit %d: %+v, want %+v", i, d, w)
		}
	}
}

func TestUserDepositsMalformedIsAnError(t *testing.T) {
	good, _ := MarshalDepositLog(testPortal, &types.DepositTx{Value: new(big.Int), Gas: 1})
	mutate := func(f func(*types.Log)) *types.Log {
		c := *good
		c.Topics = append([]common.Hash(nil), good.Topics...)
		c.Data = append([]byte(nil), good.Data...)
		f(&c)
		return &c
	}
	for name, lg := range map[string]*types.Log{
		"three topics":    mutate(func(l *types.Log) { l.Topics = l.Topics[:3] }),
		"version 1":       mutate(func(l *types.Log) { l.Topics[3] = common.Hash{31: 1} }),
		"ragged data":     mutate(func(l *types.Log) { l.Data = l.Data[:len(l.Data)-1] }),
		"bad offset":      mutate(func(l *types.Log) { l.Data[31] = 64 }),
		"long length":     mutate(func(l *types.Log) { l.Data[63] = 200 }),
		"extra padding":   mutate(func(l *types.Log) { l.Data = append(l.Data, make([]byte, 32)...) }),
		"short opaque":    mutate(func(l *types.Log) { l.Data[63] = 72 }),
		"header only":     mutate(func(l *types.Log) { l.Data = l.Data[:32] }),
		"length overflow": mutate(func(l *types.Log) { l.Data[32] = 1 }),
	} {
		if _, err := UserDeposits(types.Receipts{{Status: 1, Logs: []*types.Log{lg}}}, testPortal); !errors.Is(err, ErrBadDepositLog) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another contract's log of the same shape is not a deposit at all.
	other := mutate(func(l *types.Log) { l.Address = common.Address{1}; l.Topics = l.Topics[:3] })
	if out, err := UserDeposits(types.Receipts{{Status: 1, Logs: []*types.Log{other}}}, testPortal); err != nil || len(out) != 0 {
		t.Errorf("foreign log: %v %v", out, err)
	}
}

// FuzzUnmarshalDepositLog: arbitrary data never panics; a decoded deposit re-encodes to
// the same log data.
func FuzzUnmarshalDepositLog(f *testing.F) {
	to := common.Address{5}
	for _, d := range []*types.DepositTx{
		{Value: new(big.Int), Gas: 1},
		{To: &to, Mint: big.NewInt(1), Value: big.NewInt(2), Gas: 3, Data: bytes.Repeat([]byte{1}, 40)},
	} {
		lg, _ := MarshalDepositLog(testPortal, d)
		f.Add(lg.Data, lg.Topics[2][:])
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, data, toTopic []byte) {
		lg := &types.Log{Address: testPortal, Topics: []common.Hash{DepositTopic, {}, common.BytesToHash(toTopic), {}}, Data: data}
		dep, err := UnmarshalDepositLog(lg)
		if err != nil {
			if !errors.Is(err, ErrBadDepositLog) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		back, err := MarshalDepositLog(testPortal, dep)
		if err != nil {
			t.Fatal(err)
		}
		// The isCreation byte is any non-zero value on the way in, 1 on the way out.
		if dep.To == nil && data[64+72] != 1 {
			return
		}
		// Padding after the payload is not checked (op-node does not either), so compare
		// the words up to the payload's end.
		n := 64 + depositV0FixedLen + len(dep.Data)
		if !bytes.Equal(back.Data[:n], data[:n]) {
			t.Fatalf("re-encoded data differs:\n%x\n%x", back.Data, data)
		}
	})
}
