package node

import (
	"context"
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
	ec := n.engine.Client().Eth
	header, err := ec.HeaderByHash(ctx, blockHash)
	if err != nil {
		return eth.OutputV0{}, fmt.Errorf("read header %s: %w", blockHash, err)
	}
	storageRoot, err := n.engine.Client().StorageRoot(ctx, rollup.L2ToL1MessagePasser, blockHash)
	if err != nil {
		return eth.OutputV0{}, fmt.Errorf("eth_getProof of L2ToL1MessagePasser at %s: %w", blockHash, err)
	}
	// From Isthmus the header commits to the message passer's storage root; a mismatch
	// means the proof was served for another state.
	if header.WithdrawalsHash != nil && *header.WithdrawalsHash != storageRoot {
		return eth.OutputV0{}, fmt.Errorf("block %s: header withdrawalsRoot %s, proof storage root %s", blockHash, *header.WithdrawalsHash, storageRoot)
	}
	return eth.OutputV0{StateRoot: header.Root, MessagePasserStorageRoot: storageRoot, BlockHash: blockHash}, nil
}
