// Package batchtest generates L2 blocks for tests of the batch codecs: blocks that open
// with an Isthmus L1-info deposit and carry signed transactions of every type a span
// batch can hold, so encoders and decoders (opkit's and the OP Stack's) can be fed the
// same realistic input.
package batchtest

import (
	"crypto/ecdsa"
	"math/big"
	"math/rand/v2"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/opkit/opkit/rollup"
)

// Gen makes blocks and transactions from a seeded generator.
type Gen struct {
	Rng     *rand.Rand
	ChainID *big.Int
	keys    []*ecdsa.PrivateKey
	// TxTypes are the transaction kinds drawn from; nil means all of them.
	TxTypes []TxKind
	// MaxDataLen bounds random calldata.
	MaxDataLen int
}

// TxKind is a transaction type with legacy split by replay protection.
type TxKind int

const (
	LegacyUnprotected TxKind = iota
	LegacyProtected
	AccessList
	DynamicFee
	SetCode
	numKinds
)

// New returns a generator for chainID seeded with seed.
func New(seed uint64, chainID *big.Int) *Gen {
	g := &Gen{Rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ChainID: chainID, MaxDataLen: 300}
	for i := 0; i < 4; i++ {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte{byte(i), 0x42}))
		if err != nil {
			panic(err)
		}
		g.keys = append(g.keys, k)
	}
	return g
}

func (g *Gen) addr() common.Address {
	var a common.Address
	for i := range a {
		a[i] = byte(g.Rng.Uint32())
	}
	return a
}

func (g *Gen) hash() common.Hash {
	var h common.Hash
	for i := range h {
		h[i] = byte(g.Rng.Uint32())
	}
	return h
}

func (g *Gen) data() []byte {
	n := g.Rng.IntN(g.MaxDataLen + 1)
	d := make([]byte, n)
	// Half random, half repetitive, so compression has something to do.
	for i := range d {
		if i < n/2 {
			d[i] = byte(g.Rng.Uint32())
		} else {
			d[i] = byte(i % 7)
		}
	}
	return d
}

func (g *Gen) accessList() types.AccessList {
	var al types.AccessList
	for i := g.Rng.IntN(3); i > 0; i-- {
		t := types.AccessTuple{Address: g.addr()}
		for j := g.Rng.IntN(3); j > 0; j-- {
			t.StorageKeys = append(t.StorageKeys, g.hash())
		}
		al = append(al, t)
	}
	return al
}

func (g *Gen) big(bits int) *big.Int {
	b := make([]byte, (bits+7)/8)
	for i := range b {
		b[i] = byte(g.Rng.Uint32())
	}
	if r := bits % 8; r != 0 {
		b[0] &= byte(1<<r) - 1
	}
	return new(big.Int).SetBytes(b)
}

// Tx returns a signed transaction of a random kind.
func (g *Gen) Tx() *types.Transaction {
	kind := TxKind(g.Rng.IntN(int(numKinds)))
	if len(g.TxTypes) > 0 {
		kind = g.TxTypes[g.Rng.IntN(len(g.TxTypes))]
	}
	return g.TxOf(kind)
}

// TxOf returns a signed transaction of the given kind.
func (g *Gen) TxOf(kind TxKind) *types.Transaction {
	key := g.keys[g.Rng.IntN(len(g.keys))]
	var to *common.Address
	if g.Rng.IntN(5) != 0 || kind == SetCode {
		a := g.addr()
		to = &a
	}
	nonce := g.Rng.Uint64N(1 << 20)
	gas := 21000 + g.Rng.Uint64N(1<<22)
	var inner types.TxData
	var signer types.Signer = types.LatestSignerForChainID(g.ChainID)
	switch kind {
	case LegacyUnprotected:
		signer = types.HomesteadSigner{}
		inner = &types.LegacyTx{Nonce: nonce, GasPrice: g.big(40), Gas: gas, To: to, Value: g.big(70), Data: g.data()}
	case LegacyProtected:
		signer = types.NewEIP155Signer(g.ChainID)
		inner = &types.LegacyTx{Nonce: nonce, GasPrice: g.big(40), Gas: gas, To: to, Value: g.big(70), Data: g.data()}
	case AccessList:
		inner = &types.AccessListTx{ChainID: g.ChainID, Nonce: nonce, GasPrice: g.big(40), Gas: gas, To: to, Value: g.big(70),
			Data: g.data(), AccessList: g.accessList()}
	case DynamicFee:
		inner = &types.DynamicFeeTx{ChainID: g.ChainID, Nonce: nonce, GasTipCap: g.big(30), GasFeeCap: g.big(40), Gas: gas,
			To: to, Value: g.big(70), Data: g.data(), AccessList: g.accessList()}
	case SetCode:
		var auths []types.SetCodeAuthorization
		for i := 1 + g.Rng.IntN(2); i > 0; i-- {
			a, err := types.SignSetCode(g.keys[g.Rng.IntN(len(g.keys))], types.SetCodeAuthorization{
				ChainID: *uint256.MustFromBig(g.ChainID), Address: g.addr(), Nonce: g.Rng.Uint64N(1000)})
			if err != nil {
				panic(err)
			}
			auths = append(auths, a)
		}
		inner = &types.SetCodeTx{ChainID: uint256.MustFromBig(g.ChainID), Nonce: nonce, GasTipCap: uint256.MustFromBig(g.big(30)),
			GasFeeCap: uint256.MustFromBig(g.big(40)), Gas: gas, To: *to, Value: uint256.MustFromBig(g.big(70)), Data: g.data(),
			AccessList: g.accessList(), AuthList: auths}
	}
	tx, err := types.SignNewTx(key, signer, inner)
	if err != nil {
		panic(err)
	}
	return tx
}

