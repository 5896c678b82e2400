package devnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/holiman/uint256"
)

// The dev L1 genesis holds two contract stand-ins at the addresses rollup.json names: a
// SystemConfig and an OptimismPortal. They are not the OP contracts (no proxies, no
// resource metering, no withdrawals); they hold the storage a rollup node reads at start
// and emit the same events, with the same topics and data, as the real contracts do for
// the calls a devnet makes. Their bytecode is assembled below (see l1contracts_asm.go).
var (
	// DepositContractAddress is the OptimismPortal stand-in (rollup.json
	// deposit_contract_address).
	DepositContractAddress = common.HexToAddress("0x00000000000000000000000000000000000d0001")
	// SystemConfigAddress is the SystemConfig stand-in (rollup.json
	// l1_system_config_address).
	SystemConfigAddress = common.HexToAddress("0x00000000000000000000000000000000000d0002")
)

var (
	// ConfigUpdateTopic is topic 0 of SystemConfig's
	// ConfigUpdate(uint256 indexed version, uint8 indexed updateType, bytes data).
	ConfigUpdateTopic = crypto.Keccak256Hash([]byte("ConfigUpdate(uint256,uint8,bytes)"))
	// TransactionDepositedTopic is topic 0 of OptimismPortal's
	// TransactionDeposited(address indexed from, address indexed to, uint256 indexed version, bytes opaqueData).
	TransactionDepositedTopic = crypto.Keccak256Hash([]byte("TransactionDeposited(address,address,uint256,bytes)"))

	// UnsafeBlockSignerSlot is keccak256("systemconfig.unsafeblocksigner"), the SystemConfig
	// slot op-node reads (with a verified storage proof) when it starts.
	UnsafeBlockSignerSlot = crypto.Keccak256Hash([]byte("systemconfig.unsafeblocksigner"))

	depositTransactionSelector = crypto.Keccak256([]byte("depositTransaction(address,uint256,uint64,bool,bytes)"))[:4]
)

// ConfigUpdateType is the SystemConfig UpdateType enum.
type ConfigUpdateType uint8

// The update types SystemConfig emits, in its enum's order.
const (
	UpdateBatcher ConfigUpdateType = iota
	UpdateFeeScalars
	UpdateGasLimit
	UpdateUnsafeBlockSigner
	UpdateEIP1559Params
	UpdateOperatorFeeParams
	UpdateMinBaseFee
	UpdateDAFootprintGasScalar
)

// Portal rules the stand-in enforces as OptimismPortal2 does.
const (
	// ReceiveDefaultGasLimit is the L2 gas of a deposit made by a plain ETH transfer.
	ReceiveDefaultGasLimit = 100_000
	// maxDepositData is the largest deposit calldata the portal accepts.
	maxDepositData = 120_000
	// deposit gas must be at least 21000 + 40 per calldata byte.
	depositBaseGas    = 21_000
	depositGasPerByte = 40
)

// aliasOffset is added to a contract caller's address to make its L2 sender
// (AddressAliasHelper.applyL1ToL2Alias), so L1 contracts cannot pose as L2 accounts.
var aliasOffset = common.HexToAddress("0x1111000000000000000000000000000000001111")

// ApplyL1ToL2Alias is the L2 sender of a deposit made by the L1 contract addr.
func ApplyL1ToL2Alias(addr common.Address) common.Address {
	sum := new(big.Int).Add(new(big.Int).SetBytes(addr[:]), new(big.Int).SetBytes(aliasOffset[:]))
	var out common.Address
	b := sum.Bytes()
	if len(b) > 20 {
		b = b[len(b)-20:] // the sum wraps modulo 2^160
	}
	copy(out[20-len(b):], b)
	return out
}

// systemConfigOwnerSlot holds the one account allowed to emit updates.
var systemConfigOwnerSlot = common.Hash{}

