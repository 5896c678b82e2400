// Command op-node is op-node v1.16.13's rollup node command, built from the module's
// packages as its own main does (flags, config, node), without the subcommands the
// harness does not use. The peers harness runs it as a separate process.
package main

import (
	"context"
	"fmt"
	"os"

	opnode "github.com/ethereum-optimism/optimism/op-node"
	"github.com/ethereum-optimism/optimism/op-node/flags"
	"github.com/ethereum-optimism/optimism/op-node/metrics"
	"github.com/ethereum-optimism/optimism/op-node/node"
	"github.com/ethereum-optimism/optimism/op-service/cliapp"
	"github.com/ethereum-optimism/optimism/op-service/ctxinterrupt"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
)

const version = "v1.16.13"

// managedFlag runs op-node in managed mode (its config's SupervisorEnabled, which op-node
// v1.16.13's command line sets nowhere): with --interop.rpc.addr, op-node then serves a
// supervisor on its interop RPC and derives only the L1 blocks the supervisor provides.
var managedFlag = &cli.BoolFlag{
	Name:  "harness.managed",
	Usage: "Run in managed mode, driven by a supervisor over the interop RPC",
}

func main() {
	oplog.SetupDefaults()
	app := cli.NewApp()
	app.Version = version
	app.Flags = append(cliapp.ProtectFlags(flags.Flags), managedFlag)
	app.Name = "op-node"
	app.Action = cliapp.LifecycleCmd(rollupNodeMain)
	ctx := ctxinterrupt.WithSignalWaiterMain(context.Background())
	if err := app.RunContext(ctx, os.Args); err != nil {
		log.Crit("Application failed", "message", err)
	}
}

func rollupNodeMain(ctx *cli.Context, closeApp context.CancelCauseFunc) (cliapp.Lifecycle, error) {
	logger := oplog.NewLogger(oplog.AppOut(ctx), oplog.ReadCLIConfig(ctx))
	oplog.SetGlobalLogHandler(logger.Handler())
	cfg, err := opnode.NewConfig(ctx, logger)
	if err != nil {
		return nil, fmt.Errorf("unable to create the rollup node config: %w", err)
	}
	cfg.Cancel = closeApp
	cfg.SupervisorEnabled = ctx.Bool(managedFlag.Name)
	n, err := node.New(ctx.Context, cfg, logger, version, metrics.NewMetrics("default", nil), nil)
	if err != nil {
		return nil, fmt.Errorf("unable to create the rollup node: %w", err)
	}
	return n, nil
}
