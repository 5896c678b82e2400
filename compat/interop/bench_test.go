package interop_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum-optimism/optimism/op-service/event"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/superevents"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/backend/syncnode"
	"github.com/ethereum-optimism/optimism/op-supervisor/supervisor/types"
	"github.com/ethereum/go-ethereum/log"

	"github.com/opkit/opkit/devnet"
	oketh "github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/interop/managed/memchain"
	"github.com/opkit/opkit/interop/supervisor"
)

const (
	benchBlocks   = 100
	benchInterval = 50 * time.Millisecond // 20 blocks per second
	benchRounds   = 3
)

// latencies emits benchBlocks unsafe blocks at 20 per second on chain and returns, for
// each, the time from its emission to the node being told it is cross-unsafe.
func latencies(t testing.TB, chain *memchain.Chain, anchor oketh.BlockRef) []time.Duration {
	emitted := make([]time.Time, benchBlocks+1)
	promoted := make([]time.Time, benchBlocks+1)
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := uint64(0)
		deadline := time.After(benchBlocks*benchInterval + 20*time.Second)
		for seen < benchBlocks {
			ch := chain.Changed()
			now := time.Now()
			if xu := chain.Heads().CrossUnsafe.Number; xu > seen {
				mu.Lock()
				for n := seen + 1; n <= xu && n <= benchBlocks; n++ {
					promoted[n] = now
				}
				mu.Unlock()
				seen = xu
				continue
			}
			select {
			case <-ch:
			case <-deadline:
				return
			}
		}
	}()
	tick := time.NewTicker(benchInterval)
	defer tick.Stop()
	for n := 1; n <= benchBlocks; n++ {
		<-tick.C
		mu.Lock()
		emitted[n] = time.Now()
		mu.Unlock()
		chain.AddBlock(anchor.ID())
	}
	<-done
	out := make([]time.Duration, 0, benchBlocks)
	for n := 1; n <= benchBlocks; n++ {
		if promoted[n].IsZero() {
			t.Fatalf("block %d was never promoted", n)
		}
		out = append(out, promoted[n].Sub(emitted[n]))
	}
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func newBenchNode(t testing.TB, anchor oketh.BlockRef) (*memchain.Chain, *managed.Server) {
	chain := memchain.New(901, anchor.Time, 2, anchor)
	srv, err := managed.NewServer(managed.Config{Secret: secret}, chain)
	if err != nil {
		t.Fatal(err)
	}
	chain.SetSink(srv)
	return chain, srv
}

