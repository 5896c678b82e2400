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

var (
	// L1BlockAddress is the L1Block predeploy the L1-attributes deposit calls.
	L1BlockAddress = common.HexToAddress("0x4200000000000000000000000000000000000015")
	// L1InfoDepositor is the system address the deposit is sent from.
	L1InfoDepositor = common.HexToAddress("0xdeaddeaddeaddeaddeaddeaddeaddeaddead0001")
	// SequencerFeeVault receives L2 priority fees; it is every block's fee recipient.
	SequencerFeeVault = common.HexToAddress("0x4200000000000000000000000000000000000011")
	// L2ToL1MessagePasser's storage root is the output root's withdrawal root, and from
	// Isthmus on the block header's withdrawalsRoot.
	L2ToL1MessagePasser = common.HexToAddress("0x4200000000000000000000000000000000000016")

	// isthmusSelector is setL1BlockValuesIsthmus().
	isthmusSelector = crypto.Keccak256([]byte("setL1BlockValuesIsthmus()"))[:4]
	// jovianSelector is setL1BlockValuesJovian().
	jovianSelector = crypto.Keccak256([]byte("setL1BlockValuesJovian()"))[:4]
)

const (
	// L1InfoIsthmusLen is the calldata size: selector, the Ecotone fields packed into five
	// words, then the operator fee scalar (4) and constant (8).
	L1InfoIsthmusLen = 4 + 32*5 + 4 + 8
	// L1InfoJovianLen adds the DA footprint gas scalar (2) to the Isthmus layout.
	L1InfoJovianLen = L1InfoIsthmusLen + 2
	// DAFootprintGasScalarDefault replaces a zero DA footprint gas scalar in the Jovian
	// deposit: a SystemConfig that never set one still gets a working DA footprint limit.
	DAFootprintGasScalarDefault = 400
	// l1InfoGas is the gas of the deposit since Regolith: real gas, no system-tx exemption.
	l1InfoGas = 1_000_000
	// l1InfoSourceDomain tags L1-attributes deposits in their source hash.
	l1InfoSourceDomain = 1
)

// ErrInvalidL1Info is returned for calldata that is not an Isthmus or Jovian L1-attributes
// call.
var ErrInvalidL1Info = errors.New("invalid L1-attributes calldata")

// L1BlockInfo is what the L1-attributes deposit tells the L1Block predeploy.
type L1BlockInfo struct {
	Number    uint64
	Time      uint64
	BaseFee   *big.Int
	BlockHash common.Hash
	// SequenceNumber is the L2 block's distance from the first block of its epoch.
	SequenceNumber      uint64
	BatcherAddr         common.Address
	BlobBaseFee         *big.Int
	BaseFeeScalar       uint32
	BlobBaseFeeScalar   uint32
	OperatorFeeScalar   uint32
	OperatorFeeConstant uint64
	// DAFootprintGasScalar is carried from Jovian's second block on; zero before.
	DAFootprintGasScalar uint16
}

// MarshalIsthmus encodes the setL1BlockValuesIsthmus() calldata: the fields are packed
// big-endian with no ABI padding except the two uint256 fees, the hash and the batcher,
// which occupy full words (the batcher left-padded, as the SystemConfig's batcherHash).
func (i *L1BlockInfo) MarshalIsthmus() ([]byte, error) {
	return i.appendIsthmusFields(append(make([]byte, 0, L1InfoIsthmusLen), isthmusSelector...))
}

// MarshalJovian encodes the setL1BlockValuesJovian() calldata: the Isthmus fields, then
// the DA footprint gas scalar as a big-endian uint16. The scalar is written as given; the
// zero-means-default rule belongs to the deposit builder.
func (i *L1BlockInfo) MarshalJovian() ([]byte, error) {
	buf, err := i.appendIsthmusFields(append(make([]byte, 0, L1InfoJovianLen), jovianSelector...))
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint16(buf, i.DAFootprintGasScalar), nil
}

func (i *L1BlockInfo) appendIsthmusFields(buf []byte) ([]byte, error) {
	buf = binary.BigEndian.AppendUint32(buf, i.BaseFeeScalar)
	buf = binary.BigEndian.AppendUint32(buf, i.BlobBaseFeeScalar)
	buf = binary.BigEndian.AppendUint64(buf, i.SequenceNumber)
	buf = binary.BigEndian.AppendUint64(buf, i.Time)
	buf = binary.BigEndian.AppendUint64(buf, i.Number)
	for _, v := range []*big.Int{i.BaseFee, i.blobBaseFee()} {
		if v == nil || v.Sign() < 0 || v.BitLen() > 256 {
			return nil, fmt.Errorf("%w: fee %v does not fit a uint256", ErrInvalidL1Info, v)
		}
		var w [32]byte
		v.FillBytes(w[:])
		buf = append(buf, w[:]...)
	}
	buf = append(buf, i.BlockHash[:]...)
	buf = append(buf, common.LeftPadBytes(i.BatcherAddr[:], 32)...)
	buf = binary.BigEndian.AppendUint32(buf, i.OperatorFeeScalar)
	buf = binary.BigEndian.AppendUint64(buf, i.OperatorFeeConstant)
	return buf, nil
}

