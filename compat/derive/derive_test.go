package derive

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"testing"

	opaltda "github.com/ethereum-optimism/optimism/op-alt-da"
	opmetrics "github.com/ethereum-optimism/optimism/op-node/metrics"
	oprollup "github.com/ethereum-optimism/optimism/op-node/rollup"
	opderive "github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opparams "github.com/ethereum-optimism/optimism/op-node/rollup/derive/params"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethlog "github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/derive"
)

// l1Chain is the one L1 both pipelines read: headers 12 s apart and their transactions.
type l1Chain struct {
	headers []*types.Header
	byHash  map[common.Hash]int
	txs     map[common.Hash]types.Transactions
	// logs are emitted by one more successful receipt after the block's transactions'.
	logs map[common.Hash][]*types.Log
	next int
}

// newL1Chain makes n+1 blocks up front: header hashes do not cover transactions here,
// so batches can name any epoch before the block carrying them is filled.
func newL1Chain(n int) *l1Chain {
	c := &l1Chain{byHash: map[common.Hash]int{}, txs: map[common.Hash]types.Transactions{}, logs: map[common.Hash][]*types.Log{}}
	c.add(&types.Header{Number: big.NewInt(0), Time: 1_700_000_000, BaseFee: big.NewInt(7), Difficulty: common.Big0,
		ParentBeaconRoot: &common.Hash{0xbe}})
	for i := 1; i <= n; i++ {
		head := c.headers[len(c.headers)-1]
		c.add(&types.Header{ParentHash: head.Hash(), Number: big.NewInt(int64(i)), Time: head.Time + 12,
			BaseFee: big.NewInt(int64(7 + i)), Difficulty: common.Big0, MixDigest: common.Hash{0x3a, byte(i)},
			ParentBeaconRoot: &common.Hash{0xbe, byte(i)}})
	}
	c.next = 1
	return c
}

func (c *l1Chain) add(h *types.Header) {
	c.byHash[h.Hash()] = len(c.headers)
	c.headers = append(c.headers, h)
}

// mine fills the next block with txs.
func (c *l1Chain) mine(txs ...*types.Transaction) {
	c.txs[c.headers[c.next].Hash()] = txs
	c.next++
}

func (c *l1Chain) header(h common.Hash) (*types.Header, error) {
	i, ok := c.byHash[h]
	if !ok {
		return nil, fmt.Errorf("L1 block %s: %w", h, ethereum.NotFound)
	}
	return c.headers[i], nil
}

func (c *l1Chain) number(n uint64) (*types.Header, error) {
	if n >= uint64(len(c.headers)) {
		return nil, fmt.Errorf("L1 block %d: %w", n, ethereum.NotFound)
	}
	return c.headers[n], nil
}

// opkit's view of the L1.
type opkitL1 struct{ c *l1Chain }

func (l opkitL1) L1BlockRefByNumber(_ context.Context, n uint64) (eth.L1BlockRef, error) {
	h, err := l.c.number(n)
	if err != nil {
		return eth.L1BlockRef{}, err
	}
	return eth.BlockRefFromHeader(h), nil
}

func (l opkitL1) L1BlockRefByHash(_ context.Context, hash common.Hash) (eth.L1BlockRef, error) {
	h, err := l.c.header(hash)
	if err != nil {
		return eth.L1BlockRef{}, err
	}
	return eth.BlockRefFromHeader(h), nil
}

func (l opkitL1) FetchReceipts(_ context.Context, hash common.Hash) (*types.Header, types.Receipts, error) {
	h, err := l.c.header(hash)
	if err != nil {
		return nil, nil, err
	}
	return types.CopyHeader(h), l.c.receipts(hash), nil
}

func (c *l1Chain) receipts(h common.Hash) types.Receipts {
	var out types.Receipts
	for _, tx := range c.txs[h] {
		out = append(out, &types.Receipt{Type: tx.Type(), Status: types.ReceiptStatusSuccessful, TxHash: tx.Hash()})
	}
	if logs := c.logs[h]; len(logs) > 0 {
		out = append(out, &types.Receipt{Status: types.ReceiptStatusSuccessful, Logs: logs})
	}
	return out
}

