package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/dasource"
	rollupl1 "github.com/opkit/opkit/rollup/l1"
)

// l1Scanner reads what the batcher posted to the dev L1, block by block, with opkit's
// own data source (calldata and blobs through the beacon API) and frame and channel
// decoders: which L1 block completed the channel carrying each L2 block, and how many
// bytes were posted. Channels are taken as complete once all their frames are on L1,
// whatever the derivation rules would make of their timing; the verifiers check that.
type l1Scanner struct {
	cfg     *rollup.Config
	l1      *rollupl1.Source
	src     *dasource.Source
	batcher common.Address

	next     uint64 // next L1 block to read
	channels map[batch.ChannelID]*partial
	// included maps an L2 block number to the L1 block where its channel completed
	// (the first time, if it was posted more than once).
	included map[uint64]uint64
	l1Time   map[uint64]uint64

	items, dataBytes, blobTxs, blobs, badItems int
}

type partial struct {
	frames map[uint16][]byte
	last   int // number of the closing frame; -1 until seen
}

func newScanner(ctx context.Context, l1 *devnet.L1, cfg *rollup.Config) (*l1Scanner, error) {
	src, err := rollupl1.Dial(ctx, l1.HTTPEndpoint(), rollupl1.Config{})
	if err != nil {
		return nil, err
	}
	ds, err := dasource.New(dasource.Config{
		Rollup: cfg, L1: src, Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: l1.BeaconURL()}), Log: warnLogger(),
	})
	if err != nil {
		src.Close()
		return nil, err
	}
	return &l1Scanner{
		cfg: cfg, l1: src, src: ds, batcher: cfg.Genesis.SystemConfig.BatcherAddr, next: 1,
		channels: map[batch.ChannelID]*partial{}, included: map[uint64]uint64{}, l1Time: map[uint64]uint64{},
	}, nil
}

func (s *l1Scanner) close() { s.l1.Close() }

// scan reads the L1 blocks up to the head.
func (s *l1Scanner) scan(ctx context.Context) error {
	head, err := s.l1.L1BlockRefByLabel(ctx, rollupl1.Latest)
	if err != nil {
		return err
	}
	for ; s.next <= head.Number; s.next++ {
		ref, err := s.l1.L1BlockRefByNumber(ctx, s.next)
		if err != nil {
			return err
		}
		s.l1Time[ref.Number] = ref.Time
		_, txs, err := s.l1.InfoAndTxsByHash(ctx, ref.Hash)
		if err != nil {
			return err
		}
		for _, tx := range txs {
			if tx.To() != nil && *tx.To() == s.cfg.BatchInboxAddress && len(tx.BlobHashes()) > 0 {
				s.blobTxs++
				s.blobs += len(tx.BlobHashes())
			}
		}
		items, err := s.src.TxData(ctx, ref, s.batcher)
		if err != nil {
			return fmt.Errorf("batcher data of L1 block %d: %w", ref.Number, err)
		}
		for _, item := range items {
			s.items++
			s.dataBytes += len(item)
			frames, err := batch.ParseTxData(item)
			if err != nil {
				s.badItems++
				continue
			}
			for _, f := range frames {
				if err := s.addFrame(f, ref.Number); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *l1Scanner) addFrame(f batch.Frame, l1Block uint64) error {
	p := s.channels[f.ID]
	if p == nil {
		p = &partial{frames: map[uint16][]byte{}, last: -1}
		s.channels[f.ID] = p
	}
	if _, dup := p.frames[f.Number]; dup {
		return nil
	}
	p.frames[f.Number] = f.Data
	if f.IsLast {
		p.last = int(f.Number)
	}
	if p.last < 0 || len(p.frames) != p.last+1 {
		return nil
	}
	delete(s.channels, f.ID)
	var body []byte
	for i := 0; i <= p.last; i++ {
		d, ok := p.frames[uint16(i)]
		if !ok {
			return nil // a gap: frame numbers past the last one
		}
		body = append(body, d...)
	}
	return s.readChannel(body, l1Block)
}

// readChannel records the L2 blocks of every batch in a complete channel.
func (s *l1Scanner) readChannel(body []byte, l1Block uint64) error {
	r, err := batch.NewChannelReader(bytes.NewReader(body), batch.MaxRLPBytesPerChannelFjord, true)
	if err != nil {
		return fmt.Errorf("channel completed in L1 block %d: %w", l1Block, err)
	}
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("channel completed in L1 block %d: %w", l1Block, err)
		}
		switch b := b.(type) {
		case *batch.RawSpanBatch:
			// Element i of a span is the block at RelTimestamp + i block times.
			first := b.RelTimestamp / s.cfg.BlockTime
			for i := range b.BlockTxCounts {
				s.include(first+uint64(i), l1Block)
			}
		case *batch.SingularBatch:
			s.include((b.Timestamp-s.cfg.Genesis.L2Time)/s.cfg.BlockTime, l1Block)
		}
	}
}

func (s *l1Scanner) include(l2, l1Block uint64) {
	if _, ok := s.included[l2]; !ok {
		s.included[l2] = l1Block
	}
}

// covered reports whether every L2 block 1..n is in a complete channel on L1.
func (s *l1Scanner) covered(n uint64) bool {
	for i := uint64(1); i <= n; i++ {
		if _, ok := s.included[i]; !ok {
			return false
		}
	}
	return true
}
