package rollup

import (
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// GasPriceOracleAddress is the GasPriceOracle predeploy's proxy.
var GasPriceOracleAddress = common.HexToAddress("0x420000000000000000000000000000000000000F")

// The Jovian upgrade's deployers: the first transaction of each deploys its contract at
// CreateAddress(deployer, 0).
var (
	JovianL1BlockDeployer        = common.HexToAddress("0x4210000000000000000000000000000000000006")
	JovianGasPriceOracleDeployer = common.HexToAddress("0x4210000000000000000000000000000000000007")
)

// The creation code of the Jovian L1Block and GasPriceOracle implementations, exactly as
// the protocol fixes them (any other bytes would give another block hash).
var (
	//go:embed upgrades/jovian_l1block.hex
	jovianL1BlockCodeHex string
	//go:embed upgrades/jovian_gaspriceoracle.hex
	jovianGasPriceOracleCodeHex string
)

// upgradeSourceDomain tags network-upgrade deposits in their source hash.
const upgradeSourceDomain = 2

// UpgradeSourceHash is keccak256(domain 2 ‖ keccak256(intent)): each upgrade transaction is
// named by a fixed human-readable intent.
func UpgradeSourceHash(intent string) common.Hash {
	inner := crypto.Keccak256Hash([]byte(intent))
	var outer [64]byte
	binary.BigEndian.PutUint64(outer[24:32], upgradeSourceDomain)
	copy(outer[32:], inner[:])
	return crypto.Keccak256Hash(outer[:])
}

// upgradeToCalldata is upgradeTo(address impl): the proxies' admin entry point, called from
// the zero address, which the L2 proxies treat as their admin during upgrades.
func upgradeToCalldata(impl common.Address) []byte {
	sel := crypto.Keccak256([]byte("upgradeTo(address)"))[:4]
	return append(append([]byte{}, sel...), common.LeftPadBytes(impl[:], 32)...)
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		panic(fmt.Sprintf("embedded upgrade bytecode: %v", err))
	}
	return b
}

// JovianUpgradeTxs are the deposits of the Jovian activation block, after the
// L1-attributes deposit and the epoch's user deposits: deploy the new L1Block and point its
// proxy at it, deploy the new GasPriceOracle and point its proxy at it, then setJovian() on
// the oracle. The gas of each is fixed by the protocol.
func JovianUpgradeTxs() []*types.DepositTx {
	l1Block := crypto.CreateAddress(JovianL1BlockDeployer, 0)
	gpo := crypto.CreateAddress(JovianGasPriceOracleDeployer, 0)
	l1BlockProxy, gpoProxy := L1BlockAddress, GasPriceOracleAddress
	dep := func(intent string, from common.Address, to *common.Address, gas uint64, data []byte) *types.DepositTx {
		return &types.DepositTx{
			SourceHash: UpgradeSourceHash(intent),
			From:       from,
			To:         to,
			Mint:       new(big.Int),
			Value:      new(big.Int),
			Gas:        gas,
			Data:       data,
		}
	}
	return []*types.DepositTx{
		dep("Jovian: L1 Block Deployment", JovianL1BlockDeployer, nil, 447_315, mustHex(jovianL1BlockCodeHex)),
		dep("Jovian: L1 Block Proxy Update", common.Address{}, &l1BlockProxy, 50_000, upgradeToCalldata(l1Block)),
		dep("Jovian: Gas Price Oracle Deployment", JovianGasPriceOracleDeployer, nil, 1_750_714, mustHex(jovianGasPriceOracleCodeHex)),
		dep("Jovian: Gas Price Oracle Proxy Update", common.Address{}, &gpoProxy, 50_000, upgradeToCalldata(gpo)),
		dep("Jovian: Gas Price Oracle Set Jovian", L1InfoDepositor, &gpoProxy, 90_000, crypto.Keccak256([]byte("setJovian()"))[:4]),
	}
}
