package devnet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/params"
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
