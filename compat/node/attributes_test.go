package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/devnet"
	opkiteth "github.com/opkit/opkit/eth"
	opkitrollup "github.com/opkit/opkit/rollup"
)

// The differential tests here feed opkit's rollup rules and op-node's the same inputs and
// require identical outputs: deposit transactions from TransactionDeposited logs, system
// configs after ConfigUpdate logs, the Jovian L1-attributes deposit and upgrade
// transactions, whole payload attributes, and the system config read back from L2 blocks.

const attrsGenesisTime = 1_700_000_000

// attrsConfigs returns one rollup config in both encodings, with every fork through
// Isthmus at genesis and Jovian at genesis+jovianAfter (nil: never).
func attrsConfigs(t testing.TB, jovianAfter *uint64) (*opkitrollup.Config, *rollup.Config) {
	t.Helper()
	zero := uint64(0)
	mine := &opkitrollup.Config{
		Genesis: opkitrollup.Genesis{
			L1:     opkiteth.BlockID{Hash: common.Hash{0x11}, Number: 0},
			L2:     opkiteth.BlockID{Hash: common.Hash{0x22}, Number: 0},
			L2Time: attrsGenesisTime,
			SystemConfig: opkitrollup.SystemConfig{
				BatcherAddr: common.Address{0x33}, Scalar: opkitrollup.EncodeScalars(1368, 810949), GasLimit: 60_000_000,
			},
		},
		BlockTime: 2, MaxSequencerDrift: 1800, SeqWindowSize: 3600, ChannelTimeout: 300,
		L1ChainID: big.NewInt(900), L2ChainID: big.NewInt(901),
		RegolithTime: &zero, CanyonTime: &zero, DeltaTime: &zero, EcotoneTime: &zero, FjordTime: &zero,
		GraniteTime: &zero, HoloceneTime: &zero, IsthmusTime: &zero,
		BatchInboxAddress:      common.HexToAddress("0xff00000000000000000000000000000000000901"),
		DepositContractAddress: common.HexToAddress("0x00000000000000000000000000000000000d0001"),
		L1SystemConfigAddress:  common.HexToAddress("0x00000000000000000000000000000000000d0002"),
		ChainOpConfig:          &params.OptimismConfig{EIP1559Elasticity: 6, EIP1559Denominator: 50, EIP1559DenominatorCanyon: new(uint64)},
	}
	*mine.ChainOpConfig.EIP1559DenominatorCanyon = 250
	if jovianAfter != nil {
		j := attrsGenesisTime + *jovianAfter
		mine.JovianTime = &j
	}
	if err := mine.Check(); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(mine)
	if err != nil {
		t.Fatal(err)
	}
	var theirs rollup.Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&theirs); err != nil {
		t.Fatal(err)
	}
	return mine, &theirs
}

