package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// value i is a distinct preimage; small indexes make blocks share preimages.
func value(i byte) []byte { return []byte{0xc1, i} }

func blockOf(n uint64, vals []byte) (*Block, map[common.Hash][]byte) {
	b := &Block{Number: n, Hash: common.Hash{byte(n), byte(n >> 8), 1}}
	pre := map[common.Hash][]byte{}
	for i, v := range vals {
		h := crypto.Keccak256Hash(value(v))
		pre[h] = value(v)
		switch i % 3 {
		case 0:
			b.State = append(b.State, h)
		case 1:
			b.Codes = append(b.Codes, h)
		default:
			b.Created = append(b.Created, h)
		}
	}
	return b, pre
}

func TestAddRemoveReleasesOnlyUnsharedPreimages(t *testing.T) {
	s := openTest(t)
	b1, p1 := blockOf(1, []byte{1, 2, 3, 3})
	b2, p2 := blockOf(2, []byte{3, 4})
	if err := s.AddBlock(b1, p1); err != nil {
		t.Fatal(err)
	}
	if err := s.AddBlock(b2, p2); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats(); got.Preimages != 4 || got.Bytes != 8 {
		t.Fatalf("stats after adding: %+v", got)
	}
	if err := s.RemoveBlock(1); err != nil {
		t.Fatal(err)
	}
	for _, v := range []byte{1, 2} {
		if _, err := s.Preimage(crypto.Keccak256Hash(value(v))); !errors.Is(err, ErrNotFound) {
			t.Fatalf("preimage %d only block 1 needed: err %v, want not found", v, err)
		}
	}
	for _, v := range []byte{3, 4} {
		got, err := s.Preimage(crypto.Keccak256Hash(value(v)))
		if err != nil || string(got) != string(value(v)) {
			t.Fatalf("preimage %d block 2 needs: %x, %v", v, got, err)
		}
	}
	if got := s.Stats(); got.Preimages != 2 || got.Bytes != 4 {
		t.Fatalf("stats after removing: %+v", got)
	}
	if _, err := s.Block(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed block still indexed: %v", err)
	}
}

func TestAddBlockRejectsBadPreimages(t *testing.T) {
	s := openTest(t)
	b, pre := blockOf(1, []byte{1, 2})
	for h := range pre {
		pre[h] = []byte("not the preimage")
		break
	}
	if err := s.AddBlock(b, pre); err == nil {
		t.Fatal("a value that does not hash to its key was accepted")
	}
	b, pre = blockOf(1, []byte{1, 2})
	for h := range pre {
		delete(pre, h)
		break
	}
	if err := s.AddBlock(b, pre); err == nil {
		t.Fatal("a block with a missing preimage was accepted")
	}
	if st := s.Stats(); st.Preimages != 0 {
		t.Fatalf("a rejected block left %d preimages", st.Preimages)
	}
	b, pre = blockOf(1, []byte{1})
	if err := s.AddBlock(b, pre); err != nil {
		t.Fatal(err)
	}
	if err := s.AddBlock(b, pre); err == nil {
		t.Fatal("the same block number was stored twice")
	}
}

func TestStatsAndGapsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, pre := blockOf(7, []byte{1, 2, 3})
	if err := s.AddBlock(b, pre); err != nil {
		t.Fatal(err)
	}
	if err := s.AddGap(Gap{From: 3, To: 6}); err != nil {
		t.Fatal(err)
	}
	want := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Stats(); got != want {
		t.Fatalf("stats after reopen %+v, want %+v", got, want)
	}
	gaps, err := s.Gaps()
	if err != nil || len(gaps) != 1 || gaps[0] != (Gap{From: 3, To: 6}) {
		t.Fatalf("gaps after reopen: %v, %v", gaps, err)
	}
	first, last, ok, err := s.Bounds()
	if err != nil || !ok || first != 7 || last != 7 {
		t.Fatalf("bounds %d %d %v %v", first, last, ok, err)
	}
	got, err := s.BlockByHash(b.Hash)
	if err != nil || got.Number != 7 {
		t.Fatalf("block by hash: %v, %v", got, err)
	}
}

// FuzzRefcountGC drives the store with an arbitrary sequence of block additions and
// removals and checks, after every step, the invariant the collector relies on: every
// preimage a retained block needs is present, and nothing else is kept.
func FuzzRefcountGC(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 1, 0, 4, 4, 5})
	f.Add([]byte{0x10, 0x11, 0x12, 0x90, 0x10, 0x80, 0x81})
	f.Add([]byte{0xff, 0x00, 0x7f, 0x80, 0x01, 0x81, 0x02, 0x82})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		s := openTest(t)
		retained := map[uint64][]byte{}
		for i, op := range ops {
			n := uint64(op & 0x07)
			if op&0x80 != 0 {
				_, had := retained[n]
				err := s.RemoveBlock(n)
				if had != (err == nil) {
					t.Fatalf("step %d: remove %d: retained=%v err=%v", i, n, had, err)
				}
				delete(retained, n)
			} else {
				// The block's preimages come from a small pool so blocks overlap.
				vals := []byte{op & 0x0f, (op >> 2) & 0x0f, byte(i) & 0x0f, op & 0x03}
				b, pre := blockOf(n, vals)
				_, had := retained[n]
				err := s.AddBlock(b, pre)
				if had != (err != nil) {
					t.Fatalf("step %d: add %d: retained=%v err=%v", i, n, had, err)
				}
				if !had {
					retained[n] = vals
				}
			}
			checkInvariant(t, s, retained)
		}
	})
}

