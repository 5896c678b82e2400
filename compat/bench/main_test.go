package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/driver"
	rollupl1 "github.com/opkit/opkit/rollup/l1"
	"github.com/opkit/opkit/rollup/node"
)

// The opkit verifier runs as a child process of the test binary, so that its CPU time is
// its own and not its op-geth's: the test binary, started again with childEnv set, runs
// the node from the configuration file named by childConfigEnv instead of the tests.
const (
	childEnv       = "OPKIT_BENCH_CHILD"
	childConfigEnv = "OPKIT_BENCH_CHILD_CONFIG"
	// childProfileEnv names a file for the child's CPU profile (OPKIT_BENCH_CPUPROFILE
	// set for the benchmark).
	childProfileEnv = "OPKIT_BENCH_CHILD_CPUPROFILE"
)

// verifierConfig is what the child verifier is told.
type verifierConfig struct {
	L1URL, BeaconURL, EngineURL string
	JWTSecret                   common.Hash
	RollupPath, L1ConfigPath    string
	RPCPort                     int
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "verifier" {
		if err := verifierMain(); err != nil {
			fmt.Fprintln(os.Stderr, "opkit verifier:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// verifierMain is the child process: the verifier, under a CPU profile when asked.
func verifierMain() error {
	if p := os.Getenv(childProfileEnv); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return runVerifier(os.Getenv(childConfigEnv))
}

// runVerifier runs an opkit rollup node without a sequencer, deriving from the dev L1's
// calldata and blobs, until SIGINT or SIGTERM.
func runVerifier(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg verifierConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rcfg, err := rollup.LoadConfig(cfg.RollupPath)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(cfg.L1ConfigPath)
	if err != nil {
		return err
	}
	var l1cfg params.ChainConfig
	if err := json.Unmarshal(raw, &l1cfg); err != nil {
		return fmt.Errorf("%s: %w", cfg.L1ConfigPath, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := warnLogger()
	l1, err := rollupl1.Dial(ctx, cfg.L1URL, rollupl1.Config{})
	if err != nil {
		return err
	}
	defer l1.Close()
	src, err := dasource.New(dasource.Config{
		Rollup: rcfg, L1: l1, Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: cfg.BeaconURL}), Log: log,
	})
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := node.Start(startCtx, node.Config{
		Rollup: rcfg, L1ChainConfig: &l1cfg, L1URL: cfg.L1URL, L2EngineURL: cfg.EngineURL, JWTSecret: cfg.JWTSecret,
		Driver: driver.Config{}, L1BeaconURL: cfg.BeaconURL, Data: src,
		RPCAddr: "127.0.0.1", RPCPort: cfg.RPCPort, MetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Log: log,
	})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-n.Done():
		err = n.Err()
	}
	if cerr := n.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
