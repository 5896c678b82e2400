package devnet

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/rollup"
)

// ChainPlan describes a new L2 chain anchored at an L1 block.
type ChainPlan struct {
	// L1Origin is the L1 block the L2 chain starts from; L2 genesis takes its timestamp.
	L1Origin  *types.Header
	L1ChainID uint64
	// L2ChainID defaults to 901.
	L2ChainID uint64
	// BlockTime is the L2 block period in seconds; default 2.
	BlockTime uint64
	// GasLimit of every L2 block; default 60M.
	GasLimit uint64
	// Accounts is how many dev accounts to fund on L2; default 10.
	Accounts int
	// Batcher is the address L1 batches must come from; default dev account 1.
	Batcher common.Address
	// Interop schedules interop from genesis (rollup.json interop_time 0, for a node in
	// managed mode) and puts the CrossL2Inbox stand-in at its predeploy address.
	Interop bool
}

// OP Stack defaults for the EIP-1559 parameters and L1 fee scalars of a new chain.
const (
	eip1559Elasticity        = 6
	eip1559Denominator       = 50
	eip1559DenominatorCanyon = 250
	defaultBaseFeeScalar     = 1368
	defaultBlobFeeScalar     = 810949
)

// holoceneExtraData is the genesis extraData once Holocene is active: version 0, then the
// EIP-1559 denominator (250) and elasticity (6) as big-endian uint32s.
var holoceneExtraData = []byte{0, 0, 0, 0, eip1559DenominatorCanyon, 0, 0, 0, eip1559Elasticity}

func (p *ChainPlan) applyDefaults() {
	if p.L2ChainID == 0 {
		p.L2ChainID = 901
	}
	if p.BlockTime == 0 {
		p.BlockTime = 2
	}
	if p.GasLimit == 0 {
		p.GasLimit = 60_000_000
	}
	if p.Accounts == 0 {
		p.Accounts = 10
	}
	if p.Batcher == (common.Address{}) {
		p.Batcher = DevAccounts(2)[1].Address
	}
}

