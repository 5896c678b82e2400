package derive

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/derive/derivetest"
)

func TestTraversal(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	l1 := derivetest.NewL1(0, 990)
	b1 := l1.Mine(2, nil)
	tr := newL1Traversal(cfg, l1, quietLog())
	tr.reset(l1.Ref(0), cfg.Genesis.SystemConfig)

	if ref, err := tr.NextL1Block(ctx); err != nil || ref != l1.Ref(0) {
		t.Fatalf("first block: %v %v", ref, err)
	}
	if _, err := tr.NextL1Block(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("block handed out twice: %v", err)
	}
	if err := tr.advance(ctx); err != nil || tr.Origin() != b1 {
		t.Fatalf("advance: %v, origin %v", err, tr.Origin())
	}
	if err := tr.advance(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("advance past the head: %v, want io.EOF", err)
	}

	l1.FailNext(1, errors.New("connection refused"))
	l1.Mine(2, nil)
	if err := tr.advance(ctx); !errors.Is(err, ErrTemporary) {
		t.Fatalf("advance with a failing L1: %v, want temporary", err)
	}

	tr.limit = b1.Number
	if err := tr.advance(ctx); !errors.Is(err, io.EOF) || tr.Origin() != b1 {
		t.Fatalf("advance past the limit: %v at %v", err, tr.Origin())
	}
	tr.limit = NoL1Limit

	// The chain reorgs under the origin: the next block does not build on it.
	l1.Rewind(0)
	l1.Mine(3, nil, 0xee)
	l1.Mine(3, nil, 0xee)
	if err := tr.advance(ctx); !errors.Is(err, ErrReset) {
		t.Fatalf("advance over a reorg: %v, want reset", err)
	}
}

// batcherUpdate is the SystemConfig's ConfigUpdate log changing the batcher: the data is
// abi.encode(bytes) of the address word.
func batcherUpdate(sysCfg, batcher common.Address) *types.Log {
	data := make([]byte, 96)
	data[31] = 32
	data[63] = 32
	copy(data[76:], batcher[:])
	return &types.Log{Address: sysCfg, Topics: []common.Hash{rollup.ConfigUpdateTopic, {}, {31: byte(rollup.ConfigUpdateBatcher)}}, Data: data}
}

// Each L1 block's ConfigUpdate logs apply before its own data is read; logs from other
// addresses or in failed receipts do not.
func TestTraversalAppliesConfigUpdates(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.L1SystemConfigAddress = common.HexToAddress("0x5c")
	next := common.Address{0x0b}
	l1 := derivetest.NewL1(0, 990)
	ok := func(logs ...*types.Log) *types.Receipt {
		return &types.Receipt{Status: types.ReceiptStatusSuccessful, Logs: logs}
	}
	failed := &types.Receipt{Status: types.ReceiptStatusFailed, Logs: []*types.Log{batcherUpdate(cfg.L1SystemConfigAddress, common.Address{0xff})}}
	l1.Mine(2, types.Receipts{ok(batcherUpdate(common.Address{0x99}, common.Address{0xee})), failed})
	l1.Mine(2, types.Receipts{ok(batcherUpdate(cfg.L1SystemConfigAddress, next))})

	data := derivetest.NewData()
	tr := newL1Traversal(cfg, l1, quietLog())
	tr.reset(l1.Ref(0), cfg.Genesis.SystemConfig)
	r := newL1Retrieval(tr, data)
	for i := 0; i < 3; i++ {
		if _, err := r.NextData(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("block %d: %v", i, err)
		}
		if i < 2 {
			if err := tr.advance(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	asked := data.Asked()
	if len(asked) != 3 || asked[0] != testBatcher || asked[1] != testBatcher || asked[2] != next {
		t.Fatalf("batchers asked for %v, want the change to apply from block 2 on", asked)
	}
}