// opkitCalldata is the calldata data source: type 0-3 or deposit transactions to the
// inbox signed by the batcher (blob transactions carry no calldata batches).
type opkitCalldata struct {
	c   *l1Chain
	cfg *rollup.Config
}

func (s opkitCalldata) TxData(_ context.Context, ref eth.L1BlockRef, batcher common.Address) ([][]byte, error) {
	signer := types.LatestSignerForChainID(s.cfg.L1ChainID)
	var out [][]byte
	for _, tx := range s.c.txs[ref.Hash] {
		if tx.To() == nil || *tx.To() != s.cfg.BatchInboxAddress || tx.Type() == types.BlobTxType {
			continue
		}
		if from, err := types.Sender(signer, tx); err != nil || from != batcher {
			continue
		}
		out = append(out, tx.Data())
	}
	return out, nil
}

// op-node's view of the L1.
type opnodeL1 struct{ c *l1Chain }

func opRef(h *types.Header) opeth.L1BlockRef {
	return opeth.L1BlockRef{Hash: h.Hash(), Number: h.Number.Uint64(), ParentHash: h.ParentHash, Time: h.Time}
}

func (l opnodeL1) L1BlockRefByLabel(context.Context, opeth.BlockLabel) (opeth.L1BlockRef, error) {
	return opRef(l.c.headers[len(l.c.headers)-1]), nil
}

func (l opnodeL1) L1BlockRefByNumber(_ context.Context, n uint64) (opeth.L1BlockRef, error) {
	h, err := l.c.number(n)
	if err != nil {
		return opeth.L1BlockRef{}, err
	}
	return opRef(h), nil
}

func (l opnodeL1) L1BlockRefByHash(_ context.Context, hash common.Hash) (opeth.L1BlockRef, error) {
	h, err := l.c.header(hash)
	if err != nil {
		return opeth.L1BlockRef{}, err
	}
	return opRef(h), nil
}

func (l opnodeL1) InfoByHash(_ context.Context, hash common.Hash) (opeth.BlockInfo, error) {
	h, err := l.c.header(hash)
	if err != nil {
		return nil, err
	}
	return opeth.HeaderBlockInfo(h), nil
}

func (l opnodeL1) FetchReceipts(_ context.Context, hash common.Hash) (opeth.BlockInfo, types.Receipts, error) {
	h, err := l.c.header(hash)
	if err != nil {
		return nil, nil, err
	}
	return opeth.HeaderBlockInfo(h), l.c.receipts(hash), nil
}

func (l opnodeL1) InfoAndTxsByHash(_ context.Context, hash common.Hash) (opeth.BlockInfo, types.Transactions, error) {
	h, err := l.c.header(hash)
	if err != nil {
		return nil, nil, err
	}
	return opeth.HeaderBlockInfo(h), l.c.txs[hash], nil
}

// noBlobs is the blob source of an L1 without blob transactions.
type noBlobs struct{}

func (noBlobs) GetBlobsByHash(context.Context, uint64, []common.Hash) ([]*opeth.Blob, error) {
	return nil, errors.New("no blobs on this L1")
}

// l2Chain is one pipeline's L2: every derived block becomes the safe head, its hash
// fixed by its parent, timestamp and transactions, so a divergence in any derived
// transaction shows as a different chain.
type l2Chain struct {
	byNumber map[uint64]eth.L2BlockRef
	byHash   map[common.Hash]eth.L2BlockRef
	sys      rollup.SystemConfig
	head     eth.L2BlockRef
}

func newL2Chain(cfg *rollup.Config) *l2Chain {
	g := eth.L2BlockRef{Hash: cfg.Genesis.L2.Hash, Number: cfg.Genesis.L2.Number, Time: cfg.Genesis.L2Time, L1Origin: cfg.Genesis.L1}
	l := &l2Chain{byNumber: map[uint64]eth.L2BlockRef{}, byHash: map[common.Hash]eth.L2BlockRef{}, sys: cfg.Genesis.SystemConfig}
	l.put(g)
	return l
}

