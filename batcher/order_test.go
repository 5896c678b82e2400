package batcher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opkit/opkit/batcher"
)

// With several transactions in flight, nonces follow channel order even when the
// sidecars are built in the reverse order: the first four sends wait for each other and
// then finish their proofs last-first. Every channel lands on L1 in the order its blocks
// were loaded, so the node never meets a span batch from the future, and no block is
// posted twice (a reload would post them again). While the four are held, the status
// counts their blocks as pending.
func TestNoncesFollowChannelOrderWhenProofsFinishReversed(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t, 180*time.Second) // the race detector slows the blob proofs many times
	e.sendL2Txs(ctx, 2)
	cfg := e.config(batcher.DABlobs)
	cfg.MaxPendingTx = 4
	// Blob proofs (version 0) before the cell-proof time: cheap to build.
	cfg.CellProofTime = uint64(time.Now().Add(time.Hour).Unix())
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	b, err := batcher.New(nctx, cfg, batcher.DefaultCodec())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	const held = 4
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
		release = make(chan struct{})
		once    sync.Once
	)
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the batcher's Close, which waits for the sends
	batcher.SetBeforeSidecar(b, func(string) {
		mu.Lock()
		i := arrived
		arrived++
		if arrived == held {
			close(all)
		}
		mu.Unlock()
		if i >= held {
			return
		}
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
		// The first send's proofs finish last.
		time.Sleep(time.Duration(held-1-i) * 400 * time.Millisecond)
	})
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("four sends were never in flight at once")
	}
	// Nothing of the four channels is on L1: their blocks, and those of the open
	// channel, are pending, and no more than the node's unsafe blocks.
	for {
		st, err := e.syncStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := b.Status().PendingBlocks
		if p > int(st.UnsafeL2.Number-st.SafeL2.Number) {
			t.Fatalf("%d blocks pending, only %d unsafe", p, st.UnsafeL2.Number-st.SafeL2.Number)
		}
		if p >= held {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pending blocks read %d with %d channels held", p, held)
		case <-time.After(50 * time.Millisecond):
		}
	}
	letGo()
	// The four held channels and a few after them.
	e.waitL2(ctx, 10)
	e.waitSafe(ctx, 8)
	kinds, dups := e.waitPosted(ctx, 8)
	if dups != 0 {
		t.Fatalf("%d blocks posted more than once (blocks by DA: %v)", dups, kinds)
	}
	posted, err := e.scanL1(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(e.rcfg, posted)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].timestamp <= got[i-1].timestamp {
			t.Fatalf("posted block %d (time %d) landed after one of time %d: channels out of order", i, got[i].timestamp, got[i-1].timestamp)
		}
	}
}
