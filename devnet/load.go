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
)

// LoadConfig shapes the traffic a Load sends.
type LoadConfig struct {
	// TxsPerBlock is how many transactions each mined block carries; default 20.
	TxsPerBlock int
	// Seed makes the mix of transactions reproducible; the same seed on the same chain
	// sends the same transactions.
	Seed uint64
}

// Load drives a dev chain with a varied, valid mix of transactions, one block at a time:
// value transfers (to existing and to brand-new accounts), contract creation, storage
// writes, storage deletes (slots set back to zero) and contracts that self-destruct in
// the transaction that creates them, so the account is created and deleted at once.
// Every block also carries the system-contract writes the chain's forks require (beacon
// roots, block-hash history). Load is for one goroutine.
type Load struct {
	l1     *L1
	cfg    LoadConfig
	rng    *rand.Rand
	signer types.Signer
	nonces map[common.Address]uint64

	contracts []common.Address // deployed storage contracts
	live      []slotRef        // slots holding a non-zero value in a mined block
	fresh     uint64           // counter for new transfer recipients
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

// NewLoad prepares a load generator over the L1's funded dev accounts.
func NewLoad(l1 *L1, cfg LoadConfig) *Load {
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

// MineBlock sends one block's worth of transactions, seals the block and checks that it
// holds them all and that every one succeeded.
func (g *Load) MineBlock(ctx context.Context) (*types.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	head := g.l1.Head()
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
		kind := g.sent % 8
		if len(g.contracts) == 0 && (kind == 2 || kind == 3 || kind == 4 || kind == 7) {
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
		}
		txs = append(txs, types.MustSignNewTx(from.Key, g.signer, inner))
		g.nonces[from.Address] = nonce + 1
		g.sent++
	}
	for i, err := range g.l1.Backend().TxPool().Add(txs, true) {
		if err != nil {
			return nil, fmt.Errorf("load: add transaction %d: %w", i, err)
		}
	}
	header, err := g.l1.Mine()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := g.checkBlock(header, txs); err != nil {
		return nil, err
	}
	g.contracts = append(g.contracts, deployed...)
	var live []slotRef
	for i, s := range g.live {
		if !deleted[i] {
			live = append(live, s)
		}
	}
	g.live = append(live, set...)
	return header, nil
}

func (g *Load) checkBlock(header *types.Header, txs []*types.Transaction) error {
	bc := g.l1.Backend().BlockChain()
	block := bc.GetBlock(header.Hash(), header.Number.Uint64())
	if block == nil {
		return fmt.Errorf("load: sealed block %d is not in the chain", header.Number)
	}
	if len(block.Transactions()) != len(txs) {
		return fmt.Errorf("load: block %d holds %d transactions, %d were sent", header.Number, len(block.Transactions()), len(txs))
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
