package devnet_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
)

func stackLog() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("OPKIT_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// startStack runs the whole devnet on fast clocks: 500ms L1 blocks, 1s L2 blocks.
func startStack(t *testing.T, dir string, da batcher.DAType) *devnet.Devnet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		DataDir: dir, L1BlockTime: 500 * time.Millisecond, L2BlockTime: 1, L1PollInterval: 100 * time.Millisecond,
		NodeMetricsDisabled: true, Logger: stackLog(),
		Batcher:   &devnet.BatcherConfig{DA: da, PollInterval: 200 * time.Millisecond, AltDARetryAfter: 3 * time.Second},
		Collector: &devnet.CollectorConfig{Window: 1000},
	})
	if err != nil {
		t.Fatalf("start devnet: %v", err)
	}
	return d
}

func syncStatus(t *testing.T, d *devnet.Devnet) *eth.SyncStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := d.Node.Driver().SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds, failing the test with what at the deadline.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWholeDevnet runs the devnet as `opkit devnet` does, and checks what its user relies
// on: the chain becomes safe and finalized, a deposit bridges, the collector serves the
// window, and a restart resumes the same chain. The batcher posts calldata here: under the
// race detector a blob's cell proofs take seconds each, more than a 1 s chain leaves
// (blobs are checked end to end in batcher/ and compat/).
func TestWholeDevnet(t *testing.T) {
	dir := t.TempDir()
	d := startStack(t, dir, batcher.DACalldata)
	closed := false
	defer func() {
		if !closed {
			_ = d.Close()
		}
	}()

	// Safe follows unsafe: the batcher's channels close within its channel duration (six
	// 500ms L1 blocks), so safe trails by a few seconds of L2 blocks, not the whole chain.
	waitFor(t, 90*time.Second, "safe head 20", func() bool { return syncStatus(t, d).SafeL2.Number >= 20 })
	// Whatever is unsafe now is safe soon after: the batcher keeps up.
	target := syncStatus(t, d).UnsafeL2
	waitFor(t, 60*time.Second, fmt.Sprintf("safe to reach unsafe block %d", target.Number), func() bool {
		return syncStatus(t, d).SafeL2.Number >= target.Number
	})
	st := syncStatus(t, d)
	if st.CurrentL1.Number == 0 || st.CurrentL1.Number > st.HeadL1.Number {
		t.Fatalf("current_l1 %d with L1 head %d", st.CurrentL1.Number, st.HeadL1.Number)
	}

	// A plain ETH transfer to the deposit contract on L1 is minted on L2.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	who := d.L1.Accounts()[5]
	before, err := l2.BalanceAt(ctx, who.Address, nil)
	if err != nil {
		t.Fatal(err)
	}
	amount := new(big.Int).Mul(big.NewInt(3), big.NewInt(params.Ether))
	if _, err := d.L1.Transact(ctx, who, &d.Rollup.DepositContractAddress, amount, nil); err != nil {
		t.Fatalf("deposit on L1: %v", err)
	}
	waitFor(t, 60*time.Second, "the deposit on L2", func() bool {
		bal, err := l2.BalanceAt(ctx, who.Address, nil)
		return err == nil && new(big.Int).Sub(bal, before).Cmp(amount) == 0
	})

	// Finality follows L1's: the dev L1 finalizes in 32-block epochs.
	waitFor(t, 90*time.Second, "a finalized L2 block", func() bool { return syncStatus(t, d).FinalizedL2.Number > 0 })
	if st := syncStatus(t, d); st.FinalizedL2.Number > st.SafeL2.Number || st.FinalizedL1.Number == 0 {
		t.Fatalf("finalized L2 %d, safe %d, finalized L1 %d", st.FinalizedL2.Number, st.SafeL2.Number, st.FinalizedL1.Number)
	}

	// The collector holds the recent window and serves output roots from it alone.
	waitFor(t, 30*time.Second, "the collector to hold 10 blocks", func() bool {
		cs, err := d.Collector.Status()
		return err == nil && cs.First != nil && cs.Last != nil && cs.Last.Number >= cs.First.Number+10
	})
	checkCollectorOutput(t, d)

	// A restart resumes the same chain.
	head := syncStatus(t, d).UnsafeL2
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	d2 := startStack(t, dir, batcher.DACalldata)
	defer d2.Close()
	again := syncStatus(t, d2)
	if again.UnsafeL2.Number < head.Number {
		t.Fatalf("restarted at unsafe %d, was %d", again.UnsafeL2.Number, head.Number)
	}
	ref, err := d2.Node.Engine().BlockRefByNumber(ctx, head.Number)
	if err != nil || ref.Hash != head.Hash {
		t.Fatalf("block %d after the restart: %v %v, was %s", head.Number, ref.Hash, err, head.Hash)
	}
	waitFor(t, 60*time.Second, "safe to move after the restart", func() bool {
		return syncStatus(t, d2).SafeL2.Number > again.SafeL2.Number+2
	})
}