func (l *l2Chain) put(r eth.L2BlockRef) {
	l.byNumber[r.Number] = r
	l.byHash[r.Hash] = r
	l.head = r
}

func (l *l2Chain) apply(parent eth.L2BlockRef, ts uint64, txs [][]byte) error {
	if parent != l.head {
		return fmt.Errorf("attributes on %s, head is %s", parent.ID(), l.head.ID())
	}
	var dep types.Transaction
	if err := dep.UnmarshalBinary(txs[0]); err != nil {
		return err
	}
	info, err := rollup.L1InfoFromBlockTx(&dep)
	if err != nil {
		return err
	}
	hash := blockHash(parent.Hash, ts)
	l.put(eth.L2BlockRef{Hash: hash, Number: parent.Number + 1, ParentHash: parent.Hash, Time: ts,
		L1Origin: eth.BlockID{Hash: info.BlockHash, Number: info.Number}, SequenceNumber: info.SequenceNumber})
	return nil
}

func (l *l2Chain) L2BlockRefByNumber(_ context.Context, n uint64) (eth.L2BlockRef, error) {
	r, ok := l.byNumber[n]
	if !ok {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %d: %w", n, ethereum.NotFound)
	}
	return r, nil
}

func (l *l2Chain) L2BlockRefByHash(_ context.Context, h common.Hash) (eth.L2BlockRef, error) {
	r, ok := l.byHash[h]
	if !ok {
		return eth.L2BlockRef{}, fmt.Errorf("L2 block %s: %w", h, ethereum.NotFound)
	}
	return r, nil
}

func (l *l2Chain) SystemConfigByL2Hash(_ context.Context, h common.Hash) (rollup.SystemConfig, error) {
	if _, ok := l.byHash[h]; !ok {
		return rollup.SystemConfig{}, fmt.Errorf("L2 block %s: %w", h, ethereum.NotFound)
	}
	return l.sys, nil
}

// opnodeL2 is op-node's view of an L2 source (an l2Chain or opkit's engine).
type opnodeL2 struct{ l derive.L2Source }

func toOp(r eth.L2BlockRef) opeth.L2BlockRef {
	return opeth.L2BlockRef{Hash: r.Hash, Number: r.Number, ParentHash: r.ParentHash, Time: r.Time,
		L1Origin: opeth.BlockID{Hash: r.L1Origin.Hash, Number: r.L1Origin.Number}, SequenceNumber: r.SequenceNumber}
}

func fromOp(r opeth.L2BlockRef) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: r.Hash, Number: r.Number, ParentHash: r.ParentHash, Time: r.Time,
		L1Origin: eth.BlockID{Hash: r.L1Origin.Hash, Number: r.L1Origin.Number}, SequenceNumber: r.SequenceNumber}
}

func (o opnodeL2) PayloadByHash(context.Context, common.Hash) (*opeth.ExecutionPayloadEnvelope, error) {
	return nil, errors.New("payloads are not kept")
}

func (o opnodeL2) PayloadByNumber(context.Context, uint64) (*opeth.ExecutionPayloadEnvelope, error) {
	return nil, errors.New("payloads are not kept")
}

func (o opnodeL2) L2BlockRefByLabel(context.Context, opeth.BlockLabel) (opeth.L2BlockRef, error) {
	return opeth.L2BlockRef{}, errors.New("derivation reads no labels")
}

func (o opnodeL2) L2BlockRefByHash(ctx context.Context, h common.Hash) (opeth.L2BlockRef, error) {
	r, err := o.l.L2BlockRefByHash(ctx, h)
	return toOp(r), err
}

func (o opnodeL2) L2BlockRefByNumber(ctx context.Context, n uint64) (opeth.L2BlockRef, error) {
	r, err := o.l.L2BlockRefByNumber(ctx, n)
	return toOp(r), err
}

