package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/core"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/supervisor"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/node"
)

// InteropConfig configures an interop devnet: one dev L1, one L2 chain per chain ID, each
// with an op-geth, an opkit node in managed mode and a batcher posting calldata, and an
// opkit supervisor managing every node.
type InteropConfig struct {
	// DataDir holds each part's files (secrets, the dependency set, the supervisor's
	// database, cleared at start); empty: a temporary directory removed on Close. The
	// chains themselves are kept in memory, so every run starts new chains.
	DataDir string
	// ChainIDs of the L2 chains; default 901 and 902.
	ChainIDs  []uint64
	L1ChainID uint64
	// L1BlockTime seals an L1 block every period; default 2s. With a Clock it is measured
	// on that clock in whole seconds: an L1 block is sealed, its timestamp L1BlockTime after
	// its parent's, whenever the clock has passed that time (see PauseL1).
	L1BlockTime time.Duration
	// L2BlockTime in seconds; default 2.
	L2BlockTime uint64
	// NoSupervisor leaves the nodes waiting for an external supervisor.
	NoSupervisor bool
	// MempoolFiltering makes each op-geth ask the devnet's supervisor
	// (supervisor_checkAccessList) about every transaction naming CrossL2Inbox entries in
	// its access list before it enters the pool: a message that is not there, or not
	// cross-unsafe yet, is refused. Off, the pool takes any transaction and only the
	// supervisor judges the message, at block level.
	MempoolFiltering bool
	// SequencerL1Confs keeps L1 origins this far below the L1 head.
	SequencerL1Confs uint64
	// MaxChannelDuration of each batcher, in L1 blocks; default 2.
	MaxChannelDuration uint64
	L1PollInterval     time.Duration
	// Clock drives the sequencers and, when set, the L1 (see L1BlockTime); nil is the
	// wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// InteropChain is one L2 chain of an interop devnet.
type InteropChain struct {
	ID        interop.ChainID
	L2        *L2
	Node      *node.Node
	Batcher   *batcher.Batcher
	Rollup    *rollup.Config
	L2Genesis *core.Genesis
	// Secret authenticates a supervisor to the node's managed endpoint; SecretPath is
	// the file it is kept in (0x-hex).
	Secret     interop.Secret
	SecretPath string

	nodeCfg node.Config
}

// InteropDevnet is a running interop devnet.
type InteropDevnet struct {
	cfg        InteropConfig
	L1         *L1
	Chains     []*InteropChain
	Supervisor *supervisor.Supervisor
	// DependencySetPath is the dependency set the supervisor was started with.
	DependencySetPath string
	tmp               string
	supCfg            supervisor.Config
	interopRPC        string // the supervisor op-geth filters its pool with, if any

	feedMu     sync.Mutex
	feedPaused bool
	feedStop   chan struct{}
	feedDone   chan struct{}
}

// StartInterop starts an interop devnet.
func StartInterop(ctx context.Context, cfg InteropConfig) (*InteropDevnet, error) {
	if len(cfg.ChainIDs) == 0 {
		cfg.ChainIDs = []uint64{901, 902}
	}
	if cfg.L1BlockTime == 0 {
		cfg.L1BlockTime = 2 * time.Second
	}
	if cfg.MaxChannelDuration == 0 {
		cfg.MaxChannelDuration = 2
	}
	if cfg.L1PollInterval == 0 {
		cfg.L1PollInterval = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &InteropDevnet{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "opkit-interop-")
		if err != nil {
			return nil, fmt.Errorf("interop devnet: %w", err)
		}
		d.tmp, d.cfg.DataDir = dir, dir
	}
	RouteGethLog(cfg.Logger)
	var err error
	sealEvery := cfg.L1BlockTime
	if cfg.Clock != nil {
		sealEvery = 0 // sealed on the clock by feedL1
	}
	d.L1, err = StartL1(L1Config{ChainID: cfg.L1ChainID, BlockTime: sealEvery, Accounts: 2 + len(cfg.ChainIDs), Logger: cfg.Logger.With("system", "l1")})
	if err != nil {
		return nil, err
	}
	if cfg.Clock != nil {
		d.feedStop, d.feedDone = make(chan struct{}), make(chan struct{})
		go d.feedL1()
	}
	if cfg.MempoolFiltering && !cfg.NoSupervisor {
		// The execution clients start before the supervisor (it needs their nodes), and
		// dial it lazily: it is given a port now.
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		d.supCfg.RPCPort = port
		d.interopRPC = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	ids := make([]interop.ChainID, 0, len(cfg.ChainIDs))
	for i, id := range cfg.ChainIDs {
		c, err := d.startChain(ctx, i, id)
		if err != nil {
			return nil, fmt.Errorf("chain %d: %w", id, err)
		}
		ids = append(ids, c.ID)
	}
	deps := interop.NewDependencySet(ids...)
	data, err := json.MarshalIndent(deps, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dependency set: %w", err)
	}
	d.DependencySetPath = filepath.Join(d.cfg.DataDir, "dependency-set.json")
	if err := os.WriteFile(d.DependencySetPath, data, 0o644); err != nil {
		return nil, fmt.Errorf("write dependency set: %w", err)
	}
	if !cfg.NoSupervisor {
		// The chains live in memory, so a supervisor database left by an earlier run
		// describes chains that are gone: every run starts the supervisor afresh.
		if err := os.RemoveAll(filepath.Join(d.cfg.DataDir, "supervisor")); err != nil {
			return nil, fmt.Errorf("clear the supervisor database: %w", err)
		}
		nodes := make([]supervisor.NodeConfig, 0, len(d.Chains))
		for _, c := range d.Chains {
			nodes = append(nodes, supervisor.NodeConfig{Endpoint: c.Node.InteropEndpoint(), Secret: c.Secret})
		}
		d.supCfg = supervisor.Config{
			RPCPort: d.supCfg.RPCPort,
			L1RPC:   d.L1.HTTPEndpoint(), Nodes: nodes, DependencySet: deps, DataDir: d.cfg.DataDir,
			L1PollInterval: cfg.L1PollInterval, ReassertInterval: 2 * time.Second,
			Logger: cfg.Logger.With("system", "supervisor"),
		}
		d.Supervisor, err = supervisor.New(d.supCfg)
		if err != nil {
			return nil, err
		}
		// A restarted supervisor serves its API where the first one did.
		d.supCfg.RPCPort = portOf(d.Supervisor.RPCEndpoint())
	}
	ok = true
	return d, nil
}

// startChain plans chain id on the L1 genesis, with interop from genesis, and starts its
// execution client, node and batcher. Chain i's batcher posts with L1 dev account 2+i.
func (d *InteropDevnet) startChain(ctx context.Context, i int, id uint64) (*InteropChain, error) {
	cfg := d.cfg
	batcherKey := d.L1.Accounts()[2+i].Key
	g, rcfg, err := PlanL2(ChainPlan{
		L1Origin: d.L1.Backend().BlockChain().Genesis().Header(), L1ChainID: d.L1.ChainConfig().ChainID.Uint64(),
		L2ChainID: id, BlockTime: cfg.L2BlockTime, Batcher: d.L1.Accounts()[2+i].Address, Interop: true,
	})
	if err != nil {
		return nil, err
	}
	// op-geth names the interop fork Lagoon. With it active, a reorg or a replacement that
	// drops a block does not put the block's executing-message transactions (those naming
	// CrossL2Inbox entries in their access list) back in the pool: an invalidated block's
	// invalid message is gone with it, as on an OP Stack interop chain.
	// Set through the config's JSON form: go-ethereum builds without the fork (the OP
	// Stack's own module pins one) ignore the field.
	if err := activateLagoon(g); err != nil {
		return nil, err
	}
	c := &InteropChain{ID: interop.ChainID(id), Rollup: rcfg, L2Genesis: g}
	dir := filepath.Join(d.cfg.DataDir, strconv.FormatUint(id, 10))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := rollup.WriteConfig(filepath.Join(dir, rollupFile), rcfg); err != nil {
		return nil, err
	}
	c.SecretPath = filepath.Join(dir, "interop-jwt.hex")
	if c.Secret, err = interop.LoadOrCreateSecret(c.SecretPath); err != nil {
		return nil, err
	}
	c.L2, err = StartL2(L2Config{Genesis: g, InteropRPC: d.interopRPC, Logger: cfg.Logger.With("system", "l2", "chain", id)})
	if err != nil {
		return nil, err
	}
	// Kept from here on, so that Close stops whatever did start.
	d.Chains = append(d.Chains, c)
	c.nodeCfg = node.Config{
		Rollup: rcfg, L1ChainConfig: d.L1.ChainConfig(),
		L1URL: d.L1.HTTPEndpoint(), L2EngineURL: c.L2.EngineEndpoint(), JWTSecret: c.L2.JWTSecret(),
		Driver:           driver.Config{SequencerEnabled: true},
		SequencerL1Confs: cfg.SequencerL1Confs, MetricsDisabled: true,
		Interop:        &node.InteropConfig{Secret: c.Secret},
		L1PollInterval: cfg.L1PollInterval, Clock: cfg.Clock,
		Log: cfg.Logger.With("system", "node", "chain", id),
	}
	c.Node, err = node.Start(ctx, c.nodeCfg)
	if err != nil {
		return nil, err
	}
	// A restarted node serves where the first one did, so that the batcher and the
	// supervisor find it again.
	c.nodeCfg.RPCPort = portOf(c.Node.RPCEndpoint())
	c.nodeCfg.Interop = &node.InteropConfig{Secret: c.Secret, Port: portOf(c.Node.InteropEndpoint())}
	c.Batcher, err = batcher.New(ctx, batcher.Config{
		L1URL: d.L1.HTTPEndpoint(), L2URL: c.L2.HTTPEndpoint(), RollupURL: c.Node.RPCEndpoint(), Key: batcherKey,
		DAType: batcher.DACalldata, MaxChannelDuration: cfg.MaxChannelDuration, SubSafetyMargin: 10, TargetNumFrames: 1,
		MaxL1TxSize: 120_000, Compression: "zlib", NumConfirmations: 1,
		ResubmissionTimeout: 24 * time.Second, NetworkTimeout: 10 * time.Second,
		ReceiptInterval: 200 * time.Millisecond, PollInterval: cfg.L1PollInterval, MaxPendingTx: 4,
		FeeLimitMultiplier: 5, WaitNodeSync: true, RPCAddr: "127.0.0.1",
		Log: cfg.Logger.With("system", "batcher", "chain", id),
	}, batcher.DefaultCodec())
	if err != nil {
		return nil, fmt.Errorf("batcher: %w", err)
	}
	if err := c.Batcher.Start(); err != nil {
		return nil, fmt.Errorf("batcher: %w", err)
	}
	return c, nil
}

// Close stops the supervisor, then each chain's batcher, node and execution client, then
// L1.
func (d *InteropDevnet) Close() error {
	var errs []error
	if d.feedStop != nil {
		close(d.feedStop)
		<-d.feedDone
		d.feedStop = nil
	}
	if d.Supervisor != nil {
		errs = append(errs, d.Supervisor.Close())
	}
	for _, c := range d.Chains {
		if c.Batcher != nil {
			errs = append(errs, c.Batcher.Close())
		}
		if c.Node != nil {
			errs = append(errs, c.Node.Close())
		}
		if c.L2 != nil {
			errs = append(errs, c.L2.Close())
		}
	}
	if d.L1 != nil {
		errs = append(errs, d.L1.Close())
	}
	if d.tmp != "" {
		errs = append(errs, os.RemoveAll(d.tmp))
	}
	return errors.Join(errs...)
}

// Done is closed when any chain's node stops, by Close or by a critical error.
func (d *InteropDevnet) Done() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		cases := make([]<-chan struct{}, 0, len(d.Chains))
		for _, c := range d.Chains {
			cases = append(cases, c.Node.Done())
		}
		firstClosed(cases)
	}()
	return done
}

