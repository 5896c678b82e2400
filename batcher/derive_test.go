package batcher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/derive/derivetest"
	"github.com/opkit/opkit/rollup/l1"
)

// dataSource hands derivation the batcher data of an L1 block: calldata, blob contents
// (from the sidecars relayed through the proxy) and AltDA preimages.
type dataSource struct{ e *env }

func (s dataSource) TxData(ctx context.Context, ref eth.L1BlockRef, from common.Address) ([][]byte, error) {
	rcfg := s.e.dn.Rollup
	blk, err := s.e.l1.BlockByHash(ctx, ref.Hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", derive.ErrTemporary, err)
	}
	signer := types.LatestSignerForChainID(rcfg.L1ChainID)
	var out [][]byte
	for _, tx := range blk.Transactions() {
		if tx.To() == nil || *tx.To() != rcfg.BatchInboxAddress {
			continue
		}
		if sender, err := types.Sender(signer, tx); err != nil || sender != from {
			continue
		}
		switch {
		case tx.Type() == types.BlobTxType:
			sc := s.e.proxy.sidecar(tx.Hash())
			if sc == nil {
				return nil, fmt.Errorf("blob tx %s not relayed", tx.Hash())
			}
			for i := range sc.Blobs {
				b := batch.Blob(sc.Blobs[i])
				if data, err := b.ToData(); err == nil {
					out = append(out, data)
				}
			}
		case len(tx.Data()) > 0 && tx.Data()[0] == 0x01:
			comm, err := altda.DecodeCommitment(tx.Data()[1:])
			if err != nil {
				continue
			}
			data, err := s.e.daCli.Get(ctx, comm)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", derive.ErrTemporary, err)
			}
			out = append(out, data)
		default:
			out = append(out, tx.Data())
		}
	}
	return out, nil
}

type l2Source struct{ e *env }

func (l l2Source) ref(b *types.Block, err error) (eth.L2BlockRef, error) {
	if err != nil {
		return eth.L2BlockRef{}, err
	}
	return l.e.dn.Rollup.L2BlockRef(b)
}

func (l l2Source) L2BlockRefByNumber(ctx context.Context, n uint64) (eth.L2BlockRef, error) {
	return l.ref(l.e.l2.BlockByNumber(ctx, new(big.Int).SetUint64(n)))
}

func (l l2Source) L2BlockRefByHash(ctx context.Context, h common.Hash) (eth.L2BlockRef, error) {
	return l.ref(l.e.l2.BlockByHash(ctx, h))
}

func (l l2Source) SystemConfigByL2Hash(ctx context.Context, h common.Hash) (rollup.SystemConfig, error) {
	b, err := l.e.l2.BlockByHash(ctx, h)
	if err != nil {
		return rollup.SystemConfig{}, err
	}
	return rollup.SystemConfigFromL2Block(l.e.dn.Rollup, b)
}

// deriveUpTo runs opkit's derivation over the L1 the batcher posted to and checks that
// it yields L2 blocks 1..n exactly as the sequencer built them.
func (e *env) deriveUpTo(ctx context.Context, n uint64) *derivetest.Metrics {
	t := e.t
	src, err := l1.Dial(ctx, e.dn.L1.HTTPEndpoint(), l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m := &derivetest.Metrics{}
	dv := derive.New(e.dn.Rollup, e.dn.L1.ChainConfig(), derive.Deps{
		L1: src, Data: dataSource{e}, L2: l2Source{e}, Log: quietLog(), Metrics: m,
	})
	safe, err := (l2Source{e}).L2BlockRefByNumber(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dv.Reset(ctx, safe); err != nil {
		t.Fatal(err)
	}
	for safe.Number < n {
		a, err := dv.NextAttributes(ctx, safe)
		switch {
		case errors.Is(err, derive.ErrNotEnoughData):
			continue
		case errors.Is(err, io.EOF):
			select {
			case <-ctx.Done():
				t.Fatalf("derived up to %d of %d; origin %v", safe.Number, n, dv.Origin().ID())
			case <-time.After(50 * time.Millisecond):
			}
			continue
		case err != nil:
			t.Fatalf("derive after %d: %v", safe.Number, err)
		}
		want, err := e.l2.BlockByNumber(ctx, new(big.Int).SetUint64(safe.Number+1))
		if err != nil {
			t.Fatal(err)
		}
		if a.DepositsOnly {
			t.Fatalf("block %d derived as a forced empty batch", want.NumberU64())
		}
		if a.Parent.Hash != want.ParentHash() || a.Payload.Timestamp != want.Time() {
			t.Fatalf("block %d: derived parent %s time %d, sequencer %s %d", want.NumberU64(), a.Parent.Hash, a.Payload.Timestamp, want.ParentHash(), want.Time())
		}
		txs := want.Transactions()
		if len(a.Payload.Transactions) != len(txs) {
			t.Fatalf("block %d: %d derived txs, %d in the block", want.NumberU64(), len(a.Payload.Transactions), len(txs))
		}
		for i, tx := range txs {
			raw, _ := tx.MarshalBinary()
			if !bytes.Equal(raw, a.Payload.Transactions[i]) {
				t.Fatalf("block %d tx %d differs", want.NumberU64(), i)
			}
		}
		if safe, err = e.dn.Rollup.L2BlockRef(want); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// opkit's derivation, reading what the batcher posted, rebuilds the sequencer's chain,
// in every DA mode.
func TestVerifierDerivesPostedChain(t *testing.T) {
	for _, da := range []batcher.DAType{batcher.DACalldata, batcher.DABlobs, batcher.DAAltDA} {
		t.Run(string(da), func(t *testing.T) {
			e := startEnv(t)
			if da == batcher.DAAltDA {
				e.startDA(false)
			}
			ctx := testCtx(t, 120*time.Second)
			e.sendL2Txs(ctx, 4)
			e.waitL2(ctx, 6)
			e.startBatcher(e.config(da))
			e.waitPosted(ctx, 6)
			m := e.deriveUpTo(ctx, 6)
			if m.Count("batch/span/accept") == 0 {
				t.Fatalf("no span batch accepted: %v", m.Counts())
			}
		})
	}
}