func (o opnodeL2) SystemConfigByL2Hash(ctx context.Context, h common.Hash) (opeth.SystemConfig, error) {
	s, err := o.l.SystemConfigByL2Hash(ctx, h)
	if err != nil {
		return opeth.SystemConfig{}, err
	}
	return opeth.SystemConfig{BatcherAddr: s.BatcherAddr, Overhead: opeth.Bytes32(s.Overhead), Scalar: opeth.Bytes32(s.Scalar),
		GasLimit: s.GasLimit, EIP1559Params: opeth.Bytes8(s.EIP1559Params), OperatorFeeParams: opeth.Bytes32(s.OperatorFeeParams),
		MinBaseFee: s.MinBaseFee, DAFootprintGasScalar: s.DAFootprintGasScalar}, nil
}

// derived is one block's attributes as both pipelines report them.
type derived struct {
	Parent      eth.L2BlockRef
	Timestamp   uint64
	Random      common.Hash
	FeeRecip    common.Address
	BeaconRoot  common.Hash
	GasLimit    uint64
	EIP1559     []byte
	NoTxPool    bool
	MinBaseFee  *uint64
	Txs         [][]byte
	DerivedFrom eth.L1BlockRef
}

func runOpkit(t *testing.T, cfg *rollup.Config, l1cfg *params.ChainConfig, c *l1Chain) []derived {
	l2 := newL2Chain(cfg)
	d := derive.New(cfg, l1cfg, derive.Deps{L1: opkitL1{c}, Data: opkitCalldata{c, cfg}, L2: l2, Log: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := d.Reset(ctx, l2.head); err != nil {
		t.Fatal(err)
	}
	var out []derived
	for i := 0; i < 1_000_000; i++ {
		a, err := d.NextAttributes(ctx, l2.head)
		if errors.Is(err, io.EOF) {
			return out
		} else if errors.Is(err, derive.ErrNotEnoughData) {
			continue
		} else if err != nil {
			t.Fatalf("opkit: %v", err)
		}
		out = append(out, fromOpkit(a))
		if err := l2.apply(a.Parent, a.Payload.Timestamp, a.Payload.Transactions); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("opkit does not go idle")
	return nil
}

func runOpnode(t *testing.T, cfg *rollup.Config, l1cfg *params.ChainConfig, c *l1Chain) []derived {
	l2 := newL2Chain(cfg)
	p := opderive.NewDerivationPipeline(gethlog.NewLogger(gethlog.DiscardHandler()), opnodeConfig(t, cfg), nil, opnodeL1{c}, noBlobs{}, opaltda.Disabled,
		opnodeL2{l2}, opmetrics.NoopMetrics, false, l1cfg)
	p.Reset()
	p.ConfirmEngineReset()
	ctx := context.Background()
	var out []derived
	for i := 0; i < 1_000_000; i++ {
		a, err := p.Step(ctx, toOp(l2.head))
		if errors.Is(err, io.EOF) {
			return out
		} else if errors.Is(err, opderive.NotEnoughData) {
			continue
		} else if err != nil {
			t.Fatalf("op-node: %v", err)
		}
		if a == nil {
			continue
		}
		d := fromOpnode(a)
		out = append(out, d)
		if err := l2.apply(d.Parent, d.Timestamp, d.Txs); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("op-node does not go idle")
	return nil
}

func fromOpkit(a *derive.Attributes) derived {
	p := a.Payload
	return derived{Parent: a.Parent, Timestamp: p.Timestamp, Random: p.Random, FeeRecip: p.SuggestedFeeRecipient,
		BeaconRoot: *p.BeaconRoot, GasLimit: *p.GasLimit, EIP1559: p.EIP1559Params, NoTxPool: p.NoTxPool, MinBaseFee: p.MinBaseFee,
		Txs: p.Transactions, DerivedFrom: a.DerivedFrom}
}

func fromOpnode(a *opderive.AttributesWithParent) derived {
	at := a.Attributes
	txs := make([][]byte, len(at.Transactions))
	for i, tx := range at.Transactions {
		txs[i] = tx
	}
	var eip []byte
	if at.EIP1559Params != nil {
		eip = at.EIP1559Params[:]
	}
	return derived{Parent: fromOp(a.Parent), Timestamp: uint64(at.Timestamp), Random: common.Hash(at.PrevRandao),
		FeeRecip: at.SuggestedFeeRecipient, BeaconRoot: *at.ParentBeaconBlockRoot, GasLimit: uint64(*at.GasLimit), EIP1559: eip,
		NoTxPool: at.NoTxPool, MinBaseFee: at.MinBaseFee, Txs: txs, DerivedFrom: eth.L1BlockRef{Hash: a.DerivedFrom.Hash,
			Number: a.DerivedFrom.Number, ParentHash: a.DerivedFrom.ParentHash, Time: a.DerivedFrom.Time}}
}

// opnodeConfig is cfg in op-node's type, through rollup.json.
func opnodeConfig(t *testing.T, cfg *rollup.Config) *oprollup.Config {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var opCfg oprollup.Config
	if err := json.Unmarshal(raw, &opCfg); err != nil {
		t.Fatal(err)
	}
	return &opCfg
}

func compare(t *testing.T, opkit, opnode []derived) {
	t.Helper()
	for i := 0; i < len(opkit) && i < len(opnode); i++ {
		a, b := opkit[i], opnode[i]
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("block %d differs:\nopkit   %s\nop-node %s", i+1, ja, jb)
		}
	}
	if len(opkit) != len(opnode) {
		t.Fatalf("opkit derived %d blocks, op-node %d", len(opkit), len(opnode))
	}
}

// scenario posts batches, encoded with op-node's code, to an l1Chain.
type scenario struct {
	t       *testing.T
	cfg     *rollup.Config
	c       *l1Chain
	batcher devnet.Account
	nonces  map[common.Address]uint64
	l2Key   devnet.Account
	l2Nonce uint64
}

func newScenario(t *testing.T) *scenario {
	c := newL1Chain(64)
	_, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: c.headers[0], L1ChainID: 900, BlockTime: 2})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SeqWindowSize = 20
	accts := devnet.DevAccounts(3)
	return &scenario{t: t, cfg: cfg, c: c, batcher: accts[1], nonces: map[common.Address]uint64{}, l2Key: accts[2]}
}

// l2Tx is a signed L2 transfer for a batch.
func (s *scenario) l2Tx() []byte {
	tx := types.MustSignNewTx(s.l2Key.Key, types.LatestSignerForChainID(s.cfg.L2ChainID), &types.DynamicFeeTx{
		ChainID: s.cfg.L2ChainID, Nonce: s.l2Nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e9), Gas: 21_000,
		To: &common.Address{0xee}, Value: big.NewInt(int64(s.l2Nonce)),
	})
	s.l2Nonce++
	enc, err := tx.MarshalBinary()
	if err != nil {
		s.t.Fatal(err)
	}
	return enc
}

