package devnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	gethengine "github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/params"

	opeth "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/engine"
)

// L2Config configures the in-process L2 execution client.
type L2Config struct {
	// DataDir holds the chain; empty keeps it in memory. An existing chain is resumed.
	DataDir string
	// Genesis of the chain, from PlanL2. On resume it must be the genesis the chain was
	// created with.
	Genesis *core.Genesis
	// Scheme is HashArchive (default: outputs at any height stay provable) or Path.
	Scheme StateScheme
	// Host and Port of the public JSON-RPC (HTTP and websocket share the port); AuthPort
	// serves the Engine API. Zero ports pick free ones.
	Host     string
	Port     int
	AuthPort int
	// JWTSecret guards the Engine API; zero makes one (kept in DataDir/jwt.hex when there
	// is a datadir, so a restart keeps it).
	JWTSecret [32]byte
	Logger    *slog.Logger
	// InteropRPC, when set, is a supervisor's RPC URL: op-geth then checks every
	// transaction that executes an interop message (supervisor_checkAccessList) before it
	// enters the pool, as op-geth's --rollup.interoprpc with --rollup.interopmempoolfiltering.
	InteropRPC string
}

// L2 is an op-geth OP chain execution client running in this process, driven by a rollup
// node over the Engine API.
type L2 struct {
	cfg       L2Config
	client    *executionClient
	secret    [32]byte
	secretDir string // a temp dir to remove on Close, when there is no datadir
	closeOnce sync.Once
	closeErr  error
}

// jwtFile is the name of the Engine API secret inside a datadir, in the hex form op-node's
// --l2.jwt-secret and geth's --authrpc.jwtsecret read.
const jwtFile = "jwt.hex"

// StartL2 starts the L2 execution client and returns once its RPC and Engine API listen.
func StartL2(cfg L2Config) (*L2, error) {
	if cfg.Genesis == nil {
		return nil, errors.New("start L2: genesis is required")
	}
	if cfg.Scheme == "" {
		cfg.Scheme = HashArchive
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	l2 := &L2{cfg: cfg}
	secretPath, err := l2.prepareSecret()
	if err != nil {
		return nil, err
	}
	client, err := startExecutionClient(executionConfig{
		name:          "opkit-l2",
		dataDir:       cfg.DataDir,
		host:          cfg.Host,
		port:          cfg.Port,
		modules:       []string{"eth", "debug", "net", "web3", "txpool"},
		scheme:        cfg.Scheme,
		genesis:       cfg.Genesis,
		logger:        cfg.Logger,
		jwtSecretPath: secretPath,
		authPort:      cfg.AuthPort,
		noLogIndex:    true,
		// The sequencer asks for a block one block time after starting it; with op-geth's
		// 2 s default the builder would not look at the pool again before then, and
		// transactions arriving after the start would wait a block.
		recommit:   l2Recommit,
		interopRPC: cfg.InteropRPC,
	})
	if err != nil {
		l2.removeSecretDir()
		return nil, fmt.Errorf("start dev L2: %w", err)
	}
	l2.client = client
	return l2, nil
}

// prepareSecret settles the JWT secret and writes it where op-geth reads it.
func (l *L2) prepareSecret() (string, error) {
	dir := l.cfg.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "opkit-l2-jwt-")
		if err != nil {
			return "", fmt.Errorf("start L2: %w", err)
		}
		dir, l.secretDir = tmp, tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create L2 datadir: %w", err)
	}
	path := filepath.Join(dir, jwtFile)
	secret := l.cfg.JWTSecret
	if secret == ([32]byte{}) {
		if existing, err := ReadJWTSecret(path); err == nil {
			secret = existing
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		} else if _, err := rand.Read(secret[:]); err != nil {
			return "", fmt.Errorf("make JWT secret: %w", err)
		}
	}
	if err := os.WriteFile(path, []byte(hexutil.Encode(secret[:])), 0o600); err != nil {
		return "", fmt.Errorf("write JWT secret: %w", err)
	}
	l.secret = secret
	return path, nil
}

