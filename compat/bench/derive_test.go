package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
)

const (
	opkitVerifier = "opkit"
	opNode        = "op-node"
)

// catchUp is one verifier's catch-up over the prepared L1.
type catchUp struct {
	kind    string
	elapsed time.Duration // from the node's RPC first answering to safe head n
	total   time.Duration // from process start to safe head n
	cpu     time.Duration // the node process's CPU, over its whole life
	cpuUp   time.Duration // the node process's CPU when its RPC first answered
	host    time.Duration // this process's CPU meanwhile: op-geth, and the polling
}

// BenchmarkDerive prepares one dev L1 holding OPKIT_BENCH_BLOCKS L2 blocks (default
// 2000) of OPKIT_BENCH_TXS transactions each (default 50), built by a sequencing opkit
// devnet and posted in blobs by opkit batcher while they were built; then it stops the
// sequencer side and catches up an opkit verifier and an op-node v1.16.13 verifier over
// that L1, one after the other, alternating which goes first, OPKIT_BENCH_ROUNDS rounds
// each (default 2). Each verifier runs in its own process (opkit's: this test binary
// started again as the node; op-node's: built from the module) on a fresh in-process
// op-geth from the L2 genesis, and every round must end with the sequencer's block hash
// at the last height. Per verifier, medians: wall-clock blocks/s from its RPC's first
// answer to the safe head reaching the last block, and the node process's CPU time
// (utime+stime from /proc, over its whole life) per derived block; op-geth's CPU, in this
// process, is reported apart.
//
// make bench-derive runs it.
func BenchmarkDerive(b *testing.B) {
	ctx := context.Background()
	bin := buildOpkit(b, b.TempDir())
	if err := peers.Build(ctx); err != nil {
		b.Fatal(err)
	}
	n := uint64(benchBlocks())
	ch, prep := postChain(ctx, b, opkitBatcher, bin, n)
	defer func() {
		if err := ch.close(); err != nil {
			b.Errorf("close devnet: %v", err)
		}
	}()
	b.Logf("prepared: %s", prep)
	want := ch.d.L2.Backend().BlockChain().GetHeaderByNumber(n).Hash()
	if err := ch.stopL2(); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	rollupPath := filepath.Join(dir, "rollup.json")
	if err := rollup.WriteConfig(rollupPath, ch.d.Rollup); err != nil {
		b.Fatal(err)
	}
	l1Path := filepath.Join(dir, "l1-chain-config.json")
	data, err := json.Marshal(ch.d.L1.ChainConfig())
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(l1Path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	rounds := envInt("OPKIT_BENCH_ROUNDS", 2)
	results := map[string][]catchUp{}
	for r := 0; r < rounds; r++ {
		order := []string{opkitVerifier, opNode}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, kind := range order {
			var c catchUp
			if kind == opkitVerifier {
				c = catchUpOpkit(ctx, b, ch, n, want, rollupPath, l1Path)
			} else {
				c = catchUpOpNode(ctx, b, ch, n, want, filepath.Join(dir, fmt.Sprintf("op-node-%d", r)))
			}
			b.Logf("round %d: %s derived %d blocks in %s (%.1f blocks/s; %s from process start), node CPU %s = %.2f ms/block (%.2f ms/block after start-up), op-geth and harness CPU %.2f ms/block",
				r+1, kind, n, c.elapsed.Round(time.Millisecond), float64(n)/c.elapsed.Seconds(), c.total.Round(time.Millisecond),
				c.cpu.Round(time.Millisecond), perBlock(c.cpu, n), perBlock(c.cpu-c.cpuUp, n), perBlock(c.host, n))
			results[kind] = append(results[kind], c)
		}
	}
	med := func(kind string, f func(catchUp) float64) float64 {
		var v []float64
		for _, c := range results[kind] {
			v = append(v, f(c))
		}
		return median(v)
	}
	rate := func(c catchUp) float64 { return float64(n) / c.elapsed.Seconds() }
	cpu := func(c catchUp) float64 { return perBlock(c.cpu, n) }
	host := func(c catchUp) float64 { return perBlock(c.host, n) }
	steady := func(c catchUp) float64 { return perBlock(c.cpu-c.cpuUp, n) }
	ro, rr := med(opkitVerifier, rate), med(opNode, rate)
	co, cr := med(opkitVerifier, cpu), med(opNode, cpu)
	so, sr := med(opkitVerifier, steady), med(opNode, steady)
	b.Logf("medians over %d rounds: opkit %.1f blocks/s, op-node %.1f blocks/s (ratio %.2f); node CPU per block opkit %.2f ms, op-node %.2f ms (ratio %.2f), "+
		"after start-up %.2f / %.2f ms (ratio %.2f); op-geth and harness %.2f / %.2f ms per block",
		rounds, ro, rr, ro/rr, co, cr, co/cr, so, sr, so/sr, med(opkitVerifier, host), med(opNode, host))
	b.ReportMetric(ro, "opkit-blocks/s")
	b.ReportMetric(rr, "opnode-blocks/s")
	b.ReportMetric(ro/rr, "rate-ratio")
	b.ReportMetric(co, "opkit-cpu-ms/block")
	b.ReportMetric(cr, "opnode-cpu-ms/block")
	b.ReportMetric(co/cr, "cpu-ratio")
}

func perBlock(d time.Duration, n uint64) float64 {
	return float64(d.Microseconds()) / 1000 / float64(n)
}

// waitSafe polls a verifier until its safe head reaches n, failing early when the
// process is gone. It returns when the RPC first answered and the process's CPU then.
func waitSafe(ctx context.Context, b *testing.B, rc *peers.RollupClient, n uint64, pid int, exited func() error) (time.Time, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var up time.Time
	var upCPU time.Duration
	var last uint64
	for {
		if err := exited(); err != nil {
			b.Fatal(err)
		}
		st, err := rc.SyncStatus(ctx)
		if err == nil {
			if up.IsZero() {
				up, upCPU = time.Now(), processCPU(b, pid)
			}
			last = st.SafeL2.Number
			if last >= n {
				return up, upCPU
			}
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%s: safe head %d after 30 minutes, want %d (last error %v)", rc.URL, last, n, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkHash fails unless the verifier's block n is the sequencer's.
func checkHash(ctx context.Context, b *testing.B, rc *peers.RollupClient, n uint64, want common.Hash) {
	out, err := rc.OutputAtBlock(ctx, n)
	if err != nil {
		b.Fatal(err)
	}
	if out.BlockRef.Hash != want {
		b.Fatalf("%s: block %d is %s, the sequencer's is %s", rc.URL, n, out.BlockRef.Hash, want)
	}
}

func catchUpOpkit(ctx context.Context, b *testing.B, ch *chain, n uint64, want common.Hash, rollupPath, l1Path string) catchUp {
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: ch.d.L2Genesis, Logger: warnLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l2.Close()
	port := freePort(b)
	cfg := verifierConfig{
		L1URL: ch.d.L1.HTTPEndpoint(), BeaconURL: ch.d.L1.BeaconURL(), EngineURL: l2.EngineEndpoint(), JWTSecret: l2.JWTSecret(),
		RollupPath: rollupPath, L1ConfigPath: l1Path, RPCPort: port,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cfgPath := filepath.Join(b.TempDir(), "verifier.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		b.Fatal(err)
	}
	self := os.Getpid()
	host0 := processCPU(b, self)
	start := time.Now()
	env := []string{childEnv + "=verifier", childConfigEnv + "=" + cfgPath}
	if p := os.Getenv("OPKIT_BENCH_CPUPROFILE"); p != "" {
		env = append(env, childProfileEnv+"="+fmt.Sprintf("%s.%d", p, time.Now().Unix()))
	}
	c, err := startChild("opkit verifier", os.Args[0], []string{"-test.run=^$"}, env)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := c.stop(); err != nil {
			b.Errorf("stop opkit verifier: %v", err)
		}
	}()
	rc, err := peers.DialRollup(ctx, fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	up, upCPU := waitSafe(ctx, b, rc, n, c.pid(), c.exited)
	res := catchUp{kind: opkitVerifier, elapsed: time.Since(up), total: time.Since(start), cpu: processCPU(b, c.pid()), cpuUp: upCPU,
		host: processCPU(b, self) - host0}
	checkHash(ctx, b, rc, n, want)
	return res
}

func catchUpOpNode(ctx context.Context, b *testing.B, ch *chain, n uint64, want common.Hash, dir string) catchUp {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	self := os.Getpid()
	host0 := processCPU(b, self)
	start := time.Now()
	node, err := peers.StartOpNode(ctx, peers.OpNodeConfig{L1: ch.d.L1, Rollup: ch.d.Rollup, L2Genesis: ch.d.L2Genesis, Dir: dir, Logger: warnLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := node.Close(); err != nil {
			b.Errorf("stop op-node: %v", err)
		}
	}()
	pid := childNamed(b, "op-node")
	rc, err := peers.DialRollup(ctx, node.RPCEndpoint())
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	up, upCPU := waitSafe(ctx, b, rc, n, pid, node.Err)
	res := catchUp{kind: opNode, elapsed: time.Since(up), total: time.Since(start), cpu: processCPU(b, pid), cpuUp: upCPU,
		host: processCPU(b, self) - host0}
	checkHash(ctx, b, rc, n, want)
	return res
}
