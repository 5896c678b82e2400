package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/supervisor"
)

func supervisorCommand() *cli.Command {
	const cmd = "supervisor"
	return &cli.Command{
		Name:  cmd,
		Usage: "manage rollup nodes over the interop protocol and decide cross-chain safety",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "l1", Usage: "L1 execution client RPC URL", Required: true, EnvVars: envVars(cmd, "l1")},
			&cli.StringSliceFlag{Name: "node", Usage: "interop RPC of a managed node (ws:// subscribes, http:// pulls); repeat for several nodes", Required: true, EnvVars: envVars(cmd, "node")},
			&cli.StringSliceFlag{Name: "jwt-secret", Usage: "JWT secret file shared with the nodes: one for all, or one per --node in the same order; must exist", Required: true, EnvVars: envVars(cmd, "jwt-secret")},
			&cli.StringFlag{Name: "dependency-set", Usage: `dependency set JSON file: {"dependencies":{"<chainID>":{}}}`, Required: true, EnvVars: envVars(cmd, "dependency-set")},
			&cli.StringFlag{Name: "datadir", Value: "./opkit-data/supervisor", Usage: "directory of the supervisor's database", EnvVars: envVars(cmd, "datadir")},
			&cli.StringFlag{Name: "rpc.addr", Value: "127.0.0.1", Usage: "address of the supervisor_ JSON-RPC API", EnvVars: envVars(cmd, "rpc.addr")},
			&cli.IntFlag{Name: "rpc.port", Value: 8545, Usage: "port of the supervisor_ JSON-RPC API (0 picks a free one)", EnvVars: envVars(cmd, "rpc.port")},
			&cli.StringFlag{Name: "metrics.addr", Value: "127.0.0.1", Usage: "address of /metrics and /health", EnvVars: envVars(cmd, "metrics.addr")},
			&cli.IntFlag{Name: "metrics.port", Value: 7304, Usage: "port of /metrics and /health", EnvVars: envVars(cmd, "metrics.port")},
			&cli.DurationFlag{Name: "l1.poll-interval", Value: 2 * time.Second, Usage: "how often L1's head and finalized block are read", EnvVars: envVars(cmd, "l1.poll-interval")},
			&cli.DurationFlag{Name: "reassert-interval", Value: 10 * time.Second, Usage: "how often acknowledged promotions are sent again", EnvVars: envVars(cmd, "reassert-interval")},
			&cli.DurationFlag{Name: "status-interval", Value: 10 * time.Second, Usage: "how often a status line is logged", EnvVars: envVars(cmd, "status-interval")},
		},
		Action: runSupervisor,
	}
}

// supervisorNodes pairs each --node with its secret.
func supervisorNodes(nodes, secretFiles []string) ([]supervisor.NodeConfig, error) {
	if len(secretFiles) != 1 && len(secretFiles) != len(nodes) {
		return nil, fmt.Errorf("--jwt-secret: give one file for all nodes or one per --node (%d nodes, %d files)", len(nodes), len(secretFiles))
	}
	out := make([]supervisor.NodeConfig, len(nodes))
	for i, n := range nodes {
		path := secretFiles[0]
		if len(secretFiles) > 1 {
			path = secretFiles[i]
		}
		secret, err := interop.ReadSecret(path)
		if err != nil {
			return nil, fmt.Errorf("--jwt-secret: %w", err)
		}
		out[i] = supervisor.NodeConfig{Endpoint: n, Secret: secret}
	}
	return out, nil
}

func runSupervisor(c *cli.Context) error {
	log := slog.Default().With("system", "supervisor")
	nodes, err := supervisorNodes(c.StringSlice("node"), c.StringSlice("jwt-secret"))
	if err != nil {
		return err
	}
	deps, err := interop.LoadDependencySet(c.String("dependency-set"))
	if err != nil {
		return fmt.Errorf("--dependency-set: %w", err)
	}
	if err := os.MkdirAll(c.String("datadir"), 0o755); err != nil {
		return fmt.Errorf("--datadir: %w", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reg := newProcessRegistry()
	sup, err := supervisor.New(supervisor.Config{
		L1RPC: c.String("l1"), Nodes: nodes, DependencySet: deps, DataDir: c.String("datadir"),
		RPCHost: c.String("rpc.addr"), RPCPort: c.Int("rpc.port"),
		L1PollInterval: c.Duration("l1.poll-interval"), ReassertInterval: c.Duration("reassert-interval"),
		Logger: log, Metrics: supervisor.NewMetrics(reg),
	})
	if err != nil {
		return err
	}
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","connected_nodes":%d,"nodes":%d}`, sup.ConnectedNodes(), len(nodes))
	})
	metrics, err := startMetricsServer(log, c.String("metrics.addr"), c.Int("metrics.port"), reg, health)
	if err != nil {
		_ = sup.Close()
		return err
	}
	log.Info("supervisor listening", "rpc", sup.RPCEndpoint(), "metrics", metrics.URL(),
		"nodes", len(nodes), "chains", deps.Chains(), "datadir", c.String("datadir"))

	ticker := time.NewTicker(c.Duration("status-interval"))
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			st := sup.Status()
			args := []any{"connected_nodes", sup.ConnectedNodes(), "finalized_l1", st.FinalizedL1.Number}
			for id, ch := range st.Chains {
				args = append(args, "chain_"+id.String(), fmt.Sprintf("unsafe=%d/%d safe=%d/%d final=%d",
					ch.LocalUnsafe.Number, ch.CrossUnsafe.Number, ch.LocalSafe.Derived.Number, ch.CrossSafe.Derived.Number, ch.Finalized.Number))
			}
			log.Info("status", args...)
		case <-ctx.Done():
			log.Info("shutting down: closing node connections and flushing the database")
			err := sup.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = metrics.Close(sctx)
			if err != nil {
				return fmt.Errorf("stop supervisor: %w", err)
			}
			log.Info("supervisor stopped")
			return nil
		}
	}
}