// systemConfigCode: only the owner may call. Calldata is updateType (a 32-byte word,
// < 256) followed by the event's data field exactly as the real contract ABI-encodes it
// (offset 0x20, length, abi.encode(value) padded); the contract emits
// ConfigUpdate(0, updateType, data) with that data, so the Go helpers below own the
// per-type encodings. An unsafe-block-signer update also stores the signer where op-node
// reads it. The contract does not check the data: a malformed update can be emitted on
// purpose, and a rollup node must ignore it.
var systemConfigCode = func() []byte {
	a := newAssembler()
	a.op(vm.CALLER).push(0).op(vm.SLOAD, vm.EQ).jumpIf("owner")
	a.label("revert").push(0).push(0).op(vm.REVERT)
	a.label("owner")
	a.push(32).op(vm.CALLDATASIZE, vm.LT).jumpIf("revert") // calldatasize < 32
	a.op(vm.CALLVALUE).jumpIf("revert")
	a.push(0).op(vm.CALLDATALOAD)                       // type
	a.op(vm.DUP1).push(0xff).op(vm.LT).jumpIf("revert") // 0xff < type
	a.op(vm.DUP1).push(uint64(UpdateUnsafeBlockSigner)).op(vm.EQ, vm.ISZERO).jumpIf("emit")
	a.push(96).op(vm.CALLDATALOAD).pushBytes(UnsafeBlockSignerSlot[:]).op(vm.SSTORE)
	a.label("emit")
	a.push(32).op(vm.CALLDATASIZE, vm.SUB)                                     // type, n
	a.op(vm.DUP1).push(32).push(0).op(vm.CALLDATACOPY)                         // mem[0:n] = calldata[32:]
	a.op(vm.SWAP1).push(0).pushBytes(ConfigUpdateTopic[:]).op(vm.DUP4).push(0) // n, type, 0, topic, n, 0
	a.op(vm.LOG3, vm.STOP)
	return a.bytecode()
}()

