//go:build ignore

// gen_kzgsetup writes kzg_lagrange_g1.bin, the Lagrange-form G1 points of the Ethereum
// KZG ceremony's trusted setup in the order blob commitments combine them (the
// bit-reversal permutation of the file's order, as EIP-4844's blob_to_kzg_commitment
// takes them), each in its 96-byte uncompressed encoding: decompressing the 4,096 points
// would cost a square root each at every start. Run it with the path of the
// trusted_setup.json go-ethereum's crypto/kzg4844 embeds:
//
//	go run gen_kzgsetup.go $(go env GOMODCACHE)/github.com/ethereum-optimism/op-geth@v1.101702.3/crypto/kzg4844/trusted_setup.json
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"strings"

	bls12381 "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: go run gen_kzgsetup.go trusted_setup.json")
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		return err
	}
	var setup struct {
		Lagrange []string `json:"g1_lagrange"`
	}
	if err := json.Unmarshal(raw, &setup); err != nil {
		return err
	}
	const n = 4096
	if len(setup.Lagrange) != n {
		return fmt.Errorf("%d Lagrange points, want %d", len(setup.Lagrange), n)
	}
	var out bytes.Buffer
	enc := bls12381.NewEncoder(&out, bls12381.RawEncoding())
	for i := 0; i < n; i++ {
		j := bits.Reverse64(uint64(i)) >> (64 - 12)
		p, err := hex.DecodeString(strings.TrimPrefix(setup.Lagrange[j], "0x"))
		if err != nil || len(p) != 48 {
			return fmt.Errorf("point %d: %d bytes, %v", j, len(p), err)
		}
		var pt bls12381.G1Affine
		if _, err := pt.SetBytes(p); err != nil {
			return fmt.Errorf("point %d: %w", j, err)
		}
		if err := enc.Encode(&pt); err != nil {
			return err
		}
	}
	return os.WriteFile("kzg_lagrange_g1.bin", out.Bytes(), 0o644)
}