// runOpkit measures opkit's supervisor: subscription, block and receipt fetch, indexing
// with a synced Pebble write, the cross-unsafe check and the promotion call.
func runOpkit(b *testing.B, l1 *devnet.L1, anchor oketh.BlockRef) []time.Duration {
	chain, srv := newBenchNode(b, anchor)
	defer srv.Close()
	sup, err := supervisor.New(supervisor.Config{
		L1RPC: l1.HTTPEndpoint(), DataDir: b.TempDir(), DependencySet: interop.NewDependencySet(901),
		Nodes: []supervisor.NodeConfig{{Endpoint: srv.WSEndpoint(), Secret: secret}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sup.Close()
	waitFor(b, "subscription", srv.Subscribed)
	return latencies(b, chain, anchor)
}

// opBackend answers op-supervisor's ManagedNode as a supervisor whose database agrees
// with the node; only the calls made while following unsafe blocks matter.
type opBackend struct{}

var errUnused = errors.New("not used by this benchmark")

func (opBackend) LocalUnsafe(context.Context, eth.ChainID) (eth.BlockID, error) {
	return eth.BlockID{}, errUnused
}
func (opBackend) CrossUnsafe(context.Context, eth.ChainID) (eth.BlockID, error) {
	return eth.BlockID{}, errUnused
}
func (opBackend) LocalSafe(context.Context, eth.ChainID) (types.DerivedIDPair, error) {
	return types.DerivedIDPair{}, errUnused
}
func (opBackend) CrossSafe(context.Context, eth.ChainID) (types.DerivedIDPair, error) {
	return types.DerivedIDPair{}, errUnused
}
func (opBackend) Finalized(context.Context, eth.ChainID) (eth.BlockID, error) {
	return eth.BlockID{}, errUnused
}
func (opBackend) ActivationBlock(context.Context, eth.ChainID) (types.DerivedBlockSealPair, error) {
	return types.DerivedBlockSealPair{}, errUnused
}
func (opBackend) FindSealedBlock(context.Context, eth.ChainID, uint64) (eth.BlockID, error) {
	return eth.BlockID{}, errUnused
}
func (opBackend) IsLocalSafe(context.Context, eth.ChainID, eth.BlockID) error   { return nil }
func (opBackend) IsCrossSafe(context.Context, eth.ChainID, eth.BlockID) error   { return nil }
func (opBackend) IsLocalUnsafe(context.Context, eth.ChainID, eth.BlockID) error { return nil }
func (opBackend) LocalSafeDerivedAt(context.Context, eth.ChainID, eth.BlockID) (eth.BlockID, error) {
	return eth.BlockID{}, errUnused
}
func (opBackend) L1BlockRefByNumber(context.Context, uint64) (eth.L1BlockRef, error) {
	return eth.L1BlockRef{}, errUnused
}

// loopback answers every local-unsafe block the ManagedNode reports with an immediate
// cross-unsafe update, as a supervisor with nothing to check would.
type loopback struct {
	node *syncnode.ManagedNode
}

func (l *loopback) Emit(ctx context.Context, ev event.Event) {
	if x, ok := ev.(superevents.LocalUnsafeReceivedEvent); ok {
		l.node.OnEvent(ctx, superevents.CrossUnsafeUpdateEvent{ChainID: x.ChainID, NewCrossUnsafe: types.BlockSealFromRef(x.NewLocalUnsafe)})
	}
}

// runOPSyncNode measures op-supervisor's syncnode path: its RPC client and ManagedNode
// receive the event and send the promotion, with no indexing or checks in between.
func runOPSyncNode(b *testing.B, anchor oketh.BlockRef) []time.Duration {
	chain, srv := newBenchNode(b, anchor)
	defer srv.Close()
	ctrl := dialSyncNode(b, srv.WSEndpoint())
	lb := &loopback{}
	node := syncnode.NewManagedNode(log.NewLogger(log.DiscardHandler()), eth.ChainIDFromUInt64(901), ctrl, opBackend{}, false)
	lb.node = node
	node.AttachEmitter(lb)
	node.Start()
	defer node.Close()
	waitFor(b, "subscription", srv.Subscribed)
	return latencies(b, chain, anchor)
}

// BenchmarkPromotionLatency compares, side by side and alternating, how long a node
// waits from emitting an unsafe block to being told it is cross-unsafe.
func BenchmarkPromotionLatency(b *testing.B) {
	l1, err := devnet.StartL1(devnet.L1Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l1.Close()
	anchor := oketh.BlockRefFromHeader(l1.Backend().BlockChain().GetHeaderByNumber(0))
	var okP50, okP99, opP50, opP99 []time.Duration
	for round := 0; round < benchRounds; round++ {
		ok := runOpkit(b, l1, anchor)
		op := runOPSyncNode(b, anchor)
		okP50, okP99 = append(okP50, percentile(ok, 0.5)), append(okP99, percentile(ok, 0.99))
		opP50, opP99 = append(opP50, percentile(op, 0.5)), append(opP99, percentile(op, 0.99))
		b.Logf("round %d: opkit p50 %v p99 %v | op-supervisor syncnode p50 %v p99 %v", round,
			okP50[round], okP99[round], opP50[round], opP99[round])
	}
	med := func(d []time.Duration) float64 { return float64(percentile(d, 0.5).Microseconds()) / 1000 }
	b.ReportMetric(med(okP50), "opkit-p50-ms")
	b.ReportMetric(med(okP99), "opkit-p99-ms")
	b.ReportMetric(med(opP50), "opsyncnode-p50-ms")
	b.ReportMetric(med(opP99), "opsyncnode-p99-ms")
	b.ReportMetric(med(okP50)/med(opP50), "p50-ratio")
	b.ReportMetric(med(okP99)/med(opP99), "p99-ratio")
}