// l1Tx is a calldata transaction to the inbox from an account.
func (s *scenario) l1Tx(from devnet.Account, data []byte) *types.Transaction {
	n := s.nonces[from.Address]
	s.nonces[from.Address] = n + 1
	return types.MustSignNewTx(from.Key, types.LatestSignerForChainID(s.cfg.L1ChainID), &types.DynamicFeeTx{
		ChainID: s.cfg.L1ChainID, Nonce: n, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e9), Gas: 1_000_000,
		To: &s.cfg.BatchInboxAddress, Data: data,
	})
}

// channel compresses op-node batches into a channel body.
func (s *scenario) channel(batches ...opderive.InnerBatchData) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	for _, b := range batches {
		if err := rlp.Encode(w, opderive.NewBatchData(b)); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		s.t.Fatal(err)
	}
	return buf.Bytes()
}

// rawChannel compresses typed batch encodings, valid or not, into a channel body.
func (s *scenario) rawChannel(entries ...[]byte) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	for _, e := range entries {
		if err := rlp.Encode(w, e); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		s.t.Fatal(err)
	}
	return buf.Bytes()
}

// frames cuts a body into n frames of channel id.
func frames(id byte, body []byte, n int) []opderive.Frame {
	var out []opderive.Frame
	size := (len(body) + n - 1) / n
	for i := 0; i < n; i++ {
		end := min(len(body), (i+1)*size)
		out = append(out, opderive.Frame{ID: opderive.ChannelID{id}, FrameNumber: uint16(i), Data: body[i*size : end], IsLast: i == n-1})
	}
	return out
}

