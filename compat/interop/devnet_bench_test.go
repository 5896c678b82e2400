package interop_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/clock"
)

// The devnet benchmark runs the interop devnet (dev L1, two op-geth chains, two opkit
// nodes in managed mode with batchers, opkit's supervisor) with 1 s L2 blocks on a clock
// sped up OPKIT_BENCH_SPEED times (default 10: 10 blocks a second on each chain, 20
// across both). A poller per chain reads the node's optimism_syncStatus every
// devnetPollEvery and records when each block number was first seen unsafe, cross-unsafe,
// local-safe and cross-safe: promotion latency is first cross-unsafe minus first unsafe
// (both as the node reports them, so the poll period bounds the error), cross-safe lag is
// first cross-safe minus first local-safe, in seconds, and local-safe minus cross-safe in
// blocks at each poll.
const (
	devnetPollEvery = 2 * time.Millisecond
	devnetWarmup    = 10 * time.Second
	devnetWindow    = 30 * time.Second
	devnetGrace     = 10 * time.Second
)

// firstSeen records when each block number was first reported at one level.
type firstSeen struct {
	at  map[uint64]time.Time
	top uint64
}

func (f *firstSeen) saw(n uint64, now time.Time) {
	if f.at == nil {
		f.at = map[uint64]time.Time{}
		f.top = n
		f.at[n] = now
		return
	}
	for ; f.top < n; f.top++ {
		f.at[f.top+1] = now
	}
}

type chainTrace struct {
	unsafe, crossUnsafe, localSafe, crossSafe firstSeen
	lagBlocks                                 []float64
	polls                                     int
}

// trace polls one node until stop, recording first-seen times.
func trace(ctx context.Context, tb testing.TB, url string, stop <-chan struct{}, measuring func(time.Time) bool) *chainTrace {
	cl, err := rpc.DialContext(ctx, url)
	if err != nil {
		tb.Error(err)
		return &chainTrace{}
	}
	defer cl.Close()
	tr := &chainTrace{}
	tick := time.NewTicker(devnetPollEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return tr
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var st oketh.SyncStatus
		err := cl.CallContext(cctx, &st, "optimism_syncStatus")
		cancel()
		if err != nil {
			continue // a poll lost under load; the next one records the heads
		}
		now := time.Now()
		tr.polls++
		tr.unsafe.saw(st.UnsafeL2.Number, now)
		tr.crossUnsafe.saw(st.CrossUnsafeL2.Number, now)
		tr.localSafe.saw(st.LocalSafeL2.Number, now)
		tr.crossSafe.saw(st.SafeL2.Number, now)
		if measuring(now) {
			tr.lagBlocks = append(tr.lagBlocks, float64(st.LocalSafeL2.Number)-float64(st.SafeL2.Number))
		}
	}
}

// delays are, for each block first seen at level from inside [start, end), how long
// after that it was first seen at level to; missing counts those never seen there.
func delays(from, to *firstSeen, start, end time.Time) (d []time.Duration, missing int) {
	for n, t := range from.at {
		if t.Before(start) || !t.Before(end) {
			continue
		}
		u, ok := to.at[n]
		if !ok {
			missing++
			continue
		}
		d = append(d, max(u.Sub(t), 0))
	}
	return d, missing
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func pctf(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// selfCPU is this process's user+system CPU time from /proc/self/stat: the whole devnet
// runs in it.
func selfCPU(tb testing.TB) time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		tb.Fatal(err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After the command: state is field 3; utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseUint(fields[14-3], 10, 64)
	st, err2 := strconv.ParseUint(fields[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("parse /proc/self/stat: %v %v", err1, err2)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticksPerSecond
}

// BenchmarkInteropDevnet measures event-to-cross-unsafe promotion latency and the
// cross-safe lag on the real two-chain interop devnet.
func BenchmarkInteropDevnet(b *testing.B) {
	speed := 10.0
	if v := os.Getenv("OPKIT_BENCH_SPEED"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("OPKIT_BENCH_SPEED=%q", v)
		}
		speed = f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		DataDir: b.TempDir(), L1BlockTime: 2 * time.Second, L2BlockTime: 1,
		Clock: clock.Scaled(time.Now(), speed), L1PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			b.Errorf("close devnet: %v", err)
		}
	}()
	start := time.Now().Add(devnetWarmup)
	end := start.Add(devnetWindow)
	measuring := func(t time.Time) bool { return !t.Before(start) && t.Before(end) }
	stop := make(chan struct{})
	traces := make([]*chainTrace, len(d.Chains))
	var wg sync.WaitGroup
	for i, c := range d.Chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			traces[i] = trace(ctx, b, c.Node.RPCEndpoint(), stop, measuring)
		}()
	}
	time.Sleep(time.Until(start))
	cpu0 := selfCPU(b)
	time.Sleep(time.Until(end))
	cpu1 := selfCPU(b)
	time.Sleep(devnetGrace) // blocks sealed late in the window get their promotions
	close(stop)
	wg.Wait()
	if err := d.Err(); err != nil {
		b.Fatal(err)
	}

	var cu, cs []time.Duration
	var lag []float64
	blocks, missingCU, missingCS := 0, 0, 0
	for i, tr := range traces {
		x, m := delays(&tr.unsafe, &tr.crossUnsafe, start, end)
		y, ms := delays(&tr.localSafe, &tr.crossSafe, start, end)
		n := len(x) + m
		b.Logf("chain %s: %d blocks sealed in %s (%.1f/s), %d polls; cross-unsafe p50 %v p99 %v (%d never); cross-safe after local-safe p50 %v p99 %v over %d blocks (%d never); lag p50 %.0f p99 %.0f blocks",
			d.Chains[i].ID, n, devnetWindow, float64(n)/devnetWindow.Seconds(), tr.polls, pct(x, 0.5), pct(x, 0.99), m,
			pct(y, 0.5), pct(y, 0.99), len(y), ms, pctf(tr.lagBlocks, 0.5), pctf(tr.lagBlocks, 0.99))
		cu, cs, lag = append(cu, x...), append(cs, y...), append(lag, tr.lagBlocks...)
		blocks += n
		missingCU += m
		missingCS += ms
	}
	if blocks == 0 || len(cu) == 0 {
		b.Fatal("no block was sealed and promoted in the measurement window")
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rate := float64(blocks) / devnetWindow.Seconds()
	b.Logf("speed %gx: %.1f L2 blocks/s across %d chains; process CPU %v over %s (%.1f ms per L2 block; machine shared)",
		speed, rate, len(d.Chains), cpu1-cpu0, devnetWindow, ms(cpu1-cpu0)/float64(blocks))
	b.ReportMetric(rate, "blocks/s")
	b.ReportMetric(ms(pct(cu, 0.5)), "crossunsafe-p50-ms")
	b.ReportMetric(ms(pct(cu, 0.99)), "crossunsafe-p99-ms")
	b.ReportMetric(float64(missingCU), "crossunsafe-missing")
	b.ReportMetric(ms(pct(cs, 0.5)), "crosssafe-lag-p50-ms")
	b.ReportMetric(ms(pct(cs, 0.99)), "crosssafe-lag-p99-ms")
	b.ReportMetric(float64(missingCS), "crosssafe-missing")
	b.ReportMetric(pctf(lag, 0.5), "crosssafe-lag-p50-blocks")
	b.ReportMetric(pctf(lag, 0.99), "crosssafe-lag-p99-blocks")
	b.ReportMetric(ms(cpu1-cpu0)/float64(blocks), "cpu-ms/block")
}
