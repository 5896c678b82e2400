package finality

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
)

func l1(n uint64) eth.L1BlockRef {
	return eth.L1BlockRef{Hash: common.BytesToHash([]byte(fmt.Sprintf("l1-%d", n))), Number: n}
}

func l2(n uint64) eth.L2BlockRef {
	return eth.L2BlockRef{Hash: common.BytesToHash([]byte(fmt.Sprintf("l2-%d", n))), Number: n}
}

type canon map[uint64]eth.L1BlockRef

func (c canon) L1BlockRefByNumber(_ context.Context, n uint64) (eth.L1BlockRef, error) {
	if r, ok := c[n]; ok {
		return r, nil
	}
	return l1(n), nil
}

func TestFinalizesHighestDerivedFromFinalizedL1(t *testing.T) {
	tr := New(0)
	// L1 block 10 yielded safe L2 up to 5, then 7 (last counts); 11 yielded 9; 12 yielded 12.
	tr.OnSafe(l2(5), l1(10))
	tr.OnSafe(l2(7), l1(10))
	tr.OnSafe(l2(9), l1(11))
	tr.OnSafe(l2(12), l1(12))
	ctx := context.Background()
	if _, ok, err := tr.Next(ctx, canon{}, l2(0)); ok || err != nil {
		t.Fatalf("finalized with no finalized L1: %v %v", ok, err)
	}
	tr.OnL1Finalized(l1(9))
	if _, ok, _ := tr.Next(ctx, canon{}, l2(0)); ok {
		t.Fatal("finalized L2 derived from L1 above the finalized L1")
	}
	tr.OnL1Finalized(l1(11))
	got, ok, err := tr.Next(ctx, canon{}, l2(0))
	if err != nil || !ok || got != l2(9) {
		t.Fatalf("next %v %v %v, want L2 9", got.Number, ok, err)
	}
	// Nothing above what is already final.
	if _, ok, _ := tr.Next(ctx, canon{}, l2(9)); ok {
		t.Fatal("finalized twice")
	}
	// An older L1 finalized signal does not take finality back.
	tr.OnL1Finalized(l1(10))
	if tr.FinalizedL1() != l1(11) {
		t.Fatalf("finalized L1 went back to %d", tr.FinalizedL1().Number)
	}
}

func TestL1ReorgUnderCandidateIsReported(t *testing.T) {
	tr := New(0)
	tr.OnSafe(l2(9), l1(11))
	tr.OnL1Finalized(l1(12))
	other := l1(11)
	other.Hash = common.Hash{1}
	if _, _, err := tr.Next(context.Background(), canon{11: other}, l2(0)); !errors.Is(err, ErrReorg) {
		t.Fatalf("derived-from block replaced: %v", err)
	}
	if _, _, err := tr.Next(context.Background(), canon{12: other}, l2(0)); !errors.Is(err, ErrReorg) {
		t.Fatalf("finalized L1 block replaced: %v", err)
	}
	tr.Reset()
	if _, ok, _ := tr.Next(context.Background(), canon{}, l2(0)); ok {
		t.Fatal("candidate survived a reset")
	}
}

func TestLookbackIsBounded(t *testing.T) {
	tr := New(0)
	for n := uint64(1); n <= 500; n++ {
		tr.OnSafe(l2(n), l1(n))
	}
	if len(tr.points) != DefaultLookback {
		t.Fatalf("%d points kept", len(tr.points))
	}
	// L1 300 is older than the lookback: nothing derived from it is remembered.
	tr.OnL1Finalized(l1(300))
	if _, ok, _ := tr.Next(context.Background(), canon{}, l2(0)); ok {
		t.Fatal("a forgotten block was finalized")
	}
	tr.OnL1Finalized(l1(400))
	if got, ok, _ := tr.Next(context.Background(), canon{}, l2(0)); !ok || got != l2(400) {
		t.Fatalf("got %d %v", got.Number, ok)
	}
}

func TestSafeHeadsAtL1(t *testing.T) {
	s := NewSafeHeads(0)
	if _, _, err := s.At(5); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	s.Update(l2(2), l1(5).ID())
	s.Update(l2(4), l1(5).ID())
	s.Update(l2(6), l1(7).ID())
	s.Update(l2(8), l1(9).ID())
	for _, tc := range []struct{ at, l1, l2 uint64 }{{5, 5, 4}, {6, 5, 4}, {7, 7, 6}, {100, 9, 8}} {
		gotL1, gotL2, err := s.At(tc.at)
		if err != nil || gotL1.Number != tc.l1 || gotL2.Number != tc.l2 {
			t.Errorf("at %d: %v %v %v", tc.at, gotL1.Number, gotL2.Number, err)
		}
	}
	if _, _, err := s.At(4); !errors.Is(err, ErrNotFound) {
		t.Fatal("answered before the first record")
	}
	// A reset to safe 5: L1 7 (which made 6 safe) is where 5 was first safe.
	s.Reset(l2(5))
	if gotL1, gotL2, err := s.At(100); err != nil || gotL1.Number != 7 || gotL2.Number != 5 {
		t.Fatalf("after reset: %v %v %v", gotL1.Number, gotL2.Number, err)
	}
	// Derivation restarting at an older L1 block rewrites the history from there.
	s.Update(l2(6), l1(6).ID())
	if gotL1, gotL2, _ := s.At(100); gotL1.Number != 6 || gotL2.Number != 6 {
		t.Fatalf("after rewrite: %v %v", gotL1.Number, gotL2.Number)
	}
	bounded := NewSafeHeads(3)
	for n := uint64(1); n <= 10; n++ {
		bounded.Update(l2(n), l1(n).ID())
	}
	if _, _, err := bounded.At(7); !errors.Is(err, ErrNotFound) {
		t.Fatal("kept more than its bound")
	}
}
