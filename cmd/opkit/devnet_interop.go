package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/devnet"
)

// runInteropDevnet is `opkit devnet --chains 901,902`: one dev L1 and an interop L2 chain
// per ID, kept in memory (files such as secrets and the dependency set under --datadir).
func runInteropDevnet(c *cli.Context) error {
	var ids []uint64
	seen := map[uint64]bool{c.Uint64("l1.chain-id"): true}
	for _, f := range strings.Split(c.String("chains"), ",") {
		id, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("--chains: %q is not a chain ID", f)
		}
		if seen[id] {
			return fmt.Errorf("--chains: chain ID %d given twice or equal to --l1.chain-id", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if c.Duration("l1.block-time") < 100*time.Millisecond {
		return fmt.Errorf("--l1.block-time: %s is below the 100ms minimum", c.Duration("l1.block-time"))
	}
	if c.Uint64("l2.block-time") == 0 {
		return fmt.Errorf("--l2.block-time: must be at least 1 second")
	}
	if c.Duration("status-interval") <= 0 {
		return fmt.Errorf("--status-interval: must be positive")
	}
	if c.Bool("interop.mempool-filtering") && !c.Bool("supervisor") {
		return fmt.Errorf("--interop.mempool-filtering: the pools ask opkit supervisor, which --supervisor=false leaves out")
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := slog.Default()
	log := root.With("system", "devnet")
	// The flag's default is the single-chain devnet's, sized for its load; the interop
	// devnet keeps its own unless the flag is given.
	var channelDuration uint64
	if c.IsSet("batcher.max-channel-duration") {
		channelDuration = c.Uint64("batcher.max-channel-duration")
	}
	d, err := devnet.StartInterop(ctx, devnet.InteropConfig{
		DataDir: c.String("datadir"), ChainIDs: ids, L1ChainID: c.Uint64("l1.chain-id"),
		L1BlockTime: c.Duration("l1.block-time"), L2BlockTime: c.Uint64("l2.block-time"),
		NoSupervisor: !c.Bool("supervisor"), SequencerL1Confs: c.Uint64("sequencer.l1-confs"),
		MaxChannelDuration: channelDuration, MempoolFiltering: c.Bool("interop.mempool-filtering"), Logger: root,
	})
	if err != nil {
		return err
	}
	printInteropDevnet(c.App.Writer, d)
	go logInteropStatus(ctx, log, d, c.Duration("status-interval"))
	return waitAndClose(ctx, log, "interop devnet", d.Done, d.Err, d.Close)
}

// printInteropDevnet writes every endpoint and secret an external supervisor or a user needs.
func printInteropDevnet(w io.Writer, d *devnet.InteropDevnet) {
	fmt.Fprintf(w, "L1 JSON-RPC: %s\n", d.L1.HTTPEndpoint())
	for _, ch := range d.Chains {
		fmt.Fprintf(w, "chain %s: L2 JSON-RPC %s, rollup node %s, batcher from %s\n", ch.ID, ch.L2.HTTPEndpoint(), ch.Node.RPCEndpoint(), ch.Rollup.Genesis.SystemConfig.BatcherAddr)
		fmt.Fprintf(w, "  managed endpoint %s, JWT secret %s (in %s)\n", ch.Node.InteropEndpoint(), ch.Secret.Hex(), ch.SecretPath)
	}
	fmt.Fprintf(w, "dependency set: %s\n", d.DependencySetPath)
	if d.Supervisor != nil {
		fmt.Fprintf(w, "supervisor JSON-RPC: %s\n", d.Supervisor.RPCEndpoint())
	} else {
		fmt.Fprintln(w, "no supervisor: the nodes wait for one to dial their managed endpoints")
	}
	fmt.Fprintf(w, "CrossL2Inbox stand-in at %s on every chain; dev account 0 is funded on each\n", "0x4200000000000000000000000000000000000022")
}

// logInteropStatus logs each chain's local and cross heads.
func logInteropStatus(ctx context.Context, log *slog.Logger, d *devnet.InteropDevnet, every time.Duration) {
	onEachTick(ctx, every, func() {
		for _, ch := range d.Chains {
			sctx, cancel := context.WithTimeout(ctx, every)
			st, err := ch.Node.Driver().SyncStatus(sctx)
			cancel()
			if err != nil {
				log.Warn("interop devnet status", "chain", ch.ID, "err", err)
				continue
			}
			log.Info("interop devnet status", "chain", ch.ID, "l1_head", st.HeadL1.Number, "current_l1", st.CurrentL1.Number,
				"local_unsafe", st.UnsafeL2.Number, "cross_unsafe", st.CrossUnsafeL2.Number,
				"local_safe", st.LocalSafeL2.Number, "cross_safe", st.SafeL2.Number, "finalized", st.FinalizedL2.Number)
		}
	})
}
