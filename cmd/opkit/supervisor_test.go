package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/interop/managed/memchain"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSupervisorCommandRunsAndStops(t *testing.T) {
	l1, err := devnet.StartL1(devnet.L1Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "jwt.hex")
	secret, err := interop.LoadOrCreateSecret(secretPath) // what the node does
	if err != nil {
		t.Fatal(err)
	}
	anchor := eth.BlockRefFromHeader(l1.Backend().BlockChain().GetHeaderByNumber(0))
	chain := memchain.New(901, anchor.Time, 2, anchor)
	node, err := managed.NewServer(managed.Config{Secret: secret}, chain)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	chain.SetSink(node)
	deps := filepath.Join(dir, "deps.json")
	if err := os.WriteFile(deps, []byte(`{"dependencies":{"901":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rpcPort, metricsPort := freePort(t), freePort(t)
	t.Setenv("OPKIT_SUPERVISOR_METRICS_PORT", strconv.Itoa(metricsPort)) // flags read the environment too
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- newApp().RunContext(ctx, []string{"opkit", "supervisor",
			"--l1", l1.HTTPEndpoint(), "--node", node.WSEndpoint(), "--jwt-secret", secretPath,
			"--dependency-set", deps, "--datadir", filepath.Join(dir, "data"),
			"--rpc.port", strconv.Itoa(rpcPort), "--status-interval", "100ms"})
	}()

	var health struct {
		Status         string `json:"status"`
		ConnectedNodes int    `json:"connected_nodes"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for health.ConnectedNodes != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("supervisor never reported the node connected: %+v", health)
		}
		time.Sleep(20 * time.Millisecond)
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/health")
		if err != nil {
			continue
		}
		_ = json.NewDecoder(resp.Body).Decode(&health)
		resp.Body.Close()
	}
	ref := chain.AddBlock(anchor.ID())
	cl, err := rpc.Dial("http://127.0.0.1:" + strconv.Itoa(rpcPort))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		var id eth.BlockID
		if err := cl.Call(&id, "supervisor_localUnsafe", "901"); err == nil && id == ref.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("supervisor_localUnsafe never reached the new block")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `opkit_supervisor_head{chain="901",kind="local_unsafe"} 1`) {
		t.Fatalf("metrics lack the head gauge:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("supervisor stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("supervisor did not stop")
	}
}

func TestSupervisorCommandRefusesMissingSecret(t *testing.T) {
	dir := t.TempDir()
	err := newApp().Run([]string{"opkit", "supervisor", "--l1", "http://127.0.0.1:1", "--node", "ws://127.0.0.1:2",
		"--jwt-secret", filepath.Join(dir, "missing.hex"), "--dependency-set", filepath.Join(dir, "deps.json")})
	if err == nil || !strings.Contains(err.Error(), "--jwt-secret") {
		t.Fatalf("err %v, want a --jwt-secret error", err)
	}
	err = newApp().Run([]string{"opkit", "supervisor", "--l1", "http://127.0.0.1:1", "--node", "ws://a", "--node", "ws://b",
		"--jwt-secret", "a", "--jwt-secret", "b", "--jwt-secret", "c", "--dependency-set", "x"})
	if err == nil || !strings.Contains(err.Error(), "one per --node") {
		t.Fatalf("err %v, want a pairing error", err)
	}
}
