//go:build linux

package node_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/internal/proctest"
	"github.com/opkit/opkit/rollup/clock"
)

// startSupervisorProcess runs `opkit supervisor` as a child process managing every node of d,
// its database in dataDir, so that it can be killed like one.
func startSupervisorProcess(t *testing.T, bin string, d *devnet.InteropDevnet, dataDir string) *proctest.Process {
	t.Helper()
	args := []string{"--log.level=info", "supervisor",
		"--l1=" + d.L1.HTTPEndpoint(), "--dependency-set=" + d.DependencySetPath, "--datadir=" + dataDir,
		"--rpc.port=0", "--metrics.port=0", "--l1.poll-interval=50ms", "--reassert-interval=2s", "--status-interval=1s"}
	for _, c := range d.Chains {
		args = append(args, "--node="+c.Node.InteropEndpoint(), "--jwt-secret="+c.SecretPath)
	}
	return proctest.Start(t, "opkit supervisor", bin, args...)
}

// crossSafeFloor polls each chain's sync status until stopped and keeps the lowest
// cross-safe head it saw: a supervisor that lost promotions in the kill would reset the
// nodes below what they had been told was cross-safe, if only for a moment.
type crossSafeFloor struct {
	mu     sync.Mutex
	min    []uint64
	errs   []error
	stop   chan struct{}
	wg     sync.WaitGroup
	chains []*interopChain
}

