package supervisor_test

import (
	"testing"
	"time"

	"github.com/opkit/opkit/interop/l1test"
	"github.com/opkit/opkit/interop/supervisor"
)

// An L1 reorg that drops the L1 block two chains' latest local-safe blocks were derived
// from lowers both chains' local-safe and cross-safe heads to the blocks whose sources are
// still canonical and resets the nodes there; derived again from the new L1 branch, the
// same blocks become cross-safe again.
func TestL1ReorgLowersSafeHeads(t *testing.T) {
	l1 := startL1(t)
	for i := 0; i < 3; i++ {
		if err := l1test.SealWithin(l1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	anchor := l1Ref(t, l1, 0)
	a := startNode(t, 901, anchor)
	b := startNode(t, 902, anchor)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{a.ws(), b.ws()}, 901, 902)
	waitFor(t, "subscriptions", func() bool { return a.subscribed() && b.subscribed() })
	kept, dropped := l1Ref(t, l1, 2), l1Ref(t, l1, 3)
	for _, n := range []*testNode{a, b} {
		for i := 0; i < 3; i++ {
			n.chain.AddBlock(anchor.ID())
		}
		if _, err := n.chain.MarkSafe(1, kept); err != nil {
			t.Fatal(err)
		}
		if _, err := n.chain.MarkSafe(2, dropped); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both chains cross-safe at 2", func() bool {
		return a.chain.Heads().CrossSafe.Number == 2 && b.chain.Heads().CrossSafe.Number == 2
	})
	safe2 := a.chain.Heads().CrossSafe

	if err := l1.Reorg(kept.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.MineWithGap(7 * time.Second); err != nil {
		t.Fatal(err)
	}
	replacing := l1Ref(t, l1, 3)
	if replacing.Hash == dropped.Hash {
		t.Fatal("L1 block 3 survived the reorg")
	}
	waitFor(t, "both nodes reset below the dropped source", func() bool {
		st := sup.Status()
		return a.chain.Resets() > 0 && b.chain.Resets() > 0 &&
			st.Chains[901].LocalSafe.Derived.Number == 1 && st.Chains[901].CrossSafe.Derived.Number == 1 &&
			st.Chains[902].LocalSafe.Derived.Number == 1 && st.Chains[902].CrossSafe.Derived.Number == 1
	})
	if h := a.chain.Heads(); h.LocalSafe.Number != 1 || h.CrossSafe.Number != 1 {
		t.Fatalf("node 901 reset to local-safe %d, cross-safe %d; want 1", h.LocalSafe.Number, h.CrossSafe.Number)
	}
	for _, n := range []*testNode{a, b} {
		if _, err := n.chain.MarkSafe(2, replacing); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both chains cross-safe at 2 again", func() bool {
		return a.chain.Heads().CrossSafe.Number == 2 && b.chain.Heads().CrossSafe.Number == 2
	})
	if got := a.chain.Heads().CrossSafe; got != safe2 {
		t.Fatalf("cross-safe block 2 is %s, was %s", got.Hash, safe2.Hash)
	}
	if src := sup.Status().Chains[901].CrossSafe.Source; src.Hash != replacing.Hash {
		t.Fatalf("chain 901 cross-safe from %s, want the new L1 block %s", src.ID(), replacing.ID())
	}
}
