package node_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// A managed node reports every block it derives, one by one, span batches included
// (under Holocene each derived block is local-safe at once): a supervisor records the
// local-safe chain block by block (the OP Stack's refuses a block that does not build on the last it recorded and
// resets the node, forever, if blocks are skipped). The batcher's channels here span two
// L1 blocks, so its span batches carry several L2 blocks.
func TestManagedReportsEveryBlockOfASpanBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		ChainIDs: []uint64{901}, NoSupervisor: true, L1BlockTime: time.Second, L2BlockTime: 1,
		L1PollInterval: 100 * time.Millisecond, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel()})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close interop devnet: %v", err)
		}
	})
	c := d.Chains[0]
	cl, err := rpc.DialOptions(ctx, c.Node.InteropEndpoint(), rpc.WithHTTPAuth(c.Secret.HTTPAuth()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	events := make(chan interop.EventEntry, 256)
	sub, err := cl.Subscribe(ctx, interop.Namespace, events, interop.EventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	chain := d.L1.Backend().BlockChain()
	var last eth.BlockRef // the newest block reported derived
	var spans int         // updates that reported a block its source's previous update did not
	var lastSource eth.BlockRef
	for last.Number < 8 {
		var ev *interop.ManagedEvent
		select {
		case e := <-events:
			ev = e.Data
		case err := <-sub.Err():
			t.Fatalf("subscription: %v", err)
		case <-ctx.Done():
			t.Fatalf("derived up to %d: %v", last.Number, ctx.Err())
		}
		if ev == nil {
			continue
		}
		if u := ev.DerivationUpdate; u != nil && ev.DerivationOriginUpdate == nil && u.Derived != last {
			// The first is the local-safe head the subscription starts from.
			if !last.IsZero() && (u.Derived.Number != last.Number+1 || u.Derived.ParentHash != last.Hash) {
				t.Fatalf("derived block %s (parent %s) reported after %s: a block was skipped", u.Derived.ID(), u.Derived.ParentHash, last.ID())
			}
			if u.Source == lastSource && u.Derived.Number > 1 {
				spans++
			}
			last, lastSource = u.Derived, u.Source
		}
		if ex := ev.ExhaustL1; ex != nil {
			for {
				h := chain.GetHeaderByNumber(ex.Source.Number + 1)
				if h != nil {
					if err := cl.CallContext(ctx, nil, "interop_provideL1", eth.BlockRefFromHeader(h)); err != nil {
						t.Fatalf("provideL1 %d: %v", h.Number, err)
					}
					break
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					t.Fatalf("L1 block %d never came", ex.Source.Number+1)
				}
			}
		}
	}
	if spans == 0 {
		t.Fatalf("no L1 block carried more than one derived block: the test saw no multi-block span batch")
	}
}
