package devnet

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// LoadConfig shapes the traffic a Load sends.
type LoadConfig struct {
	// TxsPerBlock is how many transactions each mined block carries; default 20.
	TxsPerBlock int
	// Seed makes the mix of transactions reproducible; the same seed on the same chain
	// sends the same transactions.
	Seed uint64
}

// LoadChain is a dev chain a Load drives: the dev L1, or an L2 through an L2Miner.
type LoadChain interface {
	Backend() *eth.Ethereum
	ChainConfig() *params.ChainConfig
	Accounts() []Account
	Head() *types.Header
	// Mine seals a block holding the pool's pending transactions.
	Mine() (*types.Header, error)
}

// Load drives a dev chain with a varied, valid mix of transactions, one block at a time:
// value transfers (to existing and to brand-new accounts), contract creation, storage
// writes, storage deletes (slots set back to zero), contracts that self-destruct in the
// transaction that creates them (the account is created and deleted at once), reads of
// accounts that do not exist (BALANCE, EXTCODEHASH and a CALL of never-used addresses,
// and plain transfers of nothing to them), withdrawal initiations at the
// L2ToL1MessagePasser (on an L1, a transfer to an empty address), and EIP-7702 SetCode
// transactions that delegate a fresh account to a storage contract and write through it.
// Every block also carries the system-contract writes the chain's forks require (beacon
// roots, block-hash history). Load is for one goroutine.
type Load struct {
	l1     LoadChain
	cfg    LoadConfig
	rng    *rand.Rand
	signer types.Signer
	nonces map[common.Address]uint64

	contracts []common.Address // deployed storage contracts
	live      []slotRef        // slots holding a non-zero value in a mined block
	fresh     uint64           // counter for new transfer recipients
	absent    uint64           // counter for never-used addresses that are only read
	delegated uint64           // counter for fresh EIP-7702 authorities
	sent      uint64           // transactions sent so far, for the mix
}

type slotRef struct {
	contract common.Address
	slot     common.Hash
}

// loadStoreRuntime stores calldata word 1 at the slot named by calldata word 0:
// PUSH1 32 CALLDATALOAD PUSH1 0 CALLDATALOAD SSTORE STOP.
var loadStoreRuntime = []byte{0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00}

// loadStoreInitCode writes slot 0 during construction, then returns loadStoreRuntime.
var loadStoreInitCode = func() []byte {
	code := []byte{
		0x60, 0x01, 0x60, 0x00, 0x55, // SSTORE(0, 1)
		0x60, byte(len(loadStoreRuntime)), // PUSH1 len
		0x80,       // DUP1
		0x60, 0x00, // PUSH1 offset, patched below
		0x60, 0x00, // PUSH1 0
		0x39,       // CODECOPY(0, offset, len)
		0x60, 0x00, // PUSH1 0
		0xf3, // RETURN(0, len)
	}
	code[9] = byte(len(code))
	return append(code, loadStoreRuntime...)
}()

// loadSelfDestructInitCode writes a slot and self-destructs to the caller while being
// created: SSTORE(0, 1) CALLER SELFDESTRUCT.
var loadSelfDestructInitCode = []byte{0x60, 0x01, 0x60, 0x00, 0x55, 0x33, 0xff}

// loadAbsentReadInitCode reads the account named by the 20 bytes appended to it, which
// does not exist, three ways, and leaves an empty contract:
// PUSH20 a BALANCE POP, PUSH20 a EXTCODEHASH POP, CALL(gas, a, 0, 0, 0, 0, 0) POP, STOP.
func loadAbsentReadInitCode(a common.Address) []byte {
	code := []byte{0x73}
	code = append(code, a[:]...)
	code = append(code, 0x31, 0x50, 0x73)
	code = append(code, a[:]...)
	code = append(code, 0x3f, 0x50)
	code = append(code, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x73)
	code = append(code, a[:]...)
	return append(code, 0x5a, 0xf1, 0x50, 0x00)
}

// initiateWithdrawalSelector is L2ToL1MessagePasser.initiateWithdrawal(address,uint256,bytes).
var initiateWithdrawalSelector = crypto.Keccak256([]byte("initiateWithdrawal(address,uint256,bytes)"))[:4]

