package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/opkit/opkit/compat/peers"
)

const (
	opkitBatcher = "opkit batcher"
	opBatcher    = "op-batcher"
)

// batcherFlags are the settings both batchers run with (op-batcher's spelling; opkit
// batcher's flags have the same names): blobs, six blobs per transaction (one channel of
// six frames), a channel closed when full or 100 L1 blocks past the last submitted
// channel's origin, one confirmation, 100ms polling. The peers harness adds the same
// poll, confirmation, resubmission and safety-margin settings for op-batcher.
//
// The chain runs some 16 times faster than real time while each blob costs its sender
// about a second of KZG cell proofs and the dev L1 as much to check them, so one blob a
// transaction falls behind; and once a batcher is more than the channel duration behind,
// every channel it opens is already past its deadline and closes with a block or two in
// it (both batchers count the duration from the last submitted channel's origin).
var batcherFlags = []string{"--data-availability-type=blobs", "--max-channel-duration=100", "--target-num-frames=6"}

// batcherRun is what one batcher did with one chain.
type batcherRun struct {
	kind     string
	blocks   uint64
	l2Bytes  int
	scan     *l1Scanner
	cpu      time.Duration
	build    time.Duration // building the chain, while the batcher followed it
	drain    time.Duration // from the last L2 block until all of them were on L1
	latChain []float64     // per L2 block: L1 inclusion time minus block time, chain seconds
	latWall  []float64     // per L2 block: wall seconds from the block's seal to its L1 inclusion
}

func (r *batcherRun) l1PerL2() float64 { return float64(r.scan.dataBytes) / float64(r.l2Bytes) }
func (r *batcherRun) blobSpacePerL2() float64 {
	return float64(r.scan.blobs*131072) / float64(r.l2Bytes)
}
func (r *batcherRun) cpuPerMB() float64 {
	return float64(r.cpu.Milliseconds()) / (float64(r.l2Bytes) / 1e6)
}

func (r *batcherRun) String() string {
	return fmt.Sprintf("%s: %d L2 blocks, %d L2 tx bytes -> %d bytes of batcher data in %d blobs (%d txs): %.3f L1 data B/L2 B, %.3f blob space B/L2 B; "+
		"CPU %s = %.0f ms/MB; latency median %.1f s chain, %.2f s wall; build %s, drain %s",
		r.kind, r.blocks, r.l2Bytes, r.scan.dataBytes, r.scan.blobs, r.scan.blobTxs, r.l1PerL2(), r.blobSpacePerL2(),
		r.cpu.Round(time.Millisecond), r.cpuPerMB(), median(r.latChain), median(r.latWall), r.build.Round(time.Second), r.drain.Round(time.Second))
}

// postChain builds a fresh chain of n blocks while the given batcher, in its own
// process, posts it to the chain's fresh dev L1, then seals L1 blocks until every block
// is in a complete channel on L1. The chain is returned running; the caller closes it.
func postChain(ctx context.Context, b *testing.B, kind, opkitBin string, n uint64) (*chain, *batcherRun) {
	ch, err := startChain(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = ch.close()
		}
	}()
	var pid int
	var stop func() error
	var exited func() error
	switch kind {
	case opkitBatcher:
		key := hexutil.Encode(crypto.FromECDSA(ch.d.L1.Accounts()[1].Key))[2:]
		args := append([]string{"--log.level=warn", "batcher",
			"--l1=" + ch.d.L1.HTTPEndpoint(), "--l2=" + ch.d.L2.HTTPEndpoint(), "--rollup-rpc=" + ch.d.Node.RPCEndpoint(),
			"--private-key=" + key, "--sub-safety-margin=4", "--num-confirmations=1", "--resubmission-timeout=10s",
			"--network-timeout=5s", "--txmgr.receipt-query-interval=100ms", "--poll-interval=100ms",
			"--throttle.unsafe-da-bytes-lower-threshold=0", "--rpc.port=0", "--metrics.port=0"}, batcherFlags...)
		c, err := startChild(kind, opkitBin, args, nil)
		if err != nil {
			b.Fatal(err)
		}
		pid, stop, exited = c.pid(), c.stop, c.exited
	case opBatcher:
		bt, err := peers.StartBatcher(ctx, peers.BatcherConfig{
			L1: ch.d.L1, L2RPC: ch.d.L2.HTTPEndpoint(), RollupRPC: ch.d.Node.RPCEndpoint(),
			DataAvailability: "blobs", ExtraFlags: batcherFlags, Logger: warnLogger(),
		})
		if err != nil {
			b.Fatal(err)
		}
		pid, stop, exited = childNamed(b, "op-batcher"), bt.Close, bt.Err
	}
	defer func() {
		if !ok {
			_ = stop()
		}
	}()
	run := &batcherRun{kind: kind, blocks: n}
	start := time.Now()
	if err := ch.build(ctx, b, int(n), benchTxs()); err != nil {
		b.Fatal(err)
	}
	run.build = time.Since(start)
	sc, err := newScanner(ctx, ch.d.L1, ch.d.Rollup)
	if err != nil {
		b.Fatal(err)
	}
	run.scan = sc
	start = time.Now()
	if err := ch.drain(ctx, 10*time.Minute, func() (bool, error) {
		if err := exited(); err != nil {
			return false, err
		}
		if err := sc.scan(ctx); err != nil {
			return false, err
		}
		return sc.covered(n), nil
	}); err != nil {
		b.Fatalf("%s: %v (%d of %d L2 blocks on L1 in %d blobs, L1 head %d)", kind, err, len(sc.included), n, sc.blobs, ch.d.L1.Head().Number)
	}
	run.drain = time.Since(start)
	run.cpu = processCPU(b, pid)
	sc.close()
	if err := stop(); err != nil {
		b.Errorf("stop %s: %v", kind, err)
	}
	if run.l2Bytes, err = ch.l2Bytes(n); err != nil {
		b.Fatal(err)
	}
	ch.mu.Lock()
	for i := uint64(1); i <= n; i++ {
		incl := sc.included[i]
		blockTime := ch.d.Rollup.Genesis.L2Time + i*ch.d.Rollup.BlockTime
		run.latChain = append(run.latChain, float64(int64(sc.l1Time[incl])-int64(blockTime)))
		run.latWall = append(run.latWall, ch.l1Sealed[incl].Sub(ch.l2Sealed[i]).Seconds())
	}
	ch.mu.Unlock()
	ok = true
	return ch, run
}

