package peers

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
)

// OpNodeConfig configures an op-node and the op-geth L2 it drives.
type OpNodeConfig struct {
	// L1 is the dev L1 op-node follows, over JSON-RPC (not trusted: storage is read with
	// verified proofs) and its beacon API.
	L1 *devnet.L1
	// Rollup is opkit's rollup.json, given to op-node as a file.
	Rollup *rollup.Config
	// L2Genesis starts op-node's own op-geth.
	L2Genesis *core.Genesis
	// Sequencer runs op-node as the sequencer (L1 confirmations 0); otherwise a verifier.
	Sequencer bool
	// Dir receives rollup.json, the L1 chain config and the Engine API secret.
	Dir string
	// ExtraFlags are appended to op-node's command line (they win over the defaults).
	ExtraFlags []string
	Logger     *slog.Logger
}

// OpNode is a running op-node v1.16.13 with its op-geth.
type OpNode struct {
	// L2 is op-node's execution client.
	L2 *devnet.L2
	// Flags are the op-node command line it was started with.
	Flags []string

	proc *process
	rpc  string

	closeOnce sync.Once
	closeErr  error
}

func peerLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return l
}

// writeJSON writes v as JSON to dir/name.
func writeJSON(dir, name string, v any) (string, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return path, nil
}

// OpNodeFlags is op-node's command line for cfg, with an L2 engine at engineURL behind
// the secret in jwtPath: the flags PROTOCOL's peer runs needed, and polling fast enough
// for tests.
func OpNodeFlags(cfg OpNodeConfig, rollupPath, l1ConfigPath, engineURL, jwtPath string, rpcPort int) []string {
	args := []string{
		"--l1=" + cfg.L1.HTTPEndpoint(),
		"--l1.rpckind=standard",
		"--l1.beacon=" + cfg.L1.BeaconURL(),
		"--l1.http-poll-interval=100ms",
		"--l1.epoch-poll-interval=1s",
		"--l2=" + engineURL,
		"--l2.jwt-secret=" + jwtPath,
		"--rollup.config=" + rollupPath,
		"--rollup.l1-chain-config=" + l1ConfigPath,
		"--p2p.disable",
		"--rpc.addr=127.0.0.1",
		fmt.Sprintf("--rpc.port=%d", rpcPort),
		"--log.level=warn",
		"--log.format=logfmt",
	}
	if cfg.Sequencer {
		args = append(args, "--sequencer.enabled", "--sequencer.l1-confs=0")
	} else {
		args = append(args, "--verifier.l1-confs=0")
	}
	return append(args, cfg.ExtraFlags...)
}

// StartOpNode starts an op-geth L2 from cfg.L2Genesis and op-node on it, and returns once
// op-node's RPC is up.
func StartOpNode(ctx context.Context, cfg OpNodeConfig) (*OpNode, error) {
	if cfg.L1 == nil || cfg.Rollup == nil || cfg.L2Genesis == nil || cfg.Dir == "" {
		return nil, errors.New("start op-node: L1, Rollup, L2Genesis and Dir are required")
	}
	rollupPath, err := writeJSON(cfg.Dir, "rollup.json", cfg.Rollup)
	if err != nil {
		return nil, err
	}
	l1ConfigPath, err := writeJSON(cfg.Dir, "l1-chain-config.json", cfg.L1.ChainConfig())
	if err != nil {
		return nil, err
	}
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: cfg.L2Genesis, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("start op-node's L2: %w", err)
	}
	secret := l2.JWTSecret()
	jwtPath := filepath.Join(cfg.Dir, "jwt.hex")
	if err := os.WriteFile(jwtPath, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		l2.Close()
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	bins, err := binaries(ctx)
	if err != nil {
		l2.Close()
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		l2.Close()
		return nil, err
	}
	n := &OpNode{L2: l2, Flags: OpNodeFlags(cfg, rollupPath, l1ConfigPath, l2.EngineEndpoint(), jwtPath, port),
		rpc: fmt.Sprintf("http://127.0.0.1:%d", port)}
	n.proc, err = startProcess("op-node", filepath.Join(bins, "op-node"), n.Flags, peerLogger(cfg.Logger))
	if err != nil {
		l2.Close()
		return nil, err
	}
	if err := n.proc.waitReady(ctx, func(ctx context.Context) error {
		c, err := rpc.DialContext(ctx, n.rpc)
		if err != nil {
			return err
		}
		defer c.Close()
		var v string
		return c.CallContext(ctx, &v, "optimism_version")
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("start op-node: %w", err), n.Close())
	}
	return n, nil
}

