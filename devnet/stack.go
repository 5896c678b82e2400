package devnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/rollup"
)

// BatcherConfig turns on the devnet's batcher: opkit batcher posting the sequencer's
// chain to the dev L1 from the rollup config's batcher account (dev account 1).
type BatcherConfig struct {
	// DA is calldata, blobs (the default), auto, or altda (an in-process DA server with a
	// Pebble primary, generic commitments, failing over to blobs on a 503).
	DA batcher.DAType
	// MaxChannelDuration closes a channel this many L1 blocks after the L1 origin of its
	// first block; default DefaultMaxChannelDuration.
	MaxChannelDuration uint64
	// PollInterval is how often the batcher reads the node's sync status; default 500ms.
	PollInterval time.Duration
	// MaxPendingTx is how many batch transactions may be in flight; default 1: the
	// batcher prepares concurrent blob transactions in parallel and takes nonces in the
	// order they finish, so with more than one in flight a later channel can land first.
	MaxPendingTx int
	// TargetNumFrames is the frames per channel, and blobs per blob transaction; default 1.
	// At devnet loads a channel of a couple of L1 blocks fits in one blob, and each
	// further blob costs the batcher its cell proofs.
	TargetNumFrames int
	// RPCPort serves admin_*; 0 picks a free port.
	RPCPort int
	// DAServerPort is the DA server's port in altda mode; 0 picks a free port.
	DAServerPort int
	// AltDARetryAfter is how long the batcher stays on Ethereum DA after a 503 without a
	// retry_after of its own; default 10s.
	AltDARetryAfter time.Duration
	// Registry receives the batcher's metrics.
	Registry prometheus.Registerer
}

// DefaultMaxChannelDuration is the devnet batcher's channel duration in L1 blocks. The
// count starts at the L1 origin of a channel's first block, which trails the L1 head, so
// a channel holds about duration - 3 L2 blocks, and each closed channel is one batch
// transaction, landed one at a time. With 2, that is a transaction about every L1 block,
// as fast as the batcher lands them on a busy machine, so a missed block is never made up
// and the safe lag only grows. 10 makes one about every 7 L1 blocks: at 100 transactions
// per 2 s L2 block some 65 KB of compressed batches, one blob.
const DefaultMaxChannelDuration = 10

// CollectorConfig turns on a collector following the devnet's L2.
type CollectorConfig struct {
	// Port serves the getter API; 0 picks a free port.
	Port int
	// Window is how many L2 blocks are retained; default collector.DefaultWindow.
	Window uint64
	// Registry receives the collector's metrics.
	Registry prometheus.Registerer
}

// withAltDA adds the alt_da section an AltDA devnet's rollup config carries: generic
// commitments, which need no challenge contract on L1.
func withAltDA(rcfg *rollup.Config) {
	rcfg.AltDAConfig = &rollup.AltDAConfig{
		CommitmentType: rollup.GenericCommitment, DAChallengeWindow: 16, DAResolveWindow: 16,
	}
}

func (d *Devnet) altDA() bool {
	return d.cfg.Batcher != nil && d.cfg.Batcher.DA == batcher.DAAltDA
}

// startDAServer starts the AltDA server the batcher writes to and the node reads from.
func (d *Devnet) startDAServer() error {
	var primary store.Store
	if dir := d.sub("da"); dir != "" {
		s, err := pebblestore.OpenWith(dir, pebblestore.Options{Logger: d.cfg.Logger.With("system", "da-server")})
		if err != nil {
			return fmt.Errorf("open the DA server's store: %w", err)
		}
		primary = s
	} else {
		primary = store.NewMemory()
	}
	srv, err := server.New(server.Config{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(d.cfg.Batcher.DAServerPort)), Primary: primary,
		GenericCommitment: true, FaultsAdmin: true, Logger: d.cfg.Logger.With("system", "da-server"),
	})
	if err != nil {
		_ = primary.Close()
		return fmt.Errorf("DA server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("DA server: %w", err)
	}
	d.DAServer = srv
	return nil
}

