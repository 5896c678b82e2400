package main

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/batcher"
)

func batcherCommand() *cli.Command {
	const cmd = "batcher"
	str := func(name, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: envVars(cmd, name)}
	}
	u64 := func(name string, value uint64, usage string) cli.Flag {
		return &cli.Uint64Flag{Name: name, Value: value, Usage: usage, EnvVars: envVars(cmd, name)}
	}
	dur := func(name string, value time.Duration, usage string) cli.Flag {
		return &cli.DurationFlag{Name: name, Value: value, Usage: usage, EnvVars: envVars(cmd, name)}
	}
	integer := func(name string, value int, usage string) cli.Flag {
		return &cli.IntFlag{Name: name, Value: value, Usage: usage, EnvVars: envVars(cmd, name)}
	}
	boolean := func(name, usage string) cli.Flag {
		return &cli.BoolFlag{Name: name, Usage: usage, EnvVars: envVars(cmd, name)}
	}
	// op-batcher's names for the same flags, so its command lines carry over.
	alias := func(f cli.Flag, name string) cli.Flag {
		s := f.(*cli.StringFlag)
		s.Aliases = append(s.Aliases, name)
		s.EnvVars = append(s.EnvVars, envVars(cmd, name)...)
		return s
	}
	return &cli.Command{
		Name:  cmd,
		Usage: "post the L2 chain to L1 as calldata, blobs or AltDA commitments, with per-channel AltDA failover",
		Flags: []cli.Flag{
			alias(str("l1", "", "L1 JSON-RPC URL"), "l1-eth-rpc"),
			alias(str("l2", "", "L2 execution client JSON-RPC URL (blocks; miner_setMaxDASize when exposed)"), "l2-eth-rpc"),
			str("rollup-rpc", "", "rollup node JSON-RPC URL (optimism_syncStatus, optimism_rollupConfig; op-node or opkit node)"),
			str("private-key", "", "hex private key of the batcher account"),
			str("keystore", "", "encrypted keystore file of the batcher account (instead of --private-key)"),
			str("keystore.password", "", "file holding the keystore password"),
			str("data-availability-type", string(batcher.DACalldata), "calldata, blobs, auto (the cheaper of the two at the time) or altda"),
			str("altda.da-server", "", "AltDA server URL (with --data-availability-type altda)"),
			boolean("altda.da-service", "generic commitments: POST /put and post the commitment the server returns (default: keccak256 commitments to /put/<commitment>)"),
			dur("altda.put-timeout", 30*time.Second, "deadline of one PUT to the DA server"),
			integer("altda.partial-max-retries", 10, "resends of a body answered 201 before its commitment is posted anyway (0: post at once)"),
			dur("altda.retry-after", time.Minute, "how long new channels stay off AltDA after a 503 that names no retry_after, or after repeated errors"),
			integer("altda.max-retries", 5, "retries of a PUT that timed out or met a server error before its channel fails over"),
			u64("max-channel-duration", 0, "close a channel this many L1 blocks after the last submitted one's origin (0: no duration limit)"),
			u64("sub-safety-margin", 10, "L1 blocks kept between a channel's deadlines (channel timeout, sequencing window) and its closing"),
			integer("target-num-frames", 1, "frames per channel; for blobs also blobs per transaction (1..6)"),
			integer("max-l1-tx-size-bytes", 120_000, "largest calldata transaction payload (and AltDA frame)"),
			str("compression-algo", "zlib", "channel compression: zlib, brotli, brotli-9, brotli-10 or brotli-11 (brotli needs Fjord)"),
			u64("batch-type", batcher.SpanBatchType, "0: singular batches, 1: span batches (needs Delta; op-batcher's default is 0)"),
			integer("max-blocks-per-span-batch", 0, "start a new span batch within a channel after this many blocks (0: no limit)"),
			u64("num-confirmations", 10, "L1 blocks a batch transaction must be deep before it counts as confirmed"),
			dur("resubmission-timeout", 48*time.Second, "republish an unmined transaction with bumped fees after this long"),
			dur("network-timeout", 10*time.Second, "deadline of every L1, L2 and rollup node call"),
			dur("txmgr.receipt-query-interval", 12*time.Second, "how often receipts are polled"),
			u64("fee-limit-multiplier", 5, "bumped fees stop at this multiple of the current estimate"),
			u64("txmgr.cell-proof-time", 0, "the L1's Osaka time (unix seconds): blob transactions carry cell proofs from then on, one blob proof per blob before (0: always cell proofs)"),
			dur("poll-interval", 6*time.Second, "how often the rollup node's sync status is read"),
			integer("max-pending-tx", 1, "batch transactions in flight at once"),
			boolean("stopped", "start with submission stopped (admin_startBatcher starts it)"),
			boolean("wait-node-sync", "before loading blocks, wait until the rollup node has read past this account's last L1 transaction"),
			u64("check-recent-txs-depth", 0, "with --wait-node-sync, how many L1 blocks back to look for the last transaction (0: all)"),
			u64("throttle.unsafe-da-bytes-lower-threshold", 3_200_000, "pending L2 transaction bytes beyond which block building is throttled (0: never)"),
			u64("throttle.unsafe-da-bytes-upper-threshold", 12_800_000, "pending bytes at which throttling is strongest"),
			u64("throttle.tx-size-lower-limit", 150, "per-transaction DA size limit at the strongest throttle"),
			u64("throttle.tx-size-upper-limit", 20_000, "per-transaction DA size limit at the weakest throttle"),
			u64("throttle.block-size-lower-limit", 2_000, "per-block DA size limit at the strongest throttle"),
			u64("throttle.block-size-upper-limit", 130_000, "per-block DA size limit when not throttling"),
			str("rpc.addr", "127.0.0.1", "admin JSON-RPC listen address"),
			integer("rpc.port", 8545, "admin JSON-RPC port: admin_startBatcher, admin_stopBatcher, admin_flushBatcher (0 picks a free one)"),
			str("metrics.addr", "127.0.0.1", "/metrics and /health listen address"),
			integer("metrics.port", 7301, "/metrics and /health port (0 picks a free one)"),
			boolean("pprof.enabled", "serve /debug/pprof"),
			str("pprof.addr", "127.0.0.1", "pprof listen address"),
			integer("pprof.port", 6060, "pprof port (0 picks a free one)"),
			str("pprof.type", "", "write a profile of this type to --pprof.path: cpu (over the process's life) or heap, allocs, goroutine, block, mutex, threadcreate (at exit)"),
			str("pprof.path", "", "file for --pprof.type, or a directory for <type>.prof"),
		},
		Action: runBatcher,
	}
}