// withdrawalCalldata encodes initiateWithdrawal(target, gasLimit, data) per the Solidity ABI.
func withdrawalCalldata(target common.Address, gasLimit uint64, data []byte) []byte {
	out := append([]byte{}, initiateWithdrawalSelector...)
	out = append(out, common.LeftPadBytes(target[:], 32)...)
	out = append(out, common.LeftPadBytes(new(big.Int).SetUint64(gasLimit).Bytes(), 32)...)
	out = append(out, common.LeftPadBytes([]byte{0x60}, 32)...) // offset of data
	out = append(out, common.LeftPadBytes(big.NewInt(int64(len(data))).Bytes(), 32)...)
	padded := make([]byte, (len(data)+31)/32*32)
	copy(padded, data)
	return append(out, padded...)
}

// NewLoad prepares a load generator over the chain's funded dev accounts.
func NewLoad(l1 LoadChain, cfg LoadConfig) *Load {
	if cfg.TxsPerBlock <= 0 {
		cfg.TxsPerBlock = 20
	}
	g := &Load{
		l1:     l1,
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x6f706b6974)),
		signer: types.LatestSignerForChainID(l1.ChainConfig().ChainID),
	}
	g.Resync()
	return g
}

// Resync re-reads account nonces from the head state and forgets contracts and slots
// the canonical chain no longer has; call it after a reorg. It drops the transactions
// the pool re-injected from orphaned blocks, so the new branch carries only fresh load.
func (g *Load) Resync() {
	pool := g.l1.Backend().TxPool()
	// Let the pool finish its reset to the new head before clearing it, or the
	// re-injected transactions would reappear afterwards.
	_ = pool.Sync()
	pool.Clear()
	g.nonces = make(map[common.Address]uint64)
	st, err := g.l1.Backend().BlockChain().State()
	if err != nil {
		g.contracts, g.live = nil, nil
		return
	}
	for _, a := range g.l1.Accounts() {
		g.nonces[a.Address] = st.GetNonce(a.Address)
	}
	var contracts []common.Address
	for _, c := range g.contracts {
		if len(st.GetCode(c)) > 0 {
			contracts = append(contracts, c)
		}
	}
	var live []slotRef
	for _, s := range g.live {
		if st.GetState(s.contract, s.slot) != (common.Hash{}) {
			live = append(live, s)
		}
	}
	g.contracts, g.live = contracts, live
}

// loadBlock is one block's worth of load, and what it changes once it is mined.
type loadBlock struct {
	txs      []*types.Transaction
	deployed []common.Address
	set      []slotRef
	deleted  map[int]bool
}

// MineBlock sends one block's worth of transactions, seals the block and checks that it
// holds them all and that every one succeeded.
func (g *Load) MineBlock(ctx context.Context) (*types.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lb, err := g.send()
	if err != nil {
		return nil, err
	}
	header, err := g.l1.Mine()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := g.checkBlock(header, lb.txs); err != nil {
		return nil, err
	}
	g.commit(lb)
	return header, nil
}

// SendBlock sends one block's worth of transactions to a chain that someone else seals
// (a sequencer), and counts on them being included: later transactions build on their
// contracts and slots.
func (g *Load) SendBlock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lb, err := g.send()
	if err != nil {
		return err
	}
	g.commit(lb)
	return nil
}

// send builds one block's worth of transactions on the head and adds them to the pool.
func (g *Load) send() (*loadBlock, error) {
	lb, err := g.nextBlock(g.l1.Head())
	if err != nil {
		return nil, err
	}
	for i, err := range g.l1.Backend().TxPool().Add(lb.txs, true) {
		if err != nil {
			return nil, fmt.Errorf("load: add transaction %d: %w", i, err)
		}
	}
	return lb, nil
}

// commit records what a mined block of load changed.
func (g *Load) commit(lb *loadBlock) {
	g.contracts = append(g.contracts, lb.deployed...)
	var live []slotRef
	for i, s := range g.live {
		if !lb.deleted[i] {
			live = append(live, s)
		}
	}
	g.live = append(live, lb.set...)
}