func theirSys(t testing.TB, s opkitrollup.SystemConfig) opeth.SystemConfig {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out opeth.SystemConfig
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSys(t testing.TB, mine opkitrollup.SystemConfig, theirs opeth.SystemConfig) bool {
	t.Helper()
	a, _ := json.Marshal(theirSys(t, mine))
	b, _ := json.Marshal(theirs)
	return bytes.Equal(a, b)
}

// configUpdateLog is abi.encode(bytes(words...)) under ConfigUpdate(version 0, typ).
func configUpdateLog(addr common.Address, typ byte, words ...[]byte) *types.Log {
	var body []byte
	for _, w := range words {
		body = append(body, common.LeftPadBytes(w, 32)...)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint64(data[24:32], 32)
	binary.BigEndian.PutUint64(data[56:64], uint64(len(body)))
	return &types.Log{Address: addr, Topics: []common.Hash{opkitrollup.ConfigUpdateTopic, {}, {31: typ}}, Data: append(data, body...)}
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// sysConfigCases are ConfigUpdate logs of every type, well-formed and not.
func sysConfigCases(addr common.Address) []*types.Log {
	withData := func(lg *types.Log, f func([]byte) []byte) *types.Log { lg.Data = f(lg.Data); return lg }
	withTopic := func(lg *types.Log, i int, h common.Hash) *types.Log { lg.Topics[i] = h; return lg }
	return []*types.Log{
		configUpdateLog(addr, 0, common.HexToAddress("0x9999999999999999999999999999999999999999").Bytes()),
		configUpdateLog(addr, 0, common.Hash{0: 1, 31: 1}.Bytes()), // address padding dirty
		configUpdateLog(addr, 1, common.Hash{31: 9}.Bytes(), opkitrollup.EncodeScalars(5, 6).Bytes()),
		configUpdateLog(addr, 1, common.Hash{}.Bytes(), common.Hash{0: 1, 5: 1}.Bytes()),      // bad v1 padding: kept old
		configUpdateLog(addr, 1, common.Hash{}.Bytes(), common.Hash{31: 1}.Bytes()),           // v0 scalar
		configUpdateLog(addr, 1, common.Hash{}.Bytes(), common.Hash{0: 2}.Bytes()),            // unknown version
		configUpdateLog(addr, 1, common.Hash{}.Bytes()),                                       // one word
		configUpdateLog(addr, 2, u64(30_000_000)),                                             // gas limit
		configUpdateLog(addr, 2, common.Hash{3: 1}.Bytes()),                                   // too large
		configUpdateLog(addr, 3, []byte{1, 2, 3}),                                             // signer: ignored
		withData(configUpdateLog(addr, 3, []byte{1}), func(d []byte) []byte { return d[:5] }), // signer, any data
		configUpdateLog(addr, 4, []byte{0, 0, 0, 8, 0, 0, 0, 3}),
		configUpdateLog(addr, 4, []byte{0, 0, 0, 0, 0, 0, 0, 3}), // zero denominator
		configUpdateLog(addr, 4, []byte{0, 0, 0, 0, 0, 0, 0, 0}), // both zero: allowed
		configUpdateLog(addr, 5, common.HexToHash("0x0000000000000000000000000000000000000000000000050000000000000007").Bytes()),
		configUpdateLog(addr, 6, u64(1_000_000_007)),
		configUpdateLog(addr, 7, []byte{0x03, 0x09}),
		configUpdateLog(addr, 7, []byte{0x01, 0x03, 0x09}), // does not fit uint16
		configUpdateLog(addr, 8, u64(1)),                   // unknown type
		withTopic(configUpdateLog(addr, 2, u64(5)), 1, common.Hash{31: 1}),
		withData(configUpdateLog(addr, 2, u64(5)), func(d []byte) []byte { return append(d, 0) }),
		withData(configUpdateLog(addr, 2, u64(5)), func(d []byte) []byte { d[31] = 33; return d }),
		withData(configUpdateLog(addr, 2, u64(5)), func(d []byte) []byte { d[63] = 64; return d }),
		{Address: addr, Topics: []common.Hash{opkitrollup.ConfigUpdateTopic, {}}},
		configUpdateLog(common.Address{1}, 2, u64(77)), // another contract
	}
}

func TestConfigUpdatesMatchOpNode(t *testing.T) {
	mine, theirs := attrsConfigs(t, nil)
	cases := sysConfigCases(mine.L1SystemConfigAddress)
	// One at a time, then all in one block.
	for i, lg := range cases {
		checkConfigUpdates(t, mine, theirs, types.Receipts{{Status: 1, Logs: []*types.Log{lg}}}, i)
	}
	checkConfigUpdates(t, mine, theirs, types.Receipts{{Status: 1, Logs: cases[:10]}, {Status: 0, Logs: cases[10:12]}, {Status: 1, Logs: cases[12:]}}, -1)
	// Before Ecotone (by L1 time) the scalar update keeps the overhead and any scalar.
	late := uint64(attrsGenesisTime)
	mine.EcotoneTime, theirs.EcotoneTime = &late, &late
	for i, lg := range cases[2:7] {
		checkConfigUpdatesAt(t, mine, theirs, types.Receipts{{Status: 1, Logs: []*types.Log{lg}}}, i, attrsGenesisTime-1)
	}
}

func checkConfigUpdates(t *testing.T, mine *opkitrollup.Config, theirs *rollup.Config, receipts types.Receipts, i int) {
	t.Helper()
	checkConfigUpdatesAt(t, mine, theirs, receipts, i, attrsGenesisTime+100)
}

func checkConfigUpdatesAt(t *testing.T, mine *opkitrollup.Config, theirs *rollup.Config, receipts types.Receipts, i int, l1Time uint64) {
	t.Helper()
	base := mine.Genesis.SystemConfig
	base.OperatorFeeParams = common.Hash{31: 1}
	got, myErr := opkitrollup.ParseConfigUpdates(base, receipts, mine.L1SystemConfigAddress, l1Time, mine)
	want := theirSys(t, base)
	theirErr := derive.UpdateSystemConfigWithL1Receipts(&want, receipts, theirs, l1Time)
	if !sameSys(t, got, want) {
		t.Errorf("case %d: system config\n opkit   %+v\n op-node %+v", i, got, want)
	}
	if (myErr == nil) != (theirErr == nil) {
		t.Errorf("case %d: opkit error %v, op-node error %v", i, myErr, theirErr)
	}
}

// FuzzConfigUpdateAgainstOpNode: any update type and data leave both with the same system
// config and the same verdict.
func FuzzConfigUpdateAgainstOpNode(f *testing.F) {
	for _, lg := range sysConfigCases(common.HexToAddress("0x00000000000000000000000000000000000d0002")) {
		if len(lg.Topics) == 3 {
			f.Add(lg.Topics[2][31], lg.Data, false)
		}
	}
	f.Fuzz(func(t *testing.T, typ byte, data []byte, preEcotone bool) {
		mine, theirs := attrsConfigs(t, nil)
		lg := &types.Log{Address: mine.L1SystemConfigAddress, Topics: []common.Hash{opkitrollup.ConfigUpdateTopic, {}, {31: typ}}, Data: data}
		l1Time := uint64(attrsGenesisTime + 10)
		if preEcotone {
			late := uint64(attrsGenesisTime)
			mine.EcotoneTime, theirs.EcotoneTime = &late, &late
			l1Time = attrsGenesisTime - 1
		}
		checkConfigUpdatesAt(t, mine, theirs, types.Receipts{{Status: 1, Logs: []*types.Log{lg}}}, int(typ), l1Time)
	})
}

// depositCases are deposits that exercise every field's edges, as op-node's encoder logs them.
func depositCases() []*types.DepositTx {
	to := common.HexToAddress("0x5555555555555555555555555555555555555555")
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	return []*types.DepositTx{
		{From: common.Address{1}, To: &to, Mint: big.NewInt(7), Value: big.NewInt(3), Gas: 100_000, Data: []byte{1, 2, 3}},
		{From: common.Address{2}, Value: new(big.Int), Gas: 1, Data: bytes.Repeat([]byte{0xaa}, 64)},
		{From: common.Address{3}, To: &to, Value: big.NewInt(1), Gas: 21_000, Data: []byte{}},
		{From: common.Address{4}, To: &to, Mint: max, Value: max, Gas: ^uint64(0), Data: bytes.Repeat([]byte{0x01}, 31)},
		{From: common.Address{5}, To: &to, Value: big.NewInt(0), Gas: 0, Data: bytes.Repeat([]byte{0x02}, 33)},
	}
}

func TestDepositsMatchOpNode(t *testing.T) {
	portal := common.HexToAddress("0x00000000000000000000000000000000000d0001")
	var logs []*types.Log
	for i, d := range depositCases() {
		lg, err := derive.MarshalDepositLogEvent(portal, d)
		if err != nil {
			t.Fatal(err)
		}
		mineLog, err := opkitrollup.MarshalDepositLog(portal, d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(lg.Data, mineLog.Data) || len(lg.Topics) != len(mineLog.Topics) {
			t.Errorf("deposit %d: log encoding differs\n opkit   %x\n op-node %x", i, mineLog.Data, lg.Data)
		}
		for j := range lg.Topics {
			if lg.Topics[j] != mineLog.Topics[j] {
				t.Errorf("deposit %d: topic %d differs", i, j)
			}
		}
		lg.BlockHash, lg.Index = common.Hash{0x77}, uint(i*3)
		logs = append(logs, lg)
	}
	receipts := types.Receipts{{Status: 1, Logs: logs[:2]}, {Status: 0, Logs: logs[2:3]}, {Status: 1, Logs: logs[3:]}}
	mine, err := opkitrollup.UserDeposits(receipts, portal)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := derive.UserDeposits(receipts, portal)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != len(theirs) || len(mine) != 4 {
		t.Fatalf("%d deposits, op-node %d", len(mine), len(theirs))
	}
	for i := range mine {
		a, _ := types.NewTx(mine[i]).MarshalBinary()
		b, _ := types.NewTx(theirs[i]).MarshalBinary()
		if !bytes.Equal(a, b) {
			t.Errorf("deposit %d:\n opkit   %x\n op-node %x", i, a, b)
		}
	}
}

// FuzzDepositLogAgainstOpNode: for any log data and topics both decoders agree on the
// verdict and, when they accept, on the transaction's bytes.
func FuzzDepositLogAgainstOpNode(f *testing.F) {
	for _, d := range depositCases() {
		lg, _ := derive.MarshalDepositLogEvent(common.Address{}, d)
		f.Add(lg.Data, lg.Topics[1][:], lg.Topics[2][:], lg.Topics[3][:], uint(3))
	}
	f.Fuzz(func(t *testing.T, data, from, to, version []byte, index uint) {
		lg := &types.Log{
			Topics:    []common.Hash{opkitrollup.DepositTopic, common.BytesToHash(from), common.BytesToHash(to), common.BytesToHash(version)},
			Data:      data,
			BlockHash: common.Hash{0x42},
			Index:     index,
		}
		mine, myErr := opkitrollup.UnmarshalDepositLog(lg)
		theirs, theirErr := derive.UnmarshalDepositLogEvent(lg)
		if (myErr == nil) != (theirErr == nil) {
			t.Fatalf("opkit error %v, op-node error %v", myErr, theirErr)
		}
		if myErr != nil {
			if !errors.Is(myErr, opkitrollup.ErrBadDepositLog) {
				t.Fatalf("unclassified error %v", myErr)
			}
			return
		}
		a, _ := types.NewTx(mine).MarshalBinary()
		b, _ := types.NewTx(theirs).MarshalBinary()
		if !bytes.Equal(a, b) {
			t.Fatalf("opkit %x\nop-node %x", a, b)
		}
	})
}

func TestJovianUpgradeTxsMatchOpNode(t *testing.T) {
	theirs, err := derive.JovianNetworkUpgradeTransactions()
	if err != nil {
		t.Fatal(err)
	}
	mine := opkitrollup.JovianUpgradeTxs()
	if len(mine) != len(theirs) {
		t.Fatalf("%d upgrade txs, op-node %d", len(mine), len(theirs))
	}
	for i := range mine {
		a, _ := types.NewTx(mine[i]).MarshalBinary()
		if !bytes.Equal(a, theirs[i]) {
			t.Errorf("upgrade tx %d differs:\n opkit   %x\n op-node %x", i, a, []byte(theirs[i]))
		}
	}
}

// TestJovianL1InfoMatchesOpNode compares the L1-attributes deposit around the activation
// block, with and without a DA footprint gas scalar on L1.
func TestJovianL1InfoMatchesOpNode(t *testing.T) {
	after := uint64(10)
	mine, theirs := attrsConfigs(t, &after)
	l1cfg := devnetL1Config(t)
	excess := uint64(1 << 26)
	root := common.Hash{0xbe}
	h := &types.Header{Number: big.NewInt(12), Time: attrsGenesisTime + 3, BaseFee: big.NewInt(9), ExcessBlobGas: &excess, ParentBeaconRoot: &root}
	for _, da := range []uint16{0, 1, 400, 65535} {
		sys := mine.Genesis.SystemConfig
		sys.DAFootprintGasScalar = da
		sys.OperatorFeeParams = common.Hash{20: 1, 31: 2}
		for _, l2Time := range []uint64{attrsGenesisTime + 8, attrsGenesisTime + 10, attrsGenesisTime + 12, attrsGenesisTime + 100} {
			dep, err := mine.L1InfoDepositAt(sys, 3, opkitrollup.L1Origin{Header: h, BlobBaseFee: opkitrollup.BlobBaseFee(l1cfg, h)}, l2Time)
			if err != nil {
				t.Fatal(err)
			}
			want, err := derive.L1InfoDeposit(theirs, l1cfg, theirSys(t, sys), 3, opeth.HeaderBlockInfo(h), l2Time)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := types.NewTx(dep).MarshalBinary()
			b, _ := types.NewTx(want).MarshalBinary()
			if !bytes.Equal(a, b) {
				t.Errorf("DA scalar %d, time +%d:\n opkit   %x\n op-node %x", da, l2Time-attrsGenesisTime, a, b)
			}
		}
	}
}

// l1Blocks serves a chain of real dev L1 headers, with made-up receipts, to both builders.
type l1Blocks struct {
	headers  map[common.Hash]*types.Header
	receipts map[common.Hash]types.Receipts
}

func (b *l1Blocks) FetchReceipts(_ context.Context, h common.Hash) (*types.Header, types.Receipts, error) {
	if hd, ok := b.headers[h]; ok {
		return hd, b.receipts[h], nil
	}
	return nil, nil, errors.New("unknown L1 block")
}

// opNodeL1 adapts l1Blocks to op-node's fetcher.
type opNodeL1 struct{ b *l1Blocks }

func (o opNodeL1) InfoByHash(ctx context.Context, h common.Hash) (opeth.BlockInfo, error) {
	hd, _, err := o.b.FetchReceipts(ctx, h)
	if err != nil {
		return nil, err
	}
	return opeth.HeaderBlockInfo(hd), nil
}

func (o opNodeL1) FetchReceipts(ctx context.Context, h common.Hash) (opeth.BlockInfo, types.Receipts, error) {
	hd, r, err := o.b.FetchReceipts(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	return opeth.HeaderBlockInfo(hd), r, nil
}

type fixedSys struct{ sys opeth.SystemConfig }

func (f fixedSys) SystemConfigByL2Hash(context.Context, common.Hash) (opeth.SystemConfig, error) {
	return f.sys, nil
}

// TestBuildAttributesMatchesOpNode walks an L2 chain over real dev L1 headers whose blocks
// carry deposits and config updates, with Jovian activating mid-way, and builds every
// block's attributes with both builders; each builder's system config feeds the next
// block, as SystemConfigByL2Hash would.
func TestBuildAttributesMatchesOpNode(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	chain := &l1Blocks{headers: map[common.Hash]*types.Header{}, receipts: map[common.Hash]types.Receipts{}}
	var headers []*types.Header
	g := l1.Backend().BlockChain().Genesis().Header()
	headers = append(headers, g)
	for i := 0; i < 6; i++ {
		h, err := l1.Mine()
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, h)
	}
	after := uint64(6)
	mine, _ := attrsConfigs(t, &after)
	// The L2 genesis is 2 s after the L1 genesis; the origin advances every other block
	// (below) as long as L1 time allows.
	mine.Genesis.L1 = opkiteth.BlockID{Hash: g.Hash(), Number: 0}
	mine.Genesis.L2Time = g.Time + 2
	j := mine.Genesis.L2Time + after
	mine.JovianTime = &j
	theirs := opNodeConfig(t, mine)
	for i, h := range headers {
		chain.headers[h.Hash()] = h
		var logs []*types.Log
		for k, d := range depositCases()[:1+i%3] {
			lg, _ := derive.MarshalDepositLogEvent(mine.DepositContractAddress, d)
			lg.BlockHash, lg.Index = h.Hash(), uint(k)
			logs = append(logs, lg)
		}
		upd := sysConfigCases(mine.L1SystemConfigAddress)
		logs = append(logs, upd[(i*3)%len(upd)], upd[(i*3+1)%len(upd)], upd[(i*3+2)%len(upd)])
		chain.receipts[h.Hash()] = types.Receipts{{Status: 1, Logs: logs}}
	}
	parent := opkiteth.L2BlockRef{Hash: mine.Genesis.L2.Hash, Time: mine.Genesis.L2Time, L1Origin: mine.Genesis.L1}
	sysMine := mine.Genesis.SystemConfig
	sysTheirs := theirSys(t, sysMine)
	origin, sawUpgrade := 0, false
	for n := uint64(1); n <= 12; n++ {
		// Advance the origin every other block while L1 blocks remain and time allows.
		if n%2 == 0 && origin+1 < len(headers) && headers[origin+1].Time <= parent.Time+mine.BlockTime {
			origin++
		}
		epoch := opkiteth.BlockID{Hash: headers[origin].Hash(), Number: uint64(origin)}
		a, nextSys, err := mine.BuildAttributes(context.Background(), chain, l1.ChainConfig(), sysMine, parent, epoch)
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		b, err := derive.NewFetchingAttributesBuilder(theirs, l1.ChainConfig(), nil, opNodeL1{chain}, fixedSys{sysTheirs}).
			PreparePayloadAttributes(context.Background(), opeth.L2BlockRef{
				Hash: parent.Hash, Number: parent.Number, Time: parent.Time, SequenceNumber: parent.SequenceNumber,
				L1Origin: opeth.BlockID{Hash: parent.L1Origin.Hash, Number: parent.L1Origin.Number},
			}, opeth.BlockID{Hash: epoch.Hash, Number: epoch.Number})
		if err != nil {
			t.Fatalf("block %d: op-node: %v", n, err)
		}
		compareAttributes(t, n, a, b)
		sawUpgrade = sawUpgrade || mine.IsJovianActivationBlock(a.Timestamp)
		// op-node's builder returns the system config only implicitly; recompute it the
		// way it did for the new epoch.
		if parent.L1Origin.Number != epoch.Number {
			_ = derive.UpdateSystemConfigWithL1Receipts(&sysTheirs, chain.receipts[epoch.Hash], theirs, headers[origin].Time)
		}
		if !sameSys(t, nextSys, sysTheirs) {
			t.Fatalf("block %d: system config\n opkit   %+v\n op-node %+v", n, nextSys, sysTheirs)
		}
		seq := uint64(0)
		if parent.L1Origin.Number == epoch.Number {
			seq = parent.SequenceNumber + 1
		}
		parent = opkiteth.L2BlockRef{Hash: common.BigToHash(new(big.Int).SetUint64(n)), Number: n, Time: a.Timestamp, L1Origin: epoch, SequenceNumber: seq}
		sysMine = nextSys
	}
	if origin < 3 || !sawUpgrade {
		t.Fatalf("the walk reached L1 origin %d, Jovian activation seen: %v", origin, sawUpgrade)
	}
}

func compareAttributes(t *testing.T, n uint64, a *engine.PayloadAttributes, b *opeth.PayloadAttributes) {
	t.Helper()
	if a.Timestamp != uint64(b.Timestamp) || a.Random != common.Hash(b.PrevRandao) || a.SuggestedFeeRecipient != b.SuggestedFeeRecipient || a.NoTxPool != b.NoTxPool {
		t.Errorf("block %d: header fields differ: opkit %+v, op-node %+v", n, a, b)
	}
	if (a.GasLimit == nil) != (b.GasLimit == nil) || (a.GasLimit != nil && *a.GasLimit != uint64(*b.GasLimit)) {
		t.Errorf("block %d: gas limit differs", n)
	}
	if (a.Withdrawals == nil) != (b.Withdrawals == nil) || (a.Withdrawals != nil && len(a.Withdrawals) != len(*b.Withdrawals)) {
		t.Errorf("block %d: withdrawals differ", n)
	}
	if (a.BeaconRoot == nil) != (b.ParentBeaconBlockRoot == nil) || (a.BeaconRoot != nil && *a.BeaconRoot != *b.ParentBeaconBlockRoot) {
		t.Errorf("block %d: beacon root differs", n)
	}
	if (a.EIP1559Params == nil) != (b.EIP1559Params == nil) || (b.EIP1559Params != nil && !bytes.Equal(a.EIP1559Params, b.EIP1559Params[:])) {
		t.Errorf("block %d: eip1559Params %x, op-node %v", n, a.EIP1559Params, b.EIP1559Params)
	}
	if (a.MinBaseFee == nil) != (b.MinBaseFee == nil) || (a.MinBaseFee != nil && *a.MinBaseFee != *b.MinBaseFee) {
		t.Errorf("block %d: minBaseFee %v, op-node %v", n, a.MinBaseFee, b.MinBaseFee)
	}
	if len(a.Transactions) != len(b.Transactions) {
		t.Fatalf("block %d: %d txs, op-node %d", n, len(a.Transactions), len(b.Transactions))
	}
	for i := range a.Transactions {
		if !bytes.Equal(a.Transactions[i], b.Transactions[i]) {
			t.Errorf("block %d tx %d:\n opkit   %x\n op-node %x", n, i, a.Transactions[i], []byte(b.Transactions[i]))
		}
	}
}

// TestSystemConfigFromL2BlockMatchesOpNode reads the system config back from L2 blocks
// before, at and after the Jovian activation, against op-node's PayloadToSystemConfig.
func TestSystemConfigFromL2BlockMatchesOpNode(t *testing.T) {
	after := uint64(10)
	mine, theirs := attrsConfigs(t, &after)
	l1 := &types.Header{Number: big.NewInt(3), Time: attrsGenesisTime, BaseFee: big.NewInt(5)}
	for _, sys := range []opkitrollup.SystemConfig{
		{BatcherAddr: common.Address{7}, Scalar: opkitrollup.EncodeScalars(3, 4), GasLimit: 30_000_000, MinBaseFee: 9, DAFootprintGasScalar: 12,
			EIP1559Params: opkitrollup.Bytes8{0, 0, 0, 50, 0, 0, 0, 6}, OperatorFeeParams: common.Hash{20: 1, 31: 2}},
		{BatcherAddr: common.Address{8}, Scalar: opkitrollup.EncodeScalars(0, 0), GasLimit: 1},
	} {
		for _, l2Time := range []uint64{attrsGenesisTime + 8, attrsGenesisTime + 10, attrsGenesisTime + 12} {
			dep, err := mine.L1InfoDepositAt(sys, 1, opkitrollup.L1Origin{Header: l1}, l2Time)
			if err != nil {
				t.Fatal(err)
			}
			denom, elast := eip1559.DecodeHolocene1559Params(sys.EIP1559Params[:])
			if denom == 0 {
				denom, elast = 250, 6 // what the engine writes for zero parameters
			}
			minBaseFee := sys.MinBaseFee
			extra := eip1559.EncodeOptimismExtraData(mine, l2Time, denom, elast, &minBaseFee)
			header := &types.Header{Number: big.NewInt(5), Time: l2Time, GasLimit: sys.GasLimit, Extra: extra, BaseFee: big.NewInt(1),
				WithdrawalsHash: &types.EmptyWithdrawalsHash, ParentBeaconRoot: &common.Hash{}, ExcessBlobGas: new(uint64), BlobGasUsed: new(uint64)}
			block := types.NewBlockWithHeader(header).WithBody(types.Body{Transactions: []*types.Transaction{types.NewTx(dep)}, Withdrawals: []*types.Withdrawal{}})
			got, err := opkitrollup.SystemConfigFromL2Block(mine, block)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := opeth.BlockAsPayload(block, &params.ChainConfig{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := derive.PayloadToSystemConfig(theirs, payload)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSys(t, got, want) {
				t.Errorf("time +%d:\n opkit   %+v\n op-node %+v", l2Time-attrsGenesisTime, got, want)
			}
		}
	}
	// The genesis block is the rollup config's.
	genesis := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(0)})
	mine.Genesis.L2 = opkiteth.BlockID{Hash: genesis.Hash()}
	if got, err := opkitrollup.SystemConfigFromL2Block(mine, genesis); err != nil || got != mine.Genesis.SystemConfig {
		t.Errorf("genesis: %+v %v", got, err)
	}
}

// FuzzL1InfoAgainstOpNode: for any calldata, opkit's reader of the layout a block's time
// calls for and op-node's agree on the verdict and on every field.
func FuzzL1InfoAgainstOpNode(f *testing.F) {
	h := &types.Header{Number: big.NewInt(12), Time: 99, BaseFee: big.NewInt(9)}
	sys := opkitrollup.SystemConfig{BatcherAddr: common.Address{1}, Scalar: opkitrollup.EncodeScalars(3, 4), OperatorFeeParams: common.Hash{20: 1, 31: 2}, DAFootprintGasScalar: 5}
	after := uint64(10)
	mine, theirs := attrsConfigs(f, &after)
	for _, l2Time := range []uint64{attrsGenesisTime + 10, attrsGenesisTime + 12} {
		dep, _ := mine.L1InfoDepositAt(sys, 3, opkitrollup.L1Origin{Header: h}, l2Time)
		f.Add(dep.Data, l2Time == attrsGenesisTime+12)
	}
	f.Fuzz(func(t *testing.T, data []byte, jovian bool) {
		l2Time := uint64(attrsGenesisTime + 10)
		if jovian {
			l2Time += 2
		}
		block := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(1), Time: l2Time}).
			WithBody(types.Body{Transactions: []*types.Transaction{types.NewTx(&types.DepositTx{To: &opkitrollup.L1BlockAddress, Value: new(big.Int), Data: data})}})
		got, myErr := mine.L1InfoFromBlock(block)
		want, theirErr := derive.L1BlockInfoFromBytes(theirs, l2Time, data)
		if (myErr == nil) != (theirErr == nil) {
			t.Fatalf("opkit error %v, op-node error %v", myErr, theirErr)
		}
		if myErr != nil {
			return
		}
		if got.Number != want.Number || got.Time != want.Time || got.BaseFee.Cmp(want.BaseFee) != 0 || got.BlockHash != want.BlockHash ||
			got.SequenceNumber != want.SequenceNumber || got.BatcherAddr != want.BatcherAddr || got.BlobBaseFee.Cmp(want.BlobBaseFee) != 0 ||
			got.BaseFeeScalar != want.BaseFeeScalar || got.BlobBaseFeeScalar != want.BlobBaseFeeScalar ||
			got.OperatorFeeScalar != want.OperatorFeeScalar || got.OperatorFeeConstant != want.OperatorFeeConstant ||
			got.DAFootprintGasScalar != want.DAFootprintGasScalar {
			t.Fatalf("opkit %+v\nop-node %+v", got, want)
		}
	})
}
