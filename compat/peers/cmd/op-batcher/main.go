// Command op-batcher is op-batcher v1.16.13's command, built from the module's packages
// as its own main does. The peers harness runs it as a separate process.
package main

import (
	"context"
	"os"

	"github.com/ethereum-optimism/optimism/op-batcher/batcher"
	"github.com/ethereum-optimism/optimism/op-batcher/flags"
	"github.com/ethereum-optimism/optimism/op-service/cliapp"
	"github.com/ethereum-optimism/optimism/op-service/ctxinterrupt"
	oplog "github.com/ethereum-optimism/optimism/op-service/log"
	"github.com/ethereum/go-ethereum/log"
	"github.com/urfave/cli/v2"
)

const version = "v1.16.13"

func main() {
	oplog.SetupDefaults()
	app := cli.NewApp()
	app.Flags = cliapp.ProtectFlags(flags.Flags)
	app.Version = version
	app.Name = "op-batcher"
	app.Action = cliapp.LifecycleCmd(batcher.Main(version))
	ctx := ctxinterrupt.WithSignalWaiterMain(context.Background())
	if err := app.RunContext(ctx, os.Args); err != nil {
		log.Crit("Application failed", "message", err)
	}
}