// nextBlock signs the next block's worth of transactions, priced for head.
func (g *Load) nextBlock(head *types.Header) (*loadBlock, error) {
	tip := big.NewInt(1e9)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	txs := make([]*types.Transaction, 0, g.cfg.TxsPerBlock)
	var deployed []common.Address
	var set []slotRef
	deleted := map[int]bool{}
	accounts := g.l1.Accounts()
	for i := 0; i < g.cfg.TxsPerBlock; i++ {
		from := accounts[int(g.sent)%len(accounts)]
		nonce := g.nonces[from.Address]
		inner := &types.DynamicFeeTx{ChainID: g.l1.ChainConfig().ChainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap}
		kind := g.sent % 12
		if len(g.contracts) == 0 && (kind == 2 || kind == 3 || kind == 4 || kind == 7 || kind == 10) {
			kind = 5 // nothing to write to yet: deploy first
		}
		switch kind {
		case 0: // transfer to a brand-new account
			g.fresh++
			to := common.BytesToAddress(crypto.Keccak256([]byte("opkit load recipient"), new(big.Int).SetUint64(g.fresh).Bytes()))
			inner.To, inner.Gas, inner.Value = &to, 21000, big.NewInt(int64(1+g.rng.IntN(1000)))
		case 1: // transfer between existing accounts
			to := accounts[g.rng.IntN(len(accounts))].Address
			inner.To, inner.Gas, inner.Value = &to, 21000, big.NewInt(int64(1+g.rng.IntN(1000)))
		case 2, 3, 7: // storage write
			ref := slotRef{contract: g.contracts[g.rng.IntN(len(g.contracts))], slot: common.BigToHash(big.NewInt(int64(g.rng.IntN(256))))}
			val := common.BigToHash(big.NewInt(int64(1 + g.rng.IntN(1<<30))))
			inner.To, inner.Gas, inner.Data = &ref.contract, 60000, append(ref.slot.Bytes(), val.Bytes()...)
			set = append(set, ref)
		case 4: // storage delete: set a live slot back to zero
			idx := -1
			if len(g.live) > 0 {
				idx = g.rng.IntN(len(g.live))
			}
			if idx < 0 || deleted[idx] {
				ref := slotRef{contract: g.contracts[0], slot: common.Hash{}}
				inner.To, inner.Gas, inner.Data = &ref.contract, 60000, append(ref.slot.Bytes(), common.Hash{}.Bytes()...)
				break
			}
			deleted[idx] = true
			ref := g.live[idx]
			inner.To, inner.Gas, inner.Data = &ref.contract, 60000, append(ref.slot.Bytes(), common.Hash{}.Bytes()...)
		case 5: // contract creation
			inner.Gas, inner.Data = 200000, loadStoreInitCode
			deployed = append(deployed, crypto.CreateAddress(from.Address, nonce))
		case 6: // created and self-destructed in one transaction: the account is deleted
			inner.Gas, inner.Data = 100000, loadSelfDestructInitCode
		case 8: // reads of an account that does not exist, from a constructor
			inner.Gas, inner.Data = 200000, loadAbsentReadInitCode(g.absentAddress())
		case 9: // a withdrawal initiation: writes the message passer's storage on an L2
			to := MessagePasserPredeploy
			target := accounts[g.rng.IntN(len(accounts))].Address
			inner.To, inner.Gas, inner.Value = &to, 200000, big.NewInt(int64(1+g.rng.IntN(1000)))
			inner.Data = withdrawalCalldata(target, 100000, []byte("opkit load withdrawal"))
		case 10: // EIP-7702: a fresh account delegates to a storage contract and writes through it
			tx, ref, err := g.setCodeTx(from, nonce, tip, feeCap)
			if err != nil {
				return nil, err
			}
			txs = append(txs, tx)
			set = append(set, ref)
			g.nonces[from.Address] = nonce + 1
			g.sent++
			continue
		case 11: // a transfer of nothing to an account that does not exist (and stays so)
			to := g.absentAddress()
			inner.To, inner.Gas, inner.Value = &to, 21000, new(big.Int)
		}
		txs = append(txs, types.MustSignNewTx(from.Key, g.signer, inner))
		g.nonces[from.Address] = nonce + 1
		g.sent++
	}
	return &loadBlock{txs: txs, deployed: deployed, set: set, deleted: deleted}, nil
}

// absentAddress is a new address no transaction ever funds: reading it reads an account
// that does not exist.
func (g *Load) absentAddress() common.Address {
	g.absent++
	return common.BytesToAddress(crypto.Keccak256([]byte("opkit load absent"), new(big.Int).SetUint64(g.absent).Bytes()))
}

