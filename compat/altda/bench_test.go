package altda_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	opaltda "github.com/ethereum-optimism/optimism/op-alt-da"
)

// BenchmarkDAServers runs opkit da-server (pebble primary, synced writes) and op-alt-da's
// reference daserver (file store, no fsync) as child processes, side by side in one run,
// and drives both with the stock op-alt-da DAClient: 32 concurrent clients, 120000-byte
// bodies (one full batcher frame), every body distinct. It does so in two commitment
// modes, each against its own pair of freshly started servers:
//
//   - keccak (the headline series, OPKIT_BENCH_ROUNDS rounds, default 7): the client
//     computes the keccak256 commitment and PUTs to /put/<commitment>, as op-batcher does;
//   - generic (OPKIT_BENCH_GENERIC_ROUNDS rounds, default 5): both servers run with
//     --generic-commitment, the client POSTs to /put and reads back the commitment the
//     server made up.
//
// A round writes OPKIT_BENCH_PUTS (default 512) fresh bodies to each server, then reads
// them back; rounds alternate which server goes first, and each starts after a sync(2), so
// that no round pays for writeback the other server left behind. Per mode and server it
// reports:
//   - PUT/s and GET/s of every round, their medians and the opkit/reference ratios;
//   - the server's CPU time (utime+stime from /proc/<pid>/stat) per PUT and per GET, and
//     the client process's CPU per PUT;
//   - bytes written per byte stored: the server's /proc/<pid>/io write_bytes minus
//     cancelled_write_bytes, over the PUT phases and over the whole run (which also
//     catches flushes and compactions that land after a PUT phase), divided by the body
//     bytes PUT. On Linux a buffered write is charged to the process when it first dirties
//     a page-cache page, not at writeback, so the reference's unsynced files are counted
//     in full without a sync(2); what the counter leaves out is the file system's own
//     journal and metadata writes, done by kernel threads;
//   - the data directory's size after the rounds (allocated blocks, and apparent file
//     sizes) per byte stored. Allocated counts blocks reserved ahead of use, such as
//     pebble's preallocated write-ahead log, which weighs heavily in short runs.
//
// Metric names: opkit-put/s, ref-put/s, put-ratio, opkit-get/s, ref-get/s, get-ratio,
// opkit-write/B, ref-write/B (PUT phases), opkit-disk/B, ref-disk/B (allocated),
// opkit-files/B, ref-files/B (apparent), and the same with a generic- prefix for the
// generic series.
//
// make bench-da runs it.
func BenchmarkDAServers(b *testing.B) {
	perRound := envInt("OPKIT_BENCH_PUTS", 512)
	modes := []daMode{
		{name: "keccak", rounds: envInt("OPKIT_BENCH_ROUNDS", 7), precompute: true},
		{name: "generic", metricPrefix: "generic-", rounds: envInt("OPKIT_BENCH_GENERIC_ROUNDS", 5), serverArgs: []string{"--generic-commitment"}},
	}

	dir := b.TempDir()
	bins := daBinaries{opkit: filepath.Join(dir, "opkit"), ref: filepath.Join(dir, "daserver")}
	build(b, filepath.Join("..", ".."), bins.opkit, "./cmd/opkit")
	build(b, ".", bins.ref, "github.com/ethereum-optimism/optimism/op-alt-da/cmd/daserver")

	seed := 0
	for _, m := range modes {
		runMode(b, m, bins, filepath.Join(dir, m.name), perRound, &seed)
	}
}

const (
	benchClients  = 32
	benchBodySize = 120000
)

// daMode is one commitment mode of the benchmark: how the stock client stores a body and
// which flags put both servers in that mode.
type daMode struct {
	name         string // log label and data directory name
	metricPrefix string // prepended to every metric name; empty for the headline series
	rounds       int
	precompute   bool     // client computes keccak commitments and PUTs to /put/<commitment>
	serverArgs   []string // appended to both servers' command lines
}

type daBinaries struct{ opkit, ref string }

// benchTarget is one server under test and what was measured on it in one mode.
type benchTarget struct {
	name, metric string // log name, metric-name stem
	proc         *process
	dataDir      string

	put, get                     []float64
	putCPU, getCPU, clientPutCPU time.Duration
	puts, gets                   int
	stored                       int64 // body bytes PUT
	putWritten                   int64 // bytes charged to the server during PUT phases
	ioStart                      int64 // the server's counter when the rounds began
}

// runMode starts a fresh pair of servers in mode m, runs its rounds, reports, and stops
// the servers so that their background work cannot disturb the next mode.
func runMode(b *testing.B, m daMode, bins daBinaries, dir string, perRound int, seed *int) {
	targets := startPair(b, m, bins, dir)
	defer func() {
		for _, t := range targets {
			t.proc.stop()
		}
	}()
	for _, t := range targets {
		t.ioStart = diskWritten(b, t.proc.pid)
	}
	for r := 0; r < m.rounds; r++ {
		order := []*benchTarget{targets[0], targets[1]}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			t.round(b, m, makeBodies(seed, perRound))
		}
	}
	report(b, m, targets)
}

