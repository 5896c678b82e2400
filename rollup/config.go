package rollup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
)

// Bytes8 is an 8-byte value written as 0x-hex, as the system config's EIP-1559 parameters are.
type Bytes8 [8]byte

// MarshalText writes 0x-hex.
func (b Bytes8) MarshalText() ([]byte, error) { return []byte(hexutil.Encode(b[:])), nil }

// UnmarshalText reads exactly 8 bytes of 0x-hex.
func (b *Bytes8) UnmarshalText(text []byte) error {
	return hexutil.UnmarshalFixedText("Bytes8", text, b[:])
}

// SystemConfig is the L1 SystemConfig contract's state as the L2 chain sees it. The genesis
// copy lives in rollup.json; later changes arrive through L1 logs (derivation, part 2).
type SystemConfig struct {
	BatcherAddr common.Address `json:"batcherAddr"`
	// Overhead is unused since Ecotone but kept on the wire.
	Overhead common.Hash `json:"overhead"`
	// Scalar packs the base fee and blob base fee scalars (version byte 1) or, in the old
	// format (version byte 0), the base fee scalar alone.
	Scalar            common.Hash `json:"scalar"`
	GasLimit          uint64      `json:"gasLimit"`
	EIP1559Params     Bytes8      `json:"eip1559Params"`
	OperatorFeeParams common.Hash `json:"operatorFeeParams"`
	// MinBaseFee (wei) and DAFootprintGasScalar are Jovian's: the first is the floor the
	// engine keeps the base fee above, the second weighs a block's DA footprint against its
	// gas limit (0 on L1 means the protocol default, DAFootprintGasScalarDefault).
	MinBaseFee           uint64 `json:"minBaseFee"`
	DAFootprintGasScalar uint16 `json:"daFootprintGasScalar"`
}

// Scalars returns the base fee scalar and blob base fee scalar the L1-attributes deposit
// carries, decoded as the OP Stack does: a version-0 scalar with anything in its padding
// means "charge the most" (MaxUint32) rather than an error, because old chains may hold such
// values on L1.
func (s SystemConfig) Scalars() (baseFeeScalar, blobBaseFeeScalar uint32, err error) {
	sc := s.Scalar
	switch sc[0] {
	case 0:
		if !allZero(sc[1:28]) {
			return ^uint32(0), 0, nil
		}
		return be32(sc[28:32]), 0, nil
	case 1:
		if !allZero(sc[1:24]) {
			return 0, 0, fmt.Errorf("system config scalar %s: version 1 with non-zero padding", sc)
		}
		return be32(sc[28:32]), be32(sc[24:28]), nil
	default:
		return 0, 0, fmt.Errorf("system config scalar %s: unknown version %d", sc, sc[0])
	}
}

// OperatorFee returns the operator fee scalar and constant packed into OperatorFeeParams.
func (s SystemConfig) OperatorFee() (scalar uint32, constant uint64) {
	p := s.OperatorFeeParams
	return be32(p[20:24]), be64(p[24:32])
}

// EncodeScalars packs scalars in the version-1 format.
func EncodeScalars(baseFeeScalar, blobBaseFeeScalar uint32) common.Hash {
	var h common.Hash
	h[0] = 1
	putBE32(h[24:28], blobBaseFeeScalar)
	putBE32(h[28:32], baseFeeScalar)
	return h
}

// Genesis anchors the L2 chain to L1.
type Genesis struct {
	L1           eth.BlockID  `json:"l1"`
	L2           eth.BlockID  `json:"l2"`
	L2Time       uint64       `json:"l2_time"`
	SystemConfig SystemConfig `json:"system_config"`
}