// txData is version 0 then the frames, encoded by op-node.
func (s *scenario) txData(fs ...opderive.Frame) []byte {
	var buf bytes.Buffer
	buf.WriteByte(opparams.DerivationVersion0)
	for _, f := range fs {
		if err := f.MarshalBinary(&buf); err != nil {
			s.t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// blockHash is the hash l2Chain gives the block at ts on parent. It does not cover the
// transactions (compare checks those), so batches can name their parents in advance.
func blockHash(parent common.Hash, ts uint64) common.Hash {
	return crypto.Keccak256Hash(parent[:], new(big.Int).SetUint64(ts).Bytes())
}

// hashOf is the hash of L2 block n: every block n has timestamp genesis + n·block time.
func (s *scenario) hashOf(n uint64) common.Hash {
	h := s.cfg.Genesis.L2.Hash
	for i := uint64(1); i <= n; i++ {
		h = blockHash(h, s.tsOf(i))
	}
	return h
}

func (s *scenario) tsOf(n uint64) uint64 { return s.cfg.Genesis.L2Time + n*s.cfg.BlockTime }

// batch is the singular batch of L2 block n in epoch with txs user transactions.
func (s *scenario) batch(n, epoch uint64, txs int) *opderive.SingularBatch {
	b := &opderive.SingularBatch{ParentHash: s.hashOf(n - 1), EpochNum: oprollup.Epoch(epoch), EpochHash: s.c.headers[epoch].Hash(), Timestamp: s.tsOf(n)}
	for i := 0; i < txs; i++ {
		b.Transactions = append(b.Transactions, s.l2Tx())
	}
	return b
}

// span is the span batch of L2 blocks first..last, each with its epoch from epochs.
func (s *scenario) span(first, last uint64, epochOf func(n uint64) uint64, txs int) *opderive.RawSpanBatch {
	sb := opderive.NewSpanBatch(s.cfg.Genesis.L2Time, s.cfg.L2ChainID)
	for n := first; n <= last; n++ {
		seq := uint64(1)
		if n == first || epochOf(n) != epochOf(n-1) {
			seq = 0
		}
		if err := sb.AppendSingularBatch(s.batch(n, epochOf(n), txs), seq); err != nil {
			s.t.Fatal(err)
		}
	}
	raw, err := sb.ToRawSpanBatch()
	if err != nil {
		s.t.Fatal(err)
	}
	return raw
}

// run derives with both pipelines, compares, and checks how many blocks carry user
// transactions (so the batches were used, not only forced empty blocks made).
func (s *scenario) run(withTxs int) []derived {
	l1cfg := params.MergedTestChainConfig
	a := runOpkit(s.t, s.cfg, l1cfg, s.c)
	b := runOpnode(s.t, s.cfg, l1cfg, s.c)
	compare(s.t, a, b)
	n := 0
	for _, d := range a {
		for _, tx := range d.Txs {
			if tx[0] != types.DepositTxType {
				n++
				break
			}
		}
	}
	s.t.Logf("%d blocks derived alike from %d L1 blocks, %d with user transactions", len(a), len(s.c.headers), n)
	if n != withTxs {
		s.t.Fatalf("%d blocks with user transactions, want %d", n, withTxs)
	}
	return a
}

// TestSingularBatchesAndBadInput: singular batches in zlib channels, with every kind of
// bad input the rules drop, then forced empty blocks once the sequence window passes.
func TestSingularBatchesAndBadInput(t *testing.T) {
	s := newScenario(t)
	stranger := devnet.DevAccounts(1)[0]
	// Epoch e holds L2 blocks with ts in [e·12, e·12+12): six per epoch.
	epochOf := func(n uint64) uint64 { return n * 2 / 12 }

	// L1 1: blocks 1..6 in channel 1 (three frames in two transactions), with a
	// stranger's copy and garbage around it.
	body := s.channel(s.batch(1, 0, 1), s.batch(2, 0, 2), s.batch(3, 0, 0), s.batch(4, 0, 1), s.batch(5, 0, 1), s.batch(6, 1, 1))
	f := frames(1, body, 3)
	s.c.mine(
		s.l1Tx(stranger, s.txData(frames(9, body, 1)...)),
		s.l1Tx(s.batcher, []byte{0, 0xde, 0xad}),
		s.l1Tx(s.batcher, []byte{1, 2, 3}),
		s.l1Tx(s.batcher, s.txData(f[0], f[1])),
		s.l1Tx(s.batcher, s.txData(f[2])),
	)
	// L1 2: a channel cut off by a new one (pruned), then blocks 7..8.
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(2, s.channel(s.batch(7, 1, 1)), 2)[0], frames(3, s.channel(s.batch(7, 1, 1), s.batch(8, 1, 0)), 1)[0])))
	// L1 3: a future batch (block 10) before block 9 in one channel: dropped with the rest.
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(4, s.channel(s.batch(10, 1, 1), s.batch(9, 1, 1)), 1)...)))
	// L1 4: past batches then blocks 9..10; a channel with bad compression.
	s.c.mine(
		s.l1Tx(s.batcher, s.txData(frames(5, s.channel(s.batch(5, 0, 1), s.batch(8, 1, 0), s.batch(9, 1, 1), s.batch(10, 1, 0)), 2)...)),
		s.l1Tx(s.batcher, s.txData(opderive.Frame{ID: opderive.ChannelID{6}, Data: []byte{0x05, 1, 2}, IsLast: true})),
	)
	// L1 5: the first frame of a channel with block 11 whose last frame comes too late.
	late := frames(7, s.channel(s.batch(11, 1, 1)), 2)
	s.c.mine(s.l1Tx(s.batcher, s.txData(late[0])))
	// L1 6: block 11 with the wrong epoch hash, then (next channel) with an epoch too old.
	wrong := s.batch(11, 1, 0)
	wrong.EpochHash = common.Hash{0xba, 0xd}
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(8, s.channel(wrong), 1)...)), s.l1Tx(s.batcher, s.txData(frames(10, s.channel(s.batch(11, 0, 0)), 1)...)))
	// L1 7: blocks 11..12 as they should be.
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(11, s.channel(s.batch(11, epochOf(11), 1), s.batch(12, epochOf(12), 1)), 1)...)))
	// Nothing more until well past the windows of the next epochs, then the late frame.
	s.c.next = 57
	s.c.mine(s.l1Tx(s.batcher, s.txData(late[1])))
	// Blocks 3, 8 and 10 hold no user transactions.
	s.run(9)
}

