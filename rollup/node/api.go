package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// optimismAPI serves the optimism_ namespace with op-node's method names and shapes.
type optimismAPI struct{ n *Node }

// SyncStatus answers optimism_syncStatus.
func (a *optimismAPI) SyncStatus(ctx context.Context) (*eth.SyncStatus, error) {
	return a.n.driver.SyncStatus(ctx)
}

// RollupConfig answers optimism_rollupConfig.
func (a *optimismAPI) RollupConfig(context.Context) (*rollup.Config, error) {
	return a.n.cfg.Rollup, nil
}

// Version answers optimism_version.
func (a *optimismAPI) Version(context.Context) (string, error) {
	return a.n.cfg.Version, nil
}

// OutputAtBlock answers optimism_outputAtBlock: the version-0 output root of the L2
// block at the given height, with the sync status it was read under.
func (a *optimismAPI) OutputAtBlock(ctx context.Context, number hexutil.Uint64) (*eth.OutputResponse, error) {
	return a.n.OutputAtBlock(ctx, uint64(number))
}

// SafeHeadResponse is optimism_safeHeadAtL1Block's answer, in op-node's shape: the L1
// block the record was made at and the safe head derivation had reached by then.
type SafeHeadResponse struct {
	L1Block  eth.BlockID `json:"l1Block"`
	SafeHead eth.BlockID `json:"safeHead"`
}

// ErrNoSafeHeadRecord: a node that derives nothing keeps no safe-head record.
var ErrNoSafeHeadRecord = errors.New("safe head record not kept: this node does not derive from L1")

// SafeHeadAtL1Block answers optimism_safeHeadAtL1Block: the newest record at or below L1
// block number. The record is kept in memory since the node started (at most 65536 L1
// blocks); older blocks answer "not found".
func (a *optimismAPI) SafeHeadAtL1Block(_ context.Context, number hexutil.Uint64) (*SafeHeadResponse, error) {
	if a.n.derived == nil {
		return nil, ErrNoSafeHeadRecord
	}
	l1, safe, err := a.n.derived.SafeHeadAt(uint64(number))
	if err != nil {
		return nil, fmt.Errorf("safe head at L1 block %d: %w", uint64(number), err)
	}
	return &SafeHeadResponse{L1Block: l1, SafeHead: safe}, nil
}

// adminAPI serves the admin_ namespace.
type adminAPI struct{ n *Node }

// ResetDerivationPipeline answers admin_resetDerivationPipeline.
func (a *adminAPI) ResetDerivationPipeline(ctx context.Context) error {
	return a.n.driver.ResetDerivationPipeline(ctx)
}

// StartSequencer answers admin_startSequencer; the hash must be the unsafe head.
func (a *adminAPI) StartSequencer(ctx context.Context, unsafeHead common.Hash) error {
	return a.n.driver.StartSequencer(ctx, unsafeHead)
}

// StopSequencer answers admin_stopSequencer with the last unsafe head hash.
func (a *adminAPI) StopSequencer(ctx context.Context) (common.Hash, error) {
	return a.n.driver.StopSequencer(ctx)
}

// SequencerActive answers admin_sequencerActive.
func (a *adminAPI) SequencerActive(ctx context.Context) (bool, error) {
	return a.n.driver.SequencerActive(ctx)
}

// OutputAtBlock computes the output root of L2 block number, reading the block reference
// and the sync status in one consistent view of the driver, then the state and the
// L2ToL1MessagePasser storage root from the execution client.
func (n *Node) OutputAtBlock(ctx context.Context, number uint64) (*eth.OutputResponse, error) {
	var (
		ref    eth.L2BlockRef
		st     *eth.SyncStatus
		refErr error
	)
	err := n.driver.WithState(ctx, func() {
		st = n.driver.SnapshotLocked()
		if number > st.UnsafeL2.Number {
			refErr = fmt.Errorf("block %d is above the unsafe head %d", number, st.UnsafeL2.Number)
			return
		}
		ref, refErr = n.engine.BlockRefByNumber(ctx, number)
	})
	if err != nil {
		return nil, err
	}
	if refErr != nil {
		return nil, fmt.Errorf("output at block %d: %w", number, refErr)
	}
	out, err := n.OutputV0(ctx, ref.Hash)
	if err != nil {
		return nil, fmt.Errorf("output at block %d: %w", number, err)
	}
	return &eth.OutputResponse{
		Version:               eth.OutputVersionV0,
		OutputRoot:            out.Root(),
		BlockRef:              ref,
		WithdrawalStorageRoot: out.MessagePasserStorageRoot,
		StateRoot:             out.StateRoot,
		Status:                st,
	}, nil
}

// OutputV0 is the version-0 output of the L2 block with hash blockHash: its state root, the
// L2ToL1MessagePasser storage root and the hash. The supervisor's managed mode asks for it.
func (n *Node) OutputV0(ctx context.Context, blockHash common.Hash) (eth.OutputV0, error) {
	c := n.engine.Client()
	header, err := c.HeaderByHash(ctx, blockHash)
	if err != nil {
		return eth.OutputV0{}, fmt.Errorf("read header %s: %w", blockHash, err)
	}
	// From Isthmus the header commits to the message passer's storage root
	// (withdrawalsRoot), so no proof is needed; before, only eth_getProof knows it.
	if n.cfg.Rollup.IsIsthmus(header.Time) {
		if header.WithdrawalsHash == nil {
			return eth.OutputV0{}, fmt.Errorf("block %s: an Isthmus header without withdrawalsRoot", blockHash)
		}
		return eth.OutputV0{StateRoot: header.Root, MessagePasserStorageRoot: *header.WithdrawalsHash, BlockHash: blockHash}, nil
	}
	storageRoot, err := c.StorageRoot(ctx, rollup.L2ToL1MessagePasser, blockHash)
	if err != nil {
		return eth.OutputV0{}, fmt.Errorf("eth_getProof of L2ToL1MessagePasser at %s: %w", blockHash, err)
	}
	return eth.OutputV0{StateRoot: header.Root, MessagePasserStorageRoot: storageRoot, BlockHash: blockHash}, nil
}