// portalCode: a plain ETH transfer (empty calldata) deposits to the sender with
// ReceiveDefaultGasLimit; depositTransaction(address,uint256,uint64,bool,bytes) deposits
// what it is asked. Both emit TransactionDeposited(from, to, 0, opaque) with opaque =
// mint(msg.value) ‖ value ‖ gasLimit u64 ‖ isCreation u8 ‖ data, from = msg.sender for an
// EOA (tx.origin, or a 7702-delegated account) and its L1→L2 alias for a contract. The
// portal's checks are kept: creation with a target, gas below 21000+40/byte, data over
// 120000 bytes and malformed calldata revert. Its gas market (ResourceMetering) is not.
var portalCode = func() []byte {
	a := newAssembler()
	a.op(vm.CALLDATASIZE, vm.ISZERO).jumpIf("receive")
	a.push(164).op(vm.CALLDATASIZE, vm.LT).jumpIf("revert") // 4 + 5 words
	a.push(0).op(vm.CALLDATALOAD).push(224).op(vm.SHR).pushBytes(depositTransactionSelector).op(vm.EQ).jumpIf("deposit")
	a.label("revert").push(0).push(0).op(vm.REVERT)

	// Stack for "common", bottom to top: to, value, gas, isCreation, dataStart, dataLen.
	a.label("receive")
	a.op(vm.CALLER, vm.CALLVALUE).push(ReceiveDefaultGasLimit).push(0).push(0).push(0).jumpTo("common")

	a.label("deposit")
	a.push(4).op(vm.CALLDATALOAD, vm.DUP1).push(160).op(vm.SHR).jumpIf("revert")  // to: an address
	a.push(36).op(vm.CALLDATALOAD)                                                // value
	a.push(68).op(vm.CALLDATALOAD, vm.DUP1).push(64).op(vm.SHR).jumpIf("revert")  // gas: a uint64
	a.push(100).op(vm.CALLDATALOAD, vm.DUP1).push(1).op(vm.LT).jumpIf("revert")   // isCreation: 0 or 1
	a.push(132).op(vm.CALLDATALOAD, vm.DUP1).push(32).op(vm.SHR).jumpIf("revert") // an offset that cannot wrap
	a.push(4).op(vm.ADD)                                                          // o: offset of the length word
	a.op(vm.DUP1).push(32).op(vm.ADD, vm.CALLDATASIZE, vm.LT).jumpIf("revert")    // length word inside calldata
	a.op(vm.DUP1, vm.CALLDATALOAD, vm.SWAP1).push(32).op(vm.ADD, vm.SWAP1)        // start, len
	a.op(vm.DUP1).push(maxDepositData).op(vm.LT).jumpIf("revert")                 // len > 120000
	a.op(vm.DUP1, vm.DUP3, vm.ADD, vm.CALLDATASIZE, vm.LT).jumpIf("revert")       // data inside calldata

	a.label("common")
	a.op(vm.DUP3, vm.DUP7, vm.ISZERO, vm.ISZERO, vm.AND).jumpIf("revert") // creation with a target
	a.push(depositBaseGas).op(vm.DUP2).push(depositGasPerByte).op(vm.MUL, vm.ADD)
	a.op(vm.DUP5, vm.LT).jumpIf("revert") // gas < minimum
	// Event data = abi.encode(bytes opaque): 0x20 ‖ len ‖ opaque, zero-padded.
	a.op(vm.CALLVALUE).push(64).op(vm.MSTORE)
	a.op(vm.DUP5).push(96).op(vm.MSTORE)
	a.op(vm.DUP4).push(192).op(vm.SHL).push(128).op(vm.MSTORE)
	a.op(vm.DUP3).push(136).op(vm.MSTORE8)
	a.op(vm.DUP1, vm.DUP3).push(137).op(vm.CALLDATACOPY)
	a.op(vm.DUP1).push(73).op(vm.ADD) // opaque length
	a.op(vm.DUP1).push(32).op(vm.MSTORE).push(32).push(0).op(vm.MSTORE)
	a.push(31).op(vm.ADD).push(5).op(vm.SHR).push(5).op(vm.SHL).push(64).op(vm.ADD) // size
	// from: the caller, aliased unless it is an EOA.
	a.op(vm.CALLER, vm.CALLER, vm.ORIGIN, vm.EQ).jumpIf("from")
	a.op(vm.CALLER, vm.EXTCODESIZE).push(23).op(vm.EQ, vm.ISZERO).jumpIf("alias")
	a.push(32).push(0).op(vm.DUP4, vm.CALLER, vm.EXTCODECOPY) // scratch at mem[size:]
	a.op(vm.DUP2, vm.MLOAD).push(232).op(vm.SHR).push(0xef0100).op(vm.EQ).jumpIf("from")
	a.label("alias")
	a.pushBytes(aliasOffset[:]).op(vm.ADD).pushBytes(common.MaxAddress[:]).op(vm.AND)
	a.label("from")
	// LOG4(0, size, topic, from, to, version 0).
	a.push(0).op(vm.DUP9, vm.DUP3).pushBytes(TransactionDepositedTopic[:]).op(vm.DUP6).push(0)
	a.op(vm.LOG4, vm.STOP)
	return a.bytecode()
}()

// l1ContractsAlloc is the genesis allocation of the stand-ins.
func l1ContractsAlloc(owner, unsafeSigner common.Address) types.GenesisAlloc {
	return types.GenesisAlloc{
		SystemConfigAddress: {
			Code:    systemConfigCode,
			Balance: new(big.Int),
			Storage: map[common.Hash]common.Hash{
				systemConfigOwnerSlot: common.BytesToHash(owner[:]),
				UnsafeBlockSignerSlot: common.BytesToHash(unsafeSigner[:]),
			},
		},
		DepositContractAddress: {Code: portalCode, Balance: new(big.Int)},
	}
}

// ConfigUpdateData is the data field of a ConfigUpdate event whose value is the ABI
// encoding enc (one or two words): abi.encode(bytes enc).
func ConfigUpdateData(enc []byte) []byte {
	padded := (len(enc) + 31) / 32 * 32
	out := make([]byte, 64+padded)
	out[31] = 0x20
	binary.BigEndian.PutUint64(out[56:64], uint64(len(enc)))
	copy(out[64:], enc)
	return out
}

