package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
)

func TestNodeFlagErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"block_time": 0}`), 0o644)
	jwt := filepath.Join(dir, "jwt.hex")
	os.WriteFile(jwt, []byte("0x1234"), 0o600)
	base := []string{"opkit", "node", "--l1", "http://127.0.0.1:1", "--l2", "http://127.0.0.1:2"}
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"opkit", "node"}, "--l1"},
		{append(base, "--l2.jwt-secret", jwt), "--rollup.config"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad), "--rollup.config"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--rpc.port", "70000"), "--rpc.port"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--sequencer.stopped"), "--sequencer.stopped"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--status-interval", "0s"), "--status-interval"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--l1.timeout", "0s"), "--l1.timeout"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--health.stall-timeout", "-1s"), "--health.stall-timeout"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--altda.enabled"), "--altda.da-server"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--altda.da-server", "http://127.0.0.1:3"), "--altda.da-server"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--interop.rpc.port", "-1"), "--interop.rpc.port"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--interop.rpc.addr", "127.0.0.1"), "--interop.jwt-secret"},
		{append(base, "--l2.jwt-secret", jwt, "--rollup.config", bad, "--interop.jwt-secret", jwt), "--interop.jwt-secret"},
	}
	for _, c := range cases {
		app := newApp()
		app.Writer = &bytes.Buffer{}
		err := app.Run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%v: error %v does not name %s", c.args[2:], err, c.flag)
		}
	}
}

// TestNodeCommandSequencesAndStopsOnCancel runs `opkit node` against an in-process L1 and
// op-geth L2, waits for it to build blocks, then stops it the way a signal does.
func TestNodeCommandSequencesAndStopsOnCancel(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dir := t.TempDir()
	l1, err := devnet.StartL1(devnet.L1Config{DataDir: filepath.Join(dir, "l1"), BlockTime: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	g, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900, BlockTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	rollupPath := filepath.Join(dir, "rollup.json")
	if err := rollup.WriteConfig(rollupPath, cfg); err != nil {
		t.Fatal(err)
	}
	secret := l2.JWTSecret()
	jwtPath := filepath.Join(dir, "jwt.hex")
	if err := os.WriteFile(jwtPath, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"opkit", "--log.level", "error", "node",
			"--l1", l1.HTTPEndpoint(), "--l2", l2.EngineEndpoint(), "--l2.jwt-secret", jwtPath,
			"--rollup.config", rollupPath, "--l1.chain-config", filepath.Join(dir, "l1", "genesis.json"),
			"--sequencer.enabled", "--sequencer.l1-confs", "0", "--rpc.port", "0", "--metrics.port", "0",
			"--l1.poll-interval", "100ms"})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for l2.Backend().BlockChain().CurrentBlock().Number.Uint64() < 3 {
		select {
		case err := <-done:
			t.Fatalf("node exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("opkit node built no blocks")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("node stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node did not stop")
	}
	if !strings.Contains(out.String(), "rollup node JSON-RPC: http://127.0.0.1:") {
		t.Fatalf("endpoints not printed: %q", out.String())
	}
}

// TestDevnetCommandRunsAndResumes runs `opkit devnet` twice on one datadir: the first run
// prints its endpoints and builds L2 blocks, the second resumes the same chain.
func TestDevnetCommandRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	args := []string{"opkit", "--log.level", "error", "devnet", "--datadir", dir, "--l1.block-time", "1s",
		"--l2.block-time", "1", "--l1.port", "0", "--l2.port", "0", "--l2.auth-port", "0", "--rpc.port", "0", "--metrics.port", "0"}
	run := func(untilBlock uint64) (uint64, string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		app := newApp()
		var out safeBuffer
		app.Writer = &out
		done := make(chan error, 1)
		go func() { done <- app.RunContext(ctx, args) }()
		var head uint64
		deadline := time.Now().Add(60 * time.Second)
		for {
			select {
			case err := <-done:
				t.Fatalf("devnet exited early: %v\n%s", err, out.String())
			default:
			}
			head = l2HeadFromOutput(t, out.String())
			if head >= untilBlock {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("devnet did not reach L2 block %d:\n%s", untilBlock, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("devnet stopped with %v", err)
			}
		case <-time.After(90 * time.Second):
			// Every part stops in turn (collector, batcher, node, L2, L1, each flushing
			// its database): a few seconds alone, far longer on a loaded machine under -race.
			t.Fatal("devnet did not stop")
		}
		return head, out.String()
	}
	first, out := run(2)
	for _, want := range []string{"L1 JSON-RPC          http://127.0.0.1:", "L2 Engine API        http://127.0.0.1:", "rollup node RPC      http://", "/metrics", "rollup.json"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	rcfg, err := rollup.LoadConfig(filepath.Join(dir, "rollup.json"))
	if err != nil {
		t.Fatal(err)
	}
	second, _ := run(first + 1)
	again, err := rollup.LoadConfig(filepath.Join(dir, "rollup.json"))
	if err != nil || again.Genesis != rcfg.Genesis {
		t.Fatalf("rollup.json changed on resume: %v", err)
	}
	if second <= first {
		t.Fatalf("resumed run reached %d, first run %d", second, first)
	}
}

// safeBuffer is a bytes.Buffer the command writes to while the test reads it.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// l2HeadFromOutput reads the L2 URL the devnet printed and asks it for its head; 0 until
// the devnet is up.
func l2HeadFromOutput(t *testing.T, out string) uint64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[0] == "L2" && fields[1] == "JSON-RPC" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := ethclient.DialContext(ctx, fields[2])
			if err != nil {
				return 0
			}
			defer c.Close()
			n, err := c.BlockNumber(ctx)
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}
