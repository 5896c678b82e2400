package derive_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/batch"
	"github.com/opkit/opkit/rollup/clock"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/derive/derivetest"
	"github.com/opkit/opkit/rollup/engine"
	rollupl1 "github.com/opkit/opkit/rollup/l1"
)

// askedFor records the batcher derivation asks the data source for at each L1 block.
type askedFor struct {
	src   derive.DataSource
	asked map[uint64]common.Address
}

func (a *askedFor) TxData(ctx context.Context, ref eth.L1BlockRef, batcher common.Address) ([][]byte, error) {
	a.asked[ref.Number] = batcher
	return a.src.TxData(ctx, ref, batcher)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeriveSequencedChain builds L2 blocks with a real sequencing node and op-geth,
// posts them as calldata batches from the batcher account to the dev L1, then derives
// from that L1 (through rollup/l1 and rollup/dasource, the engine as L2 source) and
// checks every attributes against the block the sequencer made. The blob path runs in
// compat/derive, without the race detector that makes KZG proofs too slow here.
func TestDeriveSequencedChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := devnet.Start(ctx, devnet.Config{
		L1BlockTime: time.Second, L2BlockTime: 1, NodeMetricsDisabled: true, L1PollInterval: 50 * time.Millisecond,
		Clock: clock.Scaled(time.Now(), 4), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close devnet: %v", err)
		}
	})
	cfg := d.Rollup
	l1, err := ethclient.DialContext(ctx, d.L1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := ethclient.DialContext(ctx, d.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()

	// User transactions, so batches carry more than empty blocks.
	accts := devnet.DevAccounts(3)
	user := accts[2]
	signer := types.LatestSignerForChainID(cfg.L2ChainID)
	var userTxs []common.Hash
	for i := 0; i < 6; i++ {
		tx := types.MustSignNewTx(user.Key, signer, &types.DynamicFeeTx{
			ChainID: cfg.L2ChainID, Nonce: uint64(i), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1e10), Gas: 21_000,
			To: &common.Address{0xee, byte(i)}, Value: big.NewInt(1),
		})
		if err := l2.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		userTxs = append(userTxs, tx.Hash())
	}
	// A user deposit and a gas limit change on L1: the sequencer takes both in at their
	// epoch, and derivation must make the same blocks from them.
	rDep, err := d.L1.BridgeETH(ctx, user, big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	const newGasLimit = 50_000_000
	rGas, err := d.L1.SetGasLimit(ctx, newGasLimit)
	if err != nil {
		t.Fatal(err)
	}
	events := max(rDep.BlockNumber.Uint64(), rGas.BlockNumber.Uint64())
	const minBlocks = 16
	waitFor(t, time.Minute, "the L2 chain past the L1 events and the user transactions", func() (bool, error) {
		b, err := l2.BlockByNumber(ctx, nil)
		if err != nil || b.NumberU64() < minBlocks {
			return false, err
		}
		ref, err := cfg.L2BlockRef(b)
		if err != nil || ref.L1Origin.Number <= events {
			return false, err
		}
		_, err = l2.TransactionReceipt(ctx, userTxs[len(userTxs)-1])
		return err == nil, nil
	})
	head, err := l2.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*types.Block
	for n := uint64(1); n <= head; n++ {
		b, err := l2.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}

	// Two span batches from the batcher's channel out, each cut into several calldata
	// frames: the first half of the blocks, then the rest in a later L1 block.
	half := len(blocks) / 2
	frames, err := derivetest.SpanFrames(cfg, blocks[:half], 3)
	if err != nil {
		t.Fatal(err)
	}
	later, err := derivetest.SpanFrames(cfg, blocks[half:], 2)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	for _, f := range frames {
		body = append(body, f.Data...)
	}
	batcher := accts[1]
	if batcher.Address != cfg.Genesis.SystemConfig.BatcherAddr {
		t.Fatalf("dev account 1 %s is not the batcher %s", batcher.Address, cfg.Genesis.SystemConfig.BatcherAddr)
	}
	l1Signer := types.LatestSignerForChainID(cfg.L1ChainID)
	nonce, err := l1.PendingNonceAt(ctx, batcher.Address)
	if err != nil {
		t.Fatal(err)
	}
	post := func(from devnet.Account, nonce uint64, data []byte) common.Hash {
		t.Helper()
		tx := types.MustSignNewTx(from.Key, l1Signer, &types.DynamicFeeTx{
			ChainID: cfg.L1ChainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11), Gas: 1_000_000,
			To: &cfg.BatchInboxAddress, Data: data,
		})
		if err := l1.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		return tx.Hash()
	}
	var sent []common.Hash
	for i, f := range frames {
		data, err := batch.TxData(f)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, post(batcher, nonce+uint64(i), data))
	}
	// Garbage from the batcher and a copy of the channel from a stranger: both ignored.
	sent = append(sent, post(batcher, nonce+uint64(len(frames)), []byte{0, 1, 2, 3}))
	stranger := accts[0]
	sNonce, err := l1.PendingNonceAt(ctx, stranger.Address)
	if err != nil {
		t.Fatal(err)
	}
	strangerData, _ := batch.TxData(batch.Frame{ID: batch.ChannelID{0x5}, Data: body, IsLast: true})
	sent = append(sent, post(stranger, sNonce, strangerData))
	var inclusion, last eth.L1BlockRef
	waitFor(t, time.Minute, "the batcher transactions on L1", func() (bool, error) {
		for _, h := range sent {
			r, err := l1.TransactionReceipt(ctx, h)
			if errors.Is(err, ethereum.NotFound) {
				return false, nil
			} else if err != nil {
				return false, err
			}
			hd, err := l1.HeaderByHash(ctx, r.BlockHash)
			if err != nil {
				return false, err
			}
			if h == sent[len(frames)-1] {
				inclusion = eth.BlockRefFromHeader(hd)
			}
			if hd.Number.Uint64() > last.Number {
				last = eth.BlockRefFromHeader(hd)
			}
		}
		return true, nil
	})
	var laterSent []common.Hash
	nonce, err = l1.PendingNonceAt(ctx, batcher.Address)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range later {
		data, err := batch.TxData(f)
		if err != nil {
			t.Fatal(err)
		}
		laterSent = append(laterSent, post(batcher, nonce+uint64(i), data))
	}
	var laterInclusion eth.L1BlockRef
	waitFor(t, time.Minute, "the second channel on L1", func() (bool, error) {
		r, err := l1.TransactionReceipt(ctx, laterSent[len(laterSent)-1])
		if errors.Is(err, ethereum.NotFound) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		hd, err := l1.HeaderByHash(ctx, r.BlockHash)
		if err != nil {
			return false, err
		}
		laterInclusion = eth.BlockRefFromHeader(hd)
		return true, nil
	})
	if laterInclusion.Number > last.Number {
		last = laterInclusion
	}

	l1src, err := rollupl1.Dial(ctx, d.L1.HTTPEndpoint(), rollupl1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l1src.Close()
	m := &derivetest.Metrics{}
	src, err := dasource.New(dasource.Config{Rollup: cfg, L1: l1src, Log: log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := engine.Dial(ctx, d.L2.EngineEndpoint(), d.L2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	l2src := engine.New(cfg, ec, log)
	data := &askedFor{src: src, asked: map[uint64]common.Address{}}
	dv := derive.New(cfg, d.L1.ChainConfig(), derive.Deps{
		L1: l1src, Data: data, L2: l2src, Log: log, Metrics: m,
	})
	safe, err := l2src.L2BlockRefByNumber(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dv.Reset(ctx, safe); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	// Until every block is derived and the last L1 block with a posted transaction was
	// read to its end (io.EOF there).
	idleAtLast := false
	for safe.Number < head || !idleAtLast {
		if time.Now().After(deadline) {
			t.Fatalf("derived up to %d of %d by the deadline, origin %v", safe.Number, head, dv.Origin().ID())
		}
		a, err := dv.NextAttributes(ctx, safe)
		if errors.Is(err, derive.ErrNotEnoughData) {
			continue
		} else if errors.Is(err, io.EOF) {
			idleAtLast = dv.Origin().Number >= last.Number
			time.Sleep(20 * time.Millisecond) // L1 seals a block every second
			continue
		} else if err != nil {
			t.Fatalf("derive after %d: %v", safe.Number, err)
		}
		if safe.Number == head {
			t.Fatalf("attributes after the last posted block: %+v", a)
		}
		want := blocks[safe.Number]
		if err := derivetest.SameBlock(a.Payload, a.Parent.Hash, want); err != nil {
			t.Fatalf("block %d: %v", want.NumberU64(), err)
		}
		from, lastOfSpan := inclusion, want.NumberU64() == uint64(half)
		if want.NumberU64() > uint64(half) {
			from, lastOfSpan = laterInclusion, want.NumberU64() == head
		}
		if a.DerivedFrom != from || a.DepositsOnly || a.IsLastInSpan != lastOfSpan || !a.Concluding {
			t.Fatalf("block %d derived from %v (want %v), deposits-only %v, last in span %v, concluding %v", want.NumberU64(), a.DerivedFrom.ID(), from.ID(), a.DepositsOnly, a.IsLastInSpan, a.Concluding)
		}
		if safe, err = cfg.L2BlockRef(want); err != nil {
			t.Fatal(err)
		}
	}
	// The SystemConfig on L1 names a new batcher: from that L1 block on, derivation reads
	// the new one's data.
	newBatcher := common.Address{0xba, 0x7c}
	rcpt, err := d.L1.SetBatcher(ctx, newBatcher)
	if err != nil {
		t.Fatal(err)
	}
	changed := rcpt.BlockNumber.Uint64()
	waitFor(t, time.Minute, "derivation past the batcher change", func() (bool, error) {
		_, err := dv.NextAttributes(ctx, safe)
		if errors.Is(err, io.EOF) || errors.Is(err, derive.ErrNotEnoughData) {
			return dv.Origin().Number > changed, nil
		}
		return false, fmt.Errorf("derive: %v", err)
	})
	for n, b := range data.asked {
		if want := map[bool]common.Address{true: newBatcher, false: batcher.Address}[n >= changed]; b != want {
			t.Fatalf("L1 block %d read for batcher %s, want %s (changed at %d)", n, b, want, changed)
		}
	}
	if data.asked[changed] != newBatcher {
		t.Fatalf("L1 block %d of the change not read for the new batcher", changed)
	}
	var deposits, newLimit int
	for _, b := range blocks {
		if txs := b.Transactions(); len(txs) > 1 && txs[1].Type() == types.DepositTxType {
			deposits++
		}
		if b.GasLimit() == newGasLimit {
			newLimit++
		}
	}
	if deposits != 1 || newLimit == 0 {
		t.Fatalf("%d blocks with a user deposit, %d with the new gas limit: the L1 events did not reach the compared blocks", deposits, newLimit)
	}
	if m.Count("data/"+derive.DropDataMalformed) != 1 || m.Count("batch/span/accept") != 2 || m.Count("batch/span_block/accept") != int(head) {
		t.Fatalf("counts %v", m.Counts())
	}
}