// ReadJWTSecret reads a 32-byte secret written as hex, with or without 0x.
func ReadJWTSecret(path string) ([32]byte, error) {
	var secret [32]byte
	data, err := os.ReadFile(path)
	if err != nil {
		return secret, fmt.Errorf("read JWT secret: %w", err)
	}
	raw := common.FromHex(string(trimSpace(data)))
	if len(raw) != 32 {
		return secret, fmt.Errorf("JWT secret %s: %d bytes of hex, want 32", path, len(raw))
	}
	copy(secret[:], raw)
	return secret, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func (l *L2) removeSecretDir() {
	if l.secretDir != "" {
		os.RemoveAll(l.secretDir)
	}
}

// EngineEndpoint is the Engine API URL (HTTP, JWT-authenticated).
func (l *L2) EngineEndpoint() string { return l.client.AuthEndpoint() }

// HTTPEndpoint is the public JSON-RPC URL over HTTP.
func (l *L2) HTTPEndpoint() string { return l.client.HTTPEndpoint() }

// WSEndpoint is the public JSON-RPC URL over websocket.
func (l *L2) WSEndpoint() string { return l.client.WSEndpoint() }

// JWTSecret is the Engine API secret.
func (l *L2) JWTSecret() [32]byte { return l.secret }

// Backend exposes the execution client for tests that look inside it.
func (l *L2) Backend() *eth.Ethereum { return l.client.backend }

// ChainConfig is the L2 chain configuration.
func (l *L2) ChainConfig() *params.ChainConfig { return l.client.backend.BlockChain().Config() }

// Close shuts the client down, flushing its database. It is safe to call more than once.
func (l *L2) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.client.close()
		l.removeSecretDir()
	})
	return l.closeErr
}

// l2Recommit is how often the L2 payload builder adds newly arrived pool transactions.
const l2Recommit = 200 * time.Millisecond

// L2Miner seals L2 blocks on demand through the L2's Engine API, each starting with the
// L1-attributes deposit a sequencing rollup node puts first and holding every pending
// transaction of the L2's pool, so a test can drive an L2 block by block (a Load over
// it) with no clock. The L1 origin of a block is its parent's, or the next dev L1 block
// once that exists and is not newer than the L2 block, as the protocol allows. It is for
// one goroutine.
type L2Miner struct {
	l1       *L1
	l2       *L2
	rollup   *rollup.Config
	engine   *engine.Client
	accounts []Account
}

// NewL2Miner connects to the L2's Engine API. Accounts are the dev accounts funded in
// the L2 genesis (PlanL2's ChainPlan.Accounts).
func NewL2Miner(ctx context.Context, l1 *L1, l2 *L2, cfg *rollup.Config, accounts int) (*L2Miner, error) {
	if accounts <= 0 {
		accounts = 10
	}
	client, err := engine.Dial(ctx, l2.EngineEndpoint(), l2.JWTSecret())
	if err != nil {
		return nil, fmt.Errorf("L2 miner: %w", err)
	}
	return &L2Miner{l1: l1, l2: l2, rollup: cfg, engine: client, accounts: DevAccounts(accounts)}, nil
}

// Close releases the Engine API connection.
func (m *L2Miner) Close() { m.engine.Close() }

// Backend is the L2 execution client.
func (m *L2Miner) Backend() *eth.Ethereum { return m.l2.Backend() }

// ChainConfig is the L2 chain configuration.
func (m *L2Miner) ChainConfig() *params.ChainConfig { return m.l2.ChainConfig() }

// Accounts are the dev accounts funded on L2.
func (m *L2Miner) Accounts() []Account { return m.accounts }

// Head is the L2 head header.
func (m *L2Miner) Head() *types.Header { return m.l2.Backend().BlockChain().CurrentBlock() }