// BenchmarkBatcher runs opkit batcher (the opkit binary) and op-batcher v1.16.13 (built
// from the module), each in its own process, over the same L2 chain: every run builds
// a fresh devnet with a fresh dev L1 and the same seeded load (OPKIT_BENCH_BLOCKS blocks,
// default 2000, of OPKIT_BENCH_TXS transactions, default 50), so the blocks carry the
// same transactions in every run, and the batcher posts the chain in blobs while it is
// built. Runs alternate which batcher goes first, OPKIT_BENCH_ROUNDS rounds (default 2).
// Per batcher, medians over its runs:
//   - L1 bytes per L2 byte: batcher data posted (decoded blob content, version byte
//     and frames) over the binary size of the blocks' non-deposit transactions; also
//     the blob space used (131072 bytes a blob) over the same;
//   - the batcher process's CPU time (utime+stime from /proc) per MB of L2 data, over
//     its whole life;
//   - median latency from an L2 block to the L1 block that completed the channel
//     carrying it, in chain seconds (L1 timestamp minus L2 timestamp) and in wall time.
//
// make bench-batcher runs it.
func BenchmarkBatcher(b *testing.B) {
	ctx := context.Background()
	bin := buildOpkit(b, b.TempDir())
	if err := peers.Build(ctx); err != nil {
		b.Fatal(err)
	}
	n := uint64(benchBlocks())
	rounds := envInt("OPKIT_BENCH_ROUNDS", 2)
	runs := map[string][]*batcherRun{}
	for r := 0; r < rounds; r++ {
		order := []string{opkitBatcher, opBatcher}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, kind := range order {
			ch, run := postChain(ctx, b, kind, bin, n)
			if err := ch.close(); err != nil {
				b.Errorf("close devnet: %v", err)
			}
			b.Logf("round %d: %s", r+1, run)
			runs[kind] = append(runs[kind], run)
		}
	}
	med := func(kind string, f func(*batcherRun) float64) float64 {
		var v []float64
		for _, r := range runs[kind] {
			v = append(v, f(r))
		}
		return median(v)
	}
	l1o, l1r := med(opkitBatcher, (*batcherRun).l1PerL2), med(opBatcher, (*batcherRun).l1PerL2)
	blo, blr := med(opkitBatcher, (*batcherRun).blobSpacePerL2), med(opBatcher, (*batcherRun).blobSpacePerL2)
	cpo, cpr := med(opkitBatcher, (*batcherRun).cpuPerMB), med(opBatcher, (*batcherRun).cpuPerMB)
	lco, lcr := med(opkitBatcher, func(r *batcherRun) float64 { return median(r.latChain) }), med(opBatcher, func(r *batcherRun) float64 { return median(r.latChain) })
	lwo, lwr := med(opkitBatcher, func(r *batcherRun) float64 { return median(r.latWall) }), med(opBatcher, func(r *batcherRun) float64 { return median(r.latWall) })
	b.Logf("medians over %d rounds: L1 data per L2 byte opkit %.4f, op-batcher %.4f (ratio %.3f); blob space per L2 byte %.3f / %.3f; "+
		"CPU per MB of L2 data %.0f ms / %.0f ms (ratio %.3f); latency %.1f s / %.1f s chain, %.2f s / %.2f s wall",
		rounds, l1o, l1r, l1o/l1r, blo, blr, cpo, cpr, cpo/cpr, lco, lcr, lwo, lwr)
	b.ReportMetric(l1o, "opkit-L1B/L2B")
	b.ReportMetric(l1r, "op-L1B/L2B")
	b.ReportMetric(l1o/l1r, "L1B-ratio")
	b.ReportMetric(cpo, "opkit-cpu-ms/MB")
	b.ReportMetric(cpr, "op-cpu-ms/MB")
	b.ReportMetric(cpo/cpr, "cpu-ratio")
	b.ReportMetric(lco, "opkit-latency-s")
	b.ReportMetric(lcr, "op-latency-s")
}