// PlanL2 returns the genesis of a new L2 chain, with every fork through Isthmus active from
// its first block, and the rollup.json that describes it to a rollup node. The genesis
// allocation is a real Isthmus chain's (PredeployAlloc: every OP Stack predeploy behind its
// proxy, the preinstalls, the beacon-roots and EIP-2935 contracts) plus the funded dev
// accounts, so the L1-attributes deposit really executes L1Block, L1 fees are charged from
// the values it stores, and the header's withdrawalsRoot is the L2ToL1MessagePasser's
// (non-empty) storage root, as op-geth requires of Isthmus blocks.
func PlanL2(plan ChainPlan) (*core.Genesis, *rollup.Config, error) {
	plan.applyDefaults()
	if plan.L1Origin == nil {
		return nil, nil, fmt.Errorf("plan L2: the L1 origin header is required")
	}
	zero := uint64(0)
	denomCanyon := uint64(eip1559DenominatorCanyon)
	opCfg := &params.OptimismConfig{
		EIP1559Elasticity:        eip1559Elasticity,
		EIP1559Denominator:       eip1559Denominator,
		EIP1559DenominatorCanyon: &denomCanyon,
	}
	chainCfg := &params.ChainConfig{
		ChainID:                 new(big.Int).SetUint64(plan.L2ChainID),
		HomesteadBlock:          big.NewInt(0),
		EIP150Block:             big.NewInt(0),
		EIP155Block:             big.NewInt(0),
		EIP158Block:             big.NewInt(0),
		ByzantiumBlock:          big.NewInt(0),
		ConstantinopleBlock:     big.NewInt(0),
		PetersburgBlock:         big.NewInt(0),
		IstanbulBlock:           big.NewInt(0),
		MuirGlacierBlock:        big.NewInt(0),
		BerlinBlock:             big.NewInt(0),
		LondonBlock:             big.NewInt(0),
		ArrowGlacierBlock:       big.NewInt(0),
		GrayGlacierBlock:        big.NewInt(0),
		MergeNetsplitBlock:      big.NewInt(0),
		TerminalTotalDifficulty: big.NewInt(0),
		BedrockBlock:            big.NewInt(0),
		RegolithTime:            &zero,
		CanyonTime:              &zero,
		ShanghaiTime:            &zero,
		CancunTime:              &zero,
		EcotoneTime:             &zero,
		FjordTime:               &zero,
		GraniteTime:             &zero,
		HoloceneTime:            &zero,
		IsthmusTime:             &zero,
		PragueTime:              &zero,
		Optimism:                opCfg,
	}
	alloc, err := PredeployAlloc()
	if err != nil {
		return nil, nil, fmt.Errorf("plan L2: %w", err)
	}
	if plan.Interop {
		alloc[interop.CrossL2Inbox] = types.Account{Code: CrossL2InboxCode()}
	}
	blobGas := uint64(0)
	genesis := &core.Genesis{
		Config:        chainCfg,
		Timestamp:     plan.L1Origin.Time,
		GasLimit:      plan.GasLimit,
		Difficulty:    big.NewInt(0),
		Coinbase:      rollup.SequencerFeeVault,
		BaseFee:       big.NewInt(params.InitialBaseFee),
		ExtraData:     holoceneExtraData,
		BlobGasUsed:   &blobGas,
		ExcessBlobGas: &blobGas,
		Alloc:         alloc,
	}
	for _, a := range DevAccounts(plan.Accounts) {
		if _, taken := alloc[a.Address]; taken {
			return nil, nil, fmt.Errorf("plan L2: dev account %s collides with a predeploy", a.Address)
		}
		alloc[a.Address] = types.Account{Balance: devBalance}
	}
	l2Block := genesis.ToBlock()
	cfg := &rollup.Config{
		Genesis: rollup.Genesis{
			L1:     eth.BlockID{Hash: plan.L1Origin.Hash(), Number: plan.L1Origin.Number.Uint64()},
			L2:     eth.BlockID{Hash: l2Block.Hash(), Number: 0},
			L2Time: genesis.Timestamp,
			SystemConfig: rollup.SystemConfig{
				BatcherAddr: plan.Batcher,
				Scalar:      rollup.EncodeScalars(defaultBaseFeeScalar, defaultBlobFeeScalar),
				GasLimit:    plan.GasLimit,
			},
		},
		BlockTime:         plan.BlockTime,
		MaxSequencerDrift: rollup.FjordMaxSequencerDrift,
		SeqWindowSize:     3600,
		ChannelTimeout:    300,
		L1ChainID:         new(big.Int).SetUint64(plan.L1ChainID),
		L2ChainID:         new(big.Int).SetUint64(plan.L2ChainID),
		RegolithTime:      &zero,
		CanyonTime:        &zero,
		DeltaTime:         &zero,
		EcotoneTime:       &zero,
		FjordTime:         &zero,
		GraniteTime:       &zero,
		HoloceneTime:      &zero,
		IsthmusTime:       &zero,
		BatchInboxAddress: batchInbox(plan.L2ChainID),
		// No OP contracts are deployed on the dev L1 yet; these addresses name where the
		// deposit and system-config contracts would be and hold no code.
		DepositContractAddress: common.HexToAddress("0x00000000000000000000000000000000000d0001"),
		L1SystemConfigAddress:  common.HexToAddress("0x00000000000000000000000000000000000d0002"),
		ChainOpConfig:          opCfg,
	}
	check := cfg.Check
	if plan.Interop {
		cfg.InteropTime = &zero
		check = cfg.CheckInterop
	}
	if err := check(); err != nil {
		return nil, nil, fmt.Errorf("plan L2: %w", err)
	}
	return genesis, cfg, nil
}

// batchInbox follows the OP Stack convention: 0xff, zeros, then the chain ID.
func batchInbox(chainID uint64) common.Address {
	var a common.Address
	a[0] = 0xff
	new(big.Int).SetUint64(chainID).FillBytes(a[12:])
	return a
}