func watchCrossSafe(chains []*interopChain) *crossSafeFloor {
	w := &crossSafeFloor{min: make([]uint64, len(chains)), stop: make(chan struct{}), chains: chains}
	for i := range w.min {
		w.min[i] = ^uint64(0)
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, c := range chains {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var st eth.SyncStatus
				err := c.rpc.CallContext(ctx, &st, "optimism_syncStatus")
				cancel()
				w.mu.Lock()
				if err != nil {
					w.errs = append(w.errs, err)
				} else {
					w.min[i] = min(w.min[i], st.SafeL2.Number)
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *crossSafeFloor) close() ([]uint64, []error) {
	close(w.stop)
	w.wg.Wait()
	return w.min, w.errs
}

// `opkit supervisor`, a process of its own managing the two nodes of the interop devnet,
// is killed with SIGKILL while it is promoting blocks (cross-safe has advanced on both
// chains with local-safe ahead of it on one, and a cross-chain message has just been
// included, not yet cross-safe) and started again on the same database:
// it opens the database cleanly, no node's cross-safe head ever goes below where it was
// at the kill, every block that was cross-safe keeps its hash, and cross-safe comes back
// to local-safe on both chains and keeps advancing.
func TestSupervisorProcessKilledAndRestarted(t *testing.T) {
	// Built before the devnet starts, so that its chains do not run ahead meanwhile.
	bin := proctest.BuildOpkit(t)
	d, chains := startInteropWith(t, devnet.InteropConfig{
		NoSupervisor: true, L1BlockTime: 2 * time.Second, L2BlockTime: 1,
		Clock: clock.Scaled(time.Now(), interopSpeed(4)), L1PollInterval: 50 * time.Millisecond,
	})
	dataDir := filepath.Join(t.TempDir(), "supervisor")
	sup := startSupervisorProcess(t, bin, d, dataDir)

	// Promotions flowing: on each chain cross-safe has moved at least twice since the
	// supervisor started, and on one local-safe is ahead of cross-safe (a promotion is
	// pending).
	first := make([]uint64, len(chains))
	seen := make([]map[uint64]bool, len(chains))
	for i := range seen {
		seen[i] = map[uint64]bool{}
	}
	deadline := time.Now().Add(slack(60 * time.Second))
	for {
		flowing, pending := true, false
		for i, c := range chains {
			st := c.status()
			if len(seen[i]) == 0 {
				first[i] = st.SafeL2.Number
			}
			seen[i][st.SafeL2.Number] = true
			if len(seen[i]) < 3 || st.SafeL2.Number == 0 {
				flowing = false
			}
			if st.LocalSafeL2.Number > st.SafeL2.Number {
				pending = true
			}
		}
		if flowing && pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for cross-safe to advance twice on both chains with a promotion pending: %d, %d cross-safe heights seen", len(seen[0]), len(seen[1]))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A message initiated on 901 and executed on 902 just before the kill: its blocks are
	// not cross-safe yet (cross-safe lags unsafe by the batcher's channels), so the
	// restarted supervisor decides them from its database and the nodes.
	a, b := chains[0], chains[1]
	initR, execR := sendMessage(t, a, b, "across a kill")
	sup.Kill(t)
	t.Logf("killed the supervisor with the message initiated in 901's block %d and executed in 902's block %d", initR.BlockNumber, execR.BlockNumber)

	// What the nodes hold as cross-safe now is everything the killed supervisor promoted.
	before := make([]*eth.SyncStatus, len(chains))
	was := make([]map[uint64]promoted, len(chains))
	for i, c := range chains {
		before[i] = c.status()
		was[i] = map[uint64]promoted{}
		c.snapshot(before[i].SafeL2.Number, was[i])
		t.Logf("chain %s at the kill: cross-safe %d (from %d), local-safe %d, cross-unsafe %d, unsafe %d",
			c.c.ID, before[i].SafeL2.Number, first[i], before[i].LocalSafeL2.Number, before[i].CrossUnsafeL2.Number, before[i].UnsafeL2.Number)
	}
	floor := watchCrossSafe(chains)
	floorClosed := false
	defer func() {
		if !floorClosed {
			floor.close()
		}
	}()

	sup2 := startSupervisorProcess(t, bin, d, dataDir)
	waitFor(t, 30*time.Second, "the restarted supervisor to open its database and listen", func() bool {
		if err := sup2.Exited(); err != nil {
			t.Fatalf("the restarted supervisor: %v:\n%s", err, sup2.Log(t))
		}
		return len(sup2.Lines(t, "supervisor listening")) > 0
	})

	// Cross-safe comes back to local-safe, past where local-safe was at the kill and past
	// the message's blocks.
	msgBlock := []uint64{initR.BlockNumber.Uint64(), execR.BlockNumber.Uint64()}
	for i, c := range chains {
		target := max(before[i].LocalSafeL2.Number+2, msgBlock[i])
		c.waitStatus(slack(60*time.Second), "local-safe past where it was at the kill", func(st *eth.SyncStatus) bool { return st.LocalSafeL2.Number >= target })
	}
	after, resume := settle(t, d, chains)
	resume()
	mins, errs := floor.close()
	floorClosed = true
	for _, err := range errs {
		t.Errorf("optimism_syncStatus while the supervisor restarted: %v", err)
	}
	for i, c := range chains {
		if mins[i] < before[i].SafeL2.Number {
			t.Errorf("chain %s: cross-safe went down to %d after the restart, it was %d at the kill", c.c.ID, mins[i], before[i].SafeL2.Number)
		}
		c.checkKept(after[i], was[i], 0)
		t.Logf("chain %s after the restart: cross-safe = local-safe = %d (lowest cross-safe seen %d)", c.c.ID, after[i].SafeL2.Number, mins[i])
	}
	for _, x := range []struct {
		i int
		c *interopChain
		n uint64
		h common.Hash
	}{{0, a, initR.BlockNumber.Uint64(), initR.BlockHash}, {1, b, execR.BlockNumber.Uint64(), execR.BlockHash}} {
		if x.n > after[x.i].SafeL2.Number {
			t.Errorf("chain %s: message block %d is not cross-safe (cross-safe %d)", x.c.c.ID, x.n, after[x.i].SafeL2.Number)
		}
		if got := x.c.blockHash(x.n); got != x.h {
			t.Errorf("chain %s: message block %d was replaced: %s, was %s", x.c.c.ID, x.n, got, x.h)
		}
	}
	// And it keeps advancing under the restarted supervisor.
	for i, c := range chains {
		n := after[i].SafeL2.Number + 2
		c.waitStatus(slack(60*time.Second), "cross-safe advancing after the restart", func(st *eth.SyncStatus) bool { return st.SafeL2.Number >= n })
	}
	// The database opened cleanly after the kill: nothing in the restarted supervisor's log
	// speaks of corruption or a failure to open it.
	if bad := sup2.Lines(t, "corrupt", "supervisor database", "decode ", "pebble"); len(bad) > 0 {
		t.Errorf("the restarted supervisor's log:\n%s", strings.Join(bad, "\n"))
	}
	for _, l := range sup2.Lines(t, "level=error") {
		t.Logf("restarted supervisor: %s", l)
	}
}