// Chain describes the blocks Blocks makes.
type Chain struct {
	GenesisTime uint64
	BlockTime   uint64
	// FirstNumber, FirstTime and FirstParent place the first block.
	FirstNumber uint64
	FirstParent common.Hash
	// L1Start is the first block's L1 origin number; its sequence number is FirstSeq.
	L1Start  uint64
	FirstSeq uint64
	// MaxTxs bounds each block's user transactions; EpochEvery blocks share an origin.
	MaxTxs     int
	EpochEvery int
	// Jovian writes the Jovian L1-info deposit instead of the Isthmus one.
	Jovian bool
}

// L1Hash is the fake L1 hash Blocks uses for origin number n.
func L1Hash(n uint64) common.Hash {
	return crypto.Keccak256Hash(new(big.Int).SetUint64(n).Bytes(), []byte("l1"))
}

// Blocks makes n consecutive blocks, each a child of the previous one, with L1-info
// deposits whose sequence numbers restart at every new origin.
func (g *Gen) Blocks(c Chain, n int) []*types.Block {
	if c.BlockTime == 0 {
		c.BlockTime = 2
	}
	if c.EpochEvery == 0 {
		c.EpochEvery = 3
	}
	if c.FirstNumber == 0 {
		c.FirstNumber = 1
	}
	blocks := make([]*types.Block, 0, n)
	parent := c.FirstParent
	origin, seq := c.L1Start, c.FirstSeq
	for i := 0; i < n; i++ {
		if i > 0 {
			seq++
			if g.Rng.IntN(c.EpochEvery) == 0 {
				origin++
				seq = 0
			}
		}
		number := c.FirstNumber + uint64(i)
		time := c.GenesisTime + number*c.BlockTime
		info := rollup.L1BlockInfo{Number: origin, Time: 1000 + origin*12, BaseFee: big.NewInt(7), BlockHash: L1Hash(origin),
			SequenceNumber: seq, BlobBaseFee: big.NewInt(1), BaseFeeScalar: 1368, BlobBaseFeeScalar: 810949}
		marshal := info.MarshalIsthmus
		if c.Jovian {
			marshal = info.MarshalJovian
		}
		data, err := marshal()
		if err != nil {
			panic(err)
		}
		to := rollup.L1BlockAddress
		txs := []*types.Transaction{types.NewTx(&types.DepositTx{SourceHash: rollup.L1InfoSourceHash(info.BlockHash, seq),
			From: rollup.L1InfoDepositor, To: &to, Value: new(big.Int), Gas: 1_000_000, Data: data})}
		for j := g.Rng.IntN(c.MaxTxs + 1); j > 0; j-- {
			txs = append(txs, g.Tx())
		}
		if c.MaxTxs > 0 && g.Rng.IntN(4) == 0 {
			// A user deposit in the middle of the block, which batches leave out.
			a := g.addr()
			txs = append(txs, types.NewTx(&types.DepositTx{SourceHash: g.hash(), From: g.addr(), To: &a, Value: big.NewInt(1), Gas: 50000}))
		}
		h := &types.Header{ParentHash: parent, Number: new(big.Int).SetUint64(number), Time: time, GasLimit: 30_000_000,
			Difficulty: new(big.Int), BaseFee: big.NewInt(1)}
		b := types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: txs})
		blocks = append(blocks, b)
		parent = b.Hash()
	}
	return blocks
}