// TestSpanBatches: span batches, one spanning an epoch change, one overlapping the safe
// chain, one malformed.
func TestSpanBatches(t *testing.T) {
	s := newScenario(t)
	epochOf := func(n uint64) uint64 { return n * 2 / 12 }
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(1, s.channel(s.span(1, 8, epochOf, 1)), 2)...)))
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(2, s.channel(s.span(6, 12, epochOf, 2)), 1)...)))
	// A truncated span batch ends its channel: the batch after it is lost too.
	bad, err := opderive.NewBatchData(s.span(13, 14, epochOf, 1)).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	next, err := opderive.NewBatchData(s.batch(13, epochOf(13), 0)).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(3, s.rawChannel(bad[:len(bad)-6], next), 1)...)))
	s.c.mine(s.l1Tx(s.batcher, s.txData(frames(4, s.channel(s.batch(13, epochOf(13), 0), s.span(14, 16, epochOf, 1)), 1)...)))
	// Blocks 1..12 and 14..16 from spans; 13 empty.
	s.run(15)
}

// batcherUpdate is the SystemConfig's ConfigUpdate log naming a new batcher.
func batcherUpdate(sysCfg, batcher common.Address) *types.Log {
	data := make([]byte, 96)
	data[31], data[63] = 32, 32
	copy(data[76:], batcher[:])
	return &types.Log{Address: sysCfg, Topics: []common.Hash{rollup.ConfigUpdateTopic, {}, {31: byte(rollup.ConfigUpdateBatcher)}}, Data: data}
}