func word(v *big.Int) []byte { return common.BigToHash(v).Bytes() }

func u64Word(v uint64) []byte { return word(new(big.Int).SetUint64(v)) }

// ConfigUpdateValue is the abi.encode(...) value SystemConfig puts in the event for each
// setter, as in SystemConfig.sol.
var ConfigUpdateValue = struct {
	Batcher            func(batcher common.Address) []byte
	GasConfigEcotone   func(baseFeeScalar, blobBaseFeeScalar uint32) []byte
	GasLimit           func(gasLimit uint64) []byte
	UnsafeBlockSigner  func(signer common.Address) []byte
	EIP1559Params      func(denominator, elasticity uint32) []byte
	OperatorFeeScalars func(scalar uint32, constant uint64) []byte
	MinBaseFee         func(minBaseFee uint64) []byte
	DAFootprintScalar  func(scalar uint16) []byte
}{
	// batcherHash = bytes32(uint256(uint160(batcher))).
	Batcher: func(b common.Address) []byte { return common.BytesToHash(b[:]).Bytes() },
	// abi.encode(overhead, scalar): overhead is zero since Ecotone; scalar is version 1 ‖
	// blob base fee scalar ‖ base fee scalar.
	GasConfigEcotone: func(base, blob uint32) []byte {
		scalar := make([]byte, 32)
		scalar[0] = 1
		binary.BigEndian.PutUint32(scalar[24:28], blob)
		binary.BigEndian.PutUint32(scalar[28:32], base)
		return append(make([]byte, 32), scalar...)
	},
	GasLimit:          u64Word,
	UnsafeBlockSigner: func(s common.Address) []byte { return common.BytesToHash(s[:]).Bytes() },
	EIP1559Params: func(denom, elast uint32) []byte {
		return u64Word(uint64(denom)<<32 | uint64(elast))
	},
	OperatorFeeScalars: func(scalar uint32, constant uint64) []byte {
		v := new(big.Int).Lsh(new(big.Int).SetUint64(uint64(scalar)), 64)
		return word(v.Or(v, new(big.Int).SetUint64(constant)))
	},
	MinBaseFee:        u64Word,
	DAFootprintScalar: func(s uint16) []byte { return u64Word(uint64(s)) },
}

// SystemConfigOwner is the dev account allowed to send config updates (dev account 0).
func (l *L1) SystemConfigOwner() Account { return l.accounts[0] }

// SendConfigUpdate makes the SystemConfig stand-in emit ConfigUpdate(0, kind, data) and
// waits for the transaction's receipt (sealing a block itself when the L1 has no block
// time). data is the event's data field (see ConfigUpdateData).
func (l *L1) SendConfigUpdate(ctx context.Context, kind ConfigUpdateType, data []byte) (*types.Receipt, error) {
	calldata := append(u64Word(uint64(kind)), data...)
	to := SystemConfigAddress
	return l.Transact(ctx, l.SystemConfigOwner(), &to, nil, calldata)
}

// SetBatcher emits a batcher-address update.
func (l *L1) SetBatcher(ctx context.Context, batcher common.Address) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateBatcher, ConfigUpdateData(ConfigUpdateValue.Batcher(batcher)))
}

// SetGasConfigEcotone emits a fee-scalars update.
func (l *L1) SetGasConfigEcotone(ctx context.Context, baseFeeScalar, blobBaseFeeScalar uint32) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateFeeScalars, ConfigUpdateData(ConfigUpdateValue.GasConfigEcotone(baseFeeScalar, blobBaseFeeScalar)))
}

// SetGasLimit emits a gas-limit update.
func (l *L1) SetGasLimit(ctx context.Context, gasLimit uint64) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateGasLimit, ConfigUpdateData(ConfigUpdateValue.GasLimit(gasLimit)))
}