func batcherKey(c *cli.Context) (*ecdsa.PrivateKey, error) {
	pk, ks := c.String("private-key"), c.String("keystore")
	switch {
	case pk != "" && ks != "":
		return nil, fmt.Errorf("--private-key and --keystore: give one")
	case pk != "":
		key, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(pk), "0x"))
		if err != nil {
			return nil, fmt.Errorf("--private-key: %w", err)
		}
		return key, nil
	case ks != "":
		data, err := os.ReadFile(ks)
		if err != nil {
			return nil, fmt.Errorf("--keystore: %w", err)
		}
		pass := ""
		if p := c.String("keystore.password"); p != "" {
			raw, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("--keystore.password: %w", err)
			}
			pass = strings.TrimRight(string(raw), "\r\n")
		}
		k, err := keystore.DecryptKey(data, pass)
		if err != nil {
			return nil, fmt.Errorf("--keystore: %w", err)
		}
		return k.PrivateKey, nil
	}
	return nil, fmt.Errorf("--private-key or --keystore: required")
}

func batcherConfig(c *cli.Context) (batcher.Config, error) {
	key, err := batcherKey(c)
	if err != nil {
		return batcher.Config{}, err
	}
	da, err := batcher.ParseDAType(c.String("data-availability-type"))
	if err != nil {
		return batcher.Config{}, fmt.Errorf("--data-availability-type: %w", err)
	}
	var singular bool
	switch bt := c.Uint64("batch-type"); bt {
	case batcher.SingularBatchType:
		singular = true
	case batcher.SpanBatchType:
	default:
		return batcher.Config{}, fmt.Errorf("--batch-type: %d is not 0 (singular) or 1 (span)", bt)
	}
	for _, name := range []string{"rpc.port", "metrics.port"} {
		if p := c.Int(name); p < 0 || p > 65535 {
			return batcher.Config{}, fmt.Errorf("--%s: %d is not a port", name, p)
		}
	}
	return batcher.Config{
		L1URL: c.String("l1"), L2URL: c.String("l2"), RollupURL: c.String("rollup-rpc"), Key: key,
		DAType: da, AltDAServer: c.String("altda.da-server"), AltDAGeneric: c.Bool("altda.da-service"),
		AltDAPutTimeout: c.Duration("altda.put-timeout"), AltDAPartialMax: c.Int("altda.partial-max-retries"),
		AltDARetryAfter: c.Duration("altda.retry-after"), AltDAMaxRetries: c.Int("altda.max-retries"),
		MaxChannelDuration: c.Uint64("max-channel-duration"), SubSafetyMargin: c.Uint64("sub-safety-margin"),
		TargetNumFrames: c.Int("target-num-frames"), MaxL1TxSize: c.Int("max-l1-tx-size-bytes"),
		Compression: c.String("compression-algo"), SingularBatches: singular,
		MaxBlocksPerSpanBatch: c.Int("max-blocks-per-span-batch"),
		NumConfirmations:      c.Uint64("num-confirmations"), ResubmissionTimeout: c.Duration("resubmission-timeout"),
		NetworkTimeout: c.Duration("network-timeout"), ReceiptInterval: c.Duration("txmgr.receipt-query-interval"),
		FeeLimitMultiplier: c.Uint64("fee-limit-multiplier"), CellProofTime: c.Uint64("txmgr.cell-proof-time"), PollInterval: c.Duration("poll-interval"),
		MaxPendingTx: c.Int("max-pending-tx"), Stopped: c.Bool("stopped"),
		WaitNodeSync: c.Bool("wait-node-sync"), CheckRecentTxsDepth: c.Uint64("check-recent-txs-depth"),
		Throttle: batcher.ThrottleConfig{
			LowerThreshold: c.Uint64("throttle.unsafe-da-bytes-lower-threshold"), UpperThreshold: c.Uint64("throttle.unsafe-da-bytes-upper-threshold"),
			TxSizeLowerLimit: c.Uint64("throttle.tx-size-lower-limit"), TxSizeUpperLimit: c.Uint64("throttle.tx-size-upper-limit"),
			BlockSizeLowerLimit: c.Uint64("throttle.block-size-lower-limit"), BlockSizeUpperLimit: c.Uint64("throttle.block-size-upper-limit"),
		},
		RPCAddr: c.String("rpc.addr"), RPCPort: c.Int("rpc.port"),
	}, nil
}

