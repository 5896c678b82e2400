package derive

import (
	"context"
	"log/slog"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// L1Source is the L1 chain as derivation reads it.
type L1Source interface {
	// L1BlockRefByNumber wraps ethereum.NotFound for a block past the head, which
	// derivation treats as "wait", not as a failure.
	L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error)
	L1BlockRefByHash(ctx context.Context, h common.Hash) (eth.L1BlockRef, error)
	FetchReceipts(ctx context.Context, h common.Hash) (*types.Header, types.Receipts, error)
}

// DataSource yields the batcher data of one L1 block.
type DataSource interface {
	// TxData returns, in L1 order, the batcher data items (each starting with the
	// derivation version byte 0x00, then frames) sent to the inbox by batcher in block
	// ref: calldata, each blob's decoded content, or the AltDA preimage. An error that
	// wraps ErrReset or ErrCritical keeps its class; any other error is temporary.
	TxData(ctx context.Context, ref eth.L1BlockRef, batcher common.Address) ([][]byte, error)
}

// L2Source is the L2 chain derivation builds on: the engine's view of it.
type L2Source interface {
	L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error)
	L2BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error)
	SystemConfigByL2Hash(ctx context.Context, h common.Hash) (rollup.SystemConfig, error)
}

// Deps are what a Derivation reads from and reports to. Log and Metrics may be nil.
type Deps struct {
	L1      L1Source
	Data    DataSource
	L2      L2Source
	Log     *slog.Logger
	Metrics Metrics
}
