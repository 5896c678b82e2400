package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/devnet"
)

func devnetCommand() *cli.Command {
	const cmd = "devnet"
	return &cli.Command{
		Name:  cmd,
		Usage: "run a local OP Stack devnet in one process (an op-geth dev L1 for now)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "datadir", Value: "./opkit-data/devnet", Usage: "where the chains are kept; an existing datadir is resumed", EnvVars: envVars(cmd, "datadir")},
			&cli.DurationFlag{Name: "l1.block-time", Value: 2 * time.Second, Usage: "L1 block period", EnvVars: envVars(cmd, "l1.block-time")},
			&cli.Uint64Flag{Name: "l1.chain-id", Value: 900, Usage: "L1 chain ID of a new devnet", EnvVars: envVars(cmd, "l1.chain-id")},
			&cli.IntFlag{Name: "l1.port", Value: 8545, Usage: "L1 JSON-RPC port (HTTP and websocket; 0 picks a free port)", EnvVars: envVars(cmd, "l1.port")},
			&cli.StringFlag{Name: "l1.scheme", Value: string(devnet.HashArchive), Usage: "L1 state scheme: hash (archive) or path", EnvVars: envVars(cmd, "l1.scheme")},
			&cli.DurationFlag{Name: "status-interval", Value: 4 * time.Second, Usage: "how often to log a status line", EnvVars: envVars(cmd, "status-interval")},
		},
		Action: func(c *cli.Context) error {
			if c.Duration("l1.block-time") < 100*time.Millisecond {
				return fmt.Errorf("--l1.block-time: %s is below the 100ms minimum", c.Duration("l1.block-time"))
			}
			if c.Duration("status-interval") <= 0 {
				return fmt.Errorf("--status-interval: must be positive")
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDevnet(ctx, devnetOptions{
				dataDir:        c.String("datadir"),
				l1BlockTime:    c.Duration("l1.block-time"),
				l1ChainID:      c.Uint64("l1.chain-id"),
				l1Port:         c.Int("l1.port"),
				l1Scheme:       devnet.StateScheme(c.String("l1.scheme")),
				statusInterval: c.Duration("status-interval"),
			})
		},
	}
}

type devnetOptions struct {
	dataDir        string
	l1BlockTime    time.Duration
	l1ChainID      uint64
	l1Port         int
	l1Scheme       devnet.StateScheme
	statusInterval time.Duration
}

func runDevnet(ctx context.Context, o devnetOptions) error {
	log := slog.Default()
	l1, err := devnet.StartL1(devnet.L1Config{
		DataDir:   o.dataDir + "/l1",
		ChainID:   o.l1ChainID,
		BlockTime: o.l1BlockTime,
		Scheme:    o.l1Scheme,
		Port:      o.l1Port,
		Logger:    log.With("system", "l1"),
	})
	if err != nil {
		return err
	}
	log.Info("devnet L1 is up", "http", l1.HTTPEndpoint(), "ws", l1.WSEndpoint(), "chain_id", o.l1ChainID, "datadir", o.dataDir)
	for i, a := range l1.Accounts() {
		log.Info("funded dev account", "index", i, "address", a.Address)
	}
	ticker := time.NewTicker(o.statusInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down devnet")
			if err := l1.Close(); err != nil {
				return fmt.Errorf("stop devnet: %w", err)
			}
			log.Info("devnet stopped", "datadir", o.dataDir)
			return nil
		case <-ticker.C:
			head := l1.Head()
			log.Info("status", "l1_head", head.Number, "l1_hash", head.Hash(), "l1_time", head.Time)
		}
	}
}
