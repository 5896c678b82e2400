package batcher_test

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive"
)

// dataSource hands the node's derivation the batcher data of an L1 block: calldata,
// blob contents (from the sidecars relayed through the proxy) and AltDA preimages.
type dataSource struct{ e *env }

func (s dataSource) TxData(ctx context.Context, ref eth.L1BlockRef, from common.Address) ([][]byte, error) {
	rcfg := s.e.rcfg
	blk, err := s.e.l1.BlockByHash(ctx, ref.Hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", derive.ErrTemporary, err)
	}
	signer := types.LatestSignerForChainID(rcfg.L1ChainID)
	var out [][]byte
	for _, tx := range blk.Transactions() {
		if tx.To() == nil || *tx.To() != rcfg.BatchInboxAddress {
			continue
		}
		if sender, err := types.Sender(signer, tx); err != nil || sender != from {
			continue
		}
		switch {
		case tx.Type() == types.BlobTxType:
			sc := s.e.proxy.sidecar(tx.Hash())
			if sc == nil {
				return nil, fmt.Errorf("blob tx %s not relayed", tx.Hash())
			}
			for i := range sc.Blobs {
				b := batch.Blob(sc.Blobs[i])
				if data, err := b.ToData(); err == nil {
					out = append(out, data)
				}
			}
		case len(tx.Data()) > 0 && tx.Data()[0] == 0x01:
			comm, err := altda.DecodeCommitment(tx.Data()[1:])
			if err != nil {
				continue
			}
			data, err := s.e.daClient().Get(ctx, comm)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", derive.ErrTemporary, err)
			}
			out = append(out, data)
		default:
			out = append(out, tx.Data())
		}
	}
	return out, nil
}
