package node_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
)

// TestMempoolTransactionsAreIncluded sends ordinary transactions to the L2 RPC and checks
// the sequencer's blocks pick them up from op-geth's pool, after the L1-attributes deposit.
func TestMempoolTransactionsAreIncluded(t *testing.T) {
	d := startFastDevnet(t, devnet.Config{}, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	from := devnet.DevAccounts(1)[0]
	to := common.HexToAddress("0x000000000000000000000000000000000000cafe")
	signer := types.LatestSignerForChainID(d.Rollup.L2ChainID)
	var hashes []common.Hash
	for nonce := uint64(0); nonce < 5; nonce++ {
		tx := types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
			ChainID: d.Rollup.L2ChainID, Nonce: nonce, GasTipCap: big.NewInt(1_000_000), GasFeeCap: big.NewInt(10_000_000_000),
			Gas: 21_000, To: &to, Value: big.NewInt(int64(nonce + 1)),
		})
		if err := l2.SendTransaction(ctx, tx); err != nil {
			t.Fatalf("send: %v", err)
		}
		hashes = append(hashes, tx.Hash())
	}
	for _, h := range hashes {
		var rcpt *types.Receipt
		waitFor(t, 30*time.Second, "the transaction to be included", func() bool {
			rcpt, err = l2.TransactionReceipt(ctx, h)
			return err == nil
		})
		if rcpt.Status != types.ReceiptStatusSuccessful || rcpt.TransactionIndex == 0 {
			t.Fatalf("receipt %+v", rcpt)
		}
	}
	bal, err := l2.BalanceAt(ctx, to, nil)
	if err != nil || bal.Int64() != 1+2+3+4+5 {
		t.Fatalf("balance %v, %v", bal, err)
	}
}