// TestBatcherChangeAndJovian: the batcher changes on L1 (the old one's later batches are
// ignored, from the very block of the change), and Jovian activates mid-run (upgrade
// transactions, a batch with user transactions in the activation block dropped).
func TestBatcherChangeAndJovian(t *testing.T) {
	s := newScenario(t)
	jovian := s.tsOf(10)
	s.cfg.JovianTime = &jovian
	epochOf := func(n uint64) uint64 { return n * 2 / 12 }
	old, next := s.batcher, devnet.DevAccounts(3)[0]
	// L1 1 also holds a user deposit: the first block of epoch 1 (block 6) includes it.
	l1b1 := s.c.headers[1].Hash()
	user := devnet.DevAccounts(4)[3].Address
	dep, err := rollup.MarshalDepositLog(s.cfg.DepositContractAddress, &types.DepositTx{From: user, To: &user, Mint: big.NewInt(5), Value: big.NewInt(3), Gas: 50_000, Data: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	dep.BlockHash, dep.Index = l1b1, 3
	s.c.logs[l1b1] = []*types.Log{dep}
	s.c.mine(s.l1Tx(old, s.txData(frames(1, s.channel(s.batch(1, 0, 1), s.batch(2, 0, 1), s.batch(3, 0, 1)), 1)...)))
	// L1 2 changes the batcher: the old one's batch there is not read, the new one's is.
	s.c.logs[s.c.headers[s.c.next].Hash()] = []*types.Log{batcherUpdate(s.cfg.L1SystemConfigAddress, next.Address)}
	s.c.mine(
		s.l1Tx(old, s.txData(frames(2, s.channel(s.batch(4, 0, 1)), 1)...)),
		s.l1Tx(next, s.txData(frames(3, s.channel(s.batch(4, 0, 2), s.batch(5, 0, 0), s.batch(6, epochOf(6), 1)), 1)...)),
	)
	// L1 3: blocks 7..9, then the Jovian activation block 10 with a user transaction:
	// dropped, the channel flushed.
	s.c.mine(s.l1Tx(next, s.txData(frames(4, s.channel(s.batch(7, 1, 1), s.batch(8, 1, 1), s.batch(9, 1, 0), s.batch(10, 1, 1)), 1)...)))
	// L1 4: block 10 empty, then 11..12 (Jovian).
	s.c.mine(s.l1Tx(next, s.txData(frames(5, s.channel(s.batch(10, 1, 0), s.batch(11, 1, 1), s.batch(12, 2, 1)), 1)...)))
	// Blocks 1..4, 6..8, 11, 12.
	got := s.run(9)
	if len(got[5].Txs) != 3 || got[5].Txs[1][0] != types.DepositTxType {
		t.Fatalf("block 6 (first of epoch 1) has %d transactions, want L1 info, the deposit, one batch transaction", len(got[5].Txs))
	}
	if len(got[9].Txs) < 2 || got[9].MinBaseFee == nil || got[8].MinBaseFee != nil {
		t.Fatalf("Jovian activation block with %d transactions, min base fee %v", len(got[9].Txs), got[9].MinBaseFee)
	}
}
