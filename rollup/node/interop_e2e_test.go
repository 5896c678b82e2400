package node_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/clock"
)

// fastInterop starts an interop devnet whose sequencers and L1 run on a clock speed
// times the wall clock: 1 s L2 blocks and 2 s L1 blocks.
func fastInterop(t *testing.T, speed float64) (*devnet.InteropDevnet, []*interopChain) {
	t.Helper()
	return startInteropWith(t, devnet.InteropConfig{
		L1BlockTime: 2 * time.Second, L2BlockTime: 1, Clock: clock.Scaled(time.Now(), speed),
		L1PollInterval: 50 * time.Millisecond,
	})
}

// sendMessage initiates a message on a and executes it on b, returning both receipts.
func sendMessage(t *testing.T, a, b *interopChain, payload string) (initR, execR *types.Receipt) {
	t.Helper()
	deploy := a.send(nil, emitterCreation)
	initR = a.send(&deploy.ContractAddress, []byte(payload))
	if len(initR.Logs) != 1 {
		t.Fatalf("emitter logged %d logs", len(initR.Logs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := a.l2.HeaderByHash(ctx, initR.BlockHash)
	if err != nil {
		t.Fatal(err)
	}
	l := initR.Logs[0]
	id := interop.Identifier{Origin: deploy.ContractAddress, BlockNumber: initR.BlockNumber.Uint64(), LogIndex: uint32(l.Index), Timestamp: h.Time, ChainID: a.c.ID}
	execR = b.execute(id, interop.PayloadHash(l))
	return initR, execR
}

// waitStatus polls the chain's sync status until cond holds.
func (c *interopChain) waitStatus(timeout time.Duration, what string, cond func(*eth.SyncStatus) bool) *eth.SyncStatus {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := c.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("chain %s: timed out after %s waiting for %s: current_l1 %d, unsafe %d, cross-unsafe %d, local-safe %d, cross-safe %d, finalized %d",
				c.c.ID, timeout, what, st.CurrentL1.Number, st.UnsafeL2.Number, st.CrossUnsafeL2.Number, st.LocalSafeL2.Number, st.SafeL2.Number, st.FinalizedL2.Number)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A message initiated on 901 and executed on 902 is promoted on both chains through
// cross-unsafe and cross-safe to finalized once the dev L1 finalizes the L1 blocks both
// were derived from, and neither block is replaced on the way.
func TestInteropMessageFinalized(t *testing.T) {
	_, chains := fastInterop(t, 4)
	a, b := chains[0], chains[1]
	initR, execR := sendMessage(t, a, b, "hello 902")
	for _, x := range []struct {
		c *interopChain
		r *types.Receipt
	}{{a, initR}, {b, execR}} {
		n := x.r.BlockNumber.Uint64()
		x.c.waitStatus(60*time.Second, "cross-unsafe", func(st *eth.SyncStatus) bool { return st.CrossUnsafeL2.Number >= n })
		x.c.waitStatus(90*time.Second, "cross-safe", func(st *eth.SyncStatus) bool { return st.SafeL2.Number >= n })
		st := x.c.waitStatus(90*time.Second, "finalized", func(st *eth.SyncStatus) bool { return st.FinalizedL2.Number >= n })
		if st.FinalizedL2.Number > st.SafeL2.Number || st.FinalizedL1.Number == 0 {
			t.Fatalf("chain %s: finalized %d above cross-safe %d, or finalized L1 %d", x.c.c.ID, st.FinalizedL2.Number, st.SafeL2.Number, st.FinalizedL1.Number)
		}
		t.Logf("chain %s: message block %d finalized (finalized L2 %d, cross-safe %d, finalized L1 %d)", x.c.c.ID, n, st.FinalizedL2.Number, st.SafeL2.Number, st.FinalizedL1.Number)
		if got := x.c.blockHash(n); got != x.r.BlockHash {
			t.Fatalf("chain %s: block %d of the message was replaced: %s, was %s", x.c.c.ID, n, got, x.r.BlockHash)
		}
	}
}

// promoted is a block that was cross-safe: its hash and L1 origin.
type promoted struct {
	hash   common.Hash
	origin uint64
}

// settle stops L1 and waits until every chain has derived all of it and its cross-safe
// head is its local-safe head; it returns each chain's status then and the function that
// starts L1 again.
func settle(t *testing.T, d *devnet.InteropDevnet, chains []*interopChain) ([]*eth.SyncStatus, func()) {
	t.Helper()
	resume := d.PauseL1()
	head := d.L1.Head().Hash()
	out := make([]*eth.SyncStatus, len(chains))
	for i, c := range chains {
		out[i] = c.waitStatus(90*time.Second, "cross-safe = local-safe with all of L1 derived", func(st *eth.SyncStatus) bool {
			return st.CurrentL1.Hash == head && st.SafeL2 == st.LocalSafeL2 && st.LocalSafeL2.Number > 0
		})
	}
	return out, resume
}

// snapshot records every block of c up to n.
func (c *interopChain) snapshot(upTo uint64, into map[uint64]promoted) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n := uint64(1); n <= upTo; n++ {
		if _, ok := into[n]; ok {
			continue
		}
		blk, err := c.l2.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			c.t.Fatal(err)
		}
		info, err := rollup.L1InfoFromBlockTx(blk.Transactions()[0])
		if err != nil {
			c.t.Fatal(err)
		}
		into[n] = promoted{hash: blk.Hash(), origin: info.Number}
	}
}

// checkKept checks that every block that was cross-safe still is, with the same hash,
// except blocks an L1 reorg at forkL1 legitimately replaced: from the first replaced block
// (whose L1 origin was above forkL1) up.
func (c *interopChain) checkKept(st *eth.SyncStatus, was map[uint64]promoted, forkL1 uint64) {
	c.t.Helper()
	replacedFrom := uint64(0)
	for n := uint64(1); n <= uint64(len(was)); n++ {
		p := was[n]
		if n > st.SafeL2.Number {
			c.t.Fatalf("chain %s: block %d was cross-safe, cross-safe is now %d", c.c.ID, n, st.SafeL2.Number)
		}
		got := c.blockHash(n)
		if got == p.hash {
			if replacedFrom != 0 {
				c.t.Fatalf("chain %s: block %d kept its hash above replaced block %d", c.c.ID, n, replacedFrom)
			}
			continue
		}
		if replacedFrom == 0 {
			if forkL1 == 0 || p.origin <= forkL1 {
				c.t.Fatalf("chain %s: cross-safe block %d (L1 origin %d) was replaced: %s, was %s (L1 fork point %d)", c.c.ID, n, p.origin, got, p.hash, forkL1)
			}
			replacedFrom = n
		}
	}
	if replacedFrom != 0 {
		c.t.Logf("chain %s: blocks from %d on were replaced after the L1 reorg at %d", c.c.ID, replacedFrom, forkL1)
	}
}

// A node restarted on its execution client, the supervisor restarted on its database and
// an L1 reorg under both chains: after each, every chain's cross-safe head comes back to
// its local-safe head, past where it was, and every block that was cross-safe stays so
// with its hash, unless the reorg dropped its L1 origin.
func TestInteropRecovery(t *testing.T) {
	d, chains := fastInterop(t, 4)
	a, b := chains[0], chains[1]
	_, execR := sendMessage(t, a, b, "across a restart")
	b.waitStatus(90*time.Second, "the executing block cross-safe", func(st *eth.SyncStatus) bool { return st.SafeL2.Number >= execR.BlockNumber.Uint64() })

	was := make([]map[uint64]promoted, len(chains))
	for i := range was {
		was[i] = map[uint64]promoted{}
	}
	round := func(name string, forkL1 uint64, disrupt func()) {
		t.Helper()
		sts, resume := settle(t, d, chains)
		for i, c := range chains {
			c.snapshot(sts[i].SafeL2.Number, was[i])
		}
		if forkL1 == 0 {
			resume()
		}
		disrupt()
		if forkL1 != 0 {
			resume()
		}
		// Let the chains move on, then settle again.
		for i, c := range chains {
			target := sts[i].LocalSafeL2.Number + 4
			c.waitStatus(90*time.Second, name+": local-safe past where it was", func(st *eth.SyncStatus) bool { return st.LocalSafeL2.Number >= target })
		}
		after, resume := settle(t, d, chains)
		defer resume()
		for i, c := range chains {
			c.checkKept(after[i], was[i], forkL1)
		}
		if forkL1 != 0 {
			for i := range was {
				was[i] = map[uint64]promoted{} // replaced blocks are not compared again
			}
		}
		t.Logf("%s: recovered", name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	round("node restart", 0, func() {
		if err := d.RestartNode(ctx, 0); err != nil {
			t.Fatal(err)
		}
	})
	round("supervisor restart", 0, func() {
		if err := d.RestartSupervisor(); err != nil {
			t.Fatal(err)
		}
	})

	// The reorg drops the L1 blocks the latest local-safe blocks of both chains were
	// derived from, above the finalized L1 block.
	waitFor(t, 60*time.Second, "an L1 head clear of finality", func() bool {
		n := d.L1.Head().Number.Uint64() % 32
		return n >= 8 && n <= 24
	})
	// Fork at the lowest L1 origin of the chains' local-safe heads: the L1 blocks their
	// batches were included in, later than their origins, are dropped.
	sts, resume := settle(t, d, chains)
	fork := sts[0].LocalSafeL2.L1Origin.Number
	for _, st := range sts {
		fork = min(fork, st.LocalSafeL2.L1Origin.Number)
	}
	if head := d.L1.Head().Number.Uint64(); fork <= head/32*32 || fork >= head {
		t.Fatalf("L1 fork point %d is not between the finalized L1 block %d and the head %d", fork, head/32*32, head)
	}
	resume()
	round("L1 reorg", fork, func() {
		forkHash := d.L1.Backend().BlockChain().GetHeaderByNumber(fork).Hash()
		oldNext := d.L1.Backend().BlockChain().GetHeaderByNumber(fork + 1).Hash()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := d.L1.Mine(); err != nil { // seal what is pending: Reorg needs an empty pool
				t.Fatal(err)
			}
			err := d.L1.Reorg(forkHash)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reorg L1 to %d: %v", fork, err)
			}
		}
		if _, err := d.L1.MineWithGap(3 * time.Second); err != nil {
			if _, err := d.L1.Mine(); err != nil {
				t.Fatal(err)
			}
		}
		if d.L1.Backend().BlockChain().GetHeaderByNumber(fork+1).Hash() == oldNext {
			t.Fatalf("L1 block %d survived the reorg", fork+1)
		}
		t.Logf("L1 reorged to %d", fork)
	})
}

// With the devnet's op-geth filtering its pool through the supervisor
// (supervisor_checkAccessList), a transaction executing a message that does not exist is
// refused before it reaches a block, and one executing a cross-unsafe message is taken and
// included.
func TestInteropMempoolFiltering(t *testing.T) {
	_, chains := startInteropWith(t, devnet.InteropConfig{
		L1BlockTime: 2 * time.Second, L2BlockTime: 1, Clock: clock.Scaled(time.Now(), 4),
		L1PollInterval: 50 * time.Millisecond, MempoolFiltering: true,
	})
	a, b := chains[0], chains[1]
	deploy := a.send(nil, emitterCreation)
	initR := a.send(&deploy.ContractAddress, []byte("filtered"))
	initNum := initR.BlockNumber.Uint64()
	a.waitStatus(60*time.Second, "the initiating block cross-unsafe", func(st *eth.SyncStatus) bool { return st.CrossUnsafeL2.Number >= initNum })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := a.l2.HeaderByHash(ctx, initR.BlockHash)
	if err != nil {
		t.Fatal(err)
	}
	l := initR.Logs[0]
	id := interop.Identifier{Origin: deploy.ContractAddress, BlockNumber: initNum, LogIndex: uint32(l.Index), Timestamp: h.Time, ChainID: a.c.ID}
	inbox := interop.CrossL2Inbox
	bad := id
	bad.LogIndex = 99
	al := types.AccessList{{Address: inbox, StorageKeys: interop.AccessListEntries(bad, interop.PayloadHash(l))}}
	if tx, err := b.submit(ctx, &inbox, devnet.ValidateMessageCalldata(bad, interop.PayloadHash(l)), al); err == nil {
		t.Fatalf("op-geth took transaction %s executing a message that does not exist", tx.Hash())
	} else {
		t.Logf("refused as expected: %v", err)
	}
	r := b.execute(id, interop.PayloadHash(l))
	n := r.BlockNumber.Uint64()
	b.waitStatus(90*time.Second, "the executing block cross-safe", func(st *eth.SyncStatus) bool { return st.SafeL2.Number >= n })
	if got := b.blockHash(n); got != r.BlockHash {
		t.Fatalf("the block executing a valid message was replaced")
	}
}
