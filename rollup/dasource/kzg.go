package dasource

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	bls12381 "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
)

// A blob's KZG commitment is the linear combination of the trusted setup's Lagrange-form
// G1 points with the blob's field elements (EIP-4844 blob_to_kzg_commitment). Checking a
// blob against its versioned hash needs nothing else, while go-ethereum's kzg4844 sets
// up a full proving context on first use (the FK20 tables for cell proofs among it),
// which costs seconds of CPU a node deriving from blobs never needs. So the commitment
// is computed here from the Lagrange points alone, generated from the ceremony file by
// gen_kzgsetup.go and checked against kzg4844 in the tests.
//
//go:embed kzg_lagrange_g1.bin
var lagrangeG1 []byte

const fieldElementsPerBlob = 4096

var commitKey struct {
	once   sync.Once
	points []bls12381.G1Affine
	err    error
}

// lagrangePoints decodes the embedded points once. They are the ceremony's, fixed at
// build time and stored uncompressed, so decoding takes no square roots, and the
// subgroup checks (a scalar multiplication per point) are skipped; each point is still
// checked to be on the curve.
func lagrangePoints() ([]bls12381.G1Affine, error) {
	commitKey.once.Do(func() {
		if len(lagrangeG1) != fieldElementsPerBlob*bls12381.SizeOfG1AffineUncompressed {
			commitKey.err = fmt.Errorf("KZG setup: %d bytes embedded, want %d", len(lagrangeG1), fieldElementsPerBlob*bls12381.SizeOfG1AffineUncompressed)
			return
		}
		pts := make([]bls12381.G1Affine, fieldElementsPerBlob)
		dec := bls12381.NewDecoder(bytes.NewReader(lagrangeG1), bls12381.NoSubgroupChecks())
		for i := range pts {
			if err := dec.Decode(&pts[i]); err != nil {
				commitKey.err = fmt.Errorf("KZG setup point %d: %w", i, err)
				return
			}
			if !pts[i].IsOnCurve() {
				commitKey.err = fmt.Errorf("KZG setup point %d is not on the curve", i)
				return
			}
		}
		commitKey.points = pts
	})
	return commitKey.points, commitKey.err
}

// blobCommitment is the KZG commitment of blob; a field element not below the BLS
// modulus makes the blob invalid, as in kzg4844.BlobToCommitment.
func blobCommitment(blob *kzg4844.Blob) (kzg4844.Commitment, error) {
	pts, err := lagrangePoints()
	if err != nil {
		return kzg4844.Commitment{}, err
	}
	scalars := make([]fr.Element, fieldElementsPerBlob)
	for i := range scalars {
		if err := scalars[i].SetBytesCanonical(blob[i*fr.Bytes : (i+1)*fr.Bytes]); err != nil {
			return kzg4844.Commitment{}, fmt.Errorf("blob field element %d: %w", i, err)
		}
	}
	var c bls12381.G1Affine
	if _, err := c.MultiExp(pts, scalars, ecc.MultiExpConfig{}); err != nil {
		return kzg4844.Commitment{}, fmt.Errorf("blob commitment: %w", err)
	}
	return kzg4844.Commitment(c.Bytes()), nil
}
