package main

import (
	"fmt"
	"log/slog"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/devnet"
)

func devnetCommand() *cli.Command {
	const cmd = "devnet"
	return &cli.Command{
		Name:  cmd,
		Usage: "run a local OP Stack devnet in one process: dev L1, op-geth L2 and a sequencing rollup node",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "datadir", Value: "./opkit-data/devnet", Usage: "where the chains are kept; an existing datadir is resumed", EnvVars: envVars(cmd, "datadir")},
			&cli.DurationFlag{Name: "l1.block-time", Value: 2 * time.Second, Usage: "L1 block period", EnvVars: envVars(cmd, "l1.block-time")},
			&cli.Uint64Flag{Name: "l1.chain-id", Value: 900, Usage: "L1 chain ID of a new devnet", EnvVars: envVars(cmd, "l1.chain-id")},
			&cli.IntFlag{Name: "l1.port", Value: 8545, Usage: "L1 JSON-RPC port (HTTP and websocket; 0 picks a free port)", EnvVars: envVars(cmd, "l1.port")},
			&cli.StringFlag{Name: "l1.scheme", Value: string(devnet.HashArchive), Usage: "L1 state scheme: hash (archive) or path", EnvVars: envVars(cmd, "l1.scheme")},
			&cli.Uint64Flag{Name: "l2.chain-id", Value: 901, Usage: "L2 chain ID of a new devnet", EnvVars: envVars(cmd, "l2.chain-id")},
			&cli.Uint64Flag{Name: "l2.block-time", Value: 2, Usage: "L2 block time in seconds, for a new devnet", EnvVars: envVars(cmd, "l2.block-time")},
			&cli.IntFlag{Name: "l2.port", Value: 9546, Usage: "L2 JSON-RPC port (HTTP and websocket; 0 picks a free port)", EnvVars: envVars(cmd, "l2.port")},
			&cli.IntFlag{Name: "l2.auth-port", Value: 9551, Usage: "L2 Engine API port (0 picks a free port)", EnvVars: envVars(cmd, "l2.auth-port")},
			&cli.IntFlag{Name: "rpc.port", Value: 9545, Usage: "rollup node JSON-RPC port (0 picks a free port)", EnvVars: envVars(cmd, "rpc.port")},
			&cli.IntFlag{Name: "metrics.port", Value: 7300, Usage: "rollup node /metrics and /health port (0 picks a free port)", EnvVars: envVars(cmd, "metrics.port")},
			&cli.Uint64Flag{Name: "sequencer.l1-confs", Value: 0, Usage: "keep L1 origins this many blocks below the L1 head", EnvVars: envVars(cmd, "sequencer.l1-confs")},
			&cli.DurationFlag{Name: "status-interval", Value: 4 * time.Second, Usage: "how often to log a status line", EnvVars: envVars(cmd, "status-interval")},
		},
		Action: runDevnet,
	}
}

func runDevnet(c *cli.Context) error {
	if c.Duration("l1.block-time") < 100*time.Millisecond {
		return fmt.Errorf("--l1.block-time: %s is below the 100ms minimum", c.Duration("l1.block-time"))
	}
	if c.Duration("status-interval") <= 0 {
		return fmt.Errorf("--status-interval: must be positive")
	}
	if c.Uint64("l2.block-time") == 0 {
		return fmt.Errorf("--l2.block-time: must be at least 1 second")
	}
	if c.Uint64("l1.chain-id") == c.Uint64("l2.chain-id") {
		return fmt.Errorf("--l2.chain-id: must differ from --l1.chain-id")
	}
	for _, name := range []string{"l1.port", "l2.port", "l2.auth-port", "rpc.port", "metrics.port"} {
		if p := c.Int(name); p < 0 || p > 65535 {
			return fmt.Errorf("--%s: %d is not a port", name, p)
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.Default()
	dir := c.String("datadir")
	d, err := devnet.Start(ctx, devnet.Config{
		DataDir: dir, L1BlockTime: c.Duration("l1.block-time"), L1ChainID: c.Uint64("l1.chain-id"),
		L1Scheme: devnet.StateScheme(c.String("l1.scheme")), L2ChainID: c.Uint64("l2.chain-id"),
		L2BlockTime: c.Uint64("l2.block-time"),
		L1Port:      c.Int("l1.port"), L2Port: c.Int("l2.port"), L2AuthPort: c.Int("l2.auth-port"),
		NodeRPCPort: c.Int("rpc.port"), NodeMetricsPort: c.Int("metrics.port"),
		SequencerL1Confs: c.Uint64("sequencer.l1-confs"),
		StatusInterval:   c.Duration("status-interval"),
		Logger:           log, Version: versionString(),
	})
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "opkit devnet is running (datadir %s); Ctrl-C stops it, running it again resumes\n", dir)
	fmt.Fprintf(w, "  L1 JSON-RPC          %s  %s  (chain %v)\n", d.L1.HTTPEndpoint(), d.L1.WSEndpoint(), d.Rollup.L1ChainID)
	fmt.Fprintf(w, "  L2 JSON-RPC          %s  %s  (chain %v)\n", d.L2.HTTPEndpoint(), d.L2.WSEndpoint(), d.Rollup.L2ChainID)
	fmt.Fprintf(w, "  L2 Engine API        %s  (JWT secret %s)\n", d.L2.EngineEndpoint(), filepath.Join(dir, "l2", "jwt.hex"))
	fmt.Fprintf(w, "  rollup node RPC      %s\n", d.Node.RPCEndpoint())
	fmt.Fprintf(w, "  rollup node metrics  %s/metrics  health %s/health\n", d.Node.MetricsEndpoint(), d.Node.MetricsEndpoint())
	fmt.Fprintf(w, "  rollup.json          %s\n", filepath.Join(dir, "rollup.json"))
	fmt.Fprintf(w, "  L1 genesis           %s\n", filepath.Join(dir, "l1", "genesis.json"))
	for i, a := range d.L1.Accounts() {
		fmt.Fprintf(w, "  dev account %d        %s  (funded on L1 and L2)\n", i, a.Address)
	}
	return waitAndClose(ctx, log, "devnet", d.Node.Done, d.Node.Err, d.Close)
}