func runBatcher(c *cli.Context) error {
	cfg, err := batcherConfig(c)
	if err != nil {
		return err
	}
	prof := &pprofConfig{enabled: c.Bool("pprof.enabled"), addr: c.String("pprof.addr"), port: c.Int("pprof.port"),
		typ: strings.ToLower(c.String("pprof.type")), path: c.String("pprof.path")}
	if err := prof.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.Default().With("system", "batcher")
	if err := prof.start(log); err != nil {
		return err
	}
	defer prof.stop(log)
	reg := newProcessRegistry()
	cfg.Log, cfg.Registry = log, reg
	b, err := batcher.New(ctx, cfg, batcher.DefaultCodec())
	if err != nil {
		return err
	}
	metrics, err := startMetricsServer(log, c.String("metrics.addr"), c.Int("metrics.port"), reg, b.Health())
	if err != nil {
		_ = b.Close()
		return err
	}
	if !cfg.Stopped {
		if err := b.Start(); err != nil {
			_ = b.Close()
			return err
		}
	}
	fmt.Fprintf(c.App.Writer, "batcher admin JSON-RPC: %s\nmetrics: %s\n", b.RPCEndpoint(), metrics.URL())
	<-ctx.Done()
	log.Info("shutting down batcher")
	err = b.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if merr := metrics.Close(sctx); merr != nil && err == nil {
		err = merr
	}
	return err
}
