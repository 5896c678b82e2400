package batch

import (
	"bytes"
	"math/big"
	"testing"

	oprollup "github.com/ethereum-optimism/optimism/op-node/rollup"
	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/opkit/opkit/rollup/batch"
)

var chainID = big.NewInt(901)

const (
	genesisTime = 1_700_000_000
	blockTime   = 2
)

// opConfig is an op-node rollup config with every fork through Isthmus active at
// genesis, the forks opkit's devnet runs.
func opConfig() *oprollup.Config {
	zero := uint64(0)
	return &oprollup.Config{
		Genesis:      oprollup.Genesis{L2Time: genesisTime},
		BlockTime:    blockTime,
		L2ChainID:    chainID,
		RegolithTime: &zero, CanyonTime: &zero, DeltaTime: &zero, EcotoneTime: &zero, FjordTime: &zero,
		GraniteTime: &zero, HoloceneTime: &zero, IsthmusTime: &zero,
	}
}

func hexes(bs []hexutil.Bytes) [][]byte {
	out := make([][]byte, len(bs))
	for i, b := range bs {
		out[i] = b
	}
	return out
}

func equalTxs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sameSingular compares an op-node singular batch with opkit's.
func sameSingular(t *testing.T, op *derive.SingularBatch, ok *batch.SingularBatch) {
	t.Helper()
	if op.ParentHash != ok.ParentHash || uint64(op.EpochNum) != ok.EpochNum || op.EpochHash != ok.EpochHash ||
		op.Timestamp != ok.Timestamp || !equalTxs(hexes(op.Transactions), ok.Transactions) {
		t.Fatalf("singular batches differ:\n op-node %+v\n opkit   %+v", op, ok)
	}
}

// sameSpan compares op-node's derived span batch with opkit's.
func sameSpan(t *testing.T, op *derive.SpanBatch, ok *batch.SpanBatch) {
	t.Helper()
	if op.ParentCheck != ok.ParentCheck || op.L1OriginCheck != ok.L1OriginCheck {
		t.Fatalf("span checks differ: op-node %x %x, opkit %x %x", op.ParentCheck, op.L1OriginCheck, ok.ParentCheck, ok.L1OriginCheck)
	}
	if len(op.Batches) != len(ok.Elements) {
		t.Fatalf("op-node %d span elements, opkit %d", len(op.Batches), len(ok.Elements))
	}
	for i, e := range op.Batches {
		k := ok.Elements[i]
		if uint64(e.EpochNum) != k.EpochNum || e.Timestamp != k.Timestamp || !equalTxs(hexes(e.Transactions), k.Transactions) {
			t.Fatalf("span element %d differs:\n op-node epoch %d ts %d %d txs\n opkit   epoch %d ts %d %d txs",
				i, e.EpochNum, e.Timestamp, len(e.Transactions), k.EpochNum, k.Timestamp, len(k.Transactions))
		}
	}
}
