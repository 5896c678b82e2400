package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/params"
	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/node"
)

func nodeCommand() *cli.Command {
	const cmd = "node"
	return &cli.Command{
		Name:  cmd,
		Usage: "run a rollup node: drive an OP Stack execution client and, optionally, sequence",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "l1", Usage: "L1 JSON-RPC URL", EnvVars: envVars(cmd, "l1")},
			&cli.StringFlag{Name: "l2", Usage: "L2 execution client Engine API URL (authenticated JSON-RPC)", EnvVars: envVars(cmd, "l2")},
			&cli.StringFlag{Name: "l2.jwt-secret", Usage: "file holding the Engine API JWT secret as 32 bytes of hex", EnvVars: envVars(cmd, "l2.jwt-secret")},
			&cli.StringFlag{Name: "rollup.config", Usage: "rollup.json of the chain (op-node format)", EnvVars: envVars(cmd, "rollup.config")},
			&cli.StringFlag{Name: "l1.chain-config", Usage: "L1 genesis.json or chain config JSON, for the L1 blob fee schedule; built in for Ethereum mainnet, Sepolia and Holesky", EnvVars: envVars(cmd, "l1.chain-config")},
			&cli.BoolFlag{Name: "sequencer.enabled", Usage: "build L2 blocks", EnvVars: envVars(cmd, "sequencer.enabled")},
			&cli.BoolFlag{Name: "sequencer.stopped", Usage: "start with the sequencer stopped (admin_startSequencer resumes it)", EnvVars: envVars(cmd, "sequencer.stopped")},
			&cli.Uint64Flag{Name: "sequencer.max-safe-lag", Usage: "pause sequencing while safe + lag <= unsafe; 0 disables", EnvVars: envVars(cmd, "sequencer.max-safe-lag")},
			&cli.Uint64Flag{Name: "sequencer.l1-confs", Value: 4, Usage: "keep L1 origins this many blocks below the L1 head", EnvVars: envVars(cmd, "sequencer.l1-confs")},
			&cli.StringFlag{Name: "rpc.addr", Value: "127.0.0.1", Usage: "JSON-RPC listen address", EnvVars: envVars(cmd, "rpc.addr")},
			&cli.IntFlag{Name: "rpc.port", Value: 9545, Usage: "JSON-RPC port (0 picks a free port)", EnvVars: envVars(cmd, "rpc.port")},
			&cli.StringFlag{Name: "metrics.addr", Value: "127.0.0.1", Usage: "/metrics and /health listen address", EnvVars: envVars(cmd, "metrics.addr")},
			&cli.IntFlag{Name: "metrics.port", Value: 7300, Usage: "/metrics and /health port (0 picks a free port)", EnvVars: envVars(cmd, "metrics.port")},
			&cli.DurationFlag{Name: "l1.poll-interval", Value: time.Second, Usage: "how often L1 heads are polled", EnvVars: envVars(cmd, "l1.poll-interval")},
			&cli.DurationFlag{Name: "status-interval", Value: 10 * time.Second, Usage: "how often to log a status line", EnvVars: envVars(cmd, "status-interval")},
			&cli.StringFlag{Name: "l1.beacon", Usage: "L1 beacon API URL, for the blobs of blob batcher transactions (needed once the batcher posts blobs)", EnvVars: envVars(cmd, "l1.beacon")},
			&cli.BoolFlag{Name: "altda.enabled", Usage: "read batcher data through AltDA commitments (rollup.json's alt_da section)", EnvVars: envVars(cmd, "altda.enabled")},
			&cli.StringFlag{Name: "altda.da-server", Usage: "AltDA server URL the commitments' data is fetched from", EnvVars: envVars(cmd, "altda.da-server")},
			&cli.DurationFlag{Name: "l1.timeout", Value: 10 * time.Second, Usage: "deadline of every L1 call", EnvVars: envVars(cmd, "l1.timeout")},
			&cli.DurationFlag{Name: "l2.timeout", Value: 10 * time.Second, Usage: "deadline of every execution-client call", EnvVars: envVars(cmd, "l2.timeout")},
			&cli.StringFlag{Name: "interop.rpc.addr", Usage: "serve the supervisor's managed-node protocol (websocket and HTTP) on this address: managed mode, for chains with interop_time at genesis; empty: off", EnvVars: envVars(cmd, "interop.rpc.addr")},
			&cli.IntFlag{Name: "interop.rpc.port", Value: 9645, Usage: "managed-node protocol port (0 picks a free port)", EnvVars: envVars(cmd, "interop.rpc.port")},
			&cli.StringFlag{Name: "interop.jwt-secret", Usage: "file holding the supervisor's JWT secret (32 bytes hex); created, mode 0600, when missing; required with --interop.rpc.addr", EnvVars: envVars(cmd, "interop.jwt-secret")},
			&cli.DurationFlag{Name: "health.stall-timeout", Value: 30 * time.Second, Usage: "/health answers 503 once derivation, the sequencer or L1 polling has failed for this long", EnvVars: envVars(cmd, "health.stall-timeout")},
		},
		Action: runNode,
	}
}

