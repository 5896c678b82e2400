package node

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/eth"
)

// L1HeaderSource reads L1 headers by number or label.
type L1HeaderSource interface {
	HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error)
}

// L1Signals receives L1 changes.
type L1Signals interface {
	OnL1Head(ctx context.Context, ref eth.L1BlockRef) error
	OnL1Safe(ctx context.Context, ref eth.L1BlockRef) error
	OnL1Finalized(ctx context.Context, ref eth.L1BlockRef) error
}

// l1Watcher polls L1's latest, safe and finalized blocks and signals each change. Polling
// works over plain HTTP and sees reorgs as a changed hash, with no subscription to lose.
type l1Watcher struct {
	src      L1HeaderSource
	sig      L1Signals
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	started time.Time
	lastOK  time.Time
	lastErr error

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startL1Watcher(src L1HeaderSource, sig L1Signals, interval, timeout time.Duration, log *slog.Logger) *l1Watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &l1Watcher{src: src, sig: sig, interval: interval, timeout: timeout, log: log, cancel: cancel, started: time.Now()}
	w.wg.Add(1)
	go w.loop(ctx)
	return w
}

func (w *l1Watcher) loop(ctx context.Context) {
	defer w.wg.Done()
	labels := []struct {
		name  string
		num   rpc.BlockNumber
		on    func(context.Context, eth.L1BlockRef) error
		last  eth.L1BlockRef
		ready bool
	}{
		{name: "latest", num: rpc.LatestBlockNumber, on: w.sig.OnL1Head},
		{name: "safe", num: rpc.SafeBlockNumber, on: w.sig.OnL1Safe},
		{name: "finalized", num: rpc.FinalizedBlockNumber, on: w.sig.OnL1Finalized},
	}
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for {
		for i := range labels {
			l := &labels[i]
			reqCtx, cancel := context.WithTimeout(ctx, w.timeout)
			h, err := w.src.HeaderByNumber(reqCtx, big.NewInt(l.num.Int64()))
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// safe and finalized are "not found" on a young chain; only latest matters.
				if l.num == rpc.LatestBlockNumber {
					w.log.Warn("failed to poll L1", "label", l.name, "err", err)
					w.mu.Lock()
					w.lastErr = err
					w.mu.Unlock()
				}
				continue
			}
			if l.num == rpc.LatestBlockNumber {
				w.mu.Lock()
				w.lastOK, w.lastErr = time.Now(), nil
				w.mu.Unlock()
			}
			ref := eth.BlockRefFromHeader(h)
			if l.ready && ref == l.last {
				continue
			}
			if err := l.on(ctx, ref); err != nil {
				return // the driver stopped or we are closing
			}
			l.last, l.ready = ref, true
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// health reports an L1 that has not answered a poll of its head for stall.
func (w *l1Watcher) health(stall time.Duration) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	last := w.lastOK
	if last.IsZero() {
		last = w.started
	}
	if since := time.Since(last); since >= stall {
		return fmt.Errorf("L1 has not answered a head poll for %s: %v", since.Round(time.Second), w.lastErr)
	}
	return nil
}

func (w *l1Watcher) close() {
	w.cancel()
	w.wg.Wait()
}
