package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/stateless"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opkit/opkit/collector/replay"
	"github.com/opkit/opkit/collector/store"
	"github.com/opkit/opkit/rollup/clock"
)

// DefaultWindow is one week of 2-second blocks.
const DefaultWindow = 302400

// Config configures a Collector.
type Config struct {
	// L2 is the execution client's JSON-RPC URL (HTTP or websocket).
	L2 string
	// DataDir holds the store.
	DataDir string
	// Window is how many blocks to retain; default DefaultWindow.
	Window uint64
	// PollInterval is how often Run looks for a new head; default 500ms.
	PollInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the collector's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Accounts are kept provable at every block, touched or not; default the
	// L2ToL1MessagePasser, whose storage root goes into every output root.
	Accounts []common.Address
	// CallTimeout bounds every call to the execution client; default 30s (a witness of a
	// full block takes the client a few seconds).
	CallTimeout time.Duration
}

// MessagePasser is the L2ToL1MessagePasser predeploy.
var MessagePasser = common.HexToAddress("0x4200000000000000000000000000000000000016")

// ErrHalted is returned by Sync and Run once a block failed its check: collection never
// skips a block it could not verify.
var ErrHalted = errors.New("collection halted")

// Collector follows the execution client and keeps the store. Sync and Run are for one
// goroutine; the getter API and Status may be used from any.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	client  *rpc.Client
	chain   *params.ChainConfig
	metrics *metrics

	diskMeasured time.Time // when collector_store_disk_bytes was last measured

	mu     sync.Mutex
	head   uint64
	reorgs uint64
	halted error
}

