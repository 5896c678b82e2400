package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/params"
)

// L1Config configures the in-process dev L1.
type L1Config struct {
	// DataDir holds the chain; empty keeps everything in memory. A datadir that already
	// holds a chain is resumed with the genesis it was created with.
	DataDir string
	// ChainID of a new chain; default 900.
	ChainID uint64
	// BlockTime seals a block every period; zero seals only on Mine.
	BlockTime time.Duration
	// Scheme is HashArchive (default) or Path.
	Scheme StateScheme
	// Accounts is how many dev accounts to fund at genesis; default 10.
	Accounts int
	// Host and Port of the JSON-RPC server (HTTP and websocket on one port);
	// defaults 127.0.0.1 and any free port.
	Host string
	Port int
	// GasLimit of every block; default 60M.
	GasLimit uint64
	// Logger receives the execution client's logs; nil discards them below warnings.
	Logger *slog.Logger
	// BeaconPort serves the beacon blob API (on Host); zero picks a free port.
	BeaconPort int
	// BlobRetention is how many blocks back the blobs of sealed blocks are kept; default
	// DefaultBlobRetention. With a DataDir they are kept on disk (DataDir/blobs) and
	// survive a restart; without one, in memory.
	BlobRetention uint64
	// UnsafeBlockSigner is stored in the SystemConfig stand-in at genesis; default dev
	// account 0, which also owns the SystemConfig.
	UnsafeBlockSigner common.Address
}

func (c *L1Config) applyDefaults() {
	if c.ChainID == 0 {
		c.ChainID = 900
	}
	if c.Scheme == "" {
		c.Scheme = HashArchive
	}
	if c.Accounts == 0 {
		c.Accounts = 10
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.GasLimit == 0 {
		c.GasLimit = 60_000_000
	}
	if c.BlobRetention == 0 {
		c.BlobRetention = DefaultBlobRetention
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
}

// L1 is an op-geth dev chain running in this process. Blocks are sealed by a simulated
// consensus client: on demand with Mine, and every BlockTime when that is set.
type L1 struct {
	cfg      L1Config
	client   *executionClient
	beacon   *catalyst.SimulatedBeacon
	accounts []Account
	genesis  *core.Genesis
	blobs    *blobStore
	// fetchQueue carries announced blob transactions to fetchSidecars; fetchPending counts
	// those not yet read.
	fetchQueue   chan common.Hash
	fetchPending atomic.Int64

	beaconSrv *http.Server
	beaconURL string

	// sealMu serialises sealing and forking: the simulated beacon is not safe for
	// concurrent use.
	sealMu sync.Mutex

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// l1Recommit is the dev L1 payload builder's rebuild interval (see StartL1).
const l1Recommit = 50 * time.Millisecond

// genesisFile is where a datadir keeps the genesis it was created with.
const genesisFile = "genesis.json"

// StartL1 starts the dev L1 and returns once its RPC is listening.
func StartL1(cfg L1Config) (*L1, error) {
	cfg.applyDefaults()
	accounts := DevAccounts(cfg.Accounts)
	genesis, err := l1Genesis(cfg, accounts)
	if err != nil {
		return nil, err
	}
	client, err := startExecutionClient(executionConfig{
		name:    "opkit-l1",
		dataDir: cfg.DataDir,
		host:    cfg.Host,
		port:    cfg.Port,
		modules: []string{"eth", "debug", "net", "web3", "txpool"},
		scheme:  cfg.Scheme,
		genesis: genesis,
		logger:  cfg.Logger,
		// The simulated consensus client waits for the builder's next payload update
		// after asking for a block. The builder publishes its first update at once and
		// then one per recommit interval, and stops after two seconds: with op-geth's
		// 2 s default a fast first build can land before the wait starts, leaving nothing
		// to wake it and the seal hanging forever. A short interval keeps updates coming
		// for the whole build window.
		recommit: l1Recommit,
		// The log search index costs more per block than the dev chain's own blocks do;
		// eth_getLogs still answers, by scanning blocks.
		noLogIndex: true,
	})
	if err != nil {
		return nil, fmt.Errorf("start dev L1: %w", err)
	}
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, client.backend)
	if err != nil {
		client.close()
		return nil, fmt.Errorf("start dev L1 consensus: %w", err)
	}
	blobDir := ""
	if cfg.DataDir != "" {
		blobDir = filepath.Join(cfg.DataDir, "blobs")
	}
	blobs, err := newBlobStore(blobDir, cfg.BlobRetention, cfg.Logger)
	if err != nil {
		client.close()
		return nil, fmt.Errorf("start dev L1: %w", err)
	}
	l1 := &L1{cfg: cfg, client: client, beacon: beacon, accounts: accounts, genesis: genesis, blobs: blobs,
		fetchQueue: make(chan common.Hash, maxPendingSidecars), stop: make(chan struct{})}
	if err := l1.startBeacon(); err != nil {
		client.close()
		return nil, fmt.Errorf("start dev L1: %w", err)
	}
	l1.wg.Add(2)
	go l1.watchPool(l1.stop)
	go l1.fetchSidecars(l1.stop)
	if cfg.BlockTime > 0 {
		l1.wg.Add(1)
		go l1.sealLoop()
	}
	return l1, nil
}

// l1Genesis returns the genesis of a new chain, or the one a datadir was created with.
func l1Genesis(cfg L1Config, accounts []Account) (*core.Genesis, error) {
	if cfg.DataDir != "" {
		path := filepath.Join(cfg.DataDir, genesisFile)
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			var g core.Genesis
			if err := json.Unmarshal(data, &g); err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			return &g, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	g := core.DeveloperGenesisBlock(cfg.GasLimit, nil)
	chainCfg := *g.Config
	chainCfg.ChainID = new(big.Int).SetUint64(cfg.ChainID)
	g.Config = &chainCfg
	g.Timestamp = uint64(time.Now().Unix())
	for _, a := range accounts {
		g.Alloc[a.Address] = types.Account{Balance: devBalance}
	}
	signer := cfg.UnsafeBlockSigner
	if signer == (common.Address{}) {
		signer = accounts[0].Address
	}
	for addr, acc := range l1ContractsAlloc(accounts[0].Address, signer) {
		g.Alloc[addr] = acc
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create L1 datadir: %w", err)
		}
		data, err := json.MarshalIndent(g, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode L1 genesis: %w", err)
		}
		if err := os.WriteFile(filepath.Join(cfg.DataDir, genesisFile), data, 0o644); err != nil {
			return nil, fmt.Errorf("write L1 genesis: %w", err)
		}
	}
	return g, nil
}

func (l *L1) sealLoop() {
	defer l.wg.Done()
	ticker := time.NewTicker(l.cfg.BlockTime)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
			if _, err := l.Mine(); err != nil {
				l.cfg.Logger.Warn("dev L1 failed to seal a block", "err", err)
			}
		}
	}
}

