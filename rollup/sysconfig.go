package rollup

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// ConfigUpdateTopic is topic 0 of the SystemConfig's
// ConfigUpdate(uint256 indexed version, uint8 indexed updateType, bytes data) event.
var ConfigUpdateTopic = crypto.Keccak256Hash([]byte("ConfigUpdate(uint256,uint8,bytes)"))

// ConfigUpdateType is the event's updateType topic.
type ConfigUpdateType uint8

// The update types the SystemConfig emits.
const (
	ConfigUpdateBatcher ConfigUpdateType = iota
	ConfigUpdateFeeScalars
	ConfigUpdateGasLimit
	// ConfigUpdateUnsafeBlockSigner changes who signs gossiped blocks, which is no part of
	// derivation, so the update is accepted and changes nothing here.
	ConfigUpdateUnsafeBlockSigner
	ConfigUpdateEIP1559Params
	ConfigUpdateOperatorFeeParams
	ConfigUpdateMinBaseFee
	ConfigUpdateDAFootprintGasScalar
)

// ErrBadConfigUpdate wraps the reasons a ConfigUpdate event is ignored.
var ErrBadConfigUpdate = errors.New("ignored SystemConfig ConfigUpdate event")

// ParseConfigUpdates applies, in order, the ConfigUpdate events that sysCfgAddr logged in
// the successful receipts of one L1 block with time l1Time. A malformed event changes
// nothing and is reported in the returned error (a join of ErrBadConfigUpdate errors);
// that error is never fatal, because the L1 contract could have emitted the event and
// every node must step over it the same way. The returned config is always usable.
func ParseConfigUpdates(sys SystemConfig, receipts types.Receipts, sysCfgAddr common.Address, l1Time uint64, cfg *Config) (SystemConfig, error) {
	var errs error
	for i, rec := range receipts {
		if rec.Status != types.ReceiptStatusSuccessful {
			continue
		}
		for j, lg := range rec.Logs {
			if lg.Address != sysCfgAddr || len(lg.Topics) == 0 || lg.Topics[0] != ConfigUpdateTopic {
				continue
			}
			next, err := ApplyConfigUpdate(sys, lg, l1Time, cfg)
			if err != nil {
				errs = errors.Join(errs, fmt.Errorf("receipt %d log %d: %w", i, j, err))
				continue
			}
			sys = next
		}
	}
	return sys, errs
}

// ApplyConfigUpdate applies one ConfigUpdate log (topic 0 already matched or not) to sys.
// On error sys is returned unchanged.
func ApplyConfigUpdate(sys SystemConfig, lg *types.Log, l1Time uint64, cfg *Config) (SystemConfig, error) {
	bad := func(format string, args ...any) (SystemConfig, error) {
		return sys, fmt.Errorf("%w: %s", ErrBadConfigUpdate, fmt.Sprintf(format, args...))
	}
	if len(lg.Topics) != 3 {
		return bad("%d topics, want 3", len(lg.Topics))
	}
	if lg.Topics[0] != ConfigUpdateTopic {
		return bad("topic %s is not ConfigUpdate", lg.Topics[0])
	}
	if lg.Topics[1] != (common.Hash{}) {
		return bad("unknown version %s", lg.Topics[1])
	}
	typ := lg.Topics[2]
	if !allZero(typ[:31]) || typ[31] > byte(ConfigUpdateDAFootprintGasScalar) {
		return bad("unknown update type %s", typ)
	}
	if ConfigUpdateType(typ[31]) == ConfigUpdateUnsafeBlockSigner {
		// Its data is not even read: op-node accepts any.
		return sys, nil
	}
	// Every other update's data is abi.encode(bytes): offset 32, then the length, then the
	// payload words, and nothing more.
	words, err := configUpdatePayload(lg.Data)
	if err != nil {
		return bad("type %d: %v", typ[31], err)
	}
	switch ConfigUpdateType(typ[31]) {
	case ConfigUpdateBatcher:
		if len(words) != 1 || !allZero(words[0][:12]) {
			return bad("batcher: want one address word")
		}
		sys.BatcherAddr = common.BytesToAddress(words[0][12:])
	case ConfigUpdateFeeScalars:
		if len(words) != 2 {
			return bad("fee scalars: want two words")
		}
		overhead, scalar := common.Hash(words[0]), common.Hash(words[1])
		if cfg.IsEcotone(l1Time) {
			if !validEcotoneScalar(scalar) {
				// Not an error: the chain keeps its old scalar, as op-node does.
				return sys, nil
			}
			sys.Scalar = scalar
			sys.Overhead = common.Hash{}
		} else {
			sys.Overhead, sys.Scalar = overhead, scalar
		}
	case ConfigUpdateGasLimit:
		v, err := uint64Word(words)
		if err != nil {
			return bad("gas limit: %v", err)
		}
		sys.GasLimit = v
	case ConfigUpdateEIP1559Params:
		if len(words) != 1 {
			return bad("eip1559 params: want one word")
		}
		p := words[0][24:32]
		if err := eip1559.ValidateHolocene1559Params(p); err != nil {
			return bad("eip1559 params: %v", err)
		}
		copy(sys.EIP1559Params[:], p)
	case ConfigUpdateOperatorFeeParams:
		if len(words) != 1 {
			return bad("operator fee params: want one word")
		}
		sys.OperatorFeeParams = common.Hash(words[0])
	case ConfigUpdateMinBaseFee:
		v, err := uint64Word(words)
		if err != nil {
			return bad("min base fee: %v", err)
		}
		sys.MinBaseFee = v
	case ConfigUpdateDAFootprintGasScalar:
		if len(words) != 1 || !allZero(words[0][:30]) {
			return bad("DA footprint gas scalar: want one uint16 word")
		}
		sys.DAFootprintGasScalar = binary.BigEndian.Uint16(words[0][30:])
	}
	return sys, nil
}

