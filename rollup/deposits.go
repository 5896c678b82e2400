package rollup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// DepositTopic is topic 0 of the deposit contract's
// TransactionDeposited(address indexed from, address indexed to, uint256 indexed version, bytes opaqueData) event.
var DepositTopic = crypto.Keccak256Hash([]byte("TransactionDeposited(address,address,uint256,bytes)"))

// userDepositSourceDomain tags user deposits in their source hash.
const userDepositSourceDomain = 0

// ErrBadDepositLog wraps the reasons a TransactionDeposited log cannot be decoded. Unlike
// a bad config update, a bad deposit cannot be stepped over: the L1 portal took the user's
// funds, so the chain must not move on without it.
var ErrBadDepositLog = errors.New("malformed TransactionDeposited log")

// depositV0FixedLen is mint (32) ‖ value (32) ‖ gas (8) ‖ isCreation (1).
const depositV0FixedLen = 32 + 32 + 8 + 1

// UserDepositSourceHash is keccak256(domain 0 ‖ keccak256(L1 block hash ‖ log index)): the
// log's position on L1 makes the deposit unique.
func UserDepositSourceHash(l1Hash common.Hash, logIndex uint64) common.Hash {
	return l1SourceHash(userDepositSourceDomain, l1Hash, logIndex)
}

// UserDeposits decodes, in L1 order, the deposits the portal logged in the successful
// receipts of one L1 block. The logs must carry their block hash and index, as receipts
// fetched from a node do. Any malformed deposit log makes the whole result an error
// wrapping ErrBadDepositLog; the deposits that did decode are returned with it.
func UserDeposits(receipts types.Receipts, portal common.Address) ([]*types.DepositTx, error) {
	var out []*types.DepositTx
	var errs error
	for i, rec := range receipts {
		if rec.Status != types.ReceiptStatusSuccessful {
			continue
		}
		for j, lg := range rec.Logs {
			if lg.Address != portal || len(lg.Topics) == 0 || lg.Topics[0] != DepositTopic {
				continue
			}
			dep, err := UnmarshalDepositLog(lg)
			if err != nil {
				errs = errors.Join(errs, fmt.Errorf("receipt %d log %d: %w", i, j, err))
				continue
			}
			out = append(out, dep)
		}
	}
	return out, errs
}

// UnmarshalDepositLog decodes one TransactionDeposited log of version 0. The event data is
// abi.encode(bytes opaqueData) with opaqueData = mint u256 ‖ value u256 ‖ gas u64 ‖
// isCreation u8 ‖ calldata, packed; the ABI wrapper must be minimal (offset 32, the
// length within the data, less than one word of padding).
func UnmarshalDepositLog(lg *types.Log) (*types.DepositTx, error) {
	bad := func(format string, args ...any) (*types.DepositTx, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadDepositLog, fmt.Sprintf(format, args...))
	}
	if len(lg.Topics) != 4 {
		return bad("%d topics, want 4", len(lg.Topics))
	}
	if lg.Topics[0] != DepositTopic {
		return bad("topic %s is not TransactionDeposited", lg.Topics[0])
	}
	data := lg.Data
	if len(data) < 64 {
		return bad("%d bytes of data, less than the ABI header", len(data))
	}
	if len(data)%32 != 0 {
		return bad("%d bytes of data, not whole words", len(data))
	}
	if !allZero(data[:24]) || binary.BigEndian.Uint64(data[24:32]) != 32 {
		return bad("opaqueData offset is not 32")
	}
	rest := uint64(len(data) - 64)
	if !allZero(data[32:56]) {
		return bad("opaqueData length does not fit 64 bits")
	}
	n := binary.BigEndian.Uint64(data[56:64])
	if n > rest || n+32 <= rest {
		return bad("opaqueData length %d with %d bytes after the header", n, rest)
	}
	if lg.Topics[3] != (common.Hash{}) {
		return bad("unknown version %s", lg.Topics[3])
	}
	opaque := data[64 : 64+n]
	if len(opaque) < depositV0FixedLen {
		return bad("version 0 opaqueData of %d bytes, want at least %d", len(opaque), depositV0FixedLen)
	}
	dep := &types.DepositTx{
		SourceHash: UserDepositSourceHash(lg.BlockHash, uint64(lg.Index)),
		From:       common.BytesToAddress(lg.Topics[1][12:]),
		Value:      new(big.Int).SetBytes(opaque[32:64]),
		Gas:        binary.BigEndian.Uint64(opaque[64:72]),
		Data:       opaque[depositV0FixedLen:],
	}
	if mint := new(big.Int).SetBytes(opaque[:32]); mint.Sign() != 0 {
		dep.Mint = mint
	}
	// Any non-zero isCreation byte means a contract creation.
	if opaque[72] == 0 {
		to := common.BytesToAddress(lg.Topics[2][12:])
		dep.To = &to
	}
	return dep, nil
}

// MarshalDepositLog encodes dep as the portal's version-0 TransactionDeposited log (block
// hash and index left zero): what a test L1 contract emits for a deposit.
func MarshalDepositLog(portal common.Address, dep *types.DepositTx) (*types.Log, error) {
	opaque := make([]byte, depositV0FixedLen, depositV0FixedLen+len(dep.Data))
	if dep.Mint != nil {
		if dep.Mint.Sign() < 0 || dep.Mint.BitLen() > 256 {
			return nil, fmt.Errorf("mint %v does not fit a uint256", dep.Mint)
		}
		dep.Mint.FillBytes(opaque[:32])
	}
	if dep.Value == nil || dep.Value.Sign() < 0 || dep.Value.BitLen() > 256 {
		return nil, fmt.Errorf("value %v does not fit a uint256", dep.Value)
	}
	dep.Value.FillBytes(opaque[32:64])
	binary.BigEndian.PutUint64(opaque[64:72], dep.Gas)
	var to common.Hash
	if dep.To == nil {
		opaque[72] = 1
	} else {
		to = common.BytesToHash(dep.To[:])
	}
	opaque = append(opaque, dep.Data...)
	data := make([]byte, 64, 64+len(opaque)+31)
	binary.BigEndian.PutUint64(data[24:32], 32)
	binary.BigEndian.PutUint64(data[56:64], uint64(len(opaque)))
	data = append(data, opaque...)
	if r := len(data) % 32; r != 0 {
		data = append(data, make([]byte, 32-r)...)
	}
	return &types.Log{
		Address: portal,
		Topics:  []common.Hash{DepositTopic, common.BytesToHash(dep.From[:]), to, {}},
		Data:    data,
	}, nil
}