// blobBaseFee defaults to 1, EIP-4844's minimum, when L1 has no blob fee.
func (i *L1BlockInfo) blobBaseFee() *big.Int {
	if i.BlobBaseFee == nil {
		return big.NewInt(1)
	}
	return i.BlobBaseFee
}

// UnmarshalL1InfoIsthmus decodes setL1BlockValuesIsthmus() calldata.
func UnmarshalL1InfoIsthmus(data []byte) (*L1BlockInfo, error) {
	if len(data) != L1InfoIsthmusLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidL1Info, len(data), L1InfoIsthmusLen)
	}
	if string(data[:4]) != string(isthmusSelector) {
		return nil, fmt.Errorf("%w: selector %x is not setL1BlockValuesIsthmus()", ErrInvalidL1Info, data[:4])
	}
	return readIsthmusFields(data[4:])
}

// UnmarshalL1InfoJovian decodes setL1BlockValuesJovian() calldata.
func UnmarshalL1InfoJovian(data []byte) (*L1BlockInfo, error) {
	if len(data) != L1InfoJovianLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidL1Info, len(data), L1InfoJovianLen)
	}
	if string(data[:4]) != string(jovianSelector) {
		return nil, fmt.Errorf("%w: selector %x is not setL1BlockValuesJovian()", ErrInvalidL1Info, data[:4])
	}
	i, err := readIsthmusFields(data[4 : L1InfoJovianLen-2])
	if err != nil {
		return nil, err
	}
	i.DAFootprintGasScalar = binary.BigEndian.Uint16(data[L1InfoJovianLen-2:])
	return i, nil
}

// UnmarshalL1Info decodes either layout, chosen by the selector. It is for readers that
// only want the L1 origin; the fork rules (which layout a block must carry) are checked
// by Config.L1InfoFromBlock.
func UnmarshalL1Info(data []byte) (*L1BlockInfo, error) {
	if len(data) >= 4 && string(data[:4]) == string(jovianSelector) {
		return UnmarshalL1InfoJovian(data)
	}
	return UnmarshalL1InfoIsthmus(data)
}

func readIsthmusFields(d []byte) (*L1BlockInfo, error) {
	i := &L1BlockInfo{
		BaseFeeScalar:     binary.BigEndian.Uint32(d[0:4]),
		BlobBaseFeeScalar: binary.BigEndian.Uint32(d[4:8]),
		SequenceNumber:    binary.BigEndian.Uint64(d[8:16]),
		Time:              binary.BigEndian.Uint64(d[16:24]),
		Number:            binary.BigEndian.Uint64(d[24:32]),
		BaseFee:           new(big.Int).SetBytes(d[32:64]),
		BlobBaseFee:       new(big.Int).SetBytes(d[64:96]),
		BlockHash:         common.BytesToHash(d[96:128]),
	}
	if !allZero(d[128:140]) {
		return nil, fmt.Errorf("%w: batcher word has non-zero padding", ErrInvalidL1Info)
	}
	i.BatcherAddr = common.BytesToAddress(d[140:160])
	i.OperatorFeeScalar = binary.BigEndian.Uint32(d[160:164])
	i.OperatorFeeConstant = binary.BigEndian.Uint64(d[164:172])
	return i, nil
}

// L1InfoSourceHash is the deposit's source hash: keccak256(domain 1 ‖ keccak256(L1 block
// hash ‖ sequence number)), which makes each L2 block's deposit unique.
func L1InfoSourceHash(l1Hash common.Hash, seq uint64) common.Hash {
	return l1SourceHash(l1InfoSourceDomain, l1Hash, seq)
}

// l1SourceHash is keccak256(u256 domain ‖ keccak256(L1 block hash ‖ u256 n)), the source
// hash of the deposits tied to an L1 block: n is the log index of a user deposit, the
// sequence number of an L1-attributes deposit.
func l1SourceHash(domain uint64, l1Hash common.Hash, n uint64) common.Hash {
	var id [64]byte
	copy(id[:32], l1Hash[:])
	binary.BigEndian.PutUint64(id[56:], n)
	inner := crypto.Keccak256Hash(id[:])
	var outer [64]byte
	binary.BigEndian.PutUint64(outer[24:32], domain)
	copy(outer[32:], inner[:])
	return crypto.Keccak256Hash(outer[:])
}