func runNode(c *cli.Context) error {
	for _, name := range []string{"l1", "l2", "l2.jwt-secret", "rollup.config"} {
		if c.String(name) == "" {
			return fmt.Errorf("--%s: required", name)
		}
	}
	for _, name := range []string{"rpc.port", "metrics.port", "interop.rpc.port"} {
		if p := c.Int(name); p < 0 || p > 65535 {
			return fmt.Errorf("--%s: %d is not a port", name, p)
		}
	}
	for _, name := range []string{"l1.poll-interval", "status-interval", "l1.timeout", "l2.timeout", "health.stall-timeout"} {
		if c.Duration(name) <= 0 {
			return fmt.Errorf("--%s: must be positive", name)
		}
	}
	if (c.String("interop.rpc.addr") != "") != (c.String("interop.jwt-secret") != "") {
		return fmt.Errorf("--interop.jwt-secret: required with --interop.rpc.addr, and only with it")
	}
	if c.Bool("sequencer.stopped") && !c.Bool("sequencer.enabled") {
		return fmt.Errorf("--sequencer.stopped: needs --sequencer.enabled")
	}
	if c.Bool("altda.enabled") != (c.String("altda.da-server") != "") {
		return fmt.Errorf("--altda.da-server: required with --altda.enabled, and only with it")
	}
	rcfg, err := rollup.LoadConfig(c.String("rollup.config"))
	if err != nil {
		return fmt.Errorf("--rollup.config: %w", err)
	}
	secret, err := devnet.ReadJWTSecret(c.String("l2.jwt-secret"))
	if err != nil {
		return fmt.Errorf("--l2.jwt-secret: %w", err)
	}
	l1cfg, err := l1ChainConfig(c.String("l1.chain-config"), rcfg.L1ChainID)
	if err != nil {
		return fmt.Errorf("--l1.chain-config: %w", err)
	}
	interopCfg, err := interopConfig(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.Default()
	n, err := node.Start(ctx, node.Config{
		Rollup: rcfg, L1ChainConfig: l1cfg,
		L1URL: c.String("l1"), L2EngineURL: c.String("l2"), JWTSecret: secret,
		Driver: driver.Config{
			SequencerEnabled:    c.Bool("sequencer.enabled"),
			SequencerStopped:    c.Bool("sequencer.stopped"),
			SequencerMaxSafeLag: c.Uint64("sequencer.max-safe-lag"),
			StallTimeout:        c.Duration("health.stall-timeout"),
		},
		L1CallTimeout: c.Duration("l1.timeout"), EngineCallTimeout: c.Duration("l2.timeout"),
		L1BeaconURL: c.String("l1.beacon"), AltDAEnabled: c.Bool("altda.enabled"), AltDAServer: c.String("altda.da-server"),
		SequencerL1Confs: c.Uint64("sequencer.l1-confs"),
		RPCAddr:          c.String("rpc.addr"), RPCPort: c.Int("rpc.port"),
		MetricsAddr: c.String("metrics.addr"), MetricsPort: c.Int("metrics.port"),
		L1PollInterval: c.Duration("l1.poll-interval"), StatusInterval: c.Duration("status-interval"),
		Interop: interopCfg,
		Log:     log, Version: versionString(),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "rollup node JSON-RPC: %s\nmetrics: %s/metrics\nhealth: %s/health\n", n.RPCEndpoint(), n.MetricsEndpoint(), n.MetricsEndpoint())
	if interopCfg != nil {
		fmt.Fprintf(c.App.Writer, "managed-node endpoint: %s (JWT secret in %s)\n", n.InteropEndpoint(), c.String("interop.jwt-secret"))
	}
	return waitAndClose(ctx, log, "rollup node", n.Done, n.Err, n.Close)
}

// waitAndClose blocks until a signal or until the system stops on its own, then closes it.
func waitAndClose(ctx context.Context, log *slog.Logger, what string, done func() <-chan struct{}, failure func() error, closeFn func() error) error {
	var cause error
	select {
	case <-ctx.Done():
		log.Info("shutting down " + what)
	case <-done():
		cause = failure()
		log.Error(what+" stopped", "err", cause)
	}
	if err := closeFn(); err != nil {
		return fmt.Errorf("stop %s: %w", what, err)
	}
	log.Info(what + " stopped cleanly")
	if cause != nil {
		return fmt.Errorf("%s: %w", what, cause)
	}
	return nil
}

// l1ChainConfig loads the L1 chain configuration from a genesis.json or a bare chain
// config, or picks the built-in one for well-known L1s.
func l1ChainConfig(path string, chainID *big.Int) (*params.ChainConfig, error) {
	if path == "" {
		switch chainID.Uint64() {
		case 1:
			return params.MainnetChainConfig, nil
		case 11155111:
			return params.SepoliaChainConfig, nil
		case 17000:
			return params.HoleskyChainConfig, nil
		}
		return nil, fmt.Errorf("required for L1 chain ID %v (no built-in config)", chainID)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var cfg params.ChainConfig
	if len(probe.Config) > 0 {
		var g core.Genesis
		if err := json.Unmarshal(data, &g); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		cfg = *g.Config
	} else if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.ChainID == nil || cfg.ChainID.Cmp(chainID) != 0 {
		return nil, fmt.Errorf("%s is for chain %v, the rollup's L1 is %v", path, cfg.ChainID, chainID)
	}
	return &cfg, nil
}

// interopConfig is managed mode as the --interop.* flags ask for it, or nil when
// --interop.rpc.addr is empty. The JWT secret file is created when it does not exist.
func interopConfig(c *cli.Context) (*node.InteropConfig, error) {
	addr, path := c.String("interop.rpc.addr"), c.String("interop.jwt-secret")
	if addr == "" {
		return nil, nil
	}
	secret, err := interop.LoadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("--interop.jwt-secret: %w", err)
	}
	return &node.InteropConfig{Addr: addr, Port: c.Int("interop.rpc.port"), Secret: secret}, nil
}
