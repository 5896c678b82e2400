package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/core"

	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/collector"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/node"
)

// Config configures a whole devnet: the dev L1, the L2 execution client and a sequencing
// rollup node, all in this process and on loopback.
type Config struct {
	// DataDir keeps everything; an existing datadir is resumed. Empty: in memory.
	DataDir string
	// L1BlockTime seals an L1 block every period; zero seals only on L1.Mine.
	L1BlockTime time.Duration
	L1ChainID   uint64
	L1Scheme    StateScheme
	L2ChainID   uint64
	// L2BlockTime in seconds; default 2.
	L2BlockTime uint64
	// Ports; zero picks free ones.
	L1Port, L1BeaconPort, L2Port, L2AuthPort, NodeRPCPort, NodeMetricsPort int
	NodeMetricsDisabled                                                    bool
	// SequencerL1Confs keeps L1 origins this far below the L1 head.
	SequencerL1Confs uint64
	// SequencerStopped starts the node with its sequencer stopped.
	SequencerStopped bool
	// SequencerMaxSafeLag pauses sequencing while safe + lag <= unsafe; 0 disables.
	SequencerMaxSafeLag uint64
	L1PollInterval      time.Duration
	StatusInterval      time.Duration
	// Clock drives the sequencer; nil is the wall clock.
	Clock   clock.Clock
	Logger  *slog.Logger
	Version string

	// Batcher, when set, posts the L2 chain to L1 so that it becomes safe; in altda mode
	// it also starts a DA server. Collector, when set, follows the L2 (it needs DataDir).
	Batcher   *BatcherConfig
	Collector *CollectorConfig
}

// Devnet is a running devnet.
type Devnet struct {
	cfg       Config
	L1        *L1
	L2        *L2
	Node      *node.Node
	Rollup    *rollup.Config
	L2Genesis *core.Genesis

	// The parts Config turns on; nil when off.
	DAServer        *server.Server
	Batcher         *batcher.Batcher
	Collector       *collector.Collector
	CollectorServer *collector.Server

	collectorStop context.CancelFunc
	collectorDone chan error
}

// Names of the files a devnet datadir keeps beside the chains.
const (
	rollupFile    = "rollup.json"
	l2GenesisFile = "l2-genesis.json"
)

