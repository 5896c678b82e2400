package altda_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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
	"testing"
	"time"

	opaltda "github.com/ethereum-optimism/optimism/op-alt-da"
)

// BenchmarkDAServers runs opkit da-server (pebble, synced writes) and op-alt-da's
// reference da-server (file store) as child processes, side by side in one run, and
// drives both with the stock op-alt-da DAClient: 32 concurrent clients, 120000-byte
// bodies (one full batcher frame), keccak commitments as op-batcher sends them. Rounds
// alternate which server goes first; each round writes fresh bodies, then reads them
// back. It reports the median throughput of each server and the ratios.
//
// make bench-da (OPKIT_BENCH_ROUNDS and OPKIT_BENCH_PUTS tune it).
func BenchmarkDAServers(b *testing.B) {
	rounds := envInt("OPKIT_BENCH_ROUNDS", 7)
	perRound := envInt("OPKIT_BENCH_PUTS", 512)
	const clients, size = 32, 120000

	dir := b.TempDir()
	opkitBin := filepath.Join(dir, "opkit")
	refBin := filepath.Join(dir, "daserver")
	build(b, filepath.Join("..", ".."), opkitBin, "./cmd/opkit")
	build(b, ".", refBin, "github.com/ethereum-optimism/optimism/op-alt-da/cmd/daserver")

	opkitURL, opkitPID := startProcess(b, opkitBin, regexp.MustCompile(`msg="da-server listening".* url=(http://\S+)`), "",
		"da-server", "--port", "0", "--metrics.port", "0", "--datadir", filepath.Join(dir, "opkit-data"), "--primary", "pebble")
	port := freePort(b)
	fileDir := filepath.Join(dir, "ref-files")
	if err := os.MkdirAll(fileDir, 0o755); err != nil {
		b.Fatal(err)
	}
	refURL, refPID := startProcess(b, refBin, nil, "http://127.0.0.1:"+strconv.Itoa(port),
		"--addr", "127.0.0.1", "--port", strconv.Itoa(port), "--file.path", fileDir)

	targets := []struct {
		name, url      string
		pid            int
		put, get       []float64
		putCPU, getCPU time.Duration
		clientPutCPU   time.Duration
		puts, gets     int
	}{{name: "opkit", url: opkitURL, pid: opkitPID}, {name: "reference", url: refURL, pid: refPID}}

	seed := 0
	for r := 0; r < rounds; r++ {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			t := &targets[i]
			bodies := make([][]byte, perRound)
			for j := range bodies {
				seed++
				bodies[j] = frame(seed, size)
				copy(bodies[j][1:], fmt.Sprintf("body-%d", seed)) // every body distinct
			}
			cpu0, self0 := processCPU(b, t.pid), processCPU(b, os.Getpid())
			putRate, comms := runPuts(b, t.url, bodies, clients)
			cpu1, self1 := processCPU(b, t.pid), processCPU(b, os.Getpid())
			t.clientPutCPU += self1 - self0
			getRate := runGets(b, t.url, comms, size, clients)
			cpu2 := processCPU(b, t.pid)
			t.putCPU += cpu1 - cpu0
			t.getCPU += cpu2 - cpu1
			t.puts += len(bodies)
			t.gets += len(comms)
			t.put = append(t.put, putRate)
			t.get = append(t.get, getRate)
		}
	}
	for _, t := range targets {
		b.Logf("%-9s PUT/s %v  GET/s %v  server CPU per PUT %s, per GET %s; client CPU per PUT %s", t.name, rounded(t.put), rounded(t.get),
			t.putCPU/time.Duration(t.puts), t.getCPU/time.Duration(t.gets), t.clientPutCPU/time.Duration(t.puts))
	}
	opPut, refPut := median(targets[0].put), median(targets[1].put)
	opGet, refGet := median(targets[0].get), median(targets[1].get)
	b.Logf("median PUT/s: opkit %.0f, reference %.0f, ratio %.2f", opPut, refPut, opPut/refPut)
	b.Logf("median GET/s: opkit %.0f, reference %.0f, ratio %.2f", opGet, refGet, opGet/refGet)
	b.ReportMetric(opPut, "opkit-put/s")
	b.ReportMetric(refPut, "ref-put/s")
	b.ReportMetric(opPut/refPut, "put-ratio")
	b.ReportMetric(opGet, "opkit-get/s")
	b.ReportMetric(refGet, "ref-get/s")
	b.ReportMetric(opGet/refGet, "get-ratio")
}

func runPuts(b *testing.B, url string, bodies [][]byte, clients int) (float64, []opaltda.CommitmentData) {
	c := opaltda.NewDAClient(url, false, true)
	comms := make([]opaltda.CommitmentData, len(bodies))
	rate, err := runConcurrently(len(bodies), clients, func(i int) error {
		comm, err := c.SetInput(context.Background(), bodies[i])
		comms[i] = comm
		return err
	})
	if err != nil {
		b.Fatalf("PUT to %s: %v", url, err)
	}
	return rate, comms
}

func runGets(b *testing.B, url string, comms []opaltda.CommitmentData, size, clients int) float64 {
	c := opaltda.NewDAClient(url, false, true)
	rate, err := runConcurrently(len(comms), clients, func(i int) error {
		data, err := c.GetInput(context.Background(), comms[i])
		if err == nil && len(data) != size {
			err = fmt.Errorf("got %d bytes, want %d", len(data), size)
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

// startProcess runs bin until the benchmark ends. With a pattern, the URL is read from
// its stderr; otherwise url is polled until it answers.
func startProcess(b testing.TB, bin string, pattern *regexp.Regexp, url string, args ...string) (string, int) {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
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
		case u := <-found:
			return u, cmd.Process.Pid
		case <-deadline:
			b.Fatalf("%s did not report its address", bin)
		}
	}
	for {
		resp, err := http.Get(url + "/get/0x00")
		if err == nil {
			resp.Body.Close()
			return url, cmd.Process.Pid
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
