package devnet

import (
	"bytes"
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/holiman/uint256"
)

func TestStandInAddressesMatchPlanL2(t *testing.T) {
	l1 := startTestL1(t, L1Config{})
	_, cfg, err := PlanL2(ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DepositContractAddress != DepositContractAddress || cfg.L1SystemConfigAddress != SystemConfigAddress {
		t.Fatalf("rollup.json names portal %s and SystemConfig %s; the L1 holds them at %s and %s",
			cfg.DepositContractAddress, cfg.L1SystemConfigAddress, DepositContractAddress, SystemConfigAddress)
	}
}

func TestSystemConfigStandIn(t *testing.T) {
	l1 := startTestL1(t, L1Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(ctx, l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// The signer slot is readable, and provable, at genesis.
	var proof struct {
		StorageProof []struct {
			Value *hexutil.Big `json:"value"`
		} `json:"storageProof"`
		AccountProof []hexutil.Bytes `json:"accountProof"`
	}
	if err := client.Client().CallContext(ctx, &proof, "eth_getProof", SystemConfigAddress, []common.Hash{UnsafeBlockSignerSlot}, "latest"); err != nil {
		t.Fatal(err)
	}
	if common.BigToAddress(proof.StorageProof[0].Value.ToInt()) != l1.Accounts()[0].Address || len(proof.AccountProof) == 0 {
		t.Fatalf("signer slot %v", proof.StorageProof[0].Value)
	}

	newSigner := common.Address{0x5e}
	for _, tc := range []struct {
		name string
		kind ConfigUpdateType
		send func() (*types.Receipt, error)
		want []byte
	}{
		{"batcher", UpdateBatcher, func() (*types.Receipt, error) { return l1.SetBatcher(ctx, common.Address{0xba}) }, common.LeftPadBytes([]byte{0xba, 19: 0}, 32)},
		{"gas limit", UpdateGasLimit, func() (*types.Receipt, error) { return l1.SetGasLimit(ctx, 30_000_000) }, common.LeftPadBytes(big.NewInt(30_000_000).Bytes(), 32)},
		{"signer", UpdateUnsafeBlockSigner, func() (*types.Receipt, error) { return l1.SetUnsafeBlockSigner(ctx, newSigner) }, common.LeftPadBytes(newSigner[:], 32)},
		{"eip1559", UpdateEIP1559Params, func() (*types.Receipt, error) { return l1.SetEIP1559Params(ctx, 250, 6) }, common.LeftPadBytes([]byte{0, 0, 0, 250, 0, 0, 0, 6}, 32)},
	} {
		rcpt, err := tc.send()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(rcpt.Logs) != 1 {
			t.Fatalf("%s: %d logs", tc.name, len(rcpt.Logs))
		}
		lg := rcpt.Logs[0]
		if lg.Address != SystemConfigAddress || len(lg.Topics) != 3 || lg.Topics[0] != ConfigUpdateTopic ||
			lg.Topics[1] != (common.Hash{}) || lg.Topics[2] != common.BigToHash(big.NewInt(int64(tc.kind))) {
			t.Fatalf("%s: log %+v", tc.name, lg)
		}
		if !bytes.Equal(lg.Data, ConfigUpdateData(tc.want)) || len(lg.Data) != 96 {
			t.Fatalf("%s: data %x", tc.name, lg.Data)
		}
	}
	got, err := client.StorageAt(ctx, SystemConfigAddress, UnsafeBlockSignerSlot, nil)
	if err != nil || common.BytesToAddress(got) != newSigner {
		t.Fatalf("signer slot after the update %x, %v", got, err)
	}
	// Two-word value: abi.encode(overhead 0, scalar).
	rcpt, err := l1.SetGasConfigEcotone(ctx, 1368, 810949)
	if err != nil {
		t.Fatal(err)
	}
	if d := rcpt.Logs[0].Data; len(d) != 128 || d[63] != 64 || d[96] != 1 || new(big.Int).SetBytes(d[124:128]).Uint64() != 1368 || new(big.Int).SetBytes(d[120:124]).Uint64() != 810949 {
		t.Fatalf("fee scalars data %x", d)
	}
	// Only the owner may emit.
	to := SystemConfigAddress
	if _, err := l1.Transact(ctx, l1.Accounts()[5], &to, nil, append(u64Word(2), ConfigUpdateData(u64Word(1))...)); err == nil {
		t.Fatal("a non-owner emitted a config update")
	}
}

// depositLog checks a TransactionDeposited log and returns its opaque data.
func depositLog(t *testing.T, rcpt *types.Receipt, from, to common.Address) []byte {
	t.Helper()
	if len(rcpt.Logs) != 1 {
		t.Fatalf("%d logs", len(rcpt.Logs))
	}
	lg := rcpt.Logs[0]
	if lg.Address != DepositContractAddress || len(lg.Topics) != 4 || lg.Topics[0] != TransactionDepositedTopic ||
		lg.Topics[1] != common.BytesToHash(from[:]) || lg.Topics[2] != common.BytesToHash(to[:]) || lg.Topics[3] != (common.Hash{}) {
		t.Fatalf("log topics %v, want from %s to %s", lg.Topics, from, to)
	}
	if len(lg.Data) < 64 || lg.Data[31] != 0x20 || len(lg.Data)%32 != 0 {
		t.Fatalf("log data %x", lg.Data)
	}
	n := new(big.Int).SetBytes(lg.Data[32:64]).Uint64()
	if uint64(len(lg.Data)) != 64+(n+31)/32*32 || !bytes.Equal(lg.Data[64+n:], make([]byte, len(lg.Data)-64-int(n))) {
		t.Fatalf("log data %x: length %d, or padding not zero", lg.Data, n)
	}
	return lg.Data[64 : 64+n]
}

func opaque(mint, value *big.Int, gas uint64, creation bool, data []byte) []byte {
	out := append(word(mint), word(value)...)
	out = append(out, new(big.Int).SetUint64(gas).FillBytes(make([]byte, 8))...)
	if creation {
		out = append(out, 1)
	} else {
		out = append(out, 0)
	}
	return append(out, data...)
}

// forwarderCode calls the portal with its own calldata and value, reverting if that does.
var forwarderCode = func() []byte {
	a := newAssembler()
	a.op(vm.CALLDATASIZE).push(0).push(0).op(vm.CALLDATACOPY)
	a.push(0).push(0).op(vm.CALLDATASIZE).push(0).op(vm.CALLVALUE).pushBytes(DepositContractAddress[:]).op(vm.GAS, vm.CALL)
	a.jumpIf("ok").push(0).push(0).op(vm.REVERT)
	a.label("ok").op(vm.STOP)
	return a.bytecode()
}()

func TestPortalStandIn(t *testing.T) {
	l1 := startTestL1(t, L1Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	user := l1.Accounts()[6]

	rcpt, err := l1.BridgeETH(ctx, user, big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := depositLog(t, rcpt, user.Address, user.Address), opaque(big.NewInt(1e18), big.NewInt(1e18), ReceiveDefaultGasLimit, false, nil); !bytes.Equal(got, want) {
		t.Fatalf("plain transfer opaque %x, want %x", got, want)
	}

	data := bytes.Repeat([]byte{0xab}, 45)
	d := Deposit{To: common.Address{0x77}, Mint: big.NewInt(5), Value: big.NewInt(3), GasLimit: 500_000, Data: data}
	rcpt, err = l1.SendDeposit(ctx, user, d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := depositLog(t, rcpt, user.Address, d.To), opaque(d.Mint, d.Value, d.GasLimit, false, data); !bytes.Equal(got, want) {
		t.Fatalf("depositTransaction opaque %x, want %x", got, want)
	}
	rcpt, err = l1.SendDeposit(ctx, user, Deposit{IsCreation: true, GasLimit: 1_000_000, Data: initCode(storeRuntime)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := depositLog(t, rcpt, user.Address, common.Address{}), opaque(new(big.Int), new(big.Int), 1_000_000, true, initCode(storeRuntime)); !bytes.Equal(got, want) {
		t.Fatalf("creation opaque %x, want %x", got, want)
	}

	for name, bad := range map[string]Deposit{
		"creation with a target": {To: common.Address{1}, IsCreation: true, GasLimit: 1_000_000},
		"gas below the minimum":  {To: common.Address{1}, GasLimit: 21_000 + 40*10 - 1, Data: make([]byte, 10)},
		"data too large":         {To: common.Address{1}, GasLimit: 10_000_000, Data: make([]byte, 120_001)},
	} {
		to := DepositContractAddress
		if _, err := l1.Transact(ctx, user, &to, nil, DepositCalldata(bad)); err == nil {
			t.Fatalf("%s: the portal accepted it", name)
		}
	}
	to := DepositContractAddress
	if _, err := l1.Transact(ctx, user, &to, nil, DepositCalldata(d)[:100]); err == nil {
		t.Fatal("the portal accepted short calldata")
	}

	// A contract caller's deposits come from its alias.
	deploy, err := l1.Transact(ctx, user, nil, nil, initCode(forwarderCode))
	if err != nil {
		t.Fatal(err)
	}
	fwd := deploy.ContractAddress
	rcpt, err = l1.Transact(ctx, user, &fwd, big.NewInt(9), DepositCalldata(Deposit{To: common.Address{0x78}, GasLimit: 100_000}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := depositLog(t, rcpt, ApplyL1ToL2Alias(fwd), common.Address{0x78}), opaque(big.NewInt(9), new(big.Int), 100_000, false, nil); !bytes.Equal(got, want) {
		t.Fatalf("aliased opaque %x, want %x", got, want)
	}
	if ApplyL1ToL2Alias(fwd) == fwd {
		t.Fatal("alias is the identity")
	}
}

func TestApplyL1ToL2AliasWraps(t *testing.T) {
	max := common.MaxAddress
	if got, want := ApplyL1ToL2Alias(max), common.HexToAddress("0x1111000000000000000000000000000000001110"); got != want {
		t.Fatalf("alias of 0xff..ff = %s, want %s", got, want)
	}
	if got := ApplyL1ToL2Alias(common.Address{}); got != aliasOffset {
		t.Fatalf("alias of zero = %s", got)
	}
}

// runStandIn executes a stand-in's code from an EOA (origin = caller) in a bare EVM with
// the dev L1's rules, and returns the logs, or the error of a revert.
func runStandIn(t *testing.T, code, calldata []byte, value *big.Int, storage map[common.Hash]common.Hash) ([]*types.Log, error) {
	t.Helper()
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	origin := DevAccounts(1)[0].Address
	st.SetBalance(origin, uint256.MustFromBig(devBalance), tracing.BalanceChangeUnspecified)
	contract := common.Address{0xc0}
	st.SetCode(contract, code, tracing.CodeChangeUnspecified)
	for k, v := range storage {
		st.SetState(contract, k, v)
	}
	cfg := &runtime.Config{ChainConfig: core.DeveloperGenesisBlock(30_000_000, nil).Config, Origin: origin, Value: value,
		State: st, GasLimit: 30_000_000, BlockNumber: big.NewInt(1), Time: 1, Random: &common.Hash{}}
	if _, _, err := runtime.Call(contract, calldata, cfg); err != nil {
		return nil, err
	}
	return st.Logs(), nil
}

// FuzzPortalStandIn: for any deposit, the portal's bytecode accepts exactly what
// OptimismPortal2 accepts and emits the event the Go encoder predicts.
func FuzzPortalStandIn(f *testing.F) {
	f.Fuzz(func(t *testing.T, to []byte, mint, value, gas uint64, creation bool, data []byte) {
		d := Deposit{To: common.BytesToAddress(to), Mint: new(big.Int).SetUint64(mint), Value: new(big.Int).SetUint64(value),
			GasLimit: gas, IsCreation: creation, Data: data}
		logs, err := runStandIn(t, portalCode, DepositCalldata(d), d.Mint, nil)
		valid := !(creation && d.To != (common.Address{})) && gas >= depositBaseGas+depositGasPerByte*uint64(len(data)) && len(data) <= maxDepositData
		if valid != (err == nil) {
			t.Fatalf("deposit %+v: accepted %v, the portal would %v (err %v)", d, err == nil, valid, err)
		}
		if !valid {
			return
		}
		from := DevAccounts(1)[0].Address
		if len(logs) != 1 || len(logs[0].Topics) != 4 || logs[0].Topics[0] != TransactionDepositedTopic ||
			logs[0].Topics[1] != common.BytesToHash(from[:]) || logs[0].Topics[2] != common.BytesToHash(d.To[:]) || logs[0].Topics[3] != (common.Hash{}) {
			t.Fatalf("deposit %+v: logs %+v", d, logs)
		}
		if want := ConfigUpdateData(opaque(d.Mint, d.Value, gas, creation, data)); !bytes.Equal(logs[0].Data, want) {
			t.Fatalf("deposit %+v: data %x, want %x", d, logs[0].Data, want)
		}
	})
}

// FuzzSystemConfigStandIn: any update the owner sends is emitted as sent; types above 255
// and short calldata revert.
func FuzzSystemConfigStandIn(f *testing.F) {
	owner := DevAccounts(1)[0].Address
	storage := map[common.Hash]common.Hash{systemConfigOwnerSlot: common.BytesToHash(owner[:])}
	f.Fuzz(func(t *testing.T, kind uint16, payload []byte) {
		calldata := append(u64Word(uint64(kind)), payload...)
		logs, err := runStandIn(t, systemConfigCode, calldata, nil, storage)
		if (kind < 256) != (err == nil) {
			t.Fatalf("type %d: err %v", kind, err)
		}
		if err != nil {
			return
		}
		if len(logs) != 1 || len(logs[0].Topics) != 3 || logs[0].Topics[0] != ConfigUpdateTopic || logs[0].Topics[1] != (common.Hash{}) ||
			logs[0].Topics[2] != common.BigToHash(big.NewInt(int64(kind))) || !bytes.Equal(logs[0].Data, payload) {
			t.Fatalf("type %d payload %x: logs %+v", kind, payload, logs)
		}
	})
}