// SetUnsafeBlockSigner emits an unsafe-block-signer update and stores the signer.
func (l *L1) SetUnsafeBlockSigner(ctx context.Context, signer common.Address) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateUnsafeBlockSigner, ConfigUpdateData(ConfigUpdateValue.UnsafeBlockSigner(signer)))
}

// SetEIP1559Params emits an EIP-1559 parameters update.
func (l *L1) SetEIP1559Params(ctx context.Context, denominator, elasticity uint32) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateEIP1559Params, ConfigUpdateData(ConfigUpdateValue.EIP1559Params(denominator, elasticity)))
}

// SetOperatorFeeScalars emits an operator-fee update.
func (l *L1) SetOperatorFeeScalars(ctx context.Context, scalar uint32, constant uint64) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateOperatorFeeParams, ConfigUpdateData(ConfigUpdateValue.OperatorFeeScalars(scalar, constant)))
}

// SetMinBaseFee emits a minimum-base-fee update.
func (l *L1) SetMinBaseFee(ctx context.Context, minBaseFee uint64) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateMinBaseFee, ConfigUpdateData(ConfigUpdateValue.MinBaseFee(minBaseFee)))
}

// SetDAFootprintGasScalar emits a DA-footprint gas scalar update.
func (l *L1) SetDAFootprintGasScalar(ctx context.Context, scalar uint16) (*types.Receipt, error) {
	return l.SendConfigUpdate(ctx, UpdateDAFootprintGasScalar, ConfigUpdateData(ConfigUpdateValue.DAFootprintScalar(scalar)))
}

// Deposit is an OptimismPortal.depositTransaction call.
type Deposit struct {
	To         common.Address
	Mint       *big.Int // ETH sent with the call, minted on L2; nil is zero
	Value      *big.Int // L2 value; nil is zero
	GasLimit   uint64
	IsCreation bool
	Data       []byte
}

// DepositCalldata is the ABI calldata of depositTransaction(to, value, gasLimit,
// isCreation, data).
func DepositCalldata(d Deposit) []byte {
	value := d.Value
	if value == nil {
		value = new(big.Int)
	}
	out := append([]byte(nil), depositTransactionSelector...)
	out = append(out, common.BytesToHash(d.To[:]).Bytes()...)
	out = append(out, word(value)...)
	out = append(out, u64Word(d.GasLimit)...)
	creation := uint64(0)
	if d.IsCreation {
		creation = 1
	}
	out = append(out, u64Word(creation)...)
	out = append(out, u64Word(5*32)...)
	return append(out, ConfigUpdateData(d.Data)[32:]...) // length ‖ data, padded
}

// SendDeposit calls depositTransaction from a dev account and waits for the receipt.
func (l *L1) SendDeposit(ctx context.Context, from Account, d Deposit) (*types.Receipt, error) {
	to := DepositContractAddress
	return l.Transact(ctx, from, &to, d.Mint, DepositCalldata(d))
}

// BridgeETH sends amount to the portal in a plain transfer: a deposit of amount to the
// sender's own L2 address.
func (l *L1) BridgeETH(ctx context.Context, from Account, amount *big.Int) (*types.Receipt, error) {
	to := DepositContractAddress
	return l.Transact(ctx, from, &to, amount, nil)
}

// Transact signs and sends a dynamic-fee transaction from a dev account (gas estimated)
// and waits for its receipt; when the L1 has no block time it seals the block itself. A
// reverted transaction is returned with its receipt and an error.
func (l *L1) Transact(ctx context.Context, from Account, to *common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	if value == nil {
		value = new(big.Int)
	}
	return l.send(ctx, from, func(client *ethclient.Client, nonce uint64, tip, feeCap *big.Int) (types.TxData, error) {
		gas, err := client.EstimateGas(ctx, ethereum.CallMsg{From: from.Address, To: to, Value: value, Data: data})
		if err != nil {
			return nil, fmt.Errorf("estimate gas: %w", err)
		}
		return &types.DynamicFeeTx{ChainID: l.ChainConfig().ChainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
			Gas: gas + gas/4, To: to, Value: value, Data: data}, nil
	})
}

