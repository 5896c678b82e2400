//go:build linux

package batcher_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/internal/proctest"
	"github.com/opkit/opkit/rollup/batch"
)

func (e *env) startBatcherProcess(bin string, args ...string) *proctest.Process {
	e.t.Helper()
	key := hex.EncodeToString(crypto.FromECDSA(devnet.DevAccounts(2)[1].Key))
	all := append([]string{"--log.level=info", "batcher",
		"--l1=" + e.proxy.srv.URL, "--l2=" + e.l2node.HTTPEndpoint(), "--rollup-rpc=" + e.node.RPCEndpoint(),
		"--private-key=" + key, "--data-availability-type=calldata", "--num-confirmations=1",
		"--poll-interval=100ms", "--txmgr.receipt-query-interval=50ms", "--throttle.unsafe-da-bytes-lower-threshold=0",
		"--rpc.port=0", "--metrics.port=0"}, args...)
	return proctest.Start(e.t, "opkit batcher", bin, all...)
}

// startL2Data sends, once an L2 block, a transaction carrying size random bytes, so the
// chain has data that does not compress away; the returned stop ends it.
func (e *env) startL2Data(size int) (stop func()) {
	acct := devnet.DevAccounts(4)[3]
	signer := types.LatestSignerForChainID(e.rcfg.L2ChainID)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		nonce, err := e.l2.PendingNonceAt(ctx, acct.Address)
		if err != nil {
			return
		}
		to := common.Address{0x42}
		tick := time.NewTicker(time.Duration(e.rcfg.BlockTime) * time.Second)
		defer tick.Stop()
		for {
			data := make([]byte, size)
			_, _ = rand.Read(data)
			tx := types.MustSignNewTx(acct.Key, signer, &types.DynamicFeeTx{
				ChainID: e.rcfg.L2ChainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e10),
				Gas: 21_000 + 64*uint64(size), To: &to, Data: data, // covers the calldata floor price
			})
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			if err := e.l2.SendTransaction(sctx, tx); err == nil {
				nonce++
			} else if ctx.Err() == nil {
				e.t.Errorf("L2 data transaction: %v", err)
				scancel()
				return
			}
			scancel()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

// channelState is what L1 holds of one channel: the frame numbers posted and whether
// its last frame is among them.
type channelState struct {
	frames   map[uint16]bool
	complete bool
}

func (e *env) channelsOnL1(ctx context.Context) (map[batch.ChannelID]*channelState, error) {
	posted, err := e.scanL1(ctx)
	if err != nil {
		return nil, err
	}
	out := map[batch.ChannelID]*channelState{}
	lastNum := map[batch.ChannelID]int{}
	for _, p := range posted {
		for _, f := range p.frames {
			c := out[f.ID]
			if c == nil {
				c = &channelState{frames: map[uint16]bool{}}
				out[f.ID] = c
				lastNum[f.ID] = -1
			}
			c.frames[f.Number] = true
			if f.IsLast {
				lastNum[f.ID] = int(f.Number)
			}
		}
	}
	for id, c := range out {
		c.complete = lastNum[id] >= 0 && len(c.frames) == lastNum[id]+1
	}
	return out, nil
}

// waitOpenChannel waits until L1 holds some frames of a channel, not in known, without
// its last frame: a channel the batcher is in the middle of posting.
func (e *env) waitOpenChannel(ctx context.Context, p *proctest.Process, known map[batch.ChannelID]bool) batch.ChannelID {
	e.t.Helper()
	for {
		chans, err := e.channelsOnL1(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for id, c := range chans {
			if !c.complete && !known[id] {
				return id
			}
		}
		if err := p.Exited(); err != nil {
			e.t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			e.t.Fatal("no channel was seen half-posted on L1")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// holdMidChannel waits for a channel that is half on L1, then refuses the batcher's
// sends and waits until no transaction of its account is in the pool, so nothing more
// of the channel can land. It returns the channel, still incomplete on L1, with sends
// refused; if the channel completed meanwhile it lets sends through and waits for the
// next one.
func (e *env) holdMidChannel(ctx context.Context, p *proctest.Process, known map[batch.ChannelID]bool) (batch.ChannelID, int) {
	e.t.Helper()
	from := devnet.DevAccounts(2)[1].Address
	for {
		id := e.waitOpenChannel(ctx, p, known)
		e.proxy.noSend.Store(true)
		for {
			pending, err1 := e.l1.PendingNonceAt(ctx, from)
			mined, err2 := e.l1.NonceAt(ctx, from, nil)
			if err := errors.Join(err1, err2); err != nil {
				e.t.Fatal(err)
			}
			if pending == mined {
				break
			}
			select {
			case <-ctx.Done():
				e.t.Fatal("the batcher's transaction stayed in the pool")
			case <-time.After(20 * time.Millisecond):
			}
		}
		chans, err := e.channelsOnL1(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if c := chans[id]; !c.complete {
			return id, len(c.frames)
		}
		known[id] = true
		e.proxy.noSend.Store(false)
	}
}

// The batcher process is SIGKILLed in the middle of a channel (some of its frames on L1,
// the rest never sent) and started again; later the L1 RPC goes down for longer than the
// network and resubmission timeouts while the next channel is half posted. The safe head
// reaches the unsafe head, and across the complete channels on L1 every L2 block is
// posted exactly once: the killed channel's blocks went out again in a new channel,
// none twice, none skipped.
func TestProcessKilledMidChannelAndL1Outage(t *testing.T) {
	bin := proctest.BuildOpkit(t)
	e := startEnv(t)
	ctx := testCtx(t, 3*time.Minute)
	stopData := e.startL2Data(700)
	// Calldata frames of under 1000 bytes, three to a channel: each channel goes out in
	// three transactions, one at a time, so there is a window with part of it on L1.
	flags := []string{"--max-l1-tx-size-bytes=1000", "--target-num-frames=3", "--max-channel-duration=20",
		"--sub-safety-margin=10", "--network-timeout=2s", "--resubmission-timeout=3s", "--wait-node-sync"}
	first := e.startBatcherProcess(bin, flags...)
	// Some blocks safe first, so the restart has a safe head to resume from.
	e.waitSafe(ctx, 3)
	known := map[batch.ChannelID]bool{}
	killed, onL1 := e.holdMidChannel(ctx, first, known)
	first.Kill(t)
	st, err := e.syncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the batcher with %d frame(s) of channel %s on L1, safe head %d", onL1, killed, st.SafeL2.Number)
	known[killed] = true
	e.proxy.noSend.Store(false)

	second := e.startBatcherProcess(bin, flags...)
	half := e.waitOpenChannel(ctx, second, known)
	e.proxy.down.Store(true)
	refusedBefore := e.proxy.refused.Load()
	// The outage outlasts --network-timeout and --resubmission-timeout, so calls time out,
	// sends fail and resubmissions come due while L1 is unreachable.
	outage := time.NewTimer(8 * time.Second)
	select {
	case <-ctx.Done():
		t.Fatal("test deadline during the L1 outage")
	case <-outage.C:
	}
	if e.proxy.refused.Load() == refusedBefore {
		t.Fatal("the batcher made no L1 call during the outage")
	}
	e.proxy.down.Store(false)
	t.Logf("L1 was down for 8s with channel %s half posted", half)

	stopData()
	st, err = e.syncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.waitSafe(ctx, st.UnsafeL2.Number)
	if err := second.Exited(); err != nil {
		t.Fatal(err)
	}
	kinds, dups := e.waitPosted(ctx, st.UnsafeL2.Number)
	if dups != 0 {
		t.Fatalf("%d L2 blocks posted more than once in complete channels", dups)
	}
	chans, err := e.channelsOnL1(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if chans[killed].complete {
		t.Fatalf("the killed channel %s was completed on L1", killed)
	}
	t.Logf("blocks 1..%d each posted once (%v); %d channels on L1", st.UnsafeL2.Number, kinds, len(chans))
}