func startPair(b *testing.B, m daMode, bins daBinaries, dir string) []*benchTarget {
	opDir, refDir := filepath.Join(dir, "opkit-data"), filepath.Join(dir, "ref-files")
	if err := os.MkdirAll(refDir, 0o755); err != nil {
		b.Fatal(err)
	}
	op := launch(b, bins.opkit, regexp.MustCompile(`msg="da-server listening".* url=(http://\S+)`), "",
		append([]string{"da-server", "--port", "0", "--metrics.port", "0", "--datadir", opDir, "--primary", "pebble"}, m.serverArgs...)...)
	port := freePort(b)
	ref := launch(b, bins.ref, nil, "http://127.0.0.1:"+strconv.Itoa(port),
		append([]string{"--addr", "127.0.0.1", "--port", strconv.Itoa(port), "--file.path", refDir}, m.serverArgs...)...)
	return []*benchTarget{
		{name: "opkit", metric: "opkit", proc: op, dataDir: opDir},
		{name: "reference", metric: "ref", proc: ref, dataDir: refDir},
	}
}

// makeBodies returns n distinct frame-sized bodies.
func makeBodies(seed *int, n int) [][]byte {
	bodies := make([][]byte, n)
	for j := range bodies {
		*seed++
		bodies[j] = frame(*seed, benchBodySize)
		copy(bodies[j][1:], fmt.Sprintf("body-%d", *seed))
	}
	return bodies
}

// round PUTs the bodies to t, then GETs them back, recording rates, CPU and disk writes.
func (t *benchTarget) round(b *testing.B, m daMode, bodies [][]byte) {
	pid, self := t.proc.pid, os.Getpid()
	// Start every round with no dirty pages left by the round before: otherwise the
	// kernel's writeback of one server's unsynced files runs during the other's round,
	// taking its CPU and stretching its fsyncs (ext4 commits ordered data together).
	syscall.Sync()
	io0, cpu0, self0 := diskWritten(b, pid), processCPU(b, pid), processCPU(b, self)
	putRate, comms := runPuts(b, t.proc.url, m.precompute, bodies)
	io1, cpu1, self1 := diskWritten(b, pid), processCPU(b, pid), processCPU(b, self)
	getRate := runGets(b, t.proc.url, comms, bodies)
	cpu2 := processCPU(b, pid)

	t.put = append(t.put, putRate)
	t.get = append(t.get, getRate)
	t.putCPU += cpu1 - cpu0
	t.getCPU += cpu2 - cpu1
	t.clientPutCPU += self1 - self0
	t.puts += len(bodies)
	t.gets += len(comms)
	t.stored += int64(len(bodies)) * benchBodySize
	t.putWritten += io1 - io0
}

// report logs three lines per mode (go test shows only ten log lines of a benchmark
// run without -v) and reports the metrics.
func report(b *testing.B, m daMode, targets []*benchTarget) {
	metric := func(v float64, name string) { b.ReportMetric(v, m.metricPrefix+name) }
	perOp := func(d time.Duration, n int) time.Duration { return (d / time.Duration(n)).Round(time.Microsecond) }
	for _, t := range targets {
		runWritten := diskWritten(b, t.proc.pid) - t.ioStart
		allocated, apparent := dirSize(b, t.dataDir)
		stored := float64(t.stored)
		b.Logf("[%s] %-9s PUT/s %v GET/s %v; server CPU per PUT %s, per GET %s, client CPU per PUT %s; "+
			"per byte stored: written %.3f in PUTs, %.3f in all, data dir %.3f allocated, %.3f apparent",
			m.name, t.name, rounded(t.put), rounded(t.get), perOp(t.putCPU, t.puts), perOp(t.getCPU, t.gets), perOp(t.clientPutCPU, t.puts),
			float64(t.putWritten)/stored, float64(runWritten)/stored, float64(allocated)/stored, float64(apparent)/stored)
		metric(float64(t.putWritten)/stored, t.metric+"-write/B")
		metric(float64(allocated)/stored, t.metric+"-disk/B")
		metric(float64(apparent)/stored, t.metric+"-files/B")
	}
	op, ref := targets[0], targets[1]
	opPut, refPut := median(op.put), median(ref.put)
	opGet, refGet := median(op.get), median(ref.get)
	b.Logf("[%s] %d rounds, %d MB stored per server; median PUT/s opkit %.0f, reference %.0f, ratio %.2f; median GET/s opkit %.0f, reference %.0f, ratio %.2f",
		m.name, m.rounds, op.stored/1e6, opPut, refPut, opPut/refPut, opGet, refGet, opGet/refGet)
	metric(opPut, "opkit-put/s")
	metric(refPut, "ref-put/s")
	metric(opPut/refPut, "put-ratio")
	metric(opGet, "opkit-get/s")
	metric(refGet, "ref-get/s")
	metric(opGet/refGet, "get-ratio")
}

