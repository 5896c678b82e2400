package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup/clock"
)

const (
	// l2BlockTime is the L2 block time in seconds, as on OP mainnet.
	l2BlockTime = 2
	// l1Gap is the chain time between dev L1 blocks, as on Ethereum: six L2 blocks to an
	// L1 block.
	l1Gap = 12
	// sealLead is how long before a block's timestamp the sequencer seals it (its
	// default SealingDuration): the fake clock rests there between blocks.
	sealLead = 50 * time.Millisecond
)

// envInt reads a positive integer setting from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchBlocks and benchTxs size every chain the benchmarks build.
func benchBlocks() int { return envInt("OPKIT_BENCH_BLOCKS", 2000) }
func benchTxs() int    { return envInt("OPKIT_BENCH_TXS", 50) }

func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// chain is a sequencing opkit devnet whose sequencer runs on a fake clock: each Mine
// moves the clock one block time, from just before one block's seal time to just before
// the next one's, so the sequencer starts a block only once the load's transactions for
// it are in the pool and seals it at once. The dev L1 is sealed in step with the L2's
// chain time, one block per l1Gap seconds. A chain is a devnet.LoadChain.
type chain struct {
	d       *devnet.Devnet
	clk     *clock.Fake
	payload *payloadWatch
	txs     int // the load's transactions a block, besides the L1-attributes deposit

	mu       sync.Mutex
	l2Sealed map[uint64]time.Time // wall time each L2 block became the head
	l1Sealed map[uint64]time.Time // wall time each L1 block was sealed
}

func startChain(ctx context.Context) (*chain, error) {
	// The L2 genesis takes the L1 genesis time, which is now: start the clock before it
	// and move it to the first seal point once the chain exists.
	clk := clock.NewFake(time.Now().Add(-time.Minute))
	watch := newPayloadWatch()
	d, err := devnet.Start(ctx, devnet.Config{
		L2BlockTime: l2BlockTime, Clock: clk, NodeMetricsDisabled: true,
		L1PollInterval: 20 * time.Millisecond, Logger: slog.New(watch),
	})
	if err != nil {
		return nil, fmt.Errorf("start devnet: %w", err)
	}
	genesis := time.Unix(int64(d.Rollup.Genesis.L2Time), 0)
	clk.Advance(genesis.Add(-sealLead).Sub(clk.Now()))
	return &chain{d: d, clk: clk, payload: watch, l2Sealed: map[uint64]time.Time{}, l1Sealed: map[uint64]time.Time{}}, nil
}

// Backend is the L2 execution client.
func (c *chain) Backend() *eth.Ethereum { return c.d.L2.Backend() }

// ChainConfig is the L2 chain configuration.
func (c *chain) ChainConfig() *params.ChainConfig { return c.d.L2.ChainConfig() }

// Accounts are the dev accounts the L2 genesis funds.
func (c *chain) Accounts() []devnet.Account { return devnet.DevAccounts(10) }

// Head is the L2 head.
func (c *chain) Head() *types.Header { return c.d.L2.Backend().BlockChain().CurrentBlock() }

// Mine lets the sequencer build the next L2 block from the load's transactions in the
// pool, then seals L1 blocks up to the new block's time.
func (c *chain) Mine() (*types.Header, error) { return c.mineL2(c.txs) }

