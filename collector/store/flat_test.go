package store

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestDiskStaysFlat adds many blocks to an on-disk store with a small window, each with
// nodes of its own and nodes every block shares, releasing each block as it leaves the
// window, and samples the allocated bytes (as du counts them) after every window. Once
// the window is full the store holds the same live bytes whatever the chain length, so
// what it takes on disk must be bounded by them plus Pebble's fixed working room (a few
// memtables' worth of logs and of tables waiting for compaction), and must not trend up.
func TestDiskStaysFlat(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const (
		window   = 16
		windows  = 30
		perBlock = 100 // nodes of its own per block
		shared   = 20  // nodes every block references
		size     = 2000
	)
	// Random contents: Pebble compresses its tables, and real trie nodes (hashes) do not
	// compress.
	rng := rand.NewChaCha8([32]byte{1, 2})
	node := func(i uint64) []byte {
		v := make([]byte, size)
		_, _ = rng.Read(v[8:])
		binary.BigEndian.PutUint64(v, i)
		return v
	}
	hot := make([][]byte, shared)
	for i := range hot {
		hot[i] = node(1<<40 + uint64(i))
	}
	var (
		id      uint64
		samples []uint64
		live    uint64
	)
	for n := uint64(1); n <= window*windows; n++ {
		b := &Block{Number: n, Hash: common.Hash{byte(n), byte(n >> 8), 1}}
		pre := map[common.Hash][]byte{}
		for i := 0; i < perBlock; i++ {
			id++
			v := node(id)
			h := crypto.Keccak256Hash(v)
			pre[h] = v
			b.Created = append(b.Created, h)
		}
		for _, v := range hot {
			h := crypto.Keccak256Hash(v)
			pre[h] = v
			b.State = append(b.State, h)
		}
		if err := s.AddBlock(b, pre); err != nil {
			t.Fatal(err)
		}
		if n > window {
			if err := s.RemoveBlock(n - window); err != nil {
				t.Fatal(err)
			}
		}
		if n%window == 0 {
			disk, err := s.DiskSize()
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, disk)
			if n/window == 1 {
				live = s.Stats().Bytes
			} else if got := s.Stats().Bytes; got != live {
				t.Fatalf("window %d holds %d bytes of preimages, the first %d", n/window, got, live)
			}
		}
	}
	t.Logf("live preimages %d bytes; on disk after each window: %v", live, samples)
	// Bounded: the live data twice over (a table rewritten by compaction exists twice
	// until the old one goes) plus six memtables (the queued logs and the level-0
	// tables they flush to).
	bound := 2*live + 6*memTableBytes
	for i, d := range samples[1:] {
		if d > bound {
			t.Fatalf("after window %d the store takes %d bytes on disk, over %d (live %d + working room)", i+2, d, bound, live)
		}
	}
	// Flat: no trend between the middle and the last third of the run, beyond the swing
	// of one memtable being flushed and its tables compacted.
	third := len(samples) / 3
	mid, end := slicesMax(samples[third:2*third]), slicesMax(samples[2*third:])
	if end > mid+memTableBytes {
		t.Fatalf("the store keeps growing on disk: at most %d bytes in the middle third, %d in the last", mid, end)
	}
}

func slicesMax(s []uint64) uint64 {
	var m uint64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
