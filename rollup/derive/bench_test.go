package derive

import (
	"context"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

// BenchmarkDerivation derives 300 blocks of 20 transfers each, posted as span-batch
// channels in one L1 block each, from in-memory chains: the pipeline's own cost, without
// RPC or execution.
func BenchmarkDerivation(b *testing.B) {
	const blocks, txsPerBlock = 300, 20
	cfg := testConfig()
	l1 := derivetest.NewL1(0, 1000)
	cfg.Genesis.L1 = l1.Ref(0).ID()
	for i := 0; i < blocks*2/12+3; i++ {
		l1.Mine(12, nil)
	}
	key, _ := crypto.GenerateKey()
	signer := types.LatestSignerForChainID(cfg.L2ChainID)
	data := derivetest.NewData()
	co, err := batch.NewSpanChannelOut(batch.ChannelOutConfig{TargetSize: 1 << 30, GenesisTime: cfg.Genesis.L2Time, ChainID: cfg.L2ChainID})
	if err != nil {
		b.Fatal(err)
	}
	parent := eth.L2BlockRef{Hash: cfg.Genesis.L2.Hash, Time: cfg.Genesis.L2Time, L1Origin: cfg.Genesis.L1}
	var nonce uint64
	for n := uint64(1); n <= blocks; n++ {
		ts := parent.Time + cfg.BlockTime
		epoch := l1.Ref((ts - 1000) / 12)
		seq := parent.SequenceNumber + 1
		if epoch.Number != parent.L1Origin.Number {
			seq = 0
		}
		info := &rollup.L1BlockInfo{Number: epoch.Number, Time: epoch.Time, BaseFee: big.NewInt(1e9), BlockHash: epoch.Hash, SequenceNumber: seq}
		infoData, err := info.MarshalIsthmus()
		if err != nil {
			b.Fatal(err)
		}
		txs := types.Transactions{types.NewTx(&types.DepositTx{From: rollup.L1InfoDepositor, To: &rollup.L1BlockAddress, Gas: 1_000_000, Data: infoData})}
		for i := 0; i < txsPerBlock; i++ {
			txs = append(txs, types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: cfg.L2ChainID, Nonce: nonce, GasTipCap: big.NewInt(1),
				GasFeeCap: big.NewInt(1e9), Gas: 21_000, To: &common.Address{0xee}, Value: big.NewInt(1)}))
			nonce++
		}
		h := &types.Header{ParentHash: parent.Hash, Number: new(big.Int).SetUint64(n), Time: ts}
		if _, err := co.AddBlock(types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: txs})); err != nil {
			b.Fatal(err)
		}
		// The test engine names blocks by parent and time, and so do the spans' parent
		// checks, since each block's parent hash above is that name.
		parent = eth.L2BlockRef{Hash: l2Hash(parent.Hash, ts), Number: n, ParentHash: parent.Hash, Time: ts, L1Origin: epoch.ID(), SequenceNumber: seq}
		if n%30 == 0 || n == blocks {
			if err := co.Close(); err != nil {
				b.Fatal(err)
			}
			// Post in the L1 block after the channel's last epoch, inside the window.
			post := l1.Ref(epoch.Number + 1)
			for {
				f, err := co.OutputFrame(1 << 20)
				if err != nil {
					b.Fatal(err)
				}
				d, _ := batch.TxData(f)
				data.Add(post.Hash, testBatcher, d)
				if f.IsLast {
					break
				}
			}
			if co, err = batch.NewSpanChannelOut(batch.ChannelOutConfig{TargetSize: 1 << 30, GenesisTime: cfg.Genesis.L2Time, ChainID: cfg.L2ChainID}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l2 := derivetest.NewL2()
		genesis := eth.L2BlockRef{Hash: cfg.Genesis.L2.Hash, Time: cfg.Genesis.L2Time, L1Origin: cfg.Genesis.L1}
		l2.Add(genesis, cfg.Genesis.SystemConfig)
		e := &testEngine{t: b, l2: l2, safe: genesis, sys: cfg.Genesis.SystemConfig, cfg: cfg}
		d := New(cfg, nil, Deps{L1: l1, Data: data, L2: l2})
		if err := d.Reset(context.Background(), genesis); err != nil {
			b.Fatal(err)
		}
		for e.safe.Number < blocks {
			a, err := d.NextAttributes(context.Background(), e.safe)
			if errors.Is(err, ErrNotEnoughData) {
				continue
			} else if errors.Is(err, io.EOF) {
				b.Fatalf("idle after %d blocks", e.safe.Number)
			} else if err != nil {
				b.Fatal(err)
			}
			e.apply(a)
		}
	}
	b.ReportMetric(float64(blocks*b.N)/b.Elapsed().Seconds(), "blocks/s")
}
