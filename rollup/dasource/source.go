package dasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive"
)

// L1 is what a Source reads from L1: rollup/l1.Source implements it.
type L1 interface {
	// InfoAndTxsByHash returns a block's header and transactions (an unknown hash wraps
	// ethereum.NotFound).
	InfoAndTxsByHash(ctx context.Context, hash common.Hash) (*types.Header, types.Transactions, error)
	// L1BlockRefByNumber returns the canonical block at n, wrapping ethereum.NotFound
	// past the head; used to tell whether an AltDA challenge window has passed.
	L1BlockRefByNumber(ctx context.Context, n uint64) (eth.L1BlockRef, error)
}

// Metrics counts what a Source drops; derive.Metrics implements it.
type Metrics interface {
	DataDropped(reason string)
}

// The reasons a Source passes to Metrics.DataDropped.
const (
	DropBadBlob            = "bad_blob"
	DropBadCommitment      = "altda_bad_commitment"
	DropCommitmentMismatch = "altda_commitment_type_mismatch"
	DropAltDATooLarge      = "altda_input_too_large"
)

// ErrMissingPastWindow: an AltDA input the DA server does not have, after its challenge
// window ended. The chain cannot be derived past it (critical).
var ErrMissingPastWindow = errors.New("altda input missing after its challenge window")

// ErrNoBeacon: a batcher blob transaction, but no beacon endpoint to fetch blobs from.
var ErrNoBeacon = errors.New("batcher blob transaction but no L1 beacon endpoint configured")

// MaxAltDAInputSize is the largest keccak-committed AltDA input derivation accepts; a
// larger one could not be posted to L1 in a challenge resolution, so it is skipped.
const MaxAltDAInputSize = 130672

// Config builds a Source.
type Config struct {
	Rollup *rollup.Config
	L1     L1
	// Beacon fetches blobs; nil refuses blocks with batcher blob transactions (critical),
	// as op-node refuses to derive without a beacon endpoint.
	Beacon *Beacon
	// AltDA fetches AltDA inputs (--altda.enabled); nil reads data as posted. It must be
	// set when the rollup config has an alt_da section and only then.
	AltDA *altda.Client
	// Log defaults to slog.Default(); Metrics to none.
	Log     *slog.Logger
	Metrics Metrics
}

// Stats counts what a Source skipped; every count is of items seen, since New.
type Stats struct {
	BadBlobs           uint64 // blobs whose content does not decode (skipped)
	BadCommitments     uint64 // AltDA items that are no commitment (skipped)
	CommitmentMismatch uint64 // AltDA commitments of the other type (skipped)
	AltDATooLarge      uint64 // keccak AltDA inputs over MaxAltDAInputSize (skipped)
	AltDAFetched       uint64 // AltDA inputs fetched
}

// Source finds the batcher data of L1 blocks. It implements derive.DataSource and is
// safe for concurrent use.
type Source struct {
	cfg       *rollup.Config
	l1        L1
	beacon    *Beacon
	da        *altda.Client
	daType    altda.CommitmentType
	signer    types.Signer
	log       *slog.Logger
	metrics   Metrics
	badBlobs  atomic.Uint64
	badComms  atomic.Uint64
	mismatch  atomic.Uint64
	tooLarge  atomic.Uint64
	daFetched atomic.Uint64
}

var _ derive.DataSource = (*Source)(nil)

// New checks cfg and makes a Source.
func New(cfg Config) (*Source, error) {
	if cfg.Rollup == nil || cfg.L1 == nil {
		return nil, errors.New("dasource: rollup config and L1 are required")
	}
	if (cfg.AltDA != nil) != (cfg.Rollup.AltDAConfig != nil) {
		return nil, fmt.Errorf("dasource: an AltDA client needs a rollup config with alt_da and the other way round (client set: %v, alt_da set: %v)", cfg.AltDA != nil, cfg.Rollup.AltDAConfig != nil)
	}
	s := &Source{
		cfg: cfg.Rollup, l1: cfg.L1, beacon: cfg.Beacon, da: cfg.AltDA,
		signer: types.LatestSignerForChainID(cfg.Rollup.L1ChainID),
		log:    cfg.Log, metrics: cfg.Metrics,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = derive.NoMetrics{}
	}
	if a := cfg.Rollup.AltDAConfig; a != nil {
		t, err := a.CommitmentTypeByte()
		if err != nil {
			return nil, fmt.Errorf("dasource: %w", err)
		}
		s.daType = altda.CommitmentType(t)
	}
	return s, nil
}

