package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/devnet"
)

func devnetCommand() *cli.Command {
	const cmd = "devnet"
	return &cli.Command{
		Name:  cmd,
		Usage: "run a local OP Stack devnet in one process: dev L1 (with a beacon blob API), op-geth L2, a sequencing rollup node, a batcher, a collector, and a DA server with --da altda",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "datadir", Value: "./opkit-data/devnet", Usage: "where the chains are kept; an existing datadir is resumed", EnvVars: envVars(cmd, "datadir")},
			&cli.DurationFlag{Name: "l1.block-time", Value: 2 * time.Second, Usage: "L1 block period", EnvVars: envVars(cmd, "l1.block-time")},
			&cli.Uint64Flag{Name: "l1.chain-id", Value: 900, Usage: "L1 chain ID of a new devnet", EnvVars: envVars(cmd, "l1.chain-id")},
			&cli.IntFlag{Name: "l1.port", Value: 8545, Usage: "L1 JSON-RPC port (HTTP and websocket; 0 picks a free port)", EnvVars: envVars(cmd, "l1.port")},
			&cli.IntFlag{Name: "l1.beacon-port", Value: 5052, Usage: "L1 beacon API port, serving the blobs of sealed blocks (0 picks a free port)", EnvVars: envVars(cmd, "l1.beacon-port")},
			&cli.StringFlag{Name: "l1.scheme", Value: string(devnet.HashArchive), Usage: "L1 state scheme: hash (archive) or path", EnvVars: envVars(cmd, "l1.scheme")},
			&cli.Uint64Flag{Name: "l2.chain-id", Value: 901, Usage: "L2 chain ID of a new devnet", EnvVars: envVars(cmd, "l2.chain-id")},
			&cli.Uint64Flag{Name: "l2.block-time", Value: 2, Usage: "L2 block time in seconds, for a new devnet", EnvVars: envVars(cmd, "l2.block-time")},
			&cli.IntFlag{Name: "l2.port", Value: 9546, Usage: "L2 JSON-RPC port (HTTP and websocket; 0 picks a free port)", EnvVars: envVars(cmd, "l2.port")},
			&cli.IntFlag{Name: "l2.auth-port", Value: 9551, Usage: "L2 Engine API port (0 picks a free port)", EnvVars: envVars(cmd, "l2.auth-port")},
			&cli.IntFlag{Name: "rpc.port", Value: 9545, Usage: "rollup node JSON-RPC port (0 picks a free port)", EnvVars: envVars(cmd, "rpc.port")},
			&cli.IntFlag{Name: "metrics.port", Value: 7300, Usage: "rollup node /metrics and /health port (0 picks a free port)", EnvVars: envVars(cmd, "metrics.port")},
			&cli.Uint64Flag{Name: "sequencer.l1-confs", Value: 0, Usage: "keep L1 origins this many blocks below the L1 head", EnvVars: envVars(cmd, "sequencer.l1-confs")},
			&cli.DurationFlag{Name: "status-interval", Value: 4 * time.Second, Usage: "how often to log a status line", EnvVars: envVars(cmd, "status-interval")},
			&cli.BoolFlag{Name: "batcher", Value: true, Usage: "run opkit batcher, so that the chain becomes safe and finalized (--batcher=false turns it off)", EnvVars: envVars(cmd, "batcher")},
			&cli.StringFlag{Name: "da", Value: string(batcher.DABlobs), Usage: "where the batcher posts: blobs, calldata, auto, or altda (an in-process DA server; fails over to blobs on a 503)", EnvVars: envVars(cmd, "da")},
			&cli.Uint64Flag{Name: "batcher.max-channel-duration", Value: devnet.DefaultMaxChannelDuration, Usage: "close a channel this many L1 blocks after it opened", EnvVars: envVars(cmd, "batcher.max-channel-duration")},
			&cli.IntFlag{Name: "batcher.rpc.port", Value: 8548, Usage: "batcher admin RPC port (0 picks a free port)", EnvVars: envVars(cmd, "batcher.rpc.port")},
			&cli.IntFlag{Name: "batcher.metrics.port", Value: 7301, Usage: "batcher /metrics and /health port (0 picks a free port)", EnvVars: envVars(cmd, "batcher.metrics.port")},
			&cli.IntFlag{Name: "da-server.port", Value: 3100, Usage: "DA server port with --da altda (0 picks a free port)", EnvVars: envVars(cmd, "da-server.port")},
			&cli.BoolFlag{Name: "collector", Value: true, Usage: "run opkit collector on the L2 (--collector=false turns it off)", EnvVars: envVars(cmd, "collector")},
			&cli.IntFlag{Name: "collector.port", Value: 8547, Usage: "collector getter API port (0 picks a free port)", EnvVars: envVars(cmd, "collector.port")},
			&cli.IntFlag{Name: "collector.metrics.port", Value: 7303, Usage: "collector /metrics and /health port (0 picks a free port)", EnvVars: envVars(cmd, "collector.metrics.port")},
			&cli.StringFlag{Name: "chains", Usage: "run an interop devnet instead: these L2 chain IDs (e.g. 901,902), each with a node in managed mode and a batcher, under opkit supervisor", EnvVars: envVars(cmd, "chains")},
			&cli.BoolFlag{Name: "supervisor", Value: true, Usage: "with --chains: run opkit supervisor (--supervisor=false prints each node's managed endpoint and JWT for an external one)", EnvVars: envVars(cmd, "supervisor")},
			&cli.BoolFlag{Name: "interop.mempool-filtering", Usage: "with --chains: each op-geth refuses pool transactions whose executing messages opkit supervisor rejects (supervisor_checkAccessList); off, an invalid message reaches a block and the supervisor has it replaced", EnvVars: envVars(cmd, "interop.mempool-filtering")},
			&cli.IntFlag{Name: "load", Value: 0, Usage: "send this many transactions of a varied mix to every L2 block (0: none)", EnvVars: envVars(cmd, "load")},
			&cli.Uint64Flag{Name: "collector.window", Value: collector.DefaultWindow, Usage: "L2 blocks the collector keeps", EnvVars: envVars(cmd, "collector.window")},
		},
		Subcommands: []*cli.Command{devnetSendCommand(), devnetDepositCommand()},
		Action:      runDevnet,
	}
}

