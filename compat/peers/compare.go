package peers

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/client"
	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/sources"
	"github.com/ethereum/go-ethereum/rpc"
)

// RollupClient is op-service's rollup node client (the one op-batcher and op-proposer
// use) on a node's RPC URL; every call carries the caller's context and a 10 s limit.
type RollupClient struct {
	*sources.RollupClient
	URL string
}

// DialRollup connects to a rollup node (op-node or opkit's) over HTTP.
func DialRollup(ctx context.Context, url string) (*RollupClient, error) {
	raw, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial rollup node %s: %w", url, err)
	}
	rc := sources.NewRollupClient(client.NewBaseRPCClient(raw,
		client.WithCallTimeout(10*time.Second), client.WithBatchCallTimeout(10*time.Second)))
	return &RollupClient{RollupClient: rc, URL: url}, nil
}

// WaitFor polls the node's sync status until cond holds or ctx ends; it returns the last
// status seen.
func (c *RollupClient) WaitFor(ctx context.Context, what string, cond func(*eth.SyncStatus) bool) (*eth.SyncStatus, error) {
	var last *eth.SyncStatus
	var lastErr error
	for {
		st, err := c.SyncStatus(ctx)
		if err == nil {
			last = st
			if cond(st) {
				return st, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, fmt.Errorf("%s: %s: %w (last error %v)", c.URL, what, ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("%s: %s: %w (at unsafe %d safe %d finalized %d, current L1 %d)", c.URL, what, ctx.Err(),
				last.UnsafeL2.Number, last.SafeL2.Number, last.FinalizedL2.Number, last.CurrentL1.Number)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitSafe waits until the node's safe head is at least n.
func (c *RollupClient) WaitSafe(ctx context.Context, n uint64) (*eth.SyncStatus, error) {
	return c.WaitFor(ctx, fmt.Sprintf("safe head %d", n), func(st *eth.SyncStatus) bool { return st.SafeL2.Number >= n })
}

// Agree checks that every node answers optimism_outputAtBlock for each height from..to
// with the same block hash and output root as the first one. It returns the first
// disagreement.
func Agree(ctx context.Context, from, to uint64, nodes ...*RollupClient) error {
	if len(nodes) < 2 {
		return fmt.Errorf("agree: %d nodes, need two or more", len(nodes))
	}
	for n := from; n <= to; n++ {
		want, err := nodes[0].OutputAtBlock(ctx, n)
		if err != nil {
			return fmt.Errorf("output at %d from %s: %w", n, nodes[0].URL, err)
		}
		for _, other := range nodes[1:] {
			got, err := other.OutputAtBlock(ctx, n)
			if err != nil {
				return fmt.Errorf("output at %d from %s: %w", n, other.URL, err)
			}
			if got.BlockRef.Hash != want.BlockRef.Hash || got.OutputRoot != want.OutputRoot || got.StateRoot != want.StateRoot ||
				got.WithdrawalStorageRoot != want.WithdrawalStorageRoot {
				return fmt.Errorf("block %d: %s has hash %s output %s, %s has hash %s output %s", n,
					nodes[0].URL, want.BlockRef.Hash, want.OutputRoot, other.URL, got.BlockRef.Hash, got.OutputRoot)
			}
		}
	}
	return nil
}
