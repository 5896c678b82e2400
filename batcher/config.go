package batcher

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/batcher/dafailover"
)

// DAType is the --data-availability-type.
type DAType string

const (
	DACalldata DAType = "calldata"
	DABlobs    DAType = "blobs"
	DAAuto     DAType = "auto"
	DAAltDA    DAType = "altda"
)

// ParseDAType checks a --data-availability-type value.
func ParseDAType(s string) (DAType, error) {
	switch t := DAType(s); t {
	case DACalldata, DABlobs, DAAuto, DAAltDA:
		return t, nil
	}
	return "", fmt.Errorf("%q is not one of calldata, blobs, auto, altda", s)
}

// Protocol and pool limits that bound the settings.
const (
	// MaxBlobsPerTx is the most blobs an Osaka L1 takes in one transaction.
	MaxBlobsPerTx = 6
	// MaxBlobFrameSize is a blob's capacity less the version byte.
	MaxBlobFrameSize = 130_044 - 1
)

// Config configures a Batcher.
type Config struct {
	L1URL, L2URL, RollupURL string
	Key                     *ecdsa.PrivateKey

	DAType DAType
	// AltDA server and mode (generic commitments when AltDAGeneric).
	AltDAServer        string
	AltDAGeneric       bool
	AltDAPutTimeout    time.Duration
	AltDAPartialMax    int
	AltDARetryAfter    time.Duration
	AltDAMaxRetries    int
	AltDABackoffMax    time.Duration
	MaxChannelDuration uint64
	SubSafetyMargin    uint64
	TargetNumFrames    int
	MaxL1TxSize        int
	Compression        string // zlib or brotli (brotli-10 and friends pass through)
	// SingularBatches builds channels of singular batches (--batch-type 0) instead of
	// span batches.
	SingularBatches bool
	// MaxBlocksPerSpanBatch starts a new span batch within a channel after this many
	// blocks (0: one span batch per channel).
	MaxBlocksPerSpanBatch int

	NumConfirmations    uint64
	ResubmissionTimeout time.Duration
	NetworkTimeout      time.Duration
	ReceiptInterval     time.Duration
	PollInterval        time.Duration
	MaxPendingTx        int
	FeeLimitMultiplier  uint64
	// CellProofTime is the L1's Osaka time (unix seconds): blob transactions carry cell
	// proofs (version-1 sidecars) from then on, blob proofs (version 0) before. 0: always
	// cell proofs.
	CellProofTime uint64

	// Stopped starts without submitting; admin_startBatcher starts it.
	Stopped bool
	// WaitNodeSync waits, before loading blocks, until the rollup node has read the L1
	// block of this account's last transaction; CheckRecentTxsDepth bounds the search
	// (0: the whole chain).
	WaitNodeSync        bool
	CheckRecentTxsDepth uint64

	Throttle ThrottleConfig

	// RPCAddr/RPCPort serve admin_*; RPCPort < 0 disables.
	RPCAddr string
	RPCPort int

	Log      *slog.Logger
	Registry prometheus.Registerer
}

// ThrottleConfig mirrors op-batcher's linear throttle: past LowerThreshold pending bytes
// the block builder is asked (miner_setMaxDASize) to cap transactions and blocks,
// harder as the backlog approaches UpperThreshold.
type ThrottleConfig struct {
	LowerThreshold, UpperThreshold           uint64
	TxSizeLowerLimit, TxSizeUpperLimit       uint64
	BlockSizeLowerLimit, BlockSizeUpperLimit uint64
}

func (c *Config) check() error {
	// In flag order, so the error names the first one missing.
	for _, f := range []struct{ name, v string }{{"--l1", c.L1URL}, {"--l2", c.L2URL}, {"--rollup-rpc", c.RollupURL}} {
		if f.v == "" {
			return fmt.Errorf("%s: required", f.name)
		}
	}
	if c.Key == nil {
		return errors.New("--private-key or --keystore: required")
	}
	if _, err := ParseDAType(string(c.DAType)); err != nil {
		return fmt.Errorf("--data-availability-type: %w", err)
	}
	if c.DAType == DAAltDA && c.AltDAServer == "" {
		return errors.New("--altda.da-server: required with --data-availability-type altda")
	}
	if c.TargetNumFrames < 1 || c.TargetNumFrames > MaxBlobsPerTx {
		return fmt.Errorf("--target-num-frames: %d is not in 1..%d (blobs per transaction)", c.TargetNumFrames, MaxBlobsPerTx)
	}
	if c.MaxL1TxSize < 100 || c.MaxL1TxSize > 128_000 {
		return fmt.Errorf("--max-l1-tx-size-bytes: %d is not in 100..128000", c.MaxL1TxSize)
	}
	switch c.Compression {
	case "zlib", "brotli", "brotli-9", "brotli-10", "brotli-11":
	default:
		return fmt.Errorf("--compression-algo: %q is not zlib or brotli", c.Compression)
	}
	if c.MaxBlocksPerSpanBatch < 0 {
		return fmt.Errorf("--max-blocks-per-span-batch: %d is negative", c.MaxBlocksPerSpanBatch)
	}
	if c.PollInterval <= 0 || c.ResubmissionTimeout <= 0 || c.NetworkTimeout <= 0 {
		return errors.New("--poll-interval, --resubmission-timeout and --network-timeout must be positive")
	}
	if c.MaxPendingTx < 1 {
		c.MaxPendingTx = 1
	}
	if c.NumConfirmations < 1 {
		return errors.New("--num-confirmations: must be at least 1")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	return nil
}

func (c *Config) failoverConfig() dafailover.Config {
	partial := c.AltDAPartialMax
	if partial == 0 {
		partial = dafailover.NoPartialRetries
	}
	return dafailover.Config{
		DefaultRetryAfter:   c.AltDARetryAfter,
		PartialMaxRetries:   partial,
		TransientMaxRetries: c.AltDAMaxRetries,
		BackoffMax:          c.AltDABackoffMax,
	}
}

func (c *Config) channelSettings() ChannelSettings {
	bt := SpanBatchType
	if c.SingularBatches {
		bt = SingularBatchType
	}
	return ChannelSettings{TargetNumFrames: c.TargetNumFrames, Compression: c.Compression, BatchType: bt, MaxBlocksPerSpanBatch: c.MaxBlocksPerSpanBatch}
}
