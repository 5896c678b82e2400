package engine_test

import (
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/devnet"
)

// BenchmarkBlockBuilding measures the sequencer's critical path on a real op-geth: forkchoice
// update with attributes, getPayload, newPayload and the forkchoice update that makes the
// block the head, over 500 blocks per iteration. The transactions are forced in through
// the attributes so every block carries exactly the requested number. Run with
// make bench-node (go test -run '^$' -bench BlockBuilding -benchtime 1x ./rollup/engine).
func BenchmarkBlockBuilding(b *testing.B) {
	for _, txsPerBlock := range []int{0, 100} {
		b.Run(txName(txsPerBlock), func(b *testing.B) { benchBlocks(b, 500, txsPerBlock) })
	}
}

func txName(n int) string {
	if n == 0 {
		return "empty"
	}
	return "100tx"
}

func benchBlocks(b *testing.B, blocks, txsPerBlock int) {
	var all []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRig(b)
		txs := signTransfers(b, r.cfg.L2ChainID, blocks, txsPerBlock)
		b.StartTimer()
		for n := 0; n < blocks; n++ {
			start := time.Now()
			_, ref := r.build(b, txs[n])
			all = append(all, time.Since(start))
			if ref.Number != uint64(n+1) {
				b.Fatalf("built block %d, want %d", ref.Number, n+1)
			}
		}
		b.StopTimer()
		head := r.l2.Backend().BlockChain().CurrentBlock()
		if got := len(r.l2.Backend().BlockChain().GetBlockByHash(head.Hash()).Transactions()); got != txsPerBlock+1 {
			b.Fatalf("head block has %d transactions, want %d", got, txsPerBlock+1)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// signTransfers signs blocks×perBlock plain transfers, spread over the dev accounts with
// consecutive nonces, grouped per block.
func signTransfers(b *testing.B, chainID *big.Int, blocks, perBlock int) [][][]byte {
	b.Helper()
	accounts := devnet.DevAccounts(10)
	signer := types.LatestSignerForChainID(chainID)
	nonces := make([]uint64, len(accounts))
	to := common.HexToAddress("0x000000000000000000000000000000000000beef")
	out := make([][][]byte, blocks)
	for n := range out {
		for i := 0; i < perBlock; i++ {
			a := i % len(accounts)
			tx := types.MustSignNewTx(accounts[a].Key, signer, &types.DynamicFeeTx{
				ChainID: chainID, Nonce: nonces[a], GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(10_000_000_000),
				Gas: 21_000, To: &to, Value: big.NewInt(1),
			})
			nonces[a]++
			raw, err := tx.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			out[n] = append(out[n], raw)
		}
	}
	return out
}
