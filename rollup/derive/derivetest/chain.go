package derivetest

import (
	"bytes"
	"fmt"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
)

// SpanFrames encodes L2 blocks as one span batch with the batcher's channel out and cuts
// the channel into at least n frames, as a batcher would post them.
func SpanFrames(cfg *rollup.Config, blocks []*types.Block, n int) ([]batch.Frame, error) {
	co, err := batch.NewSpanChannelOut(batch.ChannelOutConfig{TargetSize: 100_000, GenesisTime: cfg.Genesis.L2Time, ChainID: cfg.L2ChainID})
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		if _, err := co.AddBlock(b); err != nil {
			return nil, fmt.Errorf("block %d: %w", b.NumberU64(), err)
		}
	}
	if err := co.Close(); err != nil {
		return nil, err
	}
	var frames []batch.Frame
	size := co.ReadyBytes()/n + batch.FrameOverhead + 1
	for len(frames) == 0 || !frames[len(frames)-1].IsLast {
		f, err := co.OutputFrame(size)
		if err != nil {
			return nil, err
		}
		frames = append(frames, f)
	}
	if len(frames) < n {
		return nil, fmt.Errorf("%d frames, want %d", len(frames), n)
	}
	return frames, nil
}

// SameBlock compares derived payload attributes on parent with the block a sequencer
// built: header fields the attributes fix and every transaction byte for byte.
func SameBlock(p *engine.PayloadAttributes, parent common.Hash, b *types.Block) error {
	if parent != b.ParentHash() {
		return fmt.Errorf("parent %s, want %s", parent, b.ParentHash())
	}
	if p.Timestamp != b.Time() || p.Random != b.MixDigest() || p.SuggestedFeeRecipient != b.Coinbase() || !p.NoTxPool {
		return fmt.Errorf("header fields: ts %d/%d random %s/%s fee recipient %s/%s", p.Timestamp, b.Time(), p.Random, b.MixDigest(), p.SuggestedFeeRecipient, b.Coinbase())
	}
	if p.GasLimit == nil || *p.GasLimit != b.GasLimit() {
		return fmt.Errorf("gas limit %v, want %d", p.GasLimit, b.GasLimit())
	}
	if p.BeaconRoot == nil || b.BeaconRoot() == nil || *p.BeaconRoot != *b.BeaconRoot() {
		return fmt.Errorf("beacon root %v, want %v", p.BeaconRoot, b.BeaconRoot())
	}
	txs := b.Transactions()
	if len(p.Transactions) != len(txs) {
		return fmt.Errorf("%d transactions, want %d", len(p.Transactions), len(txs))
	}
	for i, tx := range txs {
		enc, err := tx.MarshalBinary()
		if err != nil {
			return err
		}
		if !bytes.Equal(enc, p.Transactions[i]) {
			return fmt.Errorf("transaction %d differs", i)
		}
	}
	return nil
}