// Config is a rollup chain's configuration, in op-node's rollup.json encoding.
type Config struct {
	Genesis Genesis `json:"genesis"`
	// BlockTime is the L2 block period in seconds.
	BlockTime uint64 `json:"block_time"`
	// MaxSequencerDrift is how far (seconds) an L2 block's time may run ahead of its L1
	// origin before Fjord; from Fjord on the protocol fixes it at 1800.
	MaxSequencerDrift uint64   `json:"max_sequencer_drift,omitempty"`
	SeqWindowSize     uint64   `json:"seq_window_size"`
	ChannelTimeout    uint64   `json:"channel_timeout"`
	L1ChainID         *big.Int `json:"l1_chain_id"`
	L2ChainID         *big.Int `json:"l2_chain_id"`

	RegolithTime *uint64 `json:"regolith_time,omitempty"`
	CanyonTime   *uint64 `json:"canyon_time,omitempty"`
	DeltaTime    *uint64 `json:"delta_time,omitempty"`
	EcotoneTime  *uint64 `json:"ecotone_time,omitempty"`
	FjordTime    *uint64 `json:"fjord_time,omitempty"`
	GraniteTime  *uint64 `json:"granite_time,omitempty"`
	HoloceneTime *uint64 `json:"holocene_time,omitempty"`
	IsthmusTime  *uint64 `json:"isthmus_time,omitempty"`
	// JovianTime may be at genesis or any later time: opkit builds its upgrade block.
	JovianTime *uint64 `json:"jovian_time,omitempty"`
	// Karst and Interop are recognised only to be refused by Check: opkit does not build them.
	KarstTime   *uint64 `json:"karst_time,omitempty"`
	InteropTime *uint64 `json:"interop_time,omitempty"`
	// PectraBlobScheduleTime marks chains whose L1-attributes deposits priced blobs with
	// the Cancun formula until that time (a fix for some testnets). opkit applies L1's own
	// schedule throughout, so Check refuses it rather than compute other fees.
	PectraBlobScheduleTime *uint64 `json:"pectra_blob_schedule_time,omitempty"`

	BatchInboxAddress       common.Address         `json:"batch_inbox_address"`
	DepositContractAddress  common.Address         `json:"deposit_contract_address"`
	L1SystemConfigAddress   common.Address         `json:"l1_system_config_address"`
	ProtocolVersionsAddress common.Address         `json:"protocol_versions_address,omitempty"`
	ChainOpConfig           *params.OptimismConfig `json:"chain_op_config,omitempty"`
	// AltDAConfig is set for a chain whose batcher posts AltDA commitments instead of data.
	AltDAConfig *AltDAConfig `json:"alt_da,omitempty"`
}

// The commitment types an alt_da section may name, as op-node spells them.
const (
	KeccakCommitment  = "KeccakCommitment"
	GenericCommitment = "GenericCommitment"
)

// AltDAConfig is rollup.json's alt_da section.
type AltDAConfig struct {
	// DAChallengeAddress is the L1 DataAvailabilityChallenge contract; op-node requires one
	// for keccak commitments and none for generic ones, and so does Check.
	DAChallengeAddress common.Address `json:"da_challenge_contract_address,omitempty"`
	// CommitmentType is KeccakCommitment or GenericCommitment; derivation skips
	// commitments of the other type.
	CommitmentType string `json:"da_commitment_type"`
	// DAChallengeWindow is how many L1 blocks after its inclusion a commitment can be
	// challenged; data still missing once L1 is past that window is lost for good.
	DAChallengeWindow uint64 `json:"da_challenge_window"`
	// DAResolveWindow is how many L1 blocks a challenge has to be resolved.
	DAResolveWindow uint64 `json:"da_resolve_window"`
}

// CommitmentTypeByte is the commitment's type byte on the wire: 0 keccak, 1 generic.
func (a *AltDAConfig) CommitmentTypeByte() (byte, error) {
	switch a.CommitmentType {
	case KeccakCommitment:
		return 0, nil
	case GenericCommitment:
		return 1, nil
	default:
		return 0, fmt.Errorf("unknown da_commitment_type %q", a.CommitmentType)
	}
}

// FjordMaxSequencerDrift is the fixed sequencer drift from Fjord on, in seconds.
const FjordMaxSequencerDrift = 1800

// ErrInvalidConfig wraps every reason Check refuses a config.
var ErrInvalidConfig = errors.New("invalid rollup config")

func active(fork *uint64, t uint64) bool { return fork != nil && t >= *fork }

func (c *Config) IsRegolith(t uint64) bool { return active(c.RegolithTime, t) }
func (c *Config) IsCanyon(t uint64) bool   { return active(c.CanyonTime, t) }
func (c *Config) IsEcotone(t uint64) bool  { return active(c.EcotoneTime, t) }
func (c *Config) IsFjord(t uint64) bool    { return active(c.FjordTime, t) }
func (c *Config) IsHolocene(t uint64) bool { return active(c.HoloceneTime, t) }
func (c *Config) IsIsthmus(t uint64) bool  { return active(c.IsthmusTime, t) }
func (c *Config) IsJovian(t uint64) bool   { return active(c.JovianTime, t) }

// IsJovianActivationBlock reports whether the L2 block at time t is the first Jovian block.
// Like op-node, a block whose time is less than one block time is never an activation
// block, so a fork at genesis has none.
func (c *Config) IsJovianActivationBlock(t uint64) bool {
	return c.IsJovian(t) && t >= c.BlockTime && !c.IsJovian(t-c.BlockTime)
}

// isJovianAfterActivation: the block is Jovian and not its first block, the blocks whose
// L1-attributes deposit has the Jovian layout.
func (c *Config) isJovianAfterActivation(t uint64) bool {
	return c.IsJovian(t) && !c.IsJovianActivationBlock(t)
}

// MaxSequencerDriftAt is the drift limit in force for an L1 origin with time t.
func (c *Config) MaxSequencerDriftAt(t uint64) uint64 {
	if c.IsFjord(t) {
		return FjordMaxSequencerDrift
	}
	return c.MaxSequencerDrift
}