// RPCEndpoint is op-node's JSON-RPC URL (optimism_*, admin_*).
func (n *OpNode) RPCEndpoint() string { return n.rpc }

// Err is why op-node exited, with its last output, if it exited without Close; else nil.
func (n *OpNode) Err() error { return n.proc.Err() }

// Close stops op-node, then its L2.
func (n *OpNode) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.proc != nil {
			errs = append(errs, n.proc.stop(30*time.Second))
		}
		errs = append(errs, n.L2.Close())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// BatcherConfig configures an op-batcher.
type BatcherConfig struct {
	L1 *devnet.L1
	// L2RPC is the sequencer's L2 execution client (JSON-RPC), RollupRPC its rollup node.
	L2RPC, RollupRPC string
	// Key signs the batcher transactions; default dev account 1, rollup.json's batcher.
	Key *ecdsa.PrivateKey
	// DataAvailability is calldata (default), blobs or auto.
	DataAvailability string
	// ExtraFlags are appended to op-batcher's command line.
	ExtraFlags []string
	Logger     *slog.Logger
}

// Batcher is a running op-batcher v1.16.13.
type Batcher struct {
	// Flags are the op-batcher command line it was started with.
	Flags []string
	proc  *process
}

// BatcherFlags is op-batcher's command line for cfg.
func BatcherFlags(cfg BatcherConfig, rpcPort int) []string {
	key := cfg.Key
	if key == nil {
		key = devnet.DevAccounts(2)[1].Key
	}
	da := cfg.DataAvailability
	if da == "" {
		da = "calldata"
	}
	args := []string{
		"--l1-eth-rpc=" + cfg.L1.HTTPEndpoint(),
		"--l2-eth-rpc=" + cfg.L2RPC,
		"--rollup-rpc=" + cfg.RollupRPC,
		"--private-key=" + hexutil.Encode(crypto.FromECDSA(key))[2:],
		"--data-availability-type=" + da,
		"--poll-interval=100ms",
		"--max-channel-duration=1",
		"--sub-safety-margin=4",
		"--num-confirmations=1",
		"--resubmission-timeout=10s",
		"--network-timeout=5s",
		"--txmgr.receipt-query-interval=100ms",
		// The dev L1 is Osaka from genesis: blob sidecars carry cell proofs.
		"--txmgr.cell-proof-time=0",
		// op-geth does not expose miner_setMaxDASize on the devnet L2.
		"--throttle.unsafe-da-bytes-lower-threshold=0",
		// Its RPC defaults to 0.0.0.0:8545.
		"--rpc.addr=127.0.0.1",
		fmt.Sprintf("--rpc.port=%d", rpcPort),
		"--log.level=warn",
		"--log.format=logfmt",
	}
	return append(args, cfg.ExtraFlags...)
}

// StartBatcher starts op-batcher posting the sequencer's chain to the dev L1.
func StartBatcher(ctx context.Context, cfg BatcherConfig) (*Batcher, error) {
	if cfg.L1 == nil || cfg.L2RPC == "" || cfg.RollupRPC == "" {
		return nil, errors.New("start op-batcher: L1, L2RPC and RollupRPC are required")
	}
	bins, err := binaries(ctx)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &Batcher{Flags: BatcherFlags(cfg, port)}
	b.proc, err = startProcess("op-batcher", filepath.Join(bins, "op-batcher"), b.Flags, peerLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	if err := b.proc.waitReady(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("start op-batcher: %w", err), b.Close())
	}
	return b, nil
}

// Err is why op-batcher exited, with its last output, if it exited without Close; else nil.
func (b *Batcher) Err() error { return b.proc.Err() }

// Close stops op-batcher.
func (b *Batcher) Close() error { return b.proc.stop(30 * time.Second) }