// Err is the critical error of the first node that stopped on one.
func (d *InteropDevnet) Err() error {
	for _, c := range d.Chains {
		if err := c.Node.Err(); err != nil {
			return fmt.Errorf("chain %s: %w", c.ID, err)
		}
	}
	return nil
}

// firstClosed returns once any of chs is closed.
func firstClosed(chs []<-chan struct{}) {
	first := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	for _, ch := range chs {
		go func() {
			select {
			case <-ch:
				select {
				case first <- struct{}{}:
				case <-stop:
				}
			case <-stop:
			}
		}()
	}
	<-first
}

// RestartNode stops chain i's node and starts it again on the same execution client,
// ports and secret: what it knew lives in the execution client's forkchoice, and the rest
// it learns again from the supervisor.
func (d *InteropDevnet) RestartNode(ctx context.Context, i int) error {
	c := d.Chains[i]
	if err := c.Node.Close(); err != nil && !errors.Is(err, context.Canceled) {
		d.cfg.Logger.Warn("Node closed with an error before its restart", "chain", c.ID, "err", err)
	}
	n, err := node.Start(ctx, c.nodeCfg)
	if err != nil {
		return fmt.Errorf("restart node of chain %s: %w", c.ID, err)
	}
	c.Node = n
	return nil
}