// Stats reports the skip counters.
func (s *Source) Stats() Stats {
	return Stats{
		BadBlobs: s.badBlobs.Load(), BadCommitments: s.badComms.Load(), CommitmentMismatch: s.mismatch.Load(),
		AltDATooLarge: s.tooLarge.Load(), AltDAFetched: s.daFetched.Load(),
	}
}

// TxData returns the batcher data of block ref in L1 order. A transaction counts when its
// type is legacy, access-list, dynamic-fee, blob or deposit, it is sent to the batch inbox,
// and its sender (under the L1 chain's latest signer) is batcher; receipt status does not
// matter. A blob transaction contributes its blobs (its calldata is ignored), any other its
// calldata. A blob whose content does not decode is skipped. On an AltDA chain, items
// starting with 0x01 are commitments replaced by their inputs.
//
// Errors: the block or its blobs unknown to L1 or the beacon node wrap derive.ErrReset (L1
// moved on under us); AltDA data lost past its window and blobs without a beacon endpoint
// wrap derive.ErrCritical; every other failure (timeouts, wrong answers, a pending AltDA
// input) wraps derive.ErrTemporary.
func (s *Source) TxData(ctx context.Context, ref eth.L1BlockRef, batcher common.Address) ([][]byte, error) {
	_, txs, err := s.l1.InfoAndTxsByHash(ctx, ref.Hash)
	if err != nil {
		if errors.Is(err, ethereum.NotFound) {
			return nil, derive.NewResetError(fmt.Errorf("L1 block %s: %w", ref, err))
		}
		return nil, derive.NewTemporaryError(fmt.Errorf("L1 block %s: %w", ref, err))
	}
	// items holds calldata, or nil where a blob goes (filled below, in order).
	var (
		items  [][]byte
		isBlob []bool
		hashes []common.Hash
	)
	for _, tx := range txs {
		if !s.isBatcherTx(tx, batcher) {
			continue
		}
		if tx.Type() != types.BlobTxType {
			items = append(items, tx.Data())
			isBlob = append(isBlob, false)
			continue
		}
		for _, h := range tx.BlobHashes() {
			hashes = append(hashes, h)
			items = append(items, nil)
			isBlob = append(isBlob, true)
		}
	}
	if len(hashes) > 0 {
		if s.beacon == nil {
			return nil, derive.NewCriticalError(fmt.Errorf("L1 block %s: %w", ref, ErrNoBeacon))
		}
		blobs, err := s.beacon.BlobsByHash(ctx, ref.Time, hashes)
		if errors.Is(err, ethereum.NotFound) {
			return nil, derive.NewResetError(fmt.Errorf("blobs of L1 block %s: %w", ref, err))
		} else if err != nil {
			return nil, derive.NewTemporaryError(fmt.Errorf("blobs of L1 block %s: %w", ref, err))
		}
		next := 0
		for i := range items {
			if !isBlob[i] {
				continue
			}
			blob := blobs[next]
			next++
			data, err := decodeBlob(blob)
			if err != nil {
				s.badBlobs.Add(1)
				s.metrics.DataDropped(DropBadBlob)
				s.log.Warn("skipping a batcher blob that does not decode", "l1", ref, "hash", hashes[next-1], "err", err)
				continue
			}
			items[i] = data
		}
	}
	out := make([][]byte, 0, len(items))
	for i, it := range items {
		if isBlob[i] && it == nil {
			continue // skipped bad blob
		}
		if s.da == nil {
			out = append(out, it)
			continue
		}
		data, keep, err := s.altDAInput(ctx, ref, it)
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, data)
		}
	}
	return out, nil
}

// isBatcherTx applies the batcher transaction rule.
func (s *Source) isBatcherTx(tx *types.Transaction, batcher common.Address) bool {
	if tx.Type() > types.BlobTxType && tx.Type() != types.DepositTxType {
		return false
	}
	if to := tx.To(); to == nil || *to != s.cfg.BatchInboxAddress {
		return false
	}
	// The sender is only recovered for transactions to the inbox: most L1 traffic is not.
	from, err := types.Sender(s.signer, tx)
	if err != nil {
		s.log.Warn("inbox transaction with an invalid signature", "tx", tx.Hash(), "err", err)
		return false
	}
	if from != batcher {
		s.log.Warn("inbox transaction from a sender that is not the batcher", "tx", tx.Hash(), "from", from, "batcher", batcher)
		return false
	}
	return true
}

// decodeBlob reads the batcher data out of a blob with the batch package's codec.
func decodeBlob(b *kzg4844.Blob) ([]byte, error) {
	bb := batch.Blob(*b)
	return bb.ToData()
}