// SendBlobs sends a blob transaction carrying blobs (at most 6) from a dev account to
// to, with a version-1 (cell proof) sidecar as the Osaka L1 requires, and waits for its
// receipt.
func (l *L1) SendBlobs(ctx context.Context, from Account, to common.Address, blobs []kzg4844.Blob) (*types.Receipt, error) {
	sidecar, err := BlobSidecar(blobs)
	if err != nil {
		return nil, err
	}
	return l.send(ctx, from, func(_ *ethclient.Client, nonce uint64, tip, feeCap *big.Int) (types.TxData, error) {
		return &types.BlobTx{ChainID: uint256.MustFromBig(l.ChainConfig().ChainID), Nonce: nonce,
			GasTipCap: uint256.MustFromBig(tip), GasFeeCap: uint256.MustFromBig(feeCap), Gas: 21_000, To: to,
			BlobFeeCap: uint256.NewInt(1e10), BlobHashes: sidecar.BlobHashes(), Sidecar: sidecar}, nil
	})
}

// BlobSidecar makes the version-1 sidecar (commitments and cell proofs) of blobs. Cell
// proofs are costly, so a blob that appears twice is computed once.
func BlobSidecar(blobs []kzg4844.Blob) (*types.BlobTxSidecar, error) {
	commitments := make([]kzg4844.Commitment, len(blobs))
	var proofs []kzg4844.Proof
	seen := map[kzg4844.Blob]int{}
	for i := range blobs {
		if j, ok := seen[blobs[i]]; ok {
			commitments[i] = commitments[j]
			proofs = append(proofs, proofs[j*kzg4844.CellProofsPerBlob:(j+1)*kzg4844.CellProofsPerBlob]...)
			continue
		}
		c, err := kzg4844.BlobToCommitment(&blobs[i])
		if err != nil {
			return nil, fmt.Errorf("blob %d commitment: %w", i, err)
		}
		p, err := kzg4844.ComputeCellProofs(&blobs[i])
		if err != nil {
			return nil, fmt.Errorf("blob %d cell proofs: %w", i, err)
		}
		seen[blobs[i]] = i
		commitments[i] = c
		proofs = append(proofs, p...)
	}
	return types.NewBlobTxSidecar(types.BlobSidecarVersion1, blobs, commitments, proofs), nil
}

// send signs the transaction build makes and waits for its receipt.
func (l *L1) send(ctx context.Context, from Account, build func(client *ethclient.Client, nonce uint64, tip, feeCap *big.Int) (types.TxData, error)) (*types.Receipt, error) {
	client := ethclient.NewClient(l.client.stack.Attach())
	defer client.Close()
	nonce, err := client.PendingNonceAt(ctx, from.Address)
	if err != nil {
		return nil, fmt.Errorf("nonce of %s: %w", from.Address, err)
	}
	tip := big.NewInt(1e9)
	feeCap := new(big.Int).Add(new(big.Int).Mul(l.Head().BaseFee, big.NewInt(2)), tip)
	txdata, err := build(client, nonce, tip, feeCap)
	if err != nil {
		return nil, err
	}
	tx, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(l.ChainConfig().ChainID), txdata)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if err := client.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	return l.waitReceipt(ctx, client, tx)
}

// waitReceipt waits for tx to be in a block, sealing blocks when the L1 seals only on
// demand.
func (l *L1) waitReceipt(ctx context.Context, client *ethclient.Client, tx *types.Transaction) (*types.Receipt, error) {
	for {
		if l.cfg.BlockTime == 0 {
			if _, err := l.Mine(); err != nil {
				return nil, err
			}
		}
		rcpt, err := client.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if rcpt.Status != types.ReceiptStatusSuccessful {
				return rcpt, fmt.Errorf("transaction %s reverted", tx.Hash())
			}
			return rcpt, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for %s: %w", tx.Hash(), errors.Join(err, ctx.Err()))
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