// RestartSupervisor stops the supervisor and starts it again on the same database and
// port.
func (d *InteropDevnet) RestartSupervisor() error {
	if d.Supervisor == nil {
		return errors.New("the devnet runs no supervisor")
	}
	if err := d.Supervisor.Close(); err != nil {
		return fmt.Errorf("stop supervisor: %w", err)
	}
	d.Supervisor = nil
	s, err := supervisor.New(d.supCfg)
	if err != nil {
		return fmt.Errorf("restart supervisor: %w", err)
	}
	d.Supervisor = s
	return nil
}

// PauseL1 stops sealing L1 blocks on the clock until resume is called, for a test that
// reorgs L1 or seals blocks itself. It is only for a devnet with a Clock.
func (d *InteropDevnet) PauseL1() (resume func()) {
	d.feedMu.Lock()
	d.feedPaused = true
	d.feedMu.Unlock()
	return func() {
		d.feedMu.Lock()
		d.feedPaused = false
		d.feedMu.Unlock()
	}
}

// feedL1 seals an L1 block whenever the clock has passed the head's timestamp plus the L1
// block time, so that L1 keeps pace with a clock that runs faster than the wall clock.
func (d *InteropDevnet) feedL1() {
	defer close(d.feedDone)
	gap := max(d.cfg.L1BlockTime.Truncate(time.Second), time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.feedStop:
			return
		case <-tick.C:
		}
		d.feedMu.Lock()
		if !d.feedPaused && d.L1.Head().Time+uint64(gap/time.Second) <= uint64(d.cfg.Clock.Now().Unix()) {
			// An empty block takes the gap; one with pending transactions (batches) is
			// sealed by Mine, one second after its parent when the clock is ahead.
			if _, err := d.L1.MineWithGap(gap); err != nil {
				if _, err := d.L1.Mine(); err != nil {
					d.cfg.Logger.Warn("Cannot seal an L1 block", "err", err)
				}
			}
		}
		d.feedMu.Unlock()
	}
}

// activateLagoon turns on op-geth's interop fork (lagoonTime) from genesis.
func activateLagoon(g *core.Genesis) error {
	data, err := json.Marshal(g.Config)
	if err != nil {
		return fmt.Errorf("encode L2 chain config: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("decode L2 chain config: %w", err)
	}
	fields["lagoonTime"] = 0
	fields["interopTime"] = 0 // its name in the op-geth the OP Stack's module pins
	if data, err = json.Marshal(fields); err != nil {
		return fmt.Errorf("encode L2 chain config: %w", err)
	}
	cfg := *g.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("decode L2 chain config: %w", err)
	}
	g.Config = &cfg
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
