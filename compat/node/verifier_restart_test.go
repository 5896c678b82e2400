package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
)

// derivingPair is opkit's devnet (its sequencer builds the chain, with transactions from
// the devnet's load), op-batcher v1.16.13 posting it to the dev L1 in calldata channels of
// several frames, each frame its own L1 transaction, and two verifiers deriving it from
// that L1: op-node v1.16.13 and opkit's, each on its own op-geth.
type derivingPair struct {
	d       *devnet.Devnet
	batcher *peers.Batcher
	seq     *peers.RollupClient
	opNode  *peers.OpNode
	ref     *peers.RollupClient // op-node's rollup RPC
	opkit   *opkitVerifier
}

func startDerivingPair(ctx context.Context, t *testing.T, opkitDataDir string) *derivingPair {
	t.Helper()
	d, err := devnet.Start(ctx, devnet.Config{L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// A cleanup, not a defer: the peers' cleanups must run first, while L1 and L2 are up.
	t.Cleanup(func() { d.Close() })
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan error, 1)
	go func() { loadDone <- d.RunLoad(loadCtx, 4) }()
	t.Cleanup(func() {
		stopLoad()
		if err := <-loadDone; err != nil && loadCtx.Err() == nil {
			t.Errorf("load: %v", err)
		}
	})
	p := &derivingPair{d: d}
	p.opNode = startOpNode(ctx, t, peers.OpNodeConfig{L1: d.L1, Rollup: d.Rollup, L2Genesis: d.L2Genesis})
	p.opkit = startOpkitVerifier(ctx, t, d.L1, d.Rollup, d.L2Genesis, opkitDataDir)
	p.seq = dialRollup(ctx, t, d.Node.RPCEndpoint())
	p.ref = dialRollup(ctx, t, p.opNode.RPCEndpoint())
	// Frames of at most 1 kB, three to a channel, a channel closed only once full (or near
	// its timeout), so every channel has three frames whatever the load's pace; one
	// transaction in flight at a time puts each frame in its own L1 block.
	p.batcher = startBatcher(ctx, t, peers.BatcherConfig{L1: d.L1, L2RPC: d.L2.HTTPEndpoint(), RollupRPC: d.Node.RPCEndpoint(),
		ExtraFlags: []string{"--max-l1-tx-size-bytes=1000", "--target-num-frames=3", "--max-channel-duration=0", "--max-pending-tx=1"}})
	return p
}

// inboxFrame is a frame of a batcher transaction on L1.
type inboxFrame struct {
	l1Block uint64
	frame   derive.Frame
}

// inboxFrames decodes, with op-node's parser, the frames of the calldata batcher
// transactions to inbox in canonical L1 blocks 1..upto.
func inboxFrames(l1 *devnet.L1, inbox common.Address, upto uint64) ([]inboxFrame, error) {
	chain := l1.Backend().BlockChain()
	var out []inboxFrame
	for n := uint64(1); n <= upto; n++ {
		b := chain.GetBlockByNumber(n)
		if b == nil {
			return nil, fmt.Errorf("L1 block %d missing", n)
		}
		for _, tx := range b.Transactions() {
			if tx.To() == nil || *tx.To() != inbox || tx.Type() == types.BlobTxType {
				continue
			}
			frames, err := derive.ParseFrames(tx.Data())
			if err != nil {
				return nil, fmt.Errorf("batcher transaction %s in L1 block %d: %w", tx.Hash(), n, err)
			}
			for _, f := range frames {
				out = append(out, inboxFrame{l1Block: n, frame: f})
			}
		}
	}
	return out, nil
}

// settle stops the batcher and waits until both verifiers have read L1 two blocks past
// its last transaction and stand on the same safe head; it returns that head's number.
func (p *derivingPair) settle(ctx context.Context, t *testing.T) uint64 {
	t.Helper()
	if err := p.batcher.Close(); err != nil {
		t.Fatal(err)
	}
	past := p.d.L1.Head().Number.Uint64() + 2
	var ref *opeth.SyncStatus
	st := p.opkit.waitFor(ctx, "the same safe head as op-node", func(s *opeth.SyncStatus) bool {
		if s.CurrentL1.Number < past {
			return false
		}
		r, err := p.ref.SyncStatus(ctx)
		if err != nil {
			return false
		}
		ref = r
		return r.CurrentL1.Number >= past && r.SafeL2 == s.SafeL2
	})
	t.Logf("both verifiers at safe %d (%s), current L1 %d and %d", st.SafeL2.Number, st.SafeL2.Hash, st.CurrentL1.Number, ref.CurrentL1.Number)
	return st.SafeL2.Number
}

// check compares, at every height up to safe, the block hash on the three execution
// clients and optimism_outputAtBlock on the three rollup nodes.
func (p *derivingPair) check(ctx context.Context, t *testing.T, safe uint64) {
	t.Helper()
	if err := errors.Join(peers.Agree(ctx, 0, safe, p.seq, p.ref, p.opkit.RPC),
		sameBlocks(ctx, 0, safe, p.d.L2.HTTPEndpoint(), p.opNode.L2.HTTPEndpoint(), p.opkit.L2.HTTPEndpoint())); err != nil {
		t.Fatal(err)
	}
}

// TestOpkitVerifierRestartsEndOnOpNodesSafeHead: the opkit verifier's op-geth is stopped
// while the verifier derives and started again on its datadir, then the verifier itself
// is stopped while the newest frame it has read belongs to a channel whose last frame is
// not on L1 yet, and a new one starts on the same op-geth. Once the batcher stops, the
// opkit verifier stands on op-node's safe head, with the same block hash and output at
// every height as op-node, its op-geth and the sequencer.
func TestOpkitVerifierRestartsEndOnOpNodesSafeHead(t *testing.T) {
	buildPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := startDerivingPair(ctx, t, t.TempDir())
	start := time.Now()

	// The execution client goes away mid-derivation: L1 moves on, with batches, while it
	// is down.
	before := p.opkit.waitSafe(ctx, 4)
	restartL2 := p.opkit.stopL2()
	downUntil := p.d.L1.Head().Number.Uint64() + 3
	if err := waitL1(ctx, p.d.L1, downUntil); err != nil {
		t.Fatal(err)
	}
	restartL2()
	after := p.opkit.waitSafe(ctx, before.SafeL2.Number+6)
	t.Logf("%s: op-geth restarted under the verifier at safe %d; safe %d since", time.Since(start), before.SafeL2.Number, after.SafeL2.Number)

	// The verifier restarts with a channel half read: the newest frame up to its
	// current L1 block is not its channel's last.
	var open inboxFrame
	defer func() {
		if t.Failed() {
			t.Log(frameSummary(p.d.L1, p.d.Rollup.BatchInboxAddress))
		}
	}()
	st := p.opkit.waitFor(ctx, "a partly read channel", func(s *opeth.SyncStatus) bool {
		frames, err := inboxFrames(p.d.L1, p.d.Rollup.BatchInboxAddress, s.CurrentL1.Number)
		if err != nil || len(frames) == 0 {
			return false
		}
		open = frames[len(frames)-1]
		return !open.frame.IsLast && s.SafeL2.Number > after.SafeL2.Number
	})
	p.opkit.restartNode(ctx)
	t.Logf("%s: verifier restarted at safe %d, current L1 %d, holding frame %d of channel %s (L1 block %d)", time.Since(start),
		st.SafeL2.Number, st.CurrentL1.Number, open.frame.FrameNumber, open.frame.ID, open.l1Block)
	p.opkit.waitSafe(ctx, st.SafeL2.Number+6)

	safe := p.settle(ctx, t)
	p.check(ctx, t, safe)
	// The channels were of several frames, each in its own L1 block.
	frames, err := inboxFrames(p.d.L1, p.d.Rollup.BatchInboxAddress, p.d.L1.Head().Number.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	spread := 0
	for i := 1; i < len(frames); i++ {
		if frames[i].frame.ID == frames[i-1].frame.ID && frames[i].l1Block != frames[i-1].l1Block {
			spread++
		}
	}
	if spread == 0 {
		t.Fatalf("no channel of the %d frames spans L1 blocks", len(frames))
	}
	t.Logf("%s: safe %d; %d frames on L1, %d of them in a later L1 block than their channel's previous frame", time.Since(start), safe, len(frames), spread)
	t.Log(frameSummary(p.d.L1, p.d.Rollup.BatchInboxAddress))
}

// frameSummary describes the frames on L1, for a failure report: how many channels had
// how many frames, and how many L1 blocks each spanned.
func frameSummary(l1 *devnet.L1, inbox common.Address) string {
	frames, err := inboxFrames(l1, inbox, l1.Head().Number.Uint64())
	if err != nil {
		return err.Error()
	}
	type channel struct{ frames, bytes, first, last uint64 }
	var order []derive.ChannelID
	chans := map[derive.ChannelID]*channel{}
	for _, f := range frames {
		c := chans[f.frame.ID]
		if c == nil {
			c = &channel{first: f.l1Block}
			chans[f.frame.ID] = c
			order = append(order, f.frame.ID)
		}
		c.frames++
		c.bytes += uint64(len(f.frame.Data))
		c.last = f.l1Block
	}
	out := fmt.Sprintf("%d frames in %d channels on L1 up to %d:", len(frames), len(order), l1.Head().Number.Uint64())
	for _, id := range order {
		c := chans[id]
		out += fmt.Sprintf(" [%d frames, %d bytes, L1 %d-%d]", c.frames, c.bytes, c.first, c.last)
	}
	return out
}

// waitL1 waits until the dev L1's head is at least n.
func waitL1(ctx context.Context, l1 *devnet.L1, n uint64) error {
	for l1.Head().Number.Uint64() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("L1 head %d, waiting for %d: %w", l1.Head().Number.Uint64(), n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
