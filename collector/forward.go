package collector

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The chain-data calls a fault-proof host makes besides state reads: a full node keeps
// blocks, receipts and headers forever, so the collector passes these to the execution
// client unchanged instead of storing them.

func (c *Collector) forward(ctx context.Context, method string, args ...any) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.call(ctx, &out, method, args...); err != nil {
		return nil, fmt.Errorf("%s via execution client: %w", method, err)
	}
	return out, nil
}

// ChainId is forwarded.
func (a *ethAPI) ChainId(ctx context.Context) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_chainId")
}

// BlockNumber is forwarded.
func (a *ethAPI) BlockNumber(ctx context.Context) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_blockNumber")
}

// GetBlockByHash is forwarded.
func (a *ethAPI) GetBlockByHash(ctx context.Context, hash json.RawMessage, full bool) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_getBlockByHash", hash, full)
}

// GetBlockByNumber is forwarded.
func (a *ethAPI) GetBlockByNumber(ctx context.Context, number json.RawMessage, full bool) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_getBlockByNumber", number, full)
}

// GetBlockReceipts is forwarded.
func (a *ethAPI) GetBlockReceipts(ctx context.Context, block json.RawMessage) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_getBlockReceipts", block)
}

// GetTransactionReceipt is forwarded.
func (a *ethAPI) GetTransactionReceipt(ctx context.Context, hash json.RawMessage) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_getTransactionReceipt", hash)
}

// GetTransactionByHash is forwarded.
func (a *ethAPI) GetTransactionByHash(ctx context.Context, hash json.RawMessage) (json.RawMessage, error) {
	return a.c.forward(ctx, "eth_getTransactionByHash", hash)
}

// GetRawHeader is forwarded.
func (a *debugAPI) GetRawHeader(ctx context.Context, block json.RawMessage) (hexutil.Bytes, error) {
	return a.forwardBytes(ctx, "debug_getRawHeader", block)
}

// GetRawBlock is forwarded.
func (a *debugAPI) GetRawBlock(ctx context.Context, block json.RawMessage) (hexutil.Bytes, error) {
	return a.forwardBytes(ctx, "debug_getRawBlock", block)
}

// GetRawReceipts is forwarded.
func (a *debugAPI) GetRawReceipts(ctx context.Context, block json.RawMessage) (json.RawMessage, error) {
	return a.c.forward(ctx, "debug_getRawReceipts", block)
}

// GetRawTransaction is forwarded.
func (a *debugAPI) GetRawTransaction(ctx context.Context, hash json.RawMessage) (hexutil.Bytes, error) {
	return a.forwardBytes(ctx, "debug_getRawTransaction", hash)
}

// ChainConfig is forwarded.
func (a *debugAPI) ChainConfig(ctx context.Context) (json.RawMessage, error) {
	return a.c.forward(ctx, "debug_chainConfig")
}

func (a *debugAPI) forwardBytes(ctx context.Context, method string, arg json.RawMessage) (hexutil.Bytes, error) {
	var out hexutil.Bytes
	if err := a.c.call(ctx, &out, method, arg); err != nil {
		return nil, fmt.Errorf("%s via execution client: %w", method, err)
	}
	return out, nil
}
