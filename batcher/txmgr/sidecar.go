package txmgr

import (
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
)

// NewSidecar builds the sidecar of a blob transaction for an L1 that has activated
// Osaka (PeerDAS): version 1, with the cell proofs of every blob. It is computed once per
// transaction and reused by every fee bump, since proofs are the costly part.
func NewSidecar(blobs []kzg4844.Blob) (*types.BlobTxSidecar, error) {
	commitments := make([]kzg4844.Commitment, len(blobs))
	proofs := make([]kzg4844.Proof, 0, len(blobs)*kzg4844.CellProofsPerBlob)
	for i := range blobs {
		c, err := kzg4844.BlobToCommitment(&blobs[i])
		if err != nil {
			return nil, fmt.Errorf("txmgr: commit to blob %d: %w", i, err)
		}
		commitments[i] = c
		ps, err := kzg4844.ComputeCellProofs(&blobs[i])
		if err != nil {
			return nil, fmt.Errorf("txmgr: cell proofs of blob %d: %w", i, err)
		}
		proofs = append(proofs, ps...)
	}
	return types.NewBlobTxSidecar(types.BlobSidecarVersion1, blobs, commitments, proofs), nil
}