func checkInvariant(t *testing.T, s *Store, retained map[uint64][]byte) {
	t.Helper()
	want := map[common.Hash]uint32{}
	for n, vals := range retained {
		b, _ := blockOf(n, vals)
		for _, h := range b.Refs() {
			want[h]++
		}
	}
	var bytes uint64
	for h, n := range want {
		v, err := s.Preimage(h)
		if err != nil {
			t.Fatalf("a retained block needs %s: %v", h, err)
		}
		bytes += uint64(len(v))
		if got, err := s.Refs(h); err != nil || got != n {
			t.Fatalf("refs of %s: %d, %v; want %d", h, got, err, n)
		}
	}
	stored := 0
	if err := s.ForEachPreimage(func(h common.Hash, refs uint32) error {
		stored++
		if want[h] == 0 {
			return fmt.Errorf("preimage %s kept with no retained block needing it (refs %d)", h, refs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Preimages != uint64(stored) || st.Preimages != uint64(len(want)) || st.Bytes != bytes {
		t.Fatalf("stats %+v, stored %d, want %d preimages of %d bytes", st, stored, len(want), bytes)
	}
}

// TestHeldSetFollowsBlocks checks the held set's bookkeeping: a block's additions and
// drops apply with it, stay when it leaves the window, and are undone when it is dropped
// as an orphan; a superseded node lives exactly as long as the block that superseded it.
func TestHeldSetFollowsBlocks(t *testing.T) {
	s := openTest(t)
	h := func(i byte) common.Hash { return crypto.Keccak256Hash(value(i)) }
	pre := map[common.Hash][]byte{}
	for i := byte(10); i < 20; i++ {
		pre[h(i)] = value(i)
	}
	// The trie starts as nodes 10 and 11.
	if err := s.Hold([]common.Hash{h(10), h(11)}, pre); err != nil {
		t.Fatal(err)
	}
	// Block 1 supersedes 10 (in its pre-state) with 12.
	b1 := &Block{Number: 1, Hash: common.Hash{1}, State: []common.Hash{h(10)}, Created: []common.Hash{h(12)}, HeldAdd: []common.Hash{h(12)}, HeldDrop: []common.Hash{h(10)}}
	if err := s.AddBlock(b1, pre); err != nil {
		t.Fatal(err)
	}
	// Block 2 supersedes 12 with 13.
	b2 := &Block{Number: 2, Hash: common.Hash{2}, ParentHash: common.Hash{1}, State: []common.Hash{h(12)}, Created: []common.Hash{h(13)}, HeldAdd: []common.Hash{h(13)}, HeldDrop: []common.Hash{h(12)}}
	if err := s.AddBlock(b2, pre); err != nil {
		t.Fatal(err)
	}
	want := func(counts map[byte]uint32, held ...byte) {
		t.Helper()
		for i, c := range counts {
			if got, err := s.Refs(h(i)); err != nil || got != c {
				t.Fatalf("node %d: %d references (%v), want %d", i, got, err, c)
			}
		}
		got, err := s.Held()
		if err != nil || len(got) != len(held) {
			t.Fatalf("held %d nodes (%v), want %d", len(got), err, len(held))
		}
		for _, i := range held {
			if ok, _ := s.IsHeld(h(i)); !ok {
				t.Fatalf("node %d not held", i)
			}
		}
	}
	want(map[byte]uint32{10: 1, 11: 1, 12: 2, 13: 2}, 11, 13)
	// Block 2 is orphaned: 12 is held again, 13 is gone.
	if err := s.RemoveOrphan(2); err != nil {
		t.Fatal(err)
	}
	want(map[byte]uint32{10: 1, 11: 1, 12: 2, 13: 0}, 11, 12)
	// Block 1 leaves the window: 10, which only it needed, goes; the held set stays.
	if err := s.RemoveBlock(1); err != nil {
		t.Fatal(err)
	}
	want(map[byte]uint32{10: 0, 11: 1, 12: 1}, 11, 12)
	// A drop that is not among the block's references is refused.
	bad := &Block{Number: 3, Hash: common.Hash{3}, HeldDrop: []common.Hash{h(11)}}
	if err := s.AddBlock(bad, pre); err == nil {
		t.Fatal("a block dropping a held node it does not reference was stored")
	}
	// Hold replaces the set.
	if err := s.Hold([]common.Hash{h(14)}, pre); err != nil {
		t.Fatal(err)
	}
	want(map[byte]uint32{11: 0, 12: 0, 14: 1}, 14)
}