// Start starts L1, plans (or reloads) the L2 chain, then starts the L2 execution client
// and the node.
func Start(ctx context.Context, cfg Config) (*Devnet, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	RouteGethLog(cfg.Logger)
	d := &Devnet{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	var err error
	d.L1, err = StartL1(L1Config{
		DataDir: d.sub("l1"), ChainID: cfg.L1ChainID, BlockTime: cfg.L1BlockTime, Scheme: cfg.L1Scheme,
		Port: cfg.L1Port, BeaconPort: cfg.L1BeaconPort, Logger: cfg.Logger.With("system", "l1"),
	})
	if err != nil {
		return nil, err
	}
	if err := d.planOrLoad(); err != nil {
		return nil, err
	}
	if err := d.startL2(); err != nil {
		return nil, err
	}
	if d.altDA() {
		if err := d.startDAServer(); err != nil {
			return nil, err
		}
	}
	if err := d.startNode(ctx); err != nil {
		return nil, err
	}
	if d.cfg.Batcher != nil {
		if err := d.startBatcher(ctx); err != nil {
			return nil, err
		}
	}
	if d.cfg.Collector != nil {
		if err := d.startCollector(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return d, nil
}

func (d *Devnet) sub(name string) string {
	if d.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(d.cfg.DataDir, name)
}

// planOrLoad reads the L2 genesis and rollup config a datadir was created with, or plans
// a new L2 chain on the L1 genesis block and writes both.
func (d *Devnet) planOrLoad() error {
	if d.cfg.DataDir != "" {
		rcfg, rerr := rollup.LoadConfig(filepath.Join(d.cfg.DataDir, rollupFile))
		data, gerr := os.ReadFile(filepath.Join(d.cfg.DataDir, l2GenesisFile))
		switch {
		case rerr == nil && gerr == nil:
			var g core.Genesis
			if err := json.Unmarshal(data, &g); err != nil {
				return fmt.Errorf("read %s: %w", l2GenesisFile, err)
			}
			if l1g := d.L1.Backend().BlockChain().Genesis().Hash(); rcfg.Genesis.L1.Hash != l1g {
				return fmt.Errorf("%s anchors L2 to L1 block %s, but the L1 in this datadir starts at %s", rollupFile, rcfg.Genesis.L1.Hash, l1g)
			}
			d.Rollup, d.L2Genesis = rcfg, &g
			return nil
		case !errors.Is(rerr, os.ErrNotExist) && rerr != nil:
			return rerr
		case !errors.Is(gerr, os.ErrNotExist) && gerr != nil:
			return fmt.Errorf("read %s: %w", l2GenesisFile, gerr)
		}
	}
	l1Genesis := d.L1.Backend().BlockChain().Genesis().Header()
	g, rcfg, err := PlanL2(ChainPlan{
		L1Origin: l1Genesis, L1ChainID: d.L1.ChainConfig().ChainID.Uint64(),
		L2ChainID: d.cfg.L2ChainID, BlockTime: d.cfg.L2BlockTime,
	})
	if err != nil {
		return err
	}
	if d.altDA() {
		withAltDA(rcfg)
	}
	d.Rollup, d.L2Genesis = rcfg, g
	if d.cfg.DataDir == "" {
		return nil
	}
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("encode L2 genesis: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d.cfg.DataDir, l2GenesisFile), data, 0o644); err != nil {
		return fmt.Errorf("write L2 genesis: %w", err)
	}
	return rollup.WriteConfig(filepath.Join(d.cfg.DataDir, rollupFile), rcfg)
}

func (d *Devnet) startL2() error {
	var err error
	d.L2, err = StartL2(L2Config{
		DataDir: d.sub("l2"), Genesis: d.L2Genesis, Port: d.cfg.L2Port, AuthPort: d.cfg.L2AuthPort,
		Logger: d.cfg.Logger.With("system", "l2"),
	})
	return err
}

func (d *Devnet) startNode(ctx context.Context) error {
	var daURL string
	if d.DAServer != nil {
		daURL = d.DAServer.URL()
	}
	var err error
	d.Node, err = node.Start(ctx, node.Config{
		Rollup: d.Rollup, L1ChainConfig: d.L1.ChainConfig(),
		L1URL: d.L1.HTTPEndpoint(), L2EngineURL: d.L2.EngineEndpoint(), JWTSecret: d.L2.JWTSecret(),
		L1BeaconURL: d.L1.BeaconURL(), AltDAEnabled: daURL != "", AltDAServer: daURL,
		Driver: driver.Config{
			SequencerEnabled: true, SequencerStopped: d.cfg.SequencerStopped,
			SequencerMaxSafeLag: d.cfg.SequencerMaxSafeLag,
		},
		SequencerL1Confs: d.cfg.SequencerL1Confs,
		RPCPort:          d.cfg.NodeRPCPort, MetricsPort: d.cfg.NodeMetricsPort, MetricsDisabled: d.cfg.NodeMetricsDisabled,
		L1PollInterval: d.cfg.L1PollInterval, StatusInterval: d.cfg.StatusInterval,
		Clock: d.cfg.Clock, Log: d.cfg.Logger.With("system", "node"), Version: d.cfg.Version,
	})
	return err
}

// RestartL2 stops the L2 execution client and starts it again on the same ports and
// datadir, while the node keeps running: the node must ride through the outage.
func (d *Devnet) RestartL2() error {
	port, authPort := portOf(d.L2.HTTPEndpoint()), portOf(d.L2.EngineEndpoint())
	secret := d.L2.JWTSecret()
	if err := d.L2.Close(); err != nil {
		return fmt.Errorf("stop L2: %w", err)
	}
	l2, err := StartL2(L2Config{
		DataDir: d.sub("l2"), Genesis: d.L2Genesis, Port: port, AuthPort: authPort, JWTSecret: secret,
		Logger: d.cfg.Logger.With("system", "l2"),
	})
	if err != nil {
		return fmt.Errorf("restart L2: %w", err)
	}
	d.L2 = l2
	return nil
}

// Close stops the collector, the batcher and the DA server, then the node, then L2, then
// L1, flushing each datadir.
func (d *Devnet) Close() error {
	errs := d.closeStack()
	if d.Node != nil {
		errs = append(errs, d.Node.Close())
	}
	if d.L2 != nil {
		errs = append(errs, d.L2.Close())
	}
	if d.L1 != nil {
		errs = append(errs, d.L1.Close())
	}
	return errors.Join(errs...)
}
