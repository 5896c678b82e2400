package collector_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
)

// BenchmarkCollector is the collector's one-run benchmark (make bench-collector), on the
// devnet L2 with the OP Stack predeploys: collection rate at 150 transactions a block,
// bytes held for a 30-block window next to the bytes an archive node of the same chain
// holds, sampled after each of ten windows, and debug_dbGet latency at 16 concurrent
// readers next to the archive's own debug_dbGet, alternating.
func BenchmarkCollector(b *testing.B) {
	const (
		window      = 30
		blocks      = 10 * window
		chunk       = window // mined between collection passes: inside the hot client's 128 recent states
		txsPerBlock = 150
		readers     = 16
		perReader   = 500
		rounds      = 3
	)
	for i := 0; i < b.N; i++ {
		ch := startOPChains(b)
		ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
		load := devnet.NewLoad(ch.miner, devnet.LoadConfig{TxsPerBlock: txsPerBlock, Seed: 9})
		c := newCollector(b, ch.hot.HTTPEndpoint(), b.TempDir(), window)
		srv := startServer(b, c)
		// Only collection passes are timed; mining the next chunk happens in between.
		var elapsed time.Duration
		for mined := 0; mined < blocks; mined += chunk {
			if err := load.MineBlocks(ctx, chunk); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := c.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			ch.feed(b)
			st := c.Store().Stats()
			arch := archiveStateBytes(b, ch.archive)
			b.Logf("after %d blocks: store %d bytes (%d preimages), archive %d bytes of state: store/archive %.1f%%",
				mined+chunk, st.Bytes, st.Preimages, arch, 100*float64(st.Bytes)/float64(arch))
		}
		rate := float64(blocks) / elapsed.Seconds()
		b.ReportMetric(rate, "blocks/s")
		b.ReportMetric(rate/0.5, "x_2s_chain")

		if err := c.Store().Compact(); err != nil {
			b.Fatal(err)
		}
		stored := c.Store().Stats()
		archiveBytes := archiveStateBytes(b, ch.archive)
		b.ReportMetric(float64(stored.Bytes), "store_B")
		disk, err := c.Store().DiskSize()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(disk), "store_disk_B")
		b.ReportMetric(float64(archiveBytes), "archive_state_B")
		b.ReportMetric(float64(archiveBytes)/float64(stored.Bytes), "archive/store")

		// Trie node keys held for the window; both sides hold them all.
		var keys []common.Hash
		first, last, _, _ := c.Store().Bounds()
		for n := first; n <= last; n++ {
			blk, err := c.Store().Block(n)
			if err != nil {
				b.Fatal(err)
			}
			keys = append(keys, blk.State...)
			keys = append(keys, blk.Created...)
		}
		slices.SortFunc(keys, func(x, y common.Hash) int { return x.Cmp(y) })
		keys = slices.Compact(keys)
		var colP50, colP99, elP50, elP99 []time.Duration
		for r := 0; r < rounds; r++ {
			p50, p99 := dbGetLatency(b, ctx, srv.HTTPURL(), keys, readers, perReader, uint64(r))
			colP50, colP99 = append(colP50, p50), append(colP99, p99)
			p50, p99 = dbGetLatency(b, ctx, ch.archive.HTTPEndpoint(), keys, readers, perReader, uint64(r))
			elP50, elP99 = append(elP50, p50), append(elP99, p99)
		}
		b.ReportMetric(float64(median(colP50).Microseconds()), "collector_p50_us")
		b.ReportMetric(float64(median(colP99).Microseconds()), "collector_p99_us")
		b.ReportMetric(float64(median(elP50).Microseconds()), "el_p50_us")
		b.ReportMetric(float64(median(elP99).Microseconds()), "el_p99_us")
		b.Logf("collected %d blocks of %d txs in %s: %.1f blocks/s (%.1fx a 2 s chain)", blocks, txsPerBlock, elapsed.Round(time.Millisecond), rate, rate/0.5)
		b.Logf("chain of %d blocks; store for a %d-block window: %d preimages, %d bytes (%d on disk); archive of the whole chain: %d bytes of state (%.2fx)",
			blocks, window, stored.Preimages, stored.Bytes, disk, archiveBytes, float64(archiveBytes)/float64(stored.Bytes))
		b.Logf("debug_dbGet over %d node keys, %d readers x %d requests, median of %d alternating rounds: collector p50 %s p99 %s; execution client p50 %s p99 %s",
			len(keys), readers, perReader, rounds, median(colP50), median(colP99), median(elP50), median(elP99))
		cancel()
		closeCollector(b, c)
	}
}

// archiveStateBytes sums the trie nodes (32-byte hash keys) and code ('c' ‖ hash) an
// archive's database holds.
func archiveStateBytes(b *testing.B, archive interface{ Backend() *eth.Ethereum }) uint64 {
	b.Helper()
	it := archive.Backend().ChainDb().NewIterator(nil, nil)
	defer it.Release()
	var total uint64
	for it.Next() {
		k := it.Key()
		if len(k) == common.HashLength || (len(k) == 1+common.HashLength && k[0] == 'c') {
			total += uint64(len(it.Value()))
		}
	}
	if err := it.Error(); err != nil {
		b.Fatal(err)
	}
	return total
}

func dbGetLatency(b *testing.B, ctx context.Context, url string, keys []common.Hash, readers, perReader int, seed uint64) (p50, p99 time.Duration) {
	b.Helper()
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
		errs = make(chan error, readers)
	)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			client, err := rpc.DialContext(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer client.Close()
			rng := rand.New(rand.NewPCG(seed, uint64(r)))
			local := make([]time.Duration, 0, perReader)
			for i := 0; i < perReader; i++ {
				var out hexutil.Bytes
				start := time.Now()
				if err := client.CallContext(ctx, &out, "debug_dbGet", keys[rng.IntN(len(keys))].Hex()); err != nil {
					errs <- err
					return
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(r)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("debug_dbGet on %s: %v", url, err)
	}
	slices.Sort(lats)
	return lats[len(lats)/2], lats[len(lats)*99/100]
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