// Mine seals one block holding the pending transactions and returns its header.
func (l *L1) Mine() (*types.Header, error) {
	l.sealMu.Lock()
	defer l.sealMu.Unlock()
	select {
	case <-l.stop:
		return nil, errors.New("dev L1 is closed")
	default:
	}
	before := l.Head()
	l.awaitSidecars()
	l.beacon.Commit()
	head := l.Head()
	if head.Hash() == before.Hash() {
		return nil, fmt.Errorf("dev L1 did not seal a block on top of %d", before.Number)
	}
	l.recordBlobs(head)
	return head, nil
}

// MineWithGap seals an empty block whose timestamp is gap (whole seconds) after its
// parent's, ahead of the wall clock if need be, so tests can run an L1 timeline faster
// than real time. Pending transactions are an error: they belong in a Mine block.
func (l *L1) MineWithGap(gap time.Duration) (*types.Header, error) {
	l.sealMu.Lock()
	defer l.sealMu.Unlock()
	select {
	case <-l.stop:
		return nil, errors.New("dev L1 is closed")
	default:
	}
	before := l.Head()
	if err := l.beacon.AdjustTime(gap); err != nil {
		return nil, fmt.Errorf("seal dev L1 block %s after %d: %w", gap, before.Number, err)
	}
	head := l.Head()
	if head.Hash() == before.Hash() {
		return nil, fmt.Errorf("dev L1 did not seal a block on top of %d", before.Number)
	}
	l.recordBlobs(head)
	return head, nil
}

// MineUntil seals blocks until the head number reaches n.
func (l *L1) MineUntil(ctx context.Context, n uint64) error {
	for l.Head().Number.Uint64() < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := l.Mine(); err != nil {
			return err
		}
	}
	return nil
}

// Reorg makes the block with the given hash the head, dropping every block above it from
// the canonical chain; the next Mine builds on it, so a new branch grows from there.
// Transactions pending when Reorg is called are an error: they would land on either branch.
func (l *L1) Reorg(newHead common.Hash) error {
	l.sealMu.Lock()
	defer l.sealMu.Unlock()
	if err := l.beacon.Fork(newHead); err != nil {
		return fmt.Errorf("reorg dev L1 to %s: %w", newHead, err)
	}
	return nil
}

// Head is the current head header.
func (l *L1) Head() *types.Header { return l.client.backend.BlockChain().CurrentBlock() }

// Genesis is the chain's genesis specification.
func (l *L1) Genesis() *core.Genesis { return l.genesis }

// ChainConfig is the chain's configuration.
func (l *L1) ChainConfig() *params.ChainConfig { return l.client.backend.BlockChain().Config() }

// Accounts are the funded dev accounts.
func (l *L1) Accounts() []Account { return l.accounts }

// HTTPEndpoint is the JSON-RPC URL over HTTP.
func (l *L1) HTTPEndpoint() string { return l.client.HTTPEndpoint() }

// WSEndpoint is the JSON-RPC URL over websocket.
func (l *L1) WSEndpoint() string { return l.client.WSEndpoint() }

// Backend exposes the execution client for tests that need to look inside it.
func (l *L1) Backend() *eth.Ethereum { return l.client.backend }

// Close stops sealing and shuts the client down, flushing its database. It is safe to
// call more than once.
func (l *L1) Close() error {
	l.closeOnce.Do(func() {
		l.sealMu.Lock()
		close(l.stop)
		l.sealMu.Unlock()
		beaconErr := l.stopBeacon()
		l.wg.Wait()
		l.closeErr = errors.Join(beaconErr, l.beacon.Stop(), l.client.close())
	})
	return l.closeErr
}