func runDevnet(c *cli.Context) error {
	if c.String("chains") != "" {
		return runInteropDevnet(c)
	}
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
	for _, name := range []string{"l1.port", "l1.beacon-port", "l2.port", "l2.auth-port", "rpc.port", "metrics.port", "batcher.rpc.port",
		"batcher.metrics.port", "da-server.port", "collector.port", "collector.metrics.port"} {
		if p := c.Int(name); p < 0 || p > 65535 {
			return fmt.Errorf("--%s: %d is not a port", name, p)
		}
	}
	da, err := batcher.ParseDAType(c.String("da"))
	if err != nil {
		return fmt.Errorf("--da: %w", err)
	}
	if c.Int("load") < 0 {
		return fmt.Errorf("--load: must not be negative")
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Every record carries one system label: each part's comes from the devnet, these
	// are the command's own.
	root := slog.Default()
	log := root.With("system", "devnet")
	dir := c.String("datadir")
	cfg := devnet.Config{
		DataDir: dir, L1BlockTime: c.Duration("l1.block-time"), L1ChainID: c.Uint64("l1.chain-id"),
		L1Scheme: devnet.StateScheme(c.String("l1.scheme")), L2ChainID: c.Uint64("l2.chain-id"),
		L2BlockTime: c.Uint64("l2.block-time"),
		L1Port:      c.Int("l1.port"), L1BeaconPort: c.Int("l1.beacon-port"), L2Port: c.Int("l2.port"), L2AuthPort: c.Int("l2.auth-port"),
		NodeRPCPort: c.Int("rpc.port"), NodeMetricsPort: c.Int("metrics.port"),
		SequencerL1Confs: c.Uint64("sequencer.l1-confs"),
		StatusInterval:   c.Duration("status-interval"),
		Logger:           root, Version: versionString(),
	}
	var parts []*metricsServer
	defer func() {
		for _, m := range parts {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = m.Close(sctx)
			cancel()
		}
	}()
	var batcherReg, collectorReg *prometheus.Registry
	if c.Bool("batcher") {
		batcherReg = newProcessRegistry()
		cfg.Batcher = &devnet.BatcherConfig{
			DA: da, MaxChannelDuration: c.Uint64("batcher.max-channel-duration"),
			RPCPort: c.Int("batcher.rpc.port"), DAServerPort: c.Int("da-server.port"), Registry: batcherReg,
		}
	}
	if c.Bool("collector") {
		collectorReg = newProcessRegistry()
		cfg.Collector = &devnet.CollectorConfig{Port: c.Int("collector.port"), Window: c.Uint64("collector.window"), Registry: collectorReg}
	}
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if d.Batcher != nil {
		m, err := startMetricsServer(root.With("system", "batcher"), "127.0.0.1", c.Int("batcher.metrics.port"), batcherReg, d.Batcher.Health())
		if err != nil {
			_ = d.Close()
			return fmt.Errorf("batcher: %w", err)
		}
		parts = append(parts, m)
	}
	if d.Collector != nil {
		m, err := startMetricsServer(root.With("system", "collector"), "127.0.0.1", c.Int("collector.metrics.port"), collectorReg, collector.HealthHandler(d.Collector))
		if err != nil {
			_ = d.Close()
			return fmt.Errorf("collector: %w", err)
		}
		parts = append(parts, m)
	}
	printDevnet(c.App.Writer, dir, d, parts)
	if n := c.Int("load"); n > 0 {
		go func() {
			if err := d.RunLoad(ctx, n); err != nil && ctx.Err() == nil {
				log.Error("load stopped", "err", err)
			}
		}()
	}
	go logDevnetStatus(ctx, log, d, c.Duration("status-interval"))
	return waitAndClose(ctx, log, "devnet", d.Node.Done, d.Node.Err, d.Close)
}

// printDevnet writes every endpoint, key file and dev account, and how to bridge.
func printDevnet(w io.Writer, dir string, d *devnet.Devnet, parts []*metricsServer) {
	fmt.Fprintf(w, "opkit devnet is running (datadir %s); Ctrl-C stops it, running it again resumes\n", dir)
	fmt.Fprintf(w, "  L1 JSON-RPC          %s  %s  (chain %v)\n", d.L1.HTTPEndpoint(), d.L1.WSEndpoint(), d.Rollup.L1ChainID)
	fmt.Fprintf(w, "  L1 beacon API        %s\n", d.L1.BeaconURL())
	fmt.Fprintf(w, "  L2 JSON-RPC          %s  %s  (chain %v)\n", d.L2.HTTPEndpoint(), d.L2.WSEndpoint(), d.Rollup.L2ChainID)
	fmt.Fprintf(w, "  L2 Engine API        %s  (JWT secret %s)\n", d.L2.EngineEndpoint(), filepath.Join(dir, "l2", "jwt.hex"))
	fmt.Fprintf(w, "  rollup node RPC      %s\n", d.Node.RPCEndpoint())
	fmt.Fprintf(w, "  rollup node metrics  %s/metrics  health %s/health\n", d.Node.MetricsEndpoint(), d.Node.MetricsEndpoint())
	i := 0
	if d.Batcher != nil {
		fmt.Fprintf(w, "  batcher admin RPC    %s  (posts as %s)\n", d.Batcher.RPCEndpoint(), common.Address(d.Batcher.From()))
		fmt.Fprintf(w, "  batcher metrics      %s\n", parts[i].URL())
		i++
	}
	if d.DAServer != nil {
		fmt.Fprintf(w, "  DA server            %s  (fault admin %s/admin/faults)\n", d.DAServer.URL(), d.DAServer.URL())
	}
	if d.Collector != nil {
		fmt.Fprintf(w, "  collector API        http://%s\n", d.CollectorServer.Addr())
		fmt.Fprintf(w, "  collector metrics    %s\n", parts[i].URL())
	}
	fmt.Fprintf(w, "  rollup.json          %s\n", filepath.Join(dir, "rollup.json"))
	fmt.Fprintf(w, "  L1 genesis           %s\n", filepath.Join(dir, "l1", "genesis.json"))
	fmt.Fprintf(w, "  L2 genesis           %s\n", filepath.Join(dir, "l2-genesis.json"))
	for i, a := range d.L1.Accounts() {
		fmt.Fprintf(w, "  dev account %d        %s  (funded on L1 and L2)\n", i, a.Address)
	}
	if len(d.L1.Accounts()) > 0 {
		fmt.Fprintf(w, "  dev account 0 key    0x%x\n", crypto.FromECDSA(d.L1.Accounts()[0].Key))
	}
	fmt.Fprintf(w, "  bridge ETH to L2     send ETH on L1 to the deposit contract %s; it is minted to the sender on L2 within a few L1 blocks\n", d.Rollup.DepositContractAddress)
}

// logDevnetStatus logs one line at every interval: L1 and L2 heads, the batcher's DA
// mode and backlog, the collector's window.
func logDevnetStatus(ctx context.Context, log *slog.Logger, d *devnet.Devnet, every time.Duration) {
	onEachTick(ctx, every, func() {
		sctx, cancel := context.WithTimeout(ctx, every)
		st, err := d.Node.Driver().SyncStatus(sctx)
		cancel()
		if err != nil {
			log.Warn("devnet status", "err", err)
			return
		}
		attrs := []any{
			"l1_head", st.HeadL1.Number, "l1_safe", st.SafeL1.Number, "l1_finalized", st.FinalizedL1.Number,
			"l2_unsafe", st.UnsafeL2.Number, "l2_safe", st.SafeL2.Number, "l2_finalized", st.FinalizedL2.Number,
		}
		if d.Batcher != nil {
			bs := d.Batcher.Status()
			attrs = append(attrs, "batcher_da", bs.DA, "batcher_pending_blocks", bs.PendingBlocks)
		}
		if d.Collector != nil {
			if cs, err := d.Collector.Status(); err == nil && cs.First != nil && cs.Last != nil {
				attrs = append(attrs, "collector_first", cs.First.Number, "collector_last", cs.Last.Number)
			}
		}
		log.Info("devnet status", attrs...)
	})
}

// onEachTick calls fn at every interval until ctx ends: the devnets' status lines.
func onEachTick(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