// mineL2 lets the sequencer build the next L2 block, holding txs transactions from the
// pool, then seals L1 blocks up to the new block's time.
func (c *chain) mineL2(txs int) (*types.Header, error) {
	bc := c.d.L2.Backend().BlockChain()
	want := bc.CurrentBlock().Number.Uint64() + 1
	c.payload.reset()
	// Start the block, and seal it only once op-geth has built it from the whole pool:
	// sealing interrupts a build still adding transactions.
	c.clk.Advance(sealLead)
	if err := c.payload.await(want, txs+1, time.Minute); err != nil {
		return nil, err
	}
	c.clk.Advance(l2BlockTime*time.Second - sealLead)
	deadline := time.Now().Add(time.Minute)
	for bc.CurrentBlock().Number.Uint64() < want {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the sequencer did not build L2 block %d within a minute", want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	h := bc.GetHeaderByNumber(want)
	if h == nil {
		return nil, fmt.Errorf("L2 block %d is not canonical", want)
	}
	c.mu.Lock()
	c.l2Sealed[want] = time.Now()
	c.mu.Unlock()
	for c.d.L1.Head().Time+l1Gap <= h.Time {
		if err := c.mineL1(h.Time - c.d.L1.Head().Time); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// mineL1 seals an L1 block gap seconds after the head, or one holding the pending
// batcher transactions (the dev L1 then picks the time, at least a second after the
// head).
func (c *chain) mineL1(gap uint64) error {
	pending, _ := c.d.L1.Backend().TxPool().Stats()
	var h *types.Header
	var err error
	if pending == 0 {
		h, err = c.d.L1.MineWithGap(time.Duration(gap) * time.Second)
	}
	if pending > 0 || err != nil {
		// A batcher transaction may have arrived after the pool was read.
		h, err = c.d.L1.Mine()
	}
	if err != nil {
		return fmt.Errorf("seal L1: %w", err)
	}
	c.mu.Lock()
	c.l1Sealed[h.Number.Uint64()] = time.Now()
	c.mu.Unlock()
	return nil
}

// drain keeps the chain going with empty L2 blocks (and L1 blocks in step) until done
// reports true: op-batcher measures its channel deadlines by the L1 origins of the L2
// blocks it has, so a chain that stopped would leave its last channel open for ever.
func (c *chain) drain(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		l1 := c.d.L1.Head().Number.Uint64()
		for c.d.L1.Head().Number.Uint64() == l1 {
			if _, err := c.mineL2(0); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("draining the batcher: %w", ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// build mines n loaded blocks and reports progress every 500.
func (c *chain) build(ctx context.Context, tb testing.TB, n, txs int) error {
	c.txs = txs
	load := devnet.NewLoad(c, devnet.LoadConfig{TxsPerBlock: txs, Seed: 1})
	start := time.Now()
	for i := 1; i <= n; i++ {
		if _, err := load.MineBlock(ctx); err != nil {
			return err
		}
		if i%500 == 0 || i == n {
			tb.Logf("built %d L2 blocks of %d transactions in %s (L1 head %d)", i, txs, time.Since(start).Round(time.Millisecond), c.d.L1.Head().Number)
		}
	}
	return nil
}

// l2Bytes sums the binary encodings of the non-deposit transactions of blocks 1..n:
// the L2 data a batcher has to post.
func (c *chain) l2Bytes(n uint64) (int, error) {
	bc := c.d.L2.Backend().BlockChain()
	total := 0
	for i := uint64(1); i <= n; i++ {
		b := bc.GetBlockByNumber(i)
		if b == nil {
			return 0, fmt.Errorf("L2 block %d missing", i)
		}
		for _, tx := range b.Transactions() {
			if tx.Type() == types.DepositTxType {
				continue
			}
			enc, err := tx.MarshalBinary()
			if err != nil {
				return 0, err
			}
			total += len(enc)
		}
	}
	return total, nil
}

// stopL2 stops the sequencer side, leaving the L1 running.
func (c *chain) stopL2() error {
	if err := c.d.Node.Close(); err != nil {
		return fmt.Errorf("stop the sequencer: %w", err)
	}
	return c.d.L2.Close()
}

func (c *chain) close() error { return c.d.Close() }

// payloadWatch is the devnet's log handler: it passes warnings on to stderr and picks
// op-geth's "Updated payload" lines (number and transaction count of each payload
// build), so that Mine knows when a block's build has taken the pool in. The devnet's
// execution clients pass their info lines on only to a handler enabled at debug level.
type payloadWatch struct {
	inner   slog.Handler
	updates chan payloadUpdate
}

type payloadUpdate struct{ number, txs uint64 }

func newPayloadWatch() *payloadWatch {
	return &payloadWatch{
		inner:   slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
		updates: make(chan payloadUpdate, 64),
	}
}

func (w *payloadWatch) Enabled(context.Context, slog.Level) bool { return true }

func (w *payloadWatch) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		return w.inner.Handle(ctx, r)
	}
	if r.Message != "Updated payload" {
		return nil
	}
	var u payloadUpdate
	r.Attrs(func(a slog.Attr) bool {
		var v uint64
		switch x := a.Value.Any().(type) {
		case uint64:
			v = x
		case int64:
			v = uint64(x)
		case int:
			v = uint64(x)
		}
		switch a.Key {
		case "number":
			u.number = v
		case "txs":
			u.txs = v
		}
		return true
	})
	select {
	case w.updates <- u:
	default: // nobody waits: Mine drains before it starts a block
	}
	return nil
}

func (w *payloadWatch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &payloadWatch{inner: w.inner.WithAttrs(attrs), updates: w.updates}
}

func (w *payloadWatch) WithGroup(name string) slog.Handler {
	return &payloadWatch{inner: w.inner.WithGroup(name), updates: w.updates}
}

func (w *payloadWatch) reset() {
	for {
		select {
		case <-w.updates:
		default:
			return
		}
	}
}

// await waits for a payload build of block number holding at least txs transactions.
func (w *payloadWatch) await(number uint64, txs int, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case u := <-w.updates:
			if u.number == number && u.txs >= uint64(txs) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("op-geth built no payload of block %d with %d transactions within %s", number, txs, timeout)
		}
	}
}
