package supervisor_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
	"github.com/opkit/opkit/interop/l1test"
	"github.com/opkit/opkit/interop/managed"
	"github.com/opkit/opkit/interop/managed/memchain"
	"github.com/opkit/opkit/interop/supervisor"
)

func startL1(t *testing.T) *devnet.L1 { return l1test.Start(t) }

func l1Ref(t *testing.T, l1 *devnet.L1, n uint64) eth.BlockRef {
	t.Helper()
	h := l1.Backend().BlockChain().GetHeaderByNumber(n)
	if h == nil {
		t.Fatalf("no L1 block %d", n)
	}
	return eth.BlockRefFromHeader(h)
}

func mine(t *testing.T, l1 *devnet.L1, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := l1test.SealWithin(l1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// finalize marks L1 block n finalized, as a beacon chain would after two epochs. Mining
// 32 blocks would do the same on the dev L1, but every sealed block costs time.
func finalize(t *testing.T, l1 *devnet.L1, n uint64) {
	t.Helper()
	h := l1.Backend().BlockChain().GetHeaderByNumber(n)
	if h == nil {
		t.Fatalf("no L1 block %d", n)
	}
	l1.Backend().BlockChain().SetFinalized(h)
}

type testNode struct {
	chain  *memchain.Chain
	secret interop.Secret
	mu     sync.Mutex
	srv    *managed.Server
	addr   string
	// chainIDCalls counts interop_chainID calls: one per connection the supervisor makes.
	chainIDCalls atomic.Int32
}

// countingBackend is the node's chain, counting the chain-ID lookups that start every
// supervisor connection.
type countingBackend struct {
	*memchain.Chain
	calls *atomic.Int32
}

func (b countingBackend) ChainID() interop.ChainID {
	b.calls.Add(1)
	return b.Chain.ChainID()
}

func startNode(t *testing.T, id interop.ChainID, anchor eth.BlockRef) *testNode {
	t.Helper()
	return startNodeAt(t, id, anchor, anchor.Time)
}

// startNodeAt starts a node whose L2 genesis has the given timestamp.
func startNodeAt(t *testing.T, id interop.ChainID, anchor eth.BlockRef, genesisTime uint64) *testNode {
	t.Helper()
	n := &testNode{chain: memchain.New(id, genesisTime, 2, anchor), secret: interop.Secret{byte(id), 7}}
	n.start(t, 0)
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) start(t *testing.T, port int) {
	t.Helper()
	var srv *managed.Server
	var err error
	// The port of a node that just stopped may take a moment to be free again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		srv, err = managed.NewServer(managed.Config{Port: port, Secret: n.secret}, countingBackend{n.chain, &n.chainIDCalls})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.srv, n.addr = srv, srv.Addr()
	n.mu.Unlock()
	n.chain.SetSink(srv)
}

func (n *testNode) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.chain.SetSink(nil)
		_ = n.srv.Close()
		n.srv = nil
	}
}

func (n *testNode) restart(t *testing.T) {
	t.Helper()
	n.stop()
	_, portStr, _ := net.SplitHostPort(n.addr)
	port, _ := strconv.Atoi(portStr)
	n.start(t, port)
}

func (n *testNode) ws() supervisor.NodeConfig {
	return supervisor.NodeConfig{Endpoint: "ws://" + n.addr, Secret: n.secret}
}

func (n *testNode) http() supervisor.NodeConfig {
	return supervisor.NodeConfig{Endpoint: "http://" + n.addr, Secret: n.secret}
}

func (n *testNode) subscribed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil && n.srv.Subscribed()
}