// startBatcher starts the batcher against the running node.
func (d *Devnet) startBatcher(ctx context.Context) error {
	bc := d.cfg.Batcher
	if bc.DA == "" {
		bc.DA = batcher.DABlobs
	}
	if bc.MaxChannelDuration == 0 {
		bc.MaxChannelDuration = DefaultMaxChannelDuration
	}
	if bc.PollInterval == 0 {
		bc.PollInterval = 500 * time.Millisecond
	}
	if bc.MaxPendingTx == 0 {
		bc.MaxPendingTx = 1
	}
	if bc.TargetNumFrames == 0 {
		bc.TargetNumFrames = 1
	}
	if bc.AltDARetryAfter == 0 {
		bc.AltDARetryAfter = 10 * time.Second
	}
	key := d.L1.Accounts()[1].Key
	cfg := batcher.Config{
		L1URL: d.L1.HTTPEndpoint(), L2URL: d.L2.HTTPEndpoint(), RollupURL: d.Node.RPCEndpoint(), Key: key,
		DAType: bc.DA, AltDAGeneric: true, AltDARetryAfter: bc.AltDARetryAfter,
		MaxChannelDuration: bc.MaxChannelDuration, SubSafetyMargin: 10, TargetNumFrames: bc.TargetNumFrames,
		MaxL1TxSize: 120_000, Compression: "zlib", NumConfirmations: 1,
		ResubmissionTimeout: 24 * time.Second, NetworkTimeout: 10 * time.Second,
		ReceiptInterval: 200 * time.Millisecond, PollInterval: bc.PollInterval, MaxPendingTx: bc.MaxPendingTx,
		FeeLimitMultiplier: 5, WaitNodeSync: true,
		RPCAddr: "127.0.0.1", RPCPort: bc.RPCPort, Log: d.cfg.Logger.With("system", "batcher"), Registry: bc.Registry,
	}
	if d.DAServer != nil {
		cfg.AltDAServer = d.DAServer.URL()
	}
	b, err := batcher.New(ctx, cfg, batcher.DefaultCodec())
	if err != nil {
		return fmt.Errorf("batcher: %w", err)
	}
	d.Batcher = b
	if err := b.Start(); err != nil {
		return fmt.Errorf("batcher: %w", err)
	}
	return nil
}

// startCollector starts a collector on the L2 and its getter API.
func (d *Devnet) startCollector(ctx context.Context) error {
	cc := d.cfg.Collector
	dir := d.sub("collector")
	if dir == "" {
		return errors.New("collector: the devnet needs a datadir for the collector's store")
	}
	col, err := collector.New(ctx, collector.Config{
		L2: d.L2.WSEndpoint(), DataDir: dir, Window: cc.Window,
		Logger: d.cfg.Logger.With("system", "collector"), Registerer: cc.Registry,
	})
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	d.Collector = col
	srv, err := collector.StartServer(col, net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.Port)))
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	d.CollectorServer = srv
	runCtx, cancel := context.WithCancel(context.Background())
	d.collectorStop = cancel
	d.collectorDone = make(chan error, 1)
	go func() { d.collectorDone <- col.Run(runCtx) }()
	return nil
}

// closeStack stops the parts started after the node, newest first.
func (d *Devnet) closeStack() []error {
	var errs []error
	if d.CollectorServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, d.CollectorServer.Close(ctx))
		cancel()
	}
	if d.collectorStop != nil {
		d.collectorStop()
		if err := <-d.collectorDone; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("collector: %w", err))
		}
	}
	if d.Collector != nil {
		errs = append(errs, d.Collector.Close())
	}
	if d.Batcher != nil {
		errs = append(errs, d.Batcher.Close())
	}
	if d.DAServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, d.DAServer.Close(ctx))
		cancel()
	}
	return errs
}
