package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestLoadMixesEveryKindOfStateChange(t *testing.T) {
	l1 := startTestL1(t, L1Config{Scheme: Path})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	load := NewLoad(l1, LoadConfig{TxsPerBlock: 24, Seed: 1})
	const blocks = 12
	if err := load.MineBlocks(ctx, blocks); err != nil {
		t.Fatal(err)
	}
	bc := l1.Backend().BlockChain()
	if got := l1.Head().Number.Uint64(); got != blocks {
		t.Fatalf("head %d after mining %d blocks", got, blocks)
	}
	st, err := bc.State()
	if err != nil {
		t.Fatal(err)
	}
	var created, destroyed, transfers, deletes int
	written := map[common.Address]map[common.Hash]bool{}
	for n := uint64(1); n <= blocks; n++ {
		block := bc.GetBlockByNumber(n)
		if len(block.Transactions()) != 24 {
			t.Fatalf("block %d holds %d transactions, want 24", n, len(block.Transactions()))
		}
		receipts := bc.GetReceiptsByHash(block.Hash())
		for i, tx := range block.Transactions() {
			switch {
			case tx.To() == nil && receipts[i].ContractAddress != (common.Address{}):
				addr := receipts[i].ContractAddress
				if len(st.GetCode(addr)) > 0 {
					created++
				} else if !st.Exist(addr) {
					destroyed++
				}
			case len(tx.Data()) == 64:
				slot := common.BytesToHash(tx.Data()[:32])
				if common.BytesToHash(tx.Data()[32:]) == (common.Hash{}) && written[*tx.To()][slot] {
					deletes++
				}
				if written[*tx.To()] == nil {
					written[*tx.To()] = map[common.Hash]bool{}
				}
				written[*tx.To()][slot] = true
			case len(tx.Data()) == 0:
				transfers++
			}
		}
	}
	if created == 0 || destroyed == 0 || transfers == 0 || deletes == 0 {
		t.Fatalf("mix lacks a kind: %d contracts live, %d created and destroyed, %d transfers, %d slot deletes", created, destroyed, transfers, deletes)
	}
	// The beacon-roots system contract is written by every block since Cancun.
	head := l1.Head()
	if head.ParentBeaconRoot == nil {
		t.Fatal("dev chain blocks carry no parent beacon root: no system-contract write to exercise")
	}
}

func TestLoadResyncsAfterReorg(t *testing.T) {
	l1 := startTestL1(t, L1Config{Scheme: Path})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	load := NewLoad(l1, LoadConfig{TxsPerBlock: 8, Seed: 2})
	if err := load.MineBlocks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	fork := l1.Backend().BlockChain().GetHeaderByNumber(1)
	if err := load.MineBlocks(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := l1.Reorg(fork.Hash()); err != nil {
		t.Fatal(err)
	}
	load.Resync()
	if err := load.MineBlocks(ctx, 6); err != nil {
		t.Fatalf("mining the new branch: %v", err)
	}
	if got := l1.Head().Number.Uint64(); got != 7 {
		t.Fatalf("head %d on the new branch, want 7", got)
	}
}

func TestLoadPopulatesFreshAccounts(t *testing.T) {
	l1 := startTestL1(t, L1Config{Scheme: Path})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	load := NewLoad(l1, LoadConfig{Seed: 3})
	if err := load.Populate(ctx, 250, 100); err != nil {
		t.Fatal(err)
	}
	if got := l1.Head().Number.Uint64(); got != 3 {
		t.Fatalf("250 accounts at 100 a block took %d blocks, want 3", got)
	}
	st, err := l1.Backend().BlockChain().State()
	if err != nil {
		t.Fatal(err)
	}
	funded := 0
	for _, tx := range l1.Backend().BlockChain().GetBlockByNumber(2).Transactions() {
		if st.GetBalance(*tx.To()).Sign() > 0 {
			funded++
		}
	}
	if funded != 100 {
		t.Fatalf("%d of block 2's 100 recipients hold a balance", funded)
	}
}