// configUpdatePayload checks the abi.encode(bytes) wrapper and returns the payload's words.
// Only the shapes the SystemConfig emits are accepted: a payload of 32 or 64 bytes, which
// needs no padding, so the data is exactly 64 bytes of header plus the payload.
func configUpdatePayload(data []byte) ([][32]byte, error) {
	if len(data) < 64 {
		return nil, fmt.Errorf("%d bytes of data", len(data))
	}
	if !allZero(data[:24]) || binary.BigEndian.Uint64(data[24:32]) != 32 {
		return nil, errors.New("offset word is not 32")
	}
	if !allZero(data[32:56]) {
		return nil, errors.New("length word too large")
	}
	n := binary.BigEndian.Uint64(data[56:64])
	if n != 32 && n != 64 {
		return nil, fmt.Errorf("payload length %d", n)
	}
	if uint64(len(data)-64) != n {
		return nil, fmt.Errorf("payload length %d with %d bytes after the header", n, len(data)-64)
	}
	words := make([][32]byte, n/32)
	for i := range words {
		copy(words[i][:], data[64+32*i:])
	}
	return words, nil
}

func uint64Word(words [][32]byte) (uint64, error) {
	if len(words) != 1 || !allZero(words[0][:24]) {
		return 0, errors.New("want one uint64 word")
	}
	return binary.BigEndian.Uint64(words[0][24:]), nil
}

// validEcotoneScalar accepts the version-0 and version-1 scalar formats with clean padding.
func validEcotoneScalar(s common.Hash) bool {
	switch s[0] {
	case 0:
		return allZero(s[1:28])
	case 1:
		return allZero(s[1:24])
	default:
		return false
	}
}

// SystemConfigFromL2Block recovers the system config an L2 block was built with: the
// batcher and fee parameters from its L1-attributes deposit, the gas limit from its
// header, the EIP-1559 parameters (and from Jovian the minimum base fee) from its
// extraData. The genesis block's is the rollup config's. This is what the next block's
// attributes start from, so derivation and sequencing must both use it to agree with
// op-node, including its quirks: the Jovian activation block carries the Isthmus deposit,
// so its DA footprint gas scalar reads as 0; and extraData holds the parameters the engine
// applied, which are the chain defaults when the attributes carried zeros.
func SystemConfigFromL2Block(cfg *Config, block *types.Block) (SystemConfig, error) {
	var first *types.Transaction
	if txs := block.Transactions(); len(txs) > 0 {
		first = txs[0]
	}
	return SystemConfigFromL2Fields(cfg, L2BlockFields{
		Number: block.NumberU64(), Hash: block.Hash(), Time: block.Time(), GasLimit: block.GasLimit(), Extra: block.Extra(),
		L1InfoTx: first,
	})
}

// L2BlockFields are the parts of an L2 block its system config is read from, for a
// block known from its payload rather than fetched whole.
type L2BlockFields struct {
	Number   uint64
	Hash     common.Hash
	Time     uint64
	GasLimit uint64
	Extra    []byte
	// L1InfoTx is the block's first transaction (nil if it has none).
	L1InfoTx *types.Transaction
}

// SystemConfigFromL2Fields is SystemConfigFromL2Block for a block given by its fields.
func SystemConfigFromL2Fields(cfg *Config, b L2BlockFields) (SystemConfig, error) {
	if b.Number == cfg.Genesis.L2.Number {
		if b.Hash != cfg.Genesis.L2.Hash {
			return SystemConfig{}, fmt.Errorf("block %d is %s, but the rollup genesis is %s", b.Number, b.Hash, cfg.Genesis.L2.Hash)
		}
		return cfg.Genesis.SystemConfig, nil
	}
	if b.L1InfoTx == nil {
		return SystemConfig{}, fmt.Errorf("%w: L2 block %d %s has no transactions", ErrInvalidL1Info, b.Number, b.Hash)
	}
	info, err := cfg.l1InfoFromTx(b.L1InfoTx, b.Time)
	if err != nil {
		return SystemConfig{}, fmt.Errorf("L2 block %d %s: %w", b.Number, b.Hash, err)
	}
	t := b.Time
	sys := SystemConfig{
		BatcherAddr: info.BatcherAddr,
		Scalar:      EncodeScalars(info.BaseFeeScalar, info.BlobBaseFeeScalar),
		GasLimit:    b.GasLimit,
	}
	if err := eip1559.ValidateOptimismExtraData(cfg, t, b.Extra); err != nil {
		return SystemConfig{}, fmt.Errorf("L2 block %d %s: extraData: %w", b.Number, b.Hash, err)
	}
	denom, elast, minBaseFee := eip1559.DecodeOptimismExtraData(cfg, t, b.Extra)
	copy(sys.EIP1559Params[:], eip1559.EncodeHolocene1559Params(denom, elast))
	var op [32]byte
	binary.BigEndian.PutUint32(op[20:24], info.OperatorFeeScalar)
	binary.BigEndian.PutUint64(op[24:32], info.OperatorFeeConstant)
	sys.OperatorFeeParams = op
	if cfg.IsJovian(t) {
		if minBaseFee == nil {
			return SystemConfig{}, fmt.Errorf("L2 block %d %s: Jovian extraData without a minimum base fee", b.Number, b.Hash)
		}
		sys.MinBaseFee = *minBaseFee
		sys.DAFootprintGasScalar = info.DAFootprintGasScalar
	}
	return sys, nil
}