func runPuts(b *testing.B, url string, precompute bool, bodies [][]byte) (float64, []opaltda.CommitmentData) {
	c := opaltda.NewDAClient(url, false, precompute)
	comms := make([]opaltda.CommitmentData, len(bodies))
	rate, err := runConcurrently(len(bodies), benchClients, func(i int) error {
		comm, err := c.SetInput(context.Background(), bodies[i])
		comms[i] = comm
		return err
	})
	if err != nil {
		b.Fatalf("PUT to %s: %v", url, err)
	}
	return rate, comms
}

// runGets reads every commitment back and checks it returns the body stored under it.
func runGets(b *testing.B, url string, comms []opaltda.CommitmentData, bodies [][]byte) float64 {
	c := opaltda.NewDAClient(url, false, false)
	rate, err := runConcurrently(len(comms), benchClients, func(i int) error {
		data, err := c.GetInput(context.Background(), comms[i])
		if err == nil && !bytes.Equal(data, bodies[i]) {
			err = fmt.Errorf("GET %x: got %d bytes, not the %d-byte body stored", comms[i].Encode(), len(data), len(bodies[i]))
		}
		return err
	})
	if err != nil {
		b.Fatalf("GET from %s: %v", url, err)
	}
	return rate
}

// runConcurrently calls op(0..n-1) from the given number of clients, each taking the next
// index until none is left, and returns the rate in calls per second; the first error stops
// the client that met it and is returned.
func runConcurrently(n, clients int, op func(i int) error) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err, failed := <-errs; failed {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

func build(b testing.TB, dir, out, pkg string) {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
}

// process is a server running as a child process.
type process struct {
	url  string
	pid  int
	stop func() // interrupts the process and waits for it; idempotent
}

// startProcess runs bin until the test ends and returns its URL and process id. With a
// pattern, the URL is read from its stderr; otherwise url is polled until it answers.
func startProcess(tb testing.TB, bin string, pattern *regexp.Regexp, url string, args ...string) (string, int) {
	p := launch(tb, bin, pattern, url, args...)
	return p.url, p.pid
}

// launch is startProcess that can also be stopped before the test ends.
func launch(b testing.TB, bin string, pattern *regexp.Regexp, url string, args ...string) *process {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &process{pid: cmd.Process.Pid, stop: sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})}
	b.Cleanup(p.stop)
	found := make(chan string, 1)
	go func() {
		// Drained to the end so that a chatty server never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if pattern != nil {
				if m := pattern.FindStringSubmatch(sc.Text()); m != nil {
					select {
					case found <- m[1]:
					default:
					}
				}
			}
		}
	}()
	deadline := time.After(60 * time.Second)
	if pattern != nil {
		select {
		case p.url = <-found:
			return p
		case <-deadline:
			b.Fatalf("%s did not report its address", bin)
		}
	}
	for {
		resp, err := http.Get(url + "/get/0x00")
		if err == nil {
			resp.Body.Close()
			p.url = url
			return p
		}
		select {
		case <-deadline:
			b.Fatalf("%s not answering at %s", bin, url)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// processCPU is the user+system CPU time a process has used, from /proc.
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are the 14th and 15th.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// diskWritten is how many bytes a process (all its threads) has caused to be written to
// storage so far: write_bytes minus cancelled_write_bytes from /proc/<pid>/io. Linux
// charges a buffered write when it first dirties a page-cache page, so unsynced data
// counts at once; a page dirtied again after writeback counts again, a page rewritten
// while still dirty counts once, and dirty pages dropped by truncation or deletion before
// writeback are cancelled.
func diskWritten(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := map[string]int64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/io: %q: %v", pid, line, err)
			}
			fields[k] = n
		}
	}
	written, ok := fields["write_bytes"]
	if !ok {
		b.Fatalf("/proc/%d/io has no write_bytes (kernel without task I/O accounting?)", pid)
	}
	return written - fields["cancelled_write_bytes"]
}

// dirSize sums the regular files under dir: the blocks allocated to them and their
// apparent sizes, as du and du --apparent-size count them.
func dirSize(b *testing.B, dir string) (allocated, apparent int64) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		apparent += info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512 // st_blocks is in 512-byte units whatever the block size
		}
		return nil
	})
	if err != nil {
		b.Fatalf("size of %s: %v", dir, err)
	}
	return allocated, apparent
}

func freePort(b testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rounded(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}
