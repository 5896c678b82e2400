package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opkit/opkit/altda"
)

var opkitBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if opkitBuild.dir != "" {
		_ = os.RemoveAll(opkitBuild.dir)
	}
	os.Exit(code)
}

// buildOpkit compiles the opkit binary once per test run.
func buildOpkit(t *testing.T) string {
	t.Helper()
	opkitBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "opkit-bin-")
		if err != nil {
			opkitBuild.err = err
			return
		}
		opkitBuild.dir = dir
		bin := filepath.Join(dir, "opkit")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/opkit/opkit/cmd/opkit").CombinedOutput()
		if err != nil {
			opkitBuild.err = fmt.Errorf("go build opkit: %w\n%s", err, out)
			return
		}
		opkitBuild.bin = bin
	})
	if opkitBuild.err != nil {
		t.Fatal(opkitBuild.err)
	}
	return opkitBuild.bin
}

var listenLine = regexp.MustCompile(`msg="da-server listening".* url=(http://\S+) metrics=(http://\S+)`)

// startDAServer runs `opkit da-server` and returns its URL once it listens.
func startDAServer(t *testing.T, bin string, args ...string) (cmd *exec.Cmd, url, metricsURL string) {
	t.Helper()
	cmd = exec.Command(bin, append([]string{"da-server", "--port", "0", "--metrics.port", "0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan []string, 1)
	var logMu sync.Mutex
	var logs bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			logMu.Lock()
			if logs.Len() < 16<<10 {
				logs.WriteString(sc.Text() + "\n")
			}
			logMu.Unlock()
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				urls <- m[1:]
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			_ = cmd.Wait()
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("da-server exited before listening: %v\n%s", cmd.ProcessState, logs.String())
		}
		return cmd, u[0], u[1]
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("da-server did not report its address")
	}
	return nil, "", ""
}

// TestCrashSafety kills the server with SIGKILL in the middle of a PUT load and checks
// that every write it had answered 200 or 201 is readable, with the right bytes, after a
// restart on the same datadir.
func TestCrashSafety(t *testing.T) {
	bin := buildOpkit(t)
	datadir := t.TempDir()
	cmd, url, _ := startDAServer(t, bin, "--datadir", datadir, "--primary", "pebble", "--secondary", "pebble", "--faults.admin")

	client, err := altda.NewClient(altda.ClientConfig{URL: url, Mode: altda.GenericMode, PutTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	type acked struct {
		comm altda.Commitment
		data []byte
	}
	var (
		mu      sync.Mutex
		acks    []acked
		partial atomic.Int64
		seq     atomic.Int64
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := seq.Add(1)
				data := frame(byte(n), 20000+int(n%1000))
				copy(data, fmt.Sprintf("frame-%d", n)) // distinct bodies
				comm, err := client.Put(ctx, data)
				if errors.Is(err, altda.ErrPartial) {
					partial.Add(1)
					err = nil
				}
				if err != nil {
					continue // the kill: the answer never came, so nothing was promised
				}
				mu.Lock()
				acks = append(acks, acked{comm, data})
				mu.Unlock()
			}
		}()
	}
	// Half-way, the secondary starts failing so that some writes are answered 201.
	waitFor(t, "some acknowledged writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(acks) >= 100 })
	req, _ := http.NewRequest(http.MethodPut, url+"/admin/faults", bytes.NewReader([]byte(`{"secondary":{"put":"error"}}`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitFor(t, "some partial writes", func() bool { return partial.Load() >= 20 })

	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	cancel()
	wg.Wait()

	cmd2, url2, _ := startDAServer(t, bin, "--datadir", datadir, "--primary", "pebble", "--secondary", "pebble")
	defer func() {
		_ = cmd2.Process.Signal(os.Interrupt)
		if err := cmd2.Wait(); err != nil {
			t.Errorf("da-server did not stop cleanly on SIGINT: %v", err)
		}
	}()
	reader, _ := altda.NewClient(altda.ClientConfig{URL: url2, GetTimeout: 10 * time.Second, VerifyGets: true})
	for _, a := range acks {
		got, err := reader.Get(context.Background(), a.comm)
		if err != nil || !bytes.Equal(got, a.data) {
			t.Fatalf("acknowledged %s lost after SIGKILL: %d bytes, %v", a.comm, len(got), err)
		}
	}
	t.Logf("%d acknowledged writes (%d partial) all readable after SIGKILL", len(acks), partial.Load())
}

// TestDAServerCommand runs the subcommand as an operator would: bad flags stop start-up
// with a line naming the flag, /health and /metrics answer on the metrics port, and
// SIGTERM stops it cleanly with acknowledged data still there after a restart.
func TestDAServerCommand(t *testing.T) {
	bin := buildOpkit(t)
	for _, bad := range [][]string{
		{"--primary", "tape"},
		{"--secondary", "pebble,pebble"},
		{"--primary", "s3"},
		{"--da-layer-byte", "256"},
		{"--max-input-bytes", "0"},
		{"--retention", "-1s"},
		{"--secondary-timeout", "0s"},
	} {
		out, err := exec.Command(bin, append([]string{"da-server", "--datadir", t.TempDir()}, bad...)...).CombinedOutput()
		if err == nil {
			t.Fatalf("da-server %v started", bad)
		}
		if !bytes.Contains(out, []byte(bad[0])) && !(bad[1] == "s3" && bytes.Contains(out, []byte("--s3."))) {
			t.Fatalf("da-server %v: error does not name the flag: %s", bad, out)
		}
	}

	datadir := t.TempDir()
	cmd, url, _ := startDAServer(t, bin, "--datadir", datadir, "--generic-commitment", "--da-layer-byte", "12")
	c, _ := altda.NewClient(altda.ClientConfig{URL: url, Mode: altda.GenericMode})
	data := frame(99, 120000)
	comm, err := c.Put(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if comm[1] != 12 {
		t.Fatalf("--da-layer-byte ignored: %s", comm)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	cmd, url, metricsURL := startDAServer(t, bin, "--datadir", datadir)
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	c, _ = altda.NewClient(altda.ClientConfig{URL: url})
	if got, err := c.Get(context.Background(), comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after restart: %v", err)
	}
	// /health and /metrics on the metrics port.
	base := strings.TrimSuffix(metricsURL, "/metrics")
	for _, path := range []string{"/health", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
}

// `--retention` reaches both Pebble stores: a preimage older than the window is gone from
// GET (404), while the server keeps taking new ones.
func TestDAServerRetentionFlag(t *testing.T) {
	bin := buildOpkit(t)
	cmd, url, _ := startDAServer(t, bin, "--datadir", t.TempDir(), "--secondary", "pebble", "--retention", "300ms")
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	c, _ := altda.NewClient(altda.ClientConfig{URL: url, PutTimeout: 10 * time.Second, GetTimeout: 10 * time.Second})
	ctx := context.Background()
	data := frame(98, 50000)
	comm, err := c.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, comm); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET within the window: %v", err)
	}
	waitFor(t, "the preimage to leave the 300ms window", func() bool {
		_, err := c.Get(ctx, comm)
		return errors.Is(err, altda.ErrNotFound)
	})
	fresh := frame(97, 50000)
	if _, err := c.Put(ctx, fresh); err != nil {
		t.Fatalf("PUT after retention dropped the store's contents: %v", err)
	}
}