// New opens the store and connects to the execution client.
func New(ctx context.Context, cfg Config) (*Collector, error) {
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Accounts == nil {
		cfg.Accounts = []common.Address{MessagePasser}
	}
	// No gzip: the client's answers are hex JSON that it would compress and the
	// collector decompress, for every witness and proof; on the loopback or a LAN link a
	// collector has to its execution client that costs both more CPU than it saves.
	client, err := rpc.DialOptions(ctx, cfg.L2, rpc.WithHeader("Accept-Encoding", "identity"))
	if err != nil {
		return nil, fmt.Errorf("dial execution client %s: %w", cfg.L2, err)
	}
	var chain params.ChainConfig
	cctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	defer cancel()
	if err := client.CallContext(cctx, &chain, "debug_chainConfig"); err != nil {
		client.Close()
		return nil, fmt.Errorf("read chain config from %s (debug_chainConfig): %w", cfg.L2, err)
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		client.Close()
		return nil, err
	}
	c := &Collector{cfg: cfg, log: cfg.Logger, store: st, client: client, chain: &chain, metrics: newMetrics(cfg.Registerer)}
	if err := c.refreshGauges(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the execution client connection and flushes the store.
func (c *Collector) Close() error {
	c.client.Close()
	return c.store.Close()
}

// Store is the collector's preimage store.
func (c *Collector) Store() *store.Store { return c.store }

// ChainConfig is the execution client's chain configuration.
func (c *Collector) ChainConfig() *params.ChainConfig { return c.chain }

// Run collects new blocks as they appear until ctx ends or a block fails its check.
// Failed passes (the execution client unreachable, rate limiting, a reorg under way) are
// logged and retried after a delay that doubles with each failure in a row, up to 30s; a
// failure is never recorded as a gap.
func (c *Collector) Run(ctx context.Context) error {
	failures := 0
	for {
		wait := c.cfg.PollInterval
		if err := c.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrHalted) {
				return err
			}
			failures++
			c.metrics.errors.Inc()
			wait = max(wait, clock.Backoff(failures, 30*time.Second))
			c.log.Warn("collection attempt failed, retrying", "err", err, "failures", failures, "retry_in", wait)
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// callAttempts is how often a call that failed for a reason that may pass (timeout,
// rate limit, connection, "header not found" while the client reorgs) is tried within a
// pass before the pass gives up; Run then retries the pass with a growing delay.
const callAttempts = 4

// call is one call to the execution client, each attempt within the call deadline.
func (c *Collector) call(ctx context.Context, result any, method string, args ...any) error {
	return c.retry(ctx, func(ctx context.Context) error {
		return c.client.CallContext(ctx, result, method, args...)
	})
}

// batchCall is one batch of calls to the execution client, each attempt within the call
// deadline. The elements' own errors are the caller's to read.
func (c *Collector) batchCall(ctx context.Context, batch []rpc.BatchElem) error {
	return c.retry(ctx, func(ctx context.Context) error {
		return c.client.BatchCallContext(ctx, batch)
	})
}

func (c *Collector) retry(ctx context.Context, do func(context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		err = do(actx)
		cancel()
		if err == nil || !retryable(err) || attempt == callAttempts || ctx.Err() != nil {
			return err
		}
		c.metrics.retries.Inc()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(clock.Backoff(attempt, 2*time.Second)):
		}
	}
}

// retryable tells a failure that may pass from one that will not: pruned state stays
// pruned, and the client's refusal of a request it understood (bad parameters, unknown
// method) stays a refusal. Rate limits, timeouts, broken connections and a block not
// found (the client is switching branches) are worth another try.
func retryable(err error) bool {
	if statePruned(err) {
		return false
	}
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) {
		switch rpcErr.ErrorCode() {
		case -32601, -32602: // method not found, invalid params
			return false
		}
	}
	return true
}

// errReorg means the chain changed under a collection pass; the pass starts over.
var errReorg = errors.New("execution client chain changed during collection")

// Sync collects every block up to the execution client's current head.
func (c *Collector) Sync(ctx context.Context) error {
	c.mu.Lock()
	halted := c.halted
	c.mu.Unlock()
	if halted != nil {
		return halted
	}
	for {
		err := c.syncOnce(ctx)
		if !errors.Is(err, errReorg) {
			if errors.Is(err, ErrHalted) {
				c.mu.Lock()
				c.halted = err
				c.mu.Unlock()
				c.metrics.halted.Set(1)
				c.log.Error("block failed its check; collection stopped", "err", err)
			}
			return err
		}
	}
}

func (c *Collector) syncOnce(ctx context.Context) error {
	head, err := c.header(ctx, nil)
	if err != nil {
		return err
	}
	headNum := head.Number.Uint64()
	c.mu.Lock()
	c.head = headNum
	c.mu.Unlock()
	c.metrics.head.Set(float64(headNum))
	if err := c.dropOrphans(ctx); err != nil {
		return err
	}
	_, last, ok, err := c.store.Bounds()
	if err != nil {
		return err
	}
	var next uint64
	var parent common.Hash
	if ok {
		next = last + 1
		b, err := c.store.Summary(last)
		if err != nil {
			return err
		}
		parent = b.Hash
	} else {
		// An empty store starts as far back in the window as the client still serves.
		lo := uint64(1)
		if headNum+1 > c.cfg.Window {
			lo = headNum + 1 - c.cfg.Window
		}
		if headNum < lo {
			return nil
		}
		next, err = c.firstAvailable(ctx, lo, headNum)
		if err != nil {
			return err
		}
		if next > lo {
			c.log.Info("starting collection inside the window: older parent states are gone from the execution client", "first", next, "window_start", lo)
		}
	}
	if ok && next <= headNum {
		// When the first block to collect has lost its parent state, record the gap and
		// go on from the oldest block that still has one.
		live, err := c.parentStateLive(ctx, next)
		if err != nil {
			return err
		}
		if !live {
			avail, err := c.firstAvailable(ctx, next, headNum)
			if err != nil {
				return err
			}
			if err := c.recordGap(store.Gap{From: next, To: avail - 1}); err != nil {
				return err
			}
			next, parent = avail, common.Hash{}
		}
	}
	if next > headNum {
		return nil
	}
	// Fetching (the execution client re-executes the block to build its witness) runs
	// ahead of replaying and storing, so both sides work at once.
	fctx, cancel := context.WithCancel(ctx)
	fetchedCh := make(chan fetched, prefetch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.fetchAhead(fctx, next, headNum, fetchedCh)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	for f := range fetchedCh {
		if f.err != nil {
			return f.err
		}
		h, err := c.collect(ctx, f, parent)
		if err != nil {
			return err
		}
		parent = h
	}
	return ctx.Err()
}

// prefetch is how many blocks fetching may run ahead of replay.
const prefetch = 4

// fetched is a block and its execution witness, or why they could not be fetched.
type fetched struct {
	n      uint64
	block  *types.Block
	w      *stateless.ExtWitness
	proofs [][][]byte // post-state account proofs of Config.Accounts
	extra  [][]byte   // pre-state nodes the witness lacks (see prestate.go)
	err    error
}

// fetchAhead fetches blocks from..to with their witnesses, in order, into out; it stops
// at the first error (delivered) or when ctx ends, and closes out.
func (c *Collector) fetchAhead(ctx context.Context, from, to uint64, out chan<- fetched) {
	defer close(out)
	for n := from; n <= to; n++ {
		f := c.fetch(ctx, n)
		select {
		case out <- f:
		case <-ctx.Done():
			return
		}
		if f.err != nil {
			return
		}
	}
}

// fetch reads block n and everything collecting it needs from the execution client: its
// execution witness and the kept accounts' post-state proofs (independent calls, made at
// once), then the pre-state proofs for what the witness lacks (see prestate.go).
func (c *Collector) fetch(ctx context.Context, n uint64) fetched {
	f := fetched{n: n}
	var raw hexutil.Bytes
	if err := c.call(ctx, &raw, "debug_getRawBlock", hexutil.EncodeUint64(n)); err != nil {
		f.err = fmt.Errorf("read block %d: %w", n, err)
		return f
	}
	var block types.Block
	if err := rlp.DecodeBytes(raw, &block); err != nil {
		f.err = fmt.Errorf("decode block %d: %w", n, err)
		return f
	}
	f.block = &block
	// By hash, so that everything belongs to this very block even if the chain moves.
	var (
		wg         sync.WaitGroup
		werr, perr error
	)
	wg.Add(2)
	go func() { defer wg.Done(); f.w, werr = c.witness(ctx, block.Hash().Hex()) }()
	go func() { defer wg.Done(); f.proofs, perr = c.accountProofs(ctx, &block) }()
	wg.Wait()
	if f.err = errors.Join(werr, perr); f.err != nil {
		return f
	}
	if len(f.w.Headers) == 0 || f.w.Headers[0].Hash() != block.ParentHash() {
		f.err = fmt.Errorf("witness of block %d does not start at its parent", n)
		return f
	}
	misses, err := replay.Misses(ctx, c.chain, &block, f.w)
	if err != nil {
		f.err = fmt.Errorf("%w: %w", ErrHalted, err)
		return f
	}
	f.extra, f.err = c.proveAt(ctx, block.ParentHash(), f.w.Headers[0].Root, c.preStateQueries(misses))
	return f
}

// dropOrphans drops retained blocks that are no longer on the canonical chain.
func (c *Collector) dropOrphans(ctx context.Context) error {
	for {
		_, last, ok, err := c.store.Bounds()
		if err != nil || !ok {
			return err
		}
		b, err := c.store.Summary(last)
		if err != nil {
			return err
		}
		h, err := c.header(ctx, new(big.Int).SetUint64(last))
		if err != nil && !errors.Is(err, errNoBlock) {
			return err
		}
		if h != nil && h.Hash() == b.Hash {
			return nil
		}
		if err := c.store.RemoveOrphan(last); err != nil {
			return err
		}
		c.mu.Lock()
		c.reorgs++
		c.mu.Unlock()
		c.metrics.reorgs.Inc()
		c.metrics.released.Inc()
		c.log.Warn("dropped orphaned block", "number", last, "hash", b.Hash)
		if err := c.refreshGauges(); err != nil {
			return err
		}
	}
}

// firstAvailable finds the lowest block in [lo, hi] whose parent state the execution
// client still holds. Availability is a suffix of the chain (a full node keeps only its
// most recent states), so a binary search finds it.
func (c *Collector) firstAvailable(ctx context.Context, lo, hi uint64) (uint64, error) {
	live, err := c.parentStateLive(ctx, hi)
	if err != nil {
		return 0, err
	}
	if !live {
		return 0, fmt.Errorf("execution client does not hold the parent state of its head %d", hi)
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		live, err := c.parentStateLive(ctx, mid)
		if err != nil {
			return 0, err
		}
		if live {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// parentStateLive asks whether the execution client can still read the state block n
// executes on, which is what building n's witness needs. A balance read at n-1 is the
// cheapest call that opens that state.
func (c *Collector) parentStateLive(ctx context.Context, n uint64) (bool, error) {
	if n == 0 {
		return false, nil
	}
	var bal hexutil.Big
	err := c.call(ctx, &bal, "eth_getBalance", common.Address{}, hexutil.EncodeUint64(n-1))
	switch {
	case err == nil:
		return true, nil
	case statePruned(err):
		return false, nil
	default:
		// Anything else (a timeout, a rate limit, "header not found" while the client
		// reorgs) says nothing about the state: the attempt is retried, no gap recorded.
		return false, fmt.Errorf("probe state of block %d: %w", n-1, err)
	}
}

// statePruned tells whether an execution-client error means the state asked for is gone
// (pruned by a full node), the only condition that makes a gap. geth and op-geth answer
// "missing trie node" or "... state ... is not available" / "unavailable" for it.
func statePruned(err error) bool {
	var rpcErr rpc.Error
	if !errors.As(err, &rpcErr) {
		return false
	}
	msg := strings.ToLower(rpcErr.Error())
	if strings.Contains(msg, "missing trie node") {
		return true
	}
	return strings.Contains(msg, "state") && (strings.Contains(msg, "not available") || strings.Contains(msg, "unavailable"))
}

func (c *Collector) recordGap(g store.Gap) error {
	if err := c.store.AddGap(g); err != nil {
		return err
	}
	c.log.Error("blocks missed: the execution client no longer has their parent state", "from", g.From, "to", g.To, "blocks", g.To-g.From+1)
	return c.refreshGauges()
}

var errNoBlock = errors.New("no such block")

func (c *Collector) header(ctx context.Context, n *big.Int) (*types.Header, error) {
	arg := "latest"
	if n != nil {
		arg = hexutil.EncodeBig(n)
	}
	var h *types.Header
	if err := c.call(ctx, &h, "eth_getBlockByNumber", arg, false); err != nil {
		return nil, fmt.Errorf("read header %s: %w", arg, err)
	}
	if h == nil {
		return nil, fmt.Errorf("header %s: %w", arg, errNoBlock)
	}
	return h, nil
}

func (c *Collector) witness(ctx context.Context, at any) (*stateless.ExtWitness, error) {
	var w stateless.ExtWitness
	arg := at
	if n, ok := at.(uint64); ok {
		arg = hexutil.EncodeUint64(n)
	}
	if err := c.call(ctx, &w, "debug_executionWitness", arg); err != nil {
		return nil, fmt.Errorf("execution witness of block %v: %w", at, err)
	}
	return &w, nil
}

// accountProofs fetches the post-state proofs of the always-kept accounts at block;
// collect checks them against the state root once the replay has confirmed that root.
func (c *Collector) accountProofs(ctx context.Context, block *types.Block) ([][][]byte, error) {
	var proofs [][][]byte
	for _, addr := range c.cfg.Accounts {
		var res struct {
			AccountProof []hexutil.Bytes `json:"accountProof"`
		}
		if err := c.call(ctx, &res, "eth_getProof", addr, []string{}, block.Hash().Hex()); err != nil {
			return nil, fmt.Errorf("proof of %s at block %d: %w", addr, block.NumberU64(), err)
		}
		proof := make([][]byte, len(res.AccountProof))
		for i, node := range res.AccountProof {
			proof[i] = node
		}
		proofs = append(proofs, proof)
	}
	return proofs, nil
}

// checkProofs verifies each kept account's proof against root.
func (c *Collector) checkProofs(root common.Hash, number uint64, proofs [][][]byte) error {
	for i, proof := range proofs {
		addr := c.cfg.Accounts[i]
		db := memorydb.New()
		for _, node := range proof {
			if err := db.Put(crypto.Keccak256(node), node); err != nil {
				return err
			}
		}
		if _, err := trie.VerifyProof(root, crypto.Keccak256(addr[:]), db); err != nil {
			return fmt.Errorf("%w: proof of %s at block %d does not match its state root: %w", ErrHalted, addr, number, err)
		}
	}
	return nil
}

// collect replays and stores a fetched block, whose parent must be parent (unless
// parent is zero: the first block after a gap or of an empty store).
func (c *Collector) collect(ctx context.Context, f fetched, parent common.Hash) (common.Hash, error) {
	start := time.Now()
	block, w, n := f.block, f.w, f.n
	if parent != (common.Hash{}) && block.ParentHash() != parent {
		return common.Hash{}, errReorg
	}
	// The pre-state nodes the witness lacks join it: replay and store treat them alike.
	w.State = append(w.State, toBytes(f.extra)...)
	col, err := replay.Collect(ctx, c.chain, block, w)
	if err != nil {
		// A replay that fails is never transient: the block, its witness or this
		// collector is wrong, and skipping the block would leave a silent hole.
		return common.Hash{}, fmt.Errorf("%w: %w", ErrHalted, err)
	}
	rec := &store.Block{
		Number: n, Hash: block.Hash(), ParentHash: block.ParentHash(), Root: block.Root(),
		Headers: col.Headers, State: col.State, Codes: col.Codes, Created: col.Created,
	}
	if err := c.checkProofs(block.Root(), n, f.proofs); err != nil {
		return common.Hash{}, err
	}
	parentRoot := w.Headers[0].Root
	if parent == (common.Hash{}) {
		// A new run of blocks (an empty store, or after a gap): the held message passer
		// storage must be the trie this block starts from.
		if err := c.holdMessagePasser(ctx, block, parentRoot); err != nil {
			return common.Hash{}, err
		}
	}
	rec.HeldAdd, rec.HeldDrop, err = c.heldChange(ctx, parentRoot, block.Root(), col.Preimages)
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: block %d: %w", ErrHalted, n, err)
	}
	// A superseded node is on a path the block changed, so its pre-state has it; one
	// found only in the store still belongs to the pre-state and is referenced as such.
	inBlock := map[common.Hash]bool{}
	for _, h := range rec.Refs() {
		inBlock[h] = true
	}
	for _, h := range rec.HeldDrop {
		if !inBlock[h] {
			rec.State = append(rec.State, h)
			inBlock[h] = true
		}
	}
	for _, proof := range f.proofs {
		for _, node := range proof {
			h := crypto.Keccak256Hash(node)
			rec.Proofs = append(rec.Proofs, h)
			col.Preimages[h] = node
		}
	}
	if err := c.store.AddBlock(rec, col.Preimages); err != nil {
		return common.Hash{}, err
	}
	c.metrics.collected.Inc()
	c.metrics.collectSeconds.Observe(time.Since(start).Seconds())
	if err := c.release(n); err != nil {
		return common.Hash{}, err
	}
	return block.Hash(), c.refreshGauges()
}

func toBytes(nodes [][]byte) []hexutil.Bytes {
	out := make([]hexutil.Bytes, len(nodes))
	for i, n := range nodes {
		out[i] = n
	}
	return out
}

// release drops the blocks that left the window ending at last.
func (c *Collector) release(last uint64) error {
	if last < c.cfg.Window {
		return nil
	}
	keepFrom := last - c.cfg.Window + 1
	if err := c.store.PruneGaps(keepFrom); err != nil {
		return err
	}
	for {
		first, _, ok, err := c.store.Bounds()
		if err != nil || !ok || first >= keepFrom {
			return err
		}
		if err := c.store.RemoveBlock(first); err != nil {
			return err
		}
		c.metrics.released.Inc()
	}
}

func (c *Collector) refreshGauges() error {
	first, last, ok, err := c.store.Bounds()
	if err != nil {
		return err
	}
	if ok {
		c.metrics.first.Set(float64(first))
		c.metrics.last.Set(float64(last))
	}
	st := c.store.Stats()
	c.metrics.preimages.Set(float64(st.Preimages))
	c.metrics.bytes.Set(float64(st.Bytes))
	// Measuring the disk walks the store's directory: once every few blocks is plenty.
	if time.Since(c.diskMeasured) > 10*time.Second {
		disk, err := c.store.DiskSize()
		if err != nil {
			return err
		}
		c.diskMeasured = time.Now()
		c.metrics.disk.Set(float64(disk))
	}
	gaps, err := c.store.Gaps()
	if err != nil {
		return err
	}
	var missed uint64
	for _, g := range gaps {
		missed += g.To - g.From + 1
	}
	c.metrics.gapBlocks.Set(float64(missed))
	return nil
}

// Status is what collector_status reports.
type Status struct {
	// First and Last bound the retained blocks; nil while the store is empty.
	First *store.BlockID `json:"first"`
	Last  *store.BlockID `json:"last"`
	// Head is the execution client's head number, as last seen.
	Head   hexutil.Uint64 `json:"head"`
	Window hexutil.Uint64 `json:"window"`
	// Gaps are the block ranges that could not be collected.
	Gaps      []store.Gap    `json:"gaps"`
	Preimages hexutil.Uint64 `json:"preimages"`
	Bytes     hexutil.Uint64 `json:"bytes"`
	// DiskBytes is what the store takes on disk, counted as du does.
	DiskBytes hexutil.Uint64 `json:"diskBytes"`
	Reorgs    hexutil.Uint64 `json:"reorgs"`
	// Halted is set once a block failed its check.
	Halted string `json:"halted,omitempty"`
}

// Status reports the window, the head, gaps and store counts.
func (c *Collector) Status() (*Status, error) {
	st := c.store.Stats()
	c.mu.Lock()
	s := &Status{Head: hexutil.Uint64(c.head), Window: hexutil.Uint64(c.cfg.Window), Reorgs: hexutil.Uint64(c.reorgs),
		Preimages: hexutil.Uint64(st.Preimages), Bytes: hexutil.Uint64(st.Bytes)}
	if c.halted != nil {
		s.Halted = c.halted.Error()
	}
	c.mu.Unlock()
	// The follower may release the first block between reading the bounds and the
	// blocks; read again when that happens.
	for attempt := 0; ; attempt++ {
		first, last, ok, err := c.store.Bounds()
		if err != nil || !ok {
			break
		}
		fb, ferr := c.store.Summary(first)
		lb, lerr := c.store.Summary(last)
		if err := errors.Join(ferr, lerr); err != nil {
			if errors.Is(err, store.ErrNotFound) && attempt < 3 {
				continue
			}
			return nil, err
		}
		fid, lid := fb.ID(), lb.ID()
		s.First, s.Last = &fid, &lid
		break
	}
	disk, err := c.store.DiskSize()
	if err != nil {
		return nil, err
	}
	s.DiskBytes = hexutil.Uint64(disk)
	s.Gaps, err = c.store.Gaps()
	if err != nil {
		return nil, err
	}
	if s.Gaps == nil {
		s.Gaps = []store.Gap{}
	}
	return s, nil
}
