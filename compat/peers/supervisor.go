package peers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/devnet"
)

// OpSupervisorConfig configures an op-supervisor managing nodes in managed mode.
type OpSupervisorConfig struct {
	L1 *devnet.L1
	// Nodes are the managed nodes' interop (websocket) endpoints, JWTSecretPaths the
	// files of their secrets, in the same order.
	Nodes          []string
	JWTSecretPaths []string
	// RollupConfigPaths is a glob matching every chain's rollup.json; DependencySetPath
	// is the dependency set file.
	RollupConfigPaths string
	DependencySetPath string
	// Dir holds op-supervisor's database.
	Dir string
	// ExtraFlags are appended to op-supervisor's command line.
	ExtraFlags []string
	Logger     *slog.Logger
}

// OpSupervisor is a running op-supervisor v1.16.13.
type OpSupervisor struct {
	// Flags are the op-supervisor command line it was started with.
	Flags []string

	proc *process
	rpc  string

	closeOnce sync.Once
	closeErr  error
}

// OpSupervisorFlags is op-supervisor's command line for cfg, its RPC on rpcPort.
func OpSupervisorFlags(cfg OpSupervisorConfig, rpcPort int) []string {
	args := []string{
		"--l1-rpc=" + cfg.L1.HTTPEndpoint(),
		"--l2-consensus.nodes=" + strings.Join(cfg.Nodes, ","),
		"--l2-consensus.jwt-secret=" + strings.Join(cfg.JWTSecretPaths, ","),
		"--rollup-config-paths=" + cfg.RollupConfigPaths,
		"--dependency-set=" + cfg.DependencySetPath,
		"--datadir=" + filepath.Join(cfg.Dir, "op-supervisor"),
		"--rpc.addr=127.0.0.1",
		fmt.Sprintf("--rpc.port=%d", rpcPort),
		"--log.level=warn",
		"--log.format=logfmt",
	}
	return append(args, cfg.ExtraFlags...)
}

// StartOpSupervisor starts op-supervisor and returns once its RPC answers.
func StartOpSupervisor(ctx context.Context, cfg OpSupervisorConfig) (*OpSupervisor, error) {
	if cfg.L1 == nil || len(cfg.Nodes) == 0 || len(cfg.Nodes) != len(cfg.JWTSecretPaths) ||
		cfg.RollupConfigPaths == "" || cfg.DependencySetPath == "" || cfg.Dir == "" {
		return nil, errors.New("start op-supervisor: L1, Nodes with a JWT secret each, RollupConfigPaths, DependencySetPath and Dir are required")
	}
	bins, err := binaries(ctx)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &OpSupervisor{Flags: OpSupervisorFlags(cfg, port), rpc: fmt.Sprintf("http://127.0.0.1:%d", port)}
	s.proc, err = startProcess("op-supervisor", filepath.Join(bins, "op-supervisor"), s.Flags, peerLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	if err := s.proc.waitReady(ctx, func(ctx context.Context) error {
		c, err := rpc.DialContext(ctx, s.rpc)
		if err != nil {
			return err
		}
		defer c.Close()
		var modules map[string]string
		return c.CallContext(ctx, &modules, "rpc_modules")
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("start op-supervisor: %w", err), s.Close())
	}
	return s, nil
}

// RPCEndpoint is op-supervisor's JSON-RPC URL (supervisor_*).
func (s *OpSupervisor) RPCEndpoint() string { return s.rpc }

// Err is why op-supervisor exited, with its last output, if it exited without Close; else
// nil.
func (s *OpSupervisor) Err() error { return s.proc.Err() }

// Close stops op-supervisor.
func (s *OpSupervisor) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.proc.stop(30 * time.Second) })
	return s.closeErr
}
