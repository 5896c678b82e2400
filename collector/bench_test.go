package collector_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
)

// report prints one line of the benchmark's report on standard output: testing keeps
// only the first ten lines of a benchmark's own log.
func report(format string, args ...any) {
	fmt.Printf("collector bench: "+format+"\n", args...)
}

// benchKnob reads a positive integer knob from the environment, for shortening the
// benchmark while working on it.
func benchKnob(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// processCPU is this process's user + system CPU time, from /proc/self/stat (in
// USER_HZ ticks, 100 a second on every Linux Go supports): robust on a shared machine,
// where wall time is not.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/self/stat: %v %v", err1, err2)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// profilePass writes a CPU profile of one collection pass into the directory
// OPKIT_BENCH_COLLECTOR_PROFILE names, if it does (go tool pprof merges the passes).
func profilePass(b *testing.B, pass int) (stop func()) {
	dir := os.Getenv("OPKIT_BENCH_COLLECTOR_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("collect-%02d.pprof", pass)))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollector is the collector's one-run benchmark (make bench-collector), on the
// devnet L2 with the OP Stack predeploys: collection rate and CPU per block at 150
// transactions a block; bytes held for a 30-block window (logical and allocated on disk)
// next to the bytes an archive node of the same chain holds, sampled after each of ten
// windows; and debug_dbGet and eth_getProof latency at 16 concurrent readers next to the
// archive's own, alternating. OPKIT_BENCH_COLLECTOR_WINDOWS, _TXS and _POPULATE (accounts funded
// first) change it;
// OPKIT_BENCH_COLLECTOR_PROFILE profiles the collection passes.
func BenchmarkCollector(b *testing.B) {
	const (
		window    = 30
		chunk     = window // mined between collection passes: inside the hot client's 128 recent states
		readers   = 16
		perReader = 500
		rounds    = 3
	)
	windows := benchKnob(b, "OPKIT_BENCH_COLLECTOR_WINDOWS", 10)
	txsPerBlock := benchKnob(b, "OPKIT_BENCH_COLLECTOR_TXS", 150)
	populate := benchKnob(b, "OPKIT_BENCH_COLLECTOR_POPULATE", 20000)
	blocks := windows * window
	for i := 0; i < b.N; i++ {
		ch := startOPChains(b)
		ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
		load := devnet.NewLoad(ch.miner, devnet.LoadConfig{TxsPerBlock: txsPerBlock, Seed: 9})
		// A chain starts from genesis with an almost empty state trie, whose paths get
		// longer with every account the load creates; a real chain's trie has long had
		// its depth. Funding accounts first (before collection) gives the trie that
		// depth, so that the store for a window reflects the window, not the trie's
		// growth (the load still adds thousands of accounts).
		if populate > 0 {
			if err := load.Populate(ctx, populate, 500); err != nil {
				b.Fatal(err)
			}
			ch.feed(b)
		}
		c := newCollector(b, ch.hot.HTTPEndpoint(), b.TempDir(), window)
		srv := startServer(b, c)
		// Only collection passes are timed; mining the next chunk happens in between.
		// The CPU counted is the whole process's while collecting: the collector and the
		// execution client answering it (re-executing each block for its witness and its
		// trace), which share the machine in production too.
		var (
			elapsed time.Duration
			cpu     time.Duration
			disks   []uint64
			windowB []uint64 // store bytes less the held message-passer storage
		)
		for mined := 0; mined < blocks; mined += chunk {
			if err := load.MineBlocks(ctx, chunk); err != nil {
				b.Fatal(err)
			}
			stopProfile := profilePass(b, mined/chunk)
			start, cpu0 := time.Now(), processCPU(b)
			if err := c.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			cpu += processCPU(b) - cpu0
			stopProfile()
			ch.feed(b)
			st := c.Store().Stats()
			held, err := c.Store().HeldStats()
			if err != nil {
				b.Fatal(err)
			}
			disk, err := c.Store().DiskSize()
			if err != nil {
				b.Fatal(err)
			}
			disks = append(disks, disk)
			windowB = append(windowB, st.Bytes-held.Bytes)
			arch := archiveStateBytes(b, ch.archive)
			report("after %d blocks: store %d bytes (%d preimages; held message-passer storage %d bytes, %d nodes), %d on disk; archive %d bytes of state: store/archive %.1f%%",
				mined+chunk, st.Bytes, st.Preimages, held.Bytes, held.Preimages, disk, arch, 100*float64(st.Bytes)/float64(arch))
		}
		rate := float64(blocks) / elapsed.Seconds()
		b.ReportMetric(rate, "blocks/s")
		b.ReportMetric(rate/0.5, "x_2s_chain")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(blocks), "cpu_ms/block")

		stored := c.Store().Stats()
		archiveBytes := archiveStateBytes(b, ch.archive)
		b.ReportMetric(float64(stored.Bytes), "store_B")
		b.ReportMetric(float64(disks[len(disks)-1]), "store_disk_B")
		b.ReportMetric(float64(archiveBytes), "archive_state_B")
		b.ReportMetric(float64(archiveBytes)/float64(stored.Bytes), "archive/store")

		// Flatness over the second half of the run: the store less the held set (which
		// is the message passer's storage trie, state that grows with every withdrawal
		// as it does in any node), and the store on disk.
		half := len(windowB) / 2
		spread := func(v []uint64) float64 {
			return float64(slices.Max(v)) / float64(slices.Min(v))
		}
		b.ReportMetric(spread(windowB[half:]), "window_B_max/min")
		b.ReportMetric(spread(disks[half:]), "disk_B_max/min")
		mpTrie := storageTrieBytes(b, ch.archive, collector.MessagePasser)
		held, err := c.Store().HeldStats()
		if err != nil {
			b.Fatal(err)
		}
		report("second half of the run: store less held set %v bytes (max/min %.3f), on disk %v (max/min %.3f); held set %d bytes, the message passer's storage trie at the head %d bytes",
			windowB[half:], spread(windowB[half:]), disks[half:], spread(disks[half:]), held.Bytes, mpTrie)

		first, last, _, _ := c.Store().Bounds()
		// Trie node keys held for the window; both sides hold them all.
		var keys []common.Hash
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
		dbGet := func(rng *rand.Rand) (string, []any) {
			return "debug_dbGet", []any{keys[rng.IntN(len(keys))].Hex()}
		}
		// eth_getProof at random blocks of the window: the message passer with no slots
		// (the output proposer's call), with up to 4 of its slots (a withdrawal prover's),
		// and an account a transaction of that block sent from or to.
		bc := ch.hot.Backend().BlockChain()
		arch := dial(b, ch.archive.HTTPEndpoint())
		slots := storageKeys(b, ctx, arch, collector.MessagePasser, bc.GetBlockByNumber(first))
		if len(slots) == 0 {
			b.Fatal("the message passer holds no slots")
		}
		signer := types.LatestSignerForChainID(ch.hot.ChainConfig().ChainID)
		touched := map[uint64][]common.Address{}
		for n := first; n <= last; n++ {
			for _, tx := range bc.GetBlockByNumber(n).Transactions() {
				if tx.Type() == types.DepositTxType {
					continue
				}
				from, err := types.Sender(signer, tx)
				if err != nil {
					b.Fatal(err)
				}
				touched[n] = append(touched[n], from)
				if tx.To() != nil {
					touched[n] = append(touched[n], *tx.To())
				}
			}
		}
		at := func(rng *rand.Rand) uint64 { return first + rng.Uint64N(last-first+1) }
		proofMP := func(rng *rand.Rand) (string, []any) {
			return "eth_getProof", []any{collector.MessagePasser, []string{}, hexutil.EncodeUint64(at(rng))}
		}
		proofMPSlots := func(rng *rand.Rand) (string, []any) {
			k := 1 + rng.IntN(4)
			s := make([]string, k)
			for j := range s {
				s[j] = slots[rng.IntN(len(slots))]
			}
			return "eth_getProof", []any{collector.MessagePasser, s, hexutil.EncodeUint64(at(rng))}
		}
		proofAccount := func(rng *rand.Rand) (string, []any) {
			n := at(rng)
			for len(touched[n]) == 0 {
				n = at(rng)
			}
			return "eth_getProof", []any{touched[n][rng.IntN(len(touched[n]))], []string{}, hexutil.EncodeUint64(n)}
		}
		type query struct {
			name string
			gen  func(*rand.Rand) (string, []any)
			per  int
		}
		queries := []query{
			{"debug_dbGet", dbGet, perReader},
			{"eth_getProof message passer", proofMP, perReader / 5},
			{"eth_getProof message passer + slots", proofMPSlots, perReader / 5},
			{"eth_getProof touched account", proofAccount, perReader / 5},
		}
		for qi, q := range queries {
			var colP50, colP99, elP50, elP99 []time.Duration
			for r := 0; r < rounds; r++ {
				p50, p99 := latency(b, ctx, srv.HTTPURL(), q.gen, readers, q.per, uint64(r))
				colP50, colP99 = append(colP50, p50), append(colP99, p99)
				p50, p99 = latency(b, ctx, ch.archive.HTTPEndpoint(), q.gen, readers, q.per, uint64(r))
				elP50, elP99 = append(elP50, p50), append(elP99, p99)
			}
			tag := []string{"dbget", "proof_mp", "proof_mp_slots", "proof_account"}[qi]
			b.ReportMetric(float64(median(colP50).Microseconds()), tag+"_collector_p50_us")
			b.ReportMetric(float64(median(colP99).Microseconds()), tag+"_collector_p99_us")
			b.ReportMetric(float64(median(elP50).Microseconds()), tag+"_el_p50_us")
			b.ReportMetric(float64(median(elP99).Microseconds()), tag+"_el_p99_us")
			report("%s, %d readers x %d requests, median of %d alternating rounds: collector p50 %s p99 %s; execution client (hash-scheme archive) p50 %s p99 %s",
				q.name, readers, q.per, rounds, median(colP50), median(colP99), median(elP50), median(elP99))
		}
		report("collected %d blocks of %d txs in %s: %.2f blocks/s (%.1fx a 2 s chain), %.0f ms of process CPU a block",
			blocks, txsPerBlock, elapsed.Round(time.Millisecond), rate, rate/0.5, float64(cpu.Milliseconds())/float64(blocks))
		report("chain of %d blocks; store for a %d-block window: %d preimages, %d bytes; on disk (du) after each window %v; archive of the whole chain: %d bytes of state (%.2fx)",
			blocks, window, stored.Preimages, stored.Bytes, disks, archiveBytes, float64(archiveBytes)/float64(stored.Bytes))
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

// storageTrieBytes sums the nodes of addr's storage trie at the archive's head.
func storageTrieBytes(b *testing.B, archive interface{ Backend() *eth.Ethereum }, addr common.Address) uint64 {
	b.Helper()
	bc := archive.Backend().BlockChain()
	st, err := bc.StateAt(bc.CurrentBlock().Root)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := st.Database().OpenStorageTrie(bc.CurrentBlock().Root, addr, st.GetStorageRoot(addr), nil)
	if err != nil {
		b.Fatal(err)
	}
	it, err := tr.NodeIterator(nil)
	if err != nil {
		b.Fatal(err)
	}
	var total uint64
	for it.Next(true) {
		if it.Hash() != (common.Hash{}) {
			total += uint64(len(it.NodeBlob()))
		}
	}
	if err := it.Error(); err != nil {
		b.Fatal(err)
	}
	return total
}

// latency runs readers concurrent clients, each making perReader calls drawn from gen,
// and returns the p50 and p99 of the call times. Every call must succeed.
func latency(b *testing.B, ctx context.Context, url string, gen func(*rand.Rand) (string, []any), readers, perReader int, seed uint64) (p50, p99 time.Duration) {
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
				method, args := gen(rng)
				var out any
				start := time.Now()
				if err := client.CallContext(ctx, &out, method, args...); err != nil {
					errs <- fmt.Errorf("%s %v: %w", method, args, err)
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
		b.Fatalf("on %s: %v", url, err)
	}
	slices.Sort(lats)
	return lats[len(lats)/2], lats[len(lats)*99/100]
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