// checkCollectorOutput compares the collector's output root of a retained block with the
// rollup node's.
func checkCollectorOutput(t *testing.T, d *devnet.Devnet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := d.Collector.Status()
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(cs.Last.Number) - 2
	cl, err := rpc.DialContext(ctx, "http://"+d.CollectorServer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var fromCollector eth.OutputResponse
	if err := cl.CallContext(ctx, &fromCollector, "collector_outputAtBlock", hexutil.Uint64(n)); err != nil {
		t.Fatalf("collector_outputAtBlock(%d): %v", n, err)
	}
	fromNode, err := d.Node.OutputAtBlock(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if fromCollector.OutputRoot != fromNode.OutputRoot {
		t.Fatalf("block %d: collector output root %s, node %s", n, fromCollector.OutputRoot, fromNode.OutputRoot)
	}
}

// TestDevnetAltDAFailover runs the devnet in AltDA mode, makes the DA server's primary
// unavailable mid-run and clears it again: the safe head keeps moving throughout, the
// batcher posts to Ethereum (blobs or calldata, by the auto rule) while AltDA refuses, and
// commitments again afterwards.
func TestDevnetAltDAFailover(t *testing.T) {
	d := startStack(t, t.TempDir(), batcher.DAAltDA)
	defer d.Close()
	waitFor(t, 90*time.Second, "safe head 5 through AltDA", func() bool { return syncStatus(t, d).SafeL2.Number >= 5 })
	if c := countInbox(d, 0); c.commitments == 0 || c.blobs != 0 {
		t.Fatalf("before the outage: %+v, want AltDA commitments only", c)
	}

	setFaults(t, d, `{"primary":{"put":"unavailable"}}`)
	l1AtOutage := d.L1.Head().Number.Uint64()
	// Blocks after the unsafe head of now can only reach L1 during the outage.
	outage := syncStatus(t, d).UnsafeL2.Number
	waitFor(t, 120*time.Second, "safe to move on during the outage", func() bool {
		return syncStatus(t, d).SafeL2.Number >= outage+5
	})
	if c := countInbox(d, l1AtOutage+1); c.blobs+c.calldata == 0 {
		t.Fatalf("during the outage: %+v, want data posted to Ethereum", c)
	}

	setFaults(t, d, `{}`)
	l1AtClear := d.L1.Head().Number.Uint64()
	waitFor(t, 90*time.Second, "commitments on L1 again", func() bool { return countInbox(d, l1AtClear+1).commitments > 0 })
	back := syncStatus(t, d).SafeL2.Number
	waitFor(t, 60*time.Second, "safe to move on after the outage", func() bool {
		return syncStatus(t, d).SafeL2.Number >= back+5
	})
}

// inboxCount counts the batcher transactions in L1 blocks from a block on.
type inboxCount struct{ commitments, blobs, calldata int }

func countInbox(d *devnet.Devnet, from uint64) inboxCount {
	var c inboxCount
	bc := d.L1.Backend().BlockChain()
	for n := max(from, 1); n <= bc.CurrentBlock().Number.Uint64(); n++ {
		b := bc.GetBlockByNumber(n)
		if b == nil {
			break
		}
		for _, tx := range b.Transactions() {
			switch {
			case tx.To() == nil || *tx.To() != d.Rollup.BatchInboxAddress:
			case tx.Type() == types.BlobTxType:
				c.blobs++
			case len(tx.Data()) > 0 && tx.Data()[0] == 0x01:
				c.commitments++
			default:
				c.calldata++
			}
		}
	}
	return c
}

func setFaults(t *testing.T, d *devnet.Devnet, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, d.DAServer.URL()+"/admin/faults", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set faults %s: %d %s", body, resp.StatusCode, msg)
	}
}
