package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/collector/verify"
)

func collectorCommand() *cli.Command {
	const cmd = "collector"
	return &cli.Command{
		Name:  cmd,
		Usage: "keep a rolling window of L2 state preimages from a full node and serve them to fault-proof hosts and proposers",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "l2", Usage: "execution client JSON-RPC URL (the hot full node; needs the debug namespace)", EnvVars: envVars(cmd, "l2")},
			&cli.StringFlag{Name: "datadir", Value: "./opkit-data/collector", Usage: "where the preimage store is kept", EnvVars: envVars(cmd, "datadir")},
			&cli.Uint64Flag{Name: "window", Value: collector.DefaultWindow, Usage: "blocks to retain (302400 is one week of 2 s blocks)", EnvVars: envVars(cmd, "window")},
			&cli.StringFlag{Name: "rpc.addr", Value: "127.0.0.1", Usage: "getter API listen address (HTTP and websocket)", EnvVars: envVars(cmd, "rpc.addr")},
			&cli.IntFlag{Name: "rpc.port", Value: 8547, Usage: "getter API port (0 picks a free one)", EnvVars: envVars(cmd, "rpc.port")},
			&cli.StringFlag{Name: "metrics.addr", Value: "127.0.0.1", Usage: "/metrics and /health listen address", EnvVars: envVars(cmd, "metrics.addr")},
			&cli.IntFlag{Name: "metrics.port", Value: 7303, Usage: "/metrics and /health port (0 picks a free one)", EnvVars: envVars(cmd, "metrics.port")},
			&cli.DurationFlag{Name: "poll-interval", Value: 500 * time.Millisecond, Usage: "how often to look for a new head", EnvVars: envVars(cmd, "poll-interval")},
			&cli.DurationFlag{Name: "status-interval", Value: 10 * time.Second, Usage: "how often to log a status line", EnvVars: envVars(cmd, "status-interval")},
			&cli.DurationFlag{Name: "l2.timeout", Value: 30 * time.Second, Usage: "deadline of each call to the execution client", EnvVars: envVars(cmd, "l2.timeout")},
		},
		Subcommands: []*cli.Command{collectorVerifyCommand()},
		Action: func(c *cli.Context) error {
			if c.String("l2") == "" {
				return errors.New("--l2: the execution client's RPC URL is required")
			}
			if c.Uint64("window") == 0 {
				return errors.New("--window: must be at least 1 block")
			}
			for _, name := range []string{"rpc.port", "metrics.port"} {
				if p := c.Int(name); p < 0 || p > 65535 {
					return fmt.Errorf("--%s: %d is not a port", name, p)
				}
			}
			for _, name := range []string{"poll-interval", "status-interval", "l2.timeout"} {
				if c.Duration(name) <= 0 {
					return fmt.Errorf("--%s: must be positive", name)
				}
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runCollector(ctx, c)
		},
	}
}

func runCollector(ctx context.Context, c *cli.Context) error {
	log := slog.Default().With("system", "collector")
	reg := newProcessRegistry()
	col, err := collector.New(ctx, collector.Config{
		L2: c.String("l2"), DataDir: c.String("datadir"), Window: c.Uint64("window"),
		PollInterval: c.Duration("poll-interval"), CallTimeout: c.Duration("l2.timeout"), Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	api, err := collector.StartServer(col, net.JoinHostPort(c.String("rpc.addr"), strconv.Itoa(c.Int("rpc.port"))))
	if err != nil {
		col.Close()
		return fmt.Errorf("--rpc.port: %w", err)
	}
	metrics, err := startMetricsServer(log, c.String("metrics.addr"), c.Int("metrics.port"), reg, collector.HealthHandler(col))
	if err != nil {
		_ = api.Close(context.Background())
		col.Close()
		return err
	}
	log.Info("collector listening", "http", api.HTTPURL(), "ws", api.WSURL(),
		"metrics", metrics.URL(), "l2", c.String("l2"),
		"datadir", c.String("datadir"), "window", c.Uint64("window"))

	runCtx, cancelRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- col.Run(runCtx) }()
	ticker := time.NewTicker(c.Duration("status-interval"))
	defer ticker.Stop()
	var result error
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down collector")
			break loop
		case err := <-runErr:
			runErr = nil
			if err != nil {
				log.Error("collection stopped", "err", err)
				result = err
			}
			break loop
		case <-ticker.C:
			logCollectorStatus(log, col)
		}
	}
	cancelRun()
	if runErr != nil {
		<-runErr
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(api.Close(sctx), metrics.Close(sctx))
	if cerr := col.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err == nil && result == nil {
		log.Info("collector stopped", "datadir", c.String("datadir"))
	}
	return errors.Join(result, err)
}

func logCollectorStatus(log *slog.Logger, col *collector.Collector) {
	st, err := col.Status()
	if err != nil {
		log.Warn("status unavailable", "err", err)
		return
	}
	attrs := []any{"head", uint64(st.Head), "preimages", uint64(st.Preimages), "bytes", uint64(st.Bytes), "gaps", len(st.Gaps), "reorgs", uint64(st.Reorgs)}
	if st.First != nil {
		attrs = append(attrs, "first", st.First.Number, "last", st.Last.Number)
	}
	log.Info("status", attrs...)
}

func collectorVerifyCommand() *cli.Command {
	const cmd = "collector_verify"
	return &cli.Command{
		Name:  "verify",
		Usage: "re-execute blocks statelessly from the collector's preimages alone and check their state and receipts roots",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rpc", Value: "http://127.0.0.1:8547", Usage: "the collector's getter API URL", EnvVars: envVars(cmd, "rpc")},
			&cli.Uint64Flag{Name: "from", Usage: "first block to verify", Required: true, EnvVars: envVars(cmd, "from")},
			&cli.Uint64Flag{Name: "to", Usage: "last block to verify (inclusive)", Required: true, EnvVars: envVars(cmd, "to")},
		},
		Action: func(c *cli.Context) error {
			from, to := c.Uint64("from"), c.Uint64("to")
			if from == 0 {
				return errors.New("--from: the genesis block has no parent state to execute on; start at 1 or later")
			}
			if to < from {
				return fmt.Errorf("--to: %d is below --from %d", to, from)
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			v, err := verify.New(ctx, c.String("rpc"))
			if err != nil {
				return err
			}
			defer v.Close()
			log := slog.Default()
			start := time.Now()
			failed, err := v.Range(ctx, from, to, func(r verify.Result) {
				if r.Err != nil {
					log.Error("block failed", "number", r.Number, "hash", r.Hash, "err", r.Err)
					return
				}
				log.Info("block verified", "number", r.Number, "hash", r.Hash, "preimages", r.Preimages)
			})
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d blocks failed verification", failed, to-from+1)
			}
			_, err = fmt.Fprintf(c.App.Writer, "verified blocks %d..%d in %s\n", from, to, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
}