// Mine seals one L2 block on the head, with the pending pool transactions, makes it the
// head (and safe and finalized: nothing else decides those here) and returns its header.
func (m *L2Miner) Mine() (*types.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bc := m.l2.Backend().BlockChain()
	head := bc.CurrentBlock()
	parentBlock := bc.GetBlock(head.Hash(), head.Number.Uint64())
	if parentBlock == nil {
		return nil, fmt.Errorf("L2 miner: head block %d is not in the chain", head.Number)
	}
	parent, err := m.rollup.L2BlockRef(parentBlock)
	if err != nil {
		return nil, fmt.Errorf("L2 miner: %w", err)
	}
	origin, err := m.origin(parent)
	if err != nil {
		return nil, err
	}
	txs, err := m.pending()
	if err != nil {
		return nil, err
	}
	// The pool's transactions go in the attributes, as forced transactions: the payload
	// builder then includes every one or fails, where building from the pool would stop
	// at whatever it had added when the payload is fetched.
	attrs, err := m.rollup.PayloadAttributes(m.l1.ChainConfig(), m.rollup.Genesis.SystemConfig, parent, origin, txs, true)
	if err != nil {
		return nil, fmt.Errorf("L2 miner: %w", err)
	}
	fc := gethengine.ForkchoiceStateV1{HeadBlockHash: head.Hash(), SafeBlockHash: head.Hash(), FinalizedBlockHash: head.Hash()}
	id, err := m.engine.ForkchoiceUpdated(ctx, fc, attrs)
	if err != nil {
		return nil, fmt.Errorf("L2 miner: start block %d: %w", head.Number.Uint64()+1, err)
	}
	env, err := m.engine.GetPayload(ctx, *id)
	if err != nil {
		return nil, fmt.Errorf("L2 miner: build block %d: %w", head.Number.Uint64()+1, err)
	}
	payload := env.ExecutionPayload
	if err := m.engine.NewPayload(ctx, payload, *attrs.BeaconRoot); err != nil {
		return nil, fmt.Errorf("L2 miner: insert block %d: %w", payload.Number, err)
	}
	fc = gethengine.ForkchoiceStateV1{HeadBlockHash: payload.BlockHash, SafeBlockHash: payload.BlockHash, FinalizedBlockHash: payload.BlockHash}
	if _, err := m.engine.ForkchoiceUpdated(ctx, fc, nil); err != nil {
		return nil, fmt.Errorf("L2 miner: make block %d the head: %w", payload.Number, err)
	}
	h := bc.GetHeaderByHash(payload.BlockHash)
	if h == nil {
		return nil, fmt.Errorf("L2 miner: sealed block %d %s is not in the chain", payload.Number, payload.BlockHash)
	}
	return h, nil
}

// pending lists the pool's executable transactions, each sender's in nonce order, senders
// in address order.
func (m *L2Miner) pending() ([][]byte, error) {
	pool := m.l2.Backend().TxPool()
	// The pool drops included transactions when it catches up with the new head, which
	// it does in the background: wait for that, or the last block's would come back.
	if err := pool.Sync(); err != nil {
		return nil, fmt.Errorf("L2 miner: sync the pool: %w", err)
	}
	pending, _ := pool.Pending(txpool.PendingFilter{})
	senders := slices.SortedFunc(maps.Keys(pending), func(a, b common.Address) int { return a.Cmp(b) })
	var out [][]byte
	for _, from := range senders {
		for _, lazy := range pending[from] {
			tx := lazy.Resolve()
			if tx == nil {
				return nil, fmt.Errorf("L2 miner: pending transaction %s left the pool", lazy.Hash)
			}
			enc, err := tx.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("L2 miner: encode transaction %s: %w", tx.Hash(), err)
			}
			out = append(out, enc)
		}
	}
	return out, nil
}

// origin picks the L1 origin of the block after parent: the next L1 block when it exists
// and is not newer than the L2 block, else the parent's origin, within the drift limit.
func (m *L2Miner) origin(parent opeth.L2BlockRef) (*types.Header, error) {
	l1 := m.l1.Backend().BlockChain()
	cur := l1.GetHeaderByHash(parent.L1Origin.Hash)
	if cur == nil {
		return nil, fmt.Errorf("L2 miner: L1 origin %s of L2 block %d is not on the dev L1", parent.L1Origin.Hash, parent.Number)
	}
	ts := parent.Time + m.rollup.BlockTime
	if next := l1.GetHeaderByNumber(cur.Number.Uint64() + 1); next != nil && next.ParentHash == cur.Hash() && next.Time <= ts {
		return next, nil
	}
	if ts > cur.Time+m.rollup.MaxSequencerDrift {
		return nil, fmt.Errorf("L2 miner: L2 time %d is past the sequencer drift of L1 origin %d (time %d): the dev L1 needs a newer block", ts, cur.Number, cur.Time)
	}
	return cur, nil
}
