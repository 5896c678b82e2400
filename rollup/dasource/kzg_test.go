package dasource_test

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/crypto/kzg4844"

	"github.com/opkit/opkit/rollup/dasource"
)

// TestVersionedHashMatchesKZG4844: the commitment from the embedded Lagrange points is
// go-ethereum's kzg4844 commitment, for blobs whose every field element is set (so any
// wrong point would show), batcher data, and the empty blob; a field element at or above
// the BLS modulus is refused by both.
func TestVersionedHashMatchesKZG4844(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var blobs []*kzg4844.Blob
	for i := 0; i < 2; i++ {
		b := new(kzg4844.Blob)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		for j := 0; j < len(b); j += 32 {
			b[j] &= 0x3f // below the modulus (0x73ed...)
		}
		blobs = append(blobs, b)
	}
	blobs = append(blobs, dataBlob(t, []byte("batcher data")), new(kzg4844.Blob))
	for i, b := range blobs {
		c, err := kzg4844.BlobToCommitment(b)
		if err != nil {
			t.Fatal(err)
		}
		want := kzg4844.CalcBlobHashV1(sha256.New(), &c)
		if got := mustHash(t, b); got != want {
			t.Fatalf("blob %d: versioned hash %s, kzg4844 says %s", i, got, want)
		}
	}
	bad := *blobs[0]
	bad[32*7] = 0x74 // element 7 above the modulus
	if _, err := kzg4844.BlobToCommitment(&bad); err == nil {
		t.Fatal("kzg4844 took a non-canonical field element")
	}
	if h, err := dasource.VersionedHash(&bad); err == nil {
		t.Fatalf("non-canonical field element hashed to %s", h)
	}
}

// BenchmarkVersionedHash: the first call includes decoding the embedded points.
func BenchmarkVersionedHash(b *testing.B) {
	blob := new(kzg4844.Blob)
	for j := 0; j < len(blob); j += 32 {
		blob[j+31] = byte(j)
	}
	for b.Loop() {
		if _, err := dasource.VersionedHash(blob); err != nil {
			b.Fatal(err)
		}
	}
}
