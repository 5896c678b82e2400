// Command op-supervisor is op-supervisor v1.16.13's command, built from the module's
// packages as its own main does (flags, config, service), without the doc subcommand.
// The peers harness runs it as a separate process.
package main

import (
	"context"
	"os"

	"github.com/ethereum-optimism/optimism/op-service/cliapp"
	"github.com/ethereum-optimism/optimism/op-service/ctxinterrupt"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	"github.com/ethereum-optimism/optimism/op-supervisor/config"
	"github.com/ethereum-optimism/optimism/op-supervisor/flags"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
)

const version = "v1.16.13"

func main() {
	oplog.SetupDefaults()
	app := cli.NewApp()
	app.Version = version
	app.Flags = cliapp.ProtectFlags(flags.Flags)
	app.Name = "op-supervisor"
	app.Action = cliapp.LifecycleCmd(supervisor.Main(version, func(ctx context.Context, cfg *config.Config, logger log.Logger) (cliapp.Lifecycle, error) {
		return supervisor.SupervisorFromConfig(ctx, cfg, logger)
	}))
	ctx := ctxinterrupt.WithSignalWaiterMain(context.Background())
	if err := app.RunContext(ctx, os.Args); err != nil {
		log.Crit("Application failed", "message", err)
	}
}