// TimestampForBlock is the time of L2 block n.
func (c *Config) TimestampForBlock(n uint64) uint64 {
	return c.Genesis.L2Time + (n-c.Genesis.L2.Number)*c.BlockTime
}

// Check refuses configs opkit cannot follow. Every fork through Isthmus must be active at
// genesis, because opkit builds none of their upgrade blocks (Isthmus' upgrade
// transactions included); Jovian may come at any time; Karst and Interop are refused.
func (c *Config) Check() error { return c.check(false) }

// CheckInterop is Check for a node run by a supervisor (managed mode): it accepts an
// interop_time at or before the L2 genesis, which is how op-node's interop chains
// schedule the fork, since then no interop activation block is ever built.
func (c *Config) CheckInterop() error { return c.check(true) }

// IsInterop reports whether interop is active at time t.
func (c *Config) IsInterop(t uint64) bool { return active(c.InteropTime, t) }

func (c *Config) check(interop bool) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.BlockTime == 0 {
		return fail("block_time must be positive")
	}
	if c.SeqWindowSize < 2 {
		return fail("seq_window_size must be at least 2")
	}
	if c.ChannelTimeout == 0 {
		return fail("channel_timeout must be positive")
	}
	if c.L1ChainID == nil || c.L1ChainID.Sign() <= 0 {
		return fail("l1_chain_id must be positive")
	}
	if c.L2ChainID == nil || c.L2ChainID.Sign() <= 0 {
		return fail("l2_chain_id must be positive")
	}
	if c.L1ChainID.Cmp(c.L2ChainID) == 0 {
		return fail("l1_chain_id and l2_chain_id are both %v", c.L1ChainID)
	}
	if c.Genesis.L1.Hash == (common.Hash{}) || c.Genesis.L2.Hash == (common.Hash{}) {
		return fail("genesis l1 and l2 hashes must be set")
	}
	if c.Genesis.SystemConfig.GasLimit == 0 {
		return fail("genesis system_config gasLimit must be positive")
	}
	if _, _, err := c.Genesis.SystemConfig.Scalars(); err != nil {
		return fail("%v", err)
	}
	forks := []struct {
		name string
		t    *uint64
	}{
		{"regolith_time", c.RegolithTime}, {"canyon_time", c.CanyonTime}, {"delta_time", c.DeltaTime},
		{"ecotone_time", c.EcotoneTime}, {"fjord_time", c.FjordTime}, {"granite_time", c.GraniteTime},
		{"holocene_time", c.HoloceneTime}, {"isthmus_time", c.IsthmusTime},
	}
	for _, f := range forks {
		if f.t == nil || *f.t > c.Genesis.L2Time {
			return fail("%s must be at or before the L2 genesis time %d (opkit follows chains with every fork through Isthmus active from genesis)", f.name, c.Genesis.L2Time)
		}
	}
	for _, f := range []struct {
		name string
		t    *uint64
	}{{"karst_time", c.KarstTime}, {"interop_time", c.InteropTime}, {"pectra_blob_schedule_time", c.PectraBlobScheduleTime}} {
		if f.t != nil && interop && f.name == "interop_time" && *f.t <= c.Genesis.L2Time {
			continue
		}
		if f.t != nil {
			return fail("%s is set, but opkit does not build that fork (interop_time is accepted at genesis in managed mode)", f.name)
		}
	}
	if a := c.AltDAConfig; a != nil {
		typ, err := a.CommitmentTypeByte()
		if err != nil {
			return fail("alt_da: %v", err)
		}
		switch {
		case typ == 0 && a.DAChallengeAddress == (common.Address{}):
			return fail("alt_da: da_challenge_contract_address must be set for KeccakCommitment")
		case typ == 1 && a.DAChallengeAddress != (common.Address{}):
			return fail("alt_da: da_challenge_contract_address must be empty for GenericCommitment")
		case a.DAChallengeWindow == 0:
			return fail("alt_da: da_challenge_window must be positive")
		case a.DAResolveWindow == 0:
			return fail("alt_da: da_resolve_window must be positive")
		}
	}
	if c.ChainOpConfig == nil || c.ChainOpConfig.EIP1559Elasticity == 0 || c.ChainOpConfig.EIP1559Denominator == 0 {
		return fail("chain_op_config with non-zero eip1559Elasticity and eip1559Denominator is required")
	}
	return nil
}

// maxConfigSize bounds rollup.json: real ones are about 2 KiB.
const maxConfigSize = 1 << 20

// ParseConfig decodes and checks rollup.json.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%w: %d bytes is more than %d", ErrInvalidConfig, len(data), maxConfigSize)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidConfig)
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadConfig reads and checks a rollup.json file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rollup config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes c as indented JSON.
func WriteConfig(path string, c *Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode rollup config: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write rollup config: %w", err)
	}
	return nil
}
