package devnet

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/superchain"
)

// predeploySourceChainID names the chain whose genesis allocation the devnet L2 starts
// from: rehearsal-0-bn-0 of the Superchain Registry, an OP Stack chain deployed with every
// fork through Isthmus active at genesis. Its allocation is what a real Isthmus chain
// holds at block 0: the predeploys as proxies owned by the ProxyAdmin (0x4200…0018), their
// implementations at 0xc0d3…, the GasPriceOracle
// with its Ecotone, Fjord and Isthmus flags set, the preinstalls (create2 deployers,
// Multicall3, Permit2, Safe, 4337 entry points), the EIP-4788 beacon-roots and EIP-2935
// block-hash contracts, and a balance of 1 wei on each of the 256 precompile addresses;
// only the unreachable reserved proxies of the namespace are left out (reservedProxy).
// The allocation is data from the registry bundle op-geth embeds
// (github.com/ethereum-optimism/op-geth/superchain/superchain-configs.zip,
// genesis/rehearsal-0-bn/rehearsal-0-bn-0.json.zst), so the devnet runs exactly the code
// that chain runs.
const predeploySourceChainID = 420120009

// Predeploy addresses the devnet and its tests name.
var (
	// L1BlockPredeploy receives the L1-attributes deposit at the start of every block.
	L1BlockPredeploy = common.HexToAddress("0x4200000000000000000000000000000000000015")
	// GasPriceOraclePredeploy answers L1-fee queries.
	GasPriceOraclePredeploy = common.HexToAddress("0x420000000000000000000000000000000000000F")
	// MessagePasserPredeploy is the L2ToL1MessagePasser: withdrawals are initiated there
	// and its storage root is every output root's withdrawal root.
	MessagePasserPredeploy = params.OptimismL2ToL1MessagePasser
	// Fee vaults: the sequencer's (every block's fee recipient), the base fee's, the L1
	// fee's and, since Isthmus, the operator fee's.
	SequencerFeeVaultPredeploy = common.HexToAddress("0x4200000000000000000000000000000000000011")
	BaseFeeVaultPredeploy      = common.HexToAddress("0x4200000000000000000000000000000000000019")
	L1FeeVaultPredeploy        = common.HexToAddress("0x420000000000000000000000000000000000001A")
	OperatorFeeVaultPredeploy  = common.HexToAddress("0x420000000000000000000000000000000000001b")
)

// predeployAllocFile is the source chain's genesis allocation with the reserved proxies
// left out (registryAlloc), as gzipped JSON. It is data read from the registry bundle,
// kept here because decoding the whole registry genesis takes seconds under the race
// detector, which a devnet on a sped-up clock cannot spare;
// TestPredeployAllocIsTheRegistrys checks that it equals what the registry holds, and
// rewrites it with OPKIT_UPDATE_PREDEPLOYS=1.
//
//go:embed predeploys_alloc.json.gz
var predeployAllocFile []byte

// opStackAlloc decodes the embedded allocation once; callers get a copy of the account
// map (accounts themselves are never modified).
var opStackAlloc = sync.OnceValues(func() (types.GenesisAlloc, error) {
	zr, err := gzip.NewReader(bytes.NewReader(predeployAllocFile))
	if err != nil {
		return nil, fmt.Errorf("OP Stack genesis allocation: %w", err)
	}
	var alloc types.GenesisAlloc
	if err := json.NewDecoder(zr).Decode(&alloc); err != nil {
		return nil, fmt.Errorf("decode OP Stack genesis allocation: %w", err)
	}
	if err := checkPredeploys(alloc); err != nil {
		return nil, fmt.Errorf("OP Stack genesis allocation: %w", err)
	}
	return alloc, nil
})

// registryAlloc reads the source chain's genesis allocation from the registry bundle
// op-geth embeds and leaves out the reserved proxies.
func registryAlloc() (types.GenesisAlloc, error) {
	chain, err := superchain.GetChain(predeploySourceChainID)
	if err != nil {
		return nil, fmt.Errorf("OP Stack genesis allocation: %w", err)
	}
	data, err := chain.GenesisData()
	if err != nil {
		return nil, fmt.Errorf("OP Stack genesis allocation of %s: %w", chain.Name, err)
	}
	var g core.Genesis
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("decode OP Stack genesis of %s: %w", chain.Name, err)
	}
	for addr, acc := range g.Alloc {
		if reservedProxy(addr, acc) {
			delete(g.Alloc, addr)
		}
	}
	return g.Alloc, nil
}

// PredeployAlloc is the OP Stack allocation every devnet L2 genesis starts from.
func PredeployAlloc() (types.GenesisAlloc, error) {
	alloc, err := opStackAlloc()
	if err != nil {
		return nil, err
	}
	return maps.Clone(alloc), nil
}

// eip1967Implementation is the proxy slot holding the implementation address.
var eip1967Implementation = common.HexToHash("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc")

// reservedProxy tells the proxies a real chain deploys on every free address of the
// predeploy namespace, with an admin and no implementation: about 2,000 accounts that no
// transaction can reach, which the devnet leaves out. They would make every devnet's
// genesis (hashed by PlanL2, committed by the execution client) several times slower.
func reservedProxy(addr common.Address, acc types.Account) bool {
	if addr[0] != 0x42 || !allZero(addr[1:18]) {
		return false
	}
	_, hasImpl := acc.Storage[eip1967Implementation]
	return !hasImpl && len(acc.Storage) == 1 && acc.Balance.Sign() == 0
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// checkPredeploys makes sure the allocation has what the devnet relies on: code at the
// predeploys that every block runs or that proposals read, and storage in the message
// passer. The last matters beyond output roots: op-geth's engine API drops a
// withdrawalsRoot equal to the empty-trie root from execution payloads (that value marks a
// pre-Isthmus block) and then refuses an Isthmus payload without one, so a chain whose
// message passer has empty storage cannot sequence a single block. A real chain's message
// passer is a proxy whose admin and implementation slots are set, which makes its storage
// root non-empty from genesis on.
func checkPredeploys(alloc types.GenesisAlloc) error {
	for _, a := range []common.Address{
		L1BlockPredeploy, GasPriceOraclePredeploy, MessagePasserPredeploy, SequencerFeeVaultPredeploy,
		BaseFeeVaultPredeploy, L1FeeVaultPredeploy, OperatorFeeVaultPredeploy,
		params.BeaconRootsAddress, params.HistoryStorageAddress,
	} {
		if len(alloc[a].Code) == 0 {
			return fmt.Errorf("no code at %s", a)
		}
	}
	if len(alloc[MessagePasserPredeploy].Storage) == 0 {
		return fmt.Errorf("the L2ToL1MessagePasser %s has no storage: its storage root would be the empty root, which Isthmus payloads cannot carry", MessagePasserPredeploy)
	}
	return nil
}
