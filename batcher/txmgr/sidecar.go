package txmgr

import (
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
)

// NewSidecar builds the sidecar of a blob transaction. For an L1 that has activated
// Osaka (PeerDAS), cellProofs: version 1, with the 128 cell proofs of every blob; before
// Osaka the pools take only version 0, with one blob proof per blob, which costs a
// small fraction of the cell proofs. It is computed once per transaction and reused by
// every fee bump, since proofs are the costly part.
func NewSidecar(blobs []kzg4844.Blob, cellProofs bool) (*types.BlobTxSidecar, error) {
	commitments := make([]kzg4844.Commitment, len(blobs))
	perBlob := 1
	if cellProofs {
		perBlob = kzg4844.CellProofsPerBlob
	}
	proofs := make([]kzg4844.Proof, 0, len(blobs)*perBlob)
	for i := range blobs {
		c, err := kzg4844.BlobToCommitment(&blobs[i])
		if err != nil {
			return nil, fmt.Errorf("txmgr: commit to blob %d: %w", i, err)
		}
		commitments[i] = c
		if !cellProofs {
			p, err := kzg4844.ComputeBlobProof(&blobs[i], c)
			if err != nil {
				return nil, fmt.Errorf("txmgr: proof of blob %d: %w", i, err)
			}
			proofs = append(proofs, p)
			continue
		}
		ps, err := kzg4844.ComputeCellProofs(&blobs[i])
		if err != nil {
			return nil, fmt.Errorf("txmgr: cell proofs of blob %d: %w", i, err)
		}
		proofs = append(proofs, ps...)
	}
	version := types.BlobSidecarVersion0
	if cellProofs {
		version = types.BlobSidecarVersion1
	}
	return types.NewBlobTxSidecar(version, blobs, commitments, proofs), nil
}