func startSupervisor(t *testing.T, l1 *devnet.L1, dir string, nodes []supervisor.NodeConfig, chains ...interop.ChainID) *supervisor.Supervisor {
	t.Helper()
	s, err := supervisor.New(supervisor.Config{
		L1RPC: l1.HTTPEndpoint(), Nodes: nodes, DependencySet: interop.NewDependencySet(chains...), DataDir: dir,
		L1PollInterval: 50 * time.Millisecond, ReassertInterval: time.Second, RetryInterval: 50 * time.Millisecond,
		PullInterval: 20 * time.Millisecond, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testLogger logs through t, so that a failing test shows what the supervisor did.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPromotesUnsafeSafeAndFinalized(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "subscription", node.subscribed)

	var refs []eth.L2BlockRef
	for i := 0; i < 5; i++ {
		refs = append(refs, node.chain.AddBlock(anchor.ID()))
	}
	waitFor(t, "cross-unsafe 5", func() bool { return node.chain.Heads().CrossUnsafe == refs[4] })
	if h := node.chain.Heads(); h.CrossSafe.Number != 0 {
		t.Fatalf("cross-safe moved without derivation: %+v", h.CrossSafe)
	}
	src := l1Ref(t, l1, 1)
	if _, err := node.chain.MarkSafe(3, src); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cross-safe 3", func() bool {
		h := node.chain.Heads()
		return h.CrossSafe == refs[2] && h.CrossSafeSource == src.ID()
	})
	if h := node.chain.Heads(); h.Finalized.Number != 0 {
		t.Fatalf("finalized before L1 finalized: %+v", h.Finalized)
	}
	// L1 finalizes the block the L2 blocks were derived from.
	finalize(t, l1, 1)
	waitFor(t, "finalized 3", func() bool { return node.chain.Heads().Finalized == refs[2] })

	cl, err := rpc.Dial(sup.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var raw json.RawMessage
	if err := cl.Call(&raw, "supervisor_syncStatus"); err != nil {
		t.Fatal(err)
	}
	var status struct {
		MinSyncedL1 eth.BlockRef `json:"minSyncedL1"`
		Chains      map[string]struct {
			LocalUnsafe eth.BlockRef `json:"localUnsafe"`
			CrossSafe   eth.BlockID  `json:"safe"`
			Finalized   eth.BlockID  `json:"finalized"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(raw, &status); err != nil {
		t.Fatal(err)
	}
	c := status.Chains["901"]
	if c.LocalUnsafe.Hash != refs[4].Hash || c.CrossSafe != refs[2].ID() || c.Finalized != refs[2].ID() || status.MinSyncedL1 != src {
		t.Fatalf("syncStatus %s", raw)
	}
	var ls eth.DerivedIDPair
	if err := cl.Call(&ls, "supervisor_localSafe", "901"); err != nil || ls.Derived != refs[2].ID() || ls.Source != src.ID() {
		t.Fatalf("localSafe %+v, %v", ls, err)
	}
	var fin eth.BlockRef
	if err := cl.Call(&fin, "supervisor_finalizedL1"); err != nil || fin.Number != 1 {
		t.Fatalf("finalizedL1 %+v, %v", fin, err)
	}
	err = cl.Call(&ls, "supervisor_crossSafe", "999")
	if interop.ErrorCode(err) != supervisor.CodeUnknownChain {
		t.Fatalf("unknown chain: %v", err)
	}
}

func TestExhaustL1BeforeNextL1BlockExists(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "subscription", node.subscribed)

	head := l1Ref(t, l1, 1)
	node.chain.ReportExhaustL1(head) // block 2 does not exist yet
	// Give the supervisor time to (wrongly) act before L1 advances: poll a few rounds.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if p := node.chain.Provided(); len(p) != 0 {
			t.Fatalf("provided %+v before it existed", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mine(t, l1, 1)
	next := l1Ref(t, l1, 2)
	// The node does not repeat its event: the supervisor must remember it.
	waitFor(t, "next L1 block provided", func() bool {
		p := node.chain.Provided()
		return len(p) == 1 && p[0] == next
	})
	// And once provided, it is not provided again.
	time.Sleep(200 * time.Millisecond)
	if p := node.chain.Provided(); len(p) != 1 {
		t.Fatalf("provided %d times", len(p))
	}
}

// A node says once that it exhausted L1; a supervisor restarted before the next L1 block
// exists must still provide it.
func TestExhaustL1SurvivesSupervisorRestart(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	dir := t.TempDir()
	sup := startSupervisor(t, l1, dir, []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "subscription", node.subscribed)
	node.chain.ReportExhaustL1(l1Ref(t, l1, 1)) // block 2 does not exist yet
	waitFor(t, "the supervisor waiting for L1 block 2", func() bool { return sup.Status().AwaitingL1 == 1 })
	if err := sup.Close(); err != nil {
		t.Fatal(err)
	}
	startSupervisor(t, l1, dir, []supervisor.NodeConfig{node.ws()}, 901)
	mine(t, l1, 1)
	next := l1Ref(t, l1, 2)
	waitFor(t, "next L1 block provided after the restart", func() bool {
		p := node.chain.Provided()
		return len(p) == 1 && p[0] == next
	})
}

// An L1 block that does not extend the one the node exhausted (L1 reorged under it) is
// not given to the node.
func TestL1ProvidedOnlyWhenItExtendsTheNodesLast(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	reg := prometheus.NewRegistry()
	s, err := supervisor.New(supervisor.Config{
		L1RPC: l1.HTTPEndpoint(), Nodes: []supervisor.NodeConfig{node.ws()}, DependencySet: interop.NewDependencySet(901),
		DataDir: t.TempDir(), L1PollInterval: 50 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
		Logger: testLogger(t), Metrics: supervisor.NewMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	waitFor(t, "subscription", node.subscribed)
	mine(t, l1, 1)
	stale := l1Ref(t, l1, 1)
	stale.Hash = common.Hash{0xba, 0xd}
	node.chain.ReportExhaustL1(stale)
	waitFor(t, "the mismatch noticed", func() bool { return counterValue(t, reg, "opkit_supervisor_l1_not_extending_total") >= 1 })
	if p := node.chain.Provided(); len(p) != 0 {
		t.Fatalf("provided %+v on top of a block L1 no longer has", p)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			sum := 0.0
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

func TestNodeRestartMidStreamLosesNoPromotion(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "subscription", node.subscribed)
	var last eth.L2BlockRef
	for i := 0; i < 3; i++ {
		last = node.chain.AddBlock(anchor.ID())
	}
	waitFor(t, "cross-unsafe 3", func() bool { return node.chain.Heads().CrossUnsafe == last })

	// The node goes away; it keeps building blocks and deriving, and nobody hears of it.
	node.stop()
	for i := 0; i < 4; i++ {
		last = node.chain.AddBlock(anchor.ID())
	}
	src := l1Ref(t, l1, 1)
	safe, err := node.chain.MarkSafe(6, src)
	if err != nil {
		t.Fatal(err)
	}
	node.restart(t)
	waitFor(t, "promotions after restart", func() bool {
		h := node.chain.Heads()
		return h.CrossUnsafe == last && h.CrossSafe == safe
	})
	// New blocks after the reconnect flow as before.
	last = node.chain.AddBlock(anchor.ID())
	waitFor(t, "cross-unsafe after restart", func() bool { return node.chain.Heads().CrossUnsafe == last })
}

func TestResetBisectsToLastCommonBlock(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "subscription", node.subscribed)
	for i := 0; i < 15; i++ {
		node.chain.AddBlock(anchor.ID())
	}
	src := l1Ref(t, l1, 1)
	safe15, err := node.chain.MarkSafe(15, src)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cross-safe 15", func() bool { return node.chain.Heads().CrossSafe == safe15 })
	common10, _ := node.chain.L2BlockRefByNumber(context.Background(), 10)

	// The node's chain diverges above block 10 and it asks to be reset.
	node.chain.Fork(10)
	resetsBefore := node.chain.Resets()
	node.srv.RequestReset("derivation pipeline reset")
	waitFor(t, "reset", func() bool { return node.chain.Resets() == resetsBefore+1 })
	h := node.chain.Heads()
	if h.LocalSafe != common10 || h.LocalUnsafe != common10 || h.CrossSafe != common10 {
		t.Fatalf("reset to %+v, want every head at block 10 %s", h, common10.Hash)
	}
	if st := sup.Status().Chains[901]; st.LocalSafe.Derived.Hash != safe15.Hash {
		t.Fatalf("supervisor dropped its local-safe records: %+v", st.LocalSafe)
	}
}

func TestCrossChainMessages(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	a := startNode(t, 901, anchor)
	b := startNode(t, 902, anchor)
	startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{a.ws(), b.ws()}, 901, 902)
	waitFor(t, "subscriptions", func() bool { return a.subscribed() && b.subscribed() })

	initLog := &types.Log{Address: common.Address{0xaa}, Topics: []common.Hash{{1}, {2}}, Data: []byte("ping")}
	a1 := a.chain.AddBlock(anchor.ID(), initLog)
	msg := interop.ExecutingMessage{
		Identifier:  interop.Identifier{Origin: initLog.Address, BlockNumber: a1.Number, LogIndex: 0, Timestamp: a1.Time, ChainID: 901},
		PayloadHash: interop.PayloadHash(initLog),
	}
	b1 := b.chain.AddBlock(anchor.ID(), interop.EncodeExecutingMessage(msg))
	forged := msg
	forged.PayloadHash = common.Hash{0xde, 0xad}
	b2 := b.chain.AddBlock(anchor.ID(), interop.EncodeExecutingMessage(forged))

	waitFor(t, "cross-unsafe of the valid message", func() bool { return b.chain.Heads().CrossUnsafe == b1 })
	src := l1Ref(t, l1, 1)
	if _, err := a.chain.MarkSafe(1, src); err != nil {
		t.Fatal(err)
	}
	if _, err := b.chain.MarkSafe(2, src); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "invalid block replaced and the replacement cross-safe", func() bool {
		h := b.chain.Heads()
		return h.CrossSafe.Number == 2 && h.CrossSafe.Hash != b2.Hash
	})
	if h := b.chain.Heads(); h.LocalSafe.Hash == b2.Hash {
		t.Fatalf("invalid block still canonical: %+v", h)
	}
	if got, _, _ := b.chain.BlockByNumber(1); got != b1 {
		t.Fatalf("valid block %s was replaced by %s", b1.Hash, got.Hash)
	}
	if h := a.chain.Heads(); h.CrossSafe != a1 {
		t.Fatalf("initiating chain cross-safe %+v", h.CrossSafe)
	}
}

func TestPullModeOverHTTP(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{node.http()}, 901)
	assertPromotedByPulling(t, l1, node, sup)
}

// assertPromotedByPulling adds unsafe and safe blocks on a node the supervisor reaches
// without a subscription, waits for both promotions, and checks no subscription was made.
func assertPromotedByPulling(t *testing.T, l1 *devnet.L1, node *testNode, sup *supervisor.Supervisor) {
	t.Helper()
	waitFor(t, "connection", func() bool { return sup.ConnectedNodes() == 1 })
	anchor := l1Ref(t, l1, 0)
	var last eth.L2BlockRef
	for i := 0; i < 5; i++ {
		last = node.chain.AddBlock(anchor.ID())
	}
	safe, err := node.chain.MarkSafe(5, l1Ref(t, l1, 1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "promotions through pulled events", func() bool {
		h := node.chain.Heads()
		return h.CrossUnsafe == last && h.CrossSafe == safe
	})
	if node.subscribed() {
		t.Fatal("a subscription reached the node")
	}
}

func TestRestartResumesFromDatabase(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	dir := t.TempDir()
	sup := startSupervisor(t, l1, dir, []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "subscription", node.subscribed)
	for i := 0; i < 4; i++ {
		node.chain.AddBlock(anchor.ID())
	}
	safe, _ := node.chain.MarkSafe(4, l1Ref(t, l1, 1))
	waitFor(t, "cross-safe 4", func() bool { return node.chain.Heads().CrossSafe == safe })
	before := sup.Status().Chains[901]
	if err := sup.Close(); err != nil {
		t.Fatal(err)
	}
	// Without any node, the reopened supervisor already knows every head.
	sup2 := startSupervisor(t, l1, dir, nil, 901)
	if after := sup2.Status().Chains[901]; after != before {
		t.Fatalf("after restart %+v, want %+v", after, before)
	}
}

func TestNodeOfUnknownChainIsNotManaged(t *testing.T) {
	l1 := startL1(t)
	node := startNode(t, 903, l1Ref(t, l1, 0))
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{node.ws()}, 901)
	waitFor(t, "several connection attempts", func() bool { return node.chainIDCalls.Load() >= 3 })
	if node.subscribed() || len(sup.Status().Chains) != 0 {
		t.Fatal("a node outside the dependency set is managed")
	}
}

// TestTwoNodesOfOneChain: both nodes of a chain are followed and both are promoted.
func TestTwoNodesOfOneChain(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	// Two nodes building the same chain: the in-memory chain is deterministic.
	n1, n2 := startNode(t, 901, anchor), startNode(t, 901, anchor)
	startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{n1.ws(), n2.ws()}, 901)
	waitFor(t, "subscriptions", func() bool { return n1.subscribed() && n2.subscribed() })
	var last eth.L2BlockRef
	for i := 0; i < 5; i++ {
		last = n1.chain.AddBlock(anchor.ID())
		if got := n2.chain.AddBlock(anchor.ID()); got != last {
			t.Fatalf("the two chains differ: %s vs %s", got.Hash, last.Hash)
		}
	}
	safe, _ := n1.chain.MarkSafe(5, l1Ref(t, l1, 1))
	if _, err := n2.chain.MarkSafe(5, l1Ref(t, l1, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both nodes promoted", func() bool {
		h1, h2 := n1.chain.Heads(), n2.chain.Heads()
		return h1.CrossUnsafe == last && h2.CrossUnsafe == last && h1.CrossSafe == safe && h2.CrossSafe == safe
	})
}
