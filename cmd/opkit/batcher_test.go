package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
)

func TestBatcherFlagErrorsNameTheFlag(t *testing.T) {
	key := hex.EncodeToString(crypto.FromECDSA(devnet.DevAccounts(2)[1].Key))
	base := []string{"opkit", "batcher", "--l1", "http://127.0.0.1:1", "--l2", "http://127.0.0.1:2", "--rollup-rpc", "http://127.0.0.1:3"}
	cases := []struct {
		args []string
		flag string
	}{
		{base, "--private-key"},
		{append(base, "--private-key", "zz"), "--private-key"},
		{append(base, "--private-key", key, "--keystore", "/nonexistent"), "--keystore"},
		{append(base, "--private-key", key, "--data-availability-type", "carrier-pigeon"), "--data-availability-type"},
		{append(base, "--private-key", key, "--data-availability-type", "altda"), "--altda.da-server"},
		{append(base, "--private-key", key, "--target-num-frames", "7"), "--target-num-frames"},
		{append(base, "--private-key", key, "--compression-algo", "lz4"), "--compression-algo"},
		{append(base, "--private-key", key, "--rpc.port", "70000"), "--rpc.port"},
		{append(base, "--private-key", key, "--batch-type", "2"), "--batch-type"},
		{append(base, "--private-key", key, "--max-blocks-per-span-batch", "-1"), "--max-blocks-per-span-batch"},
		{append(base, "--private-key", key, "--pprof.type", "cpu"), "--pprof.path"},
		{append(base, "--private-key", key, "--pprof.type", "everything", "--pprof.path", "/tmp"), "--pprof.type"},
		{[]string{"opkit", "batcher", "--private-key", key}, "--l1"},
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

// TestBatcherCommandPostsAndStopsOnCancel runs `opkit batcher` against a devnet until its
// first batch transaction is on L1, checks /health and /metrics, and stops it.
func TestBatcherCommandPostsAndStopsOnCancel(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Config{L1BlockTime: 500 * time.Millisecond, L2BlockTime: 1,
		L1PollInterval: 50 * time.Millisecond, NodeMetricsDisabled: true, SequencerL1Confs: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer dn.Close()
	acct := devnet.DevAccounts(2)[1]
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	app := newApp()
	var out safeBuffer
	app.Writer = &out
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(runCtx, []string{"opkit", "--log.level", "error", "batcher",
			"--l1", dn.L1.HTTPEndpoint(), "--l2", dn.L2.HTTPEndpoint(), "--rollup-rpc", dn.Node.RPCEndpoint(),
			"--private-key", "0x" + hex.EncodeToString(crypto.FromECDSA(acct.Key)),
			"--num-confirmations", "1", "--max-channel-duration", "1", "--poll-interval", "100ms",
			"--txmgr.receipt-query-interval", "50ms", "--rpc.port", "0", "--metrics.port", "0"})
	}()
	l1, err := ethclient.Dial(dn.L1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	for {
		n, err := l1.NonceAt(ctx, acct.Address, nil)
		if err == nil && n > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("batcher exited early: %v", err)
		case <-ctx.Done():
			t.Fatal("no batch transaction on L1")
		case <-time.After(100 * time.Millisecond):
		}
	}
	m := regexp.MustCompile(`metrics: (http://\S+)/metrics`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("endpoints not printed: %q", out.String())
	}
	for path, want := range map[string]string{"/health": `"running":true`, "/metrics": "opkit_batcher_l2_blocks_loaded_total"} {
		resp, err := http.Get(m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), want) {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body.String())
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("batcher stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("batcher did not stop")
	}
}