// L1Origin is what the L1-attributes deposit needs to know about an L1 block.
type L1Origin struct {
	Header *types.Header
	// BlobBaseFee is the L1 block's blob base fee, computed with the L1 chain's blob
	// schedule; nil when L1 has no blobs (the deposit then carries 1).
	BlobBaseFee *big.Int
}

// L1InfoDeposit builds the Isthmus-layout L1-attributes deposit of an L2 block with the
// given sequence number in the epoch of origin, under sys. Config.L1InfoDepositAt picks
// the layout by fork and is what block builders use.
func L1InfoDeposit(sys SystemConfig, seq uint64, origin L1Origin) (*types.DepositTx, error) {
	return l1InfoDeposit(sys, seq, origin, false)
}

// L1InfoDepositAt builds the L1-attributes deposit of the L2 block at time l2Time. From
// Jovian's second block on it has the Jovian layout with the DA footprint gas scalar (0 in
// sys becoming DAFootprintGasScalarDefault); the activation block itself still carries the
// Isthmus layout, because the L1Block contract that understands the new call is only
// deployed by that block's upgrade transactions, which run after the deposit.
func (c *Config) L1InfoDepositAt(sys SystemConfig, seq uint64, origin L1Origin, l2Time uint64) (*types.DepositTx, error) {
	return l1InfoDeposit(sys, seq, origin, c.isJovianAfterActivation(l2Time))
}

func l1InfoDeposit(sys SystemConfig, seq uint64, origin L1Origin, jovian bool) (*types.DepositTx, error) {
	baseScalar, blobScalar, err := sys.Scalars()
	if err != nil {
		return nil, err
	}
	opScalar, opConst := sys.OperatorFee()
	h := origin.Header
	info := L1BlockInfo{
		Number:              h.Number.Uint64(),
		Time:                h.Time,
		BaseFee:             h.BaseFee,
		BlockHash:           h.Hash(),
		SequenceNumber:      seq,
		BatcherAddr:         sys.BatcherAddr,
		BlobBaseFee:         origin.BlobBaseFee,
		BaseFeeScalar:       baseScalar,
		BlobBaseFeeScalar:   blobScalar,
		OperatorFeeScalar:   opScalar,
		OperatorFeeConstant: opConst,
	}
	if info.BaseFee == nil {
		info.BaseFee = new(big.Int)
	}
	var data []byte
	if jovian {
		info.DAFootprintGasScalar = sys.DAFootprintGasScalar
		if info.DAFootprintGasScalar == 0 {
			info.DAFootprintGasScalar = DAFootprintGasScalarDefault
		}
		data, err = info.MarshalJovian()
	} else {
		data, err = info.MarshalIsthmus()
	}
	if err != nil {
		return nil, err
	}
	to := L1BlockAddress
	return &types.DepositTx{
		SourceHash: L1InfoSourceHash(info.BlockHash, seq),
		From:       L1InfoDepositor,
		To:         &to,
		Value:      new(big.Int),
		Gas:        l1InfoGas,
		Data:       data,
	}, nil
}

// L1InfoFromBlockTx reads the L1 origin back from an L2 block's first transaction, in
// either layout.
func L1InfoFromBlockTx(tx *types.Transaction) (*L1BlockInfo, error) {
	if err := checkL1InfoTx(tx); err != nil {
		return nil, err
	}
	return UnmarshalL1Info(tx.Data())
}

// L1InfoFromBlock reads the L1-attributes deposit of a non-genesis L2 block, requiring the
// layout its time calls for, as op-node does when it reads a block's system config.
func (c *Config) L1InfoFromBlock(block *types.Block) (*L1BlockInfo, error) {
	txs := block.Transactions()
	if len(txs) == 0 {
		return nil, fmt.Errorf("%w: L2 block %d %s has no transactions", ErrInvalidL1Info, block.NumberU64(), block.Hash())
	}
	return c.l1InfoFromTx(txs[0], block.Time())
}

// l1InfoFromTx reads the L1-attributes deposit tx of a non-genesis block at time t.
func (c *Config) l1InfoFromTx(tx *types.Transaction, t uint64) (*L1BlockInfo, error) {
	if err := checkL1InfoTx(tx); err != nil {
		return nil, err
	}
	if c.isJovianAfterActivation(t) {
		return UnmarshalL1InfoJovian(tx.Data())
	}
	return UnmarshalL1InfoIsthmus(tx.Data())
}

func checkL1InfoTx(tx *types.Transaction) error {
	if tx.Type() != types.DepositTxType {
		return fmt.Errorf("%w: first transaction has type %d, not a deposit", ErrInvalidL1Info, tx.Type())
	}
	if tx.To() == nil || *tx.To() != L1BlockAddress {
		return fmt.Errorf("%w: first transaction is not sent to L1Block", ErrInvalidL1Info)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func be32(b []byte) uint32       { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64       { return binary.BigEndian.Uint64(b) }
func putBE32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