// setCodeTx makes a SetCode transaction from from: a brand-new account authorizes
// delegation to one of the storage contracts, and the transaction then calls that
// account, so the contract's code writes a slot in the new account's storage.
func (g *Load) setCodeTx(from Account, nonce uint64, tip, feeCap *big.Int) (*types.Transaction, slotRef, error) {
	g.delegated++
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("opkit load authority"), new(big.Int).SetUint64(g.delegated).Bytes()))
	if err != nil {
		return nil, slotRef{}, fmt.Errorf("load: authority key: %w", err)
	}
	authority := crypto.PubkeyToAddress(key.PublicKey)
	target := g.contracts[g.rng.IntN(len(g.contracts))]
	chainID := g.l1.ChainConfig().ChainID
	auth, err := types.SignSetCode(key, types.SetCodeAuthorization{
		ChainID: *uint256.MustFromBig(chainID), Address: target, Nonce: 0,
	})
	if err != nil {
		return nil, slotRef{}, fmt.Errorf("load: sign authorization: %w", err)
	}
	ref := slotRef{contract: authority, slot: common.BigToHash(big.NewInt(int64(g.rng.IntN(256))))}
	val := common.BigToHash(big.NewInt(int64(1 + g.rng.IntN(1<<30))))
	tx, err := types.SignNewTx(from.Key, g.signer, &types.SetCodeTx{
		ChainID: uint256.MustFromBig(chainID), Nonce: nonce,
		GasTipCap: uint256.MustFromBig(tip), GasFeeCap: uint256.MustFromBig(feeCap), Gas: 150000,
		To: authority, Data: append(ref.slot.Bytes(), val.Bytes()...),
		AuthList: []types.SetCodeAuthorization{auth},
	})
	if err != nil {
		return nil, slotRef{}, fmt.Errorf("load: sign SetCode transaction: %w", err)
	}
	return tx, ref, nil
}

func (g *Load) checkBlock(header *types.Header, txs []*types.Transaction) error {
	bc := g.l1.Backend().BlockChain()
	block := bc.GetBlock(header.Hash(), header.Number.Uint64())
	if block == nil {
		return fmt.Errorf("load: sealed block %d is not in the chain", header.Number)
	}
	// An L2 block starts with its deposits (the L1-attributes one at least); the load's
	// transactions follow.
	deposits := 0
	for _, tx := range block.Transactions() {
		if tx.Type() != types.DepositTxType {
			break
		}
		deposits++
	}
	if got := len(block.Transactions()) - deposits; got != len(txs) {
		return fmt.Errorf("load: block %d holds %d transactions, %d were sent", header.Number, got, len(txs))
	}
	receipts := bc.GetReceiptsByHash(header.Hash())
	var errs []error
	for i, r := range receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			errs = append(errs, fmt.Errorf("transaction %d (%s) failed", i, r.TxHash))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load: block %d: %w", header.Number, err)
	}
	return nil
}

// MineBlocks mines n loaded blocks.
func (g *Load) MineBlocks(ctx context.Context, n int) error {
	for i := 0; i < n; i++ {
		if _, err := g.MineBlock(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Populate funds n brand-new accounts, perBlock transfers to a block, so that a test can
// start from a state whose trie is already as deep as its steady state will be.
func (g *Load) Populate(ctx context.Context, n, perBlock int) error {
	accounts := g.l1.Accounts()
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		count := min(n, perBlock)
		head := g.l1.Head()
		tip := big.NewInt(1e9)
		feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
		txs := make([]*types.Transaction, 0, count)
		for i := 0; i < count; i++ {
			from := accounts[i%len(accounts)]
			g.fresh++
			to := common.BytesToAddress(crypto.Keccak256([]byte("opkit load recipient"), new(big.Int).SetUint64(g.fresh).Bytes()))
			txs = append(txs, types.MustSignNewTx(from.Key, g.signer, &types.DynamicFeeTx{
				ChainID: g.l1.ChainConfig().ChainID, Nonce: g.nonces[from.Address], GasTipCap: tip, GasFeeCap: feeCap,
				Gas: 21000, To: &to, Value: big.NewInt(1),
			}))
			g.nonces[from.Address]++
		}
		for i, err := range g.l1.Backend().TxPool().Add(txs, true) {
			if err != nil {
				return fmt.Errorf("load: add transaction %d: %w", i, err)
			}
		}
		header, err := g.l1.Mine()
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if err := g.checkBlock(header, txs); err != nil {
			return err
		}
		n -= count
	}
	return nil
}
