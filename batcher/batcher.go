package batcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/batcher/channels"
	"github.com/opkit/opkit/batcher/dafailover"
	"github.com/opkit/opkit/batcher/txmgr"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// Codec is what the batcher needs of the batch codec: a channel builder for a plan and
// the blob encoding of frame data.
type Codec struct {
	NewChannelOut func(rcfg *rollup.Config, p channels.Plan, s ChannelSettings) (channels.ChannelOut, error)
	EncodeBlob    func(data []byte) (kzg4844.Blob, error)
}

// Batcher is a running batch submitter.
type Batcher struct {
	cfg   Config
	codec Codec
	log   *slog.Logger

	l1, l2    *ethclient.Client
	l2rpc     *rpc.Client
	rollupRPC *rpc.Client
	rcfg      *rollup.Config
	tx        *txmgr.Manager
	da        *altda.Client
	met       *metrics

	machMu sync.Mutex
	mach   *dafailover.Machine

	chans *channels.Manager
	plan  channels.Plan // plan for the next channel, refreshed every poll

	ctlMu   sync.Mutex
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
	flushCh chan chan error

	stMu       sync.Mutex
	status     Status
	lastStatus *eth.SyncStatus
	lastPoll   time.Time
	lastErr    error

	throttleOff  bool
	lastThrottle [2]uint64
	throttleSet  bool

	scMu    sync.Mutex
	scCache map[string]*types.BlobTxSidecar // by TxData ID: see sidecar

	// beforeSidecar, when set, runs at the start of every sidecar build: tests delay
	// proof building per transaction with it.
	beforeSidecar func(txID string)

	rawBlocksOff bool // the L2 client lacks debug_getRawBlock: blocks come as JSON

	rpcSrv *http.Server
	rpcLn  net.Listener
	rpcWG  sync.WaitGroup

	closeOnce sync.Once
}

// New dials the L1, the L2 and the rollup node, reads the rollup config, and starts the
// admin RPC. Submission starts with Start (or at once unless cfg.Stopped, via Run).
func New(ctx context.Context, cfg Config, codec Codec) (*Batcher, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if codec.NewChannelOut == nil || codec.EncodeBlob == nil {
		return nil, errors.New("batcher: the batch codec is required")
	}
	b := &Batcher{cfg: cfg, codec: codec, log: cfg.Log, flushCh: make(chan chan error)}
	ok := false
	defer func() {
		if !ok {
			b.closeClients()
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, cfg.NetworkTimeout)
	defer cancel()
	var err error
	if b.l1, err = ethclient.DialContext(dctx, cfg.L1URL); err != nil {
		return nil, fmt.Errorf("--l1: %w", err)
	}
	if b.l2rpc, err = rpc.DialContext(dctx, cfg.L2URL); err != nil {
		return nil, fmt.Errorf("--l2: %w", err)
	}
	b.l2 = ethclient.NewClient(b.l2rpc)
	if b.rollupRPC, err = rpc.DialContext(dctx, cfg.RollupURL); err != nil {
		return nil, fmt.Errorf("--rollup-rpc: %w", err)
	}
	var rcfg rollup.Config
	if err := b.rollupRPC.CallContext(dctx, &rcfg, "optimism_rollupConfig"); err != nil {
		return nil, fmt.Errorf("--rollup-rpc: optimism_rollupConfig: %w", err)
	}
	if rcfg.L1ChainID == nil || rcfg.BatchInboxAddress == ([20]byte{}) {
		return nil, errors.New("--rollup-rpc: rollup config lacks the L1 chain ID or batch inbox")
	}
	b.rcfg = &rcfg
	l1ID, err := b.l1.ChainID(dctx)
	if err != nil {
		return nil, fmt.Errorf("--l1: chain ID: %w", err)
	}
	if l1ID.Cmp(rcfg.L1ChainID) != 0 {
		return nil, fmt.Errorf("--l1 is chain %v, the rollup's L1 is %v", l1ID, rcfg.L1ChainID)
	}
	from := crypto.PubkeyToAddress(cfg.Key.PublicKey)
	if want := rcfg.Genesis.SystemConfig.BatcherAddr; want != ([20]byte{}) && want != from {
		b.log.Warn("the key is not the rollup's genesis batcher; verifiers ignore its transactions unless the system config names it", "from", from, "genesis_batcher", want)
	}
	b.met = newMetrics(cfg.Registry)
	b.tx, err = txmgr.New(b.l1, txmgr.Config{
		ChainID: l1ID, Key: cfg.Key, NumConfirmations: cfg.NumConfirmations,
		ResubmissionTimeout: cfg.ResubmissionTimeout, NetworkTimeout: cfg.NetworkTimeout,
		ReceiptQueryInterval: cfg.ReceiptInterval, FeeLimitMultiplier: cfg.FeeLimitMultiplier,
		Log: b.log.With("module", "txmgr"), Metrics: b.met,
	})
	if err != nil {
		return nil, err
	}
	if cfg.DAType == DAAltDA {
		mode := altda.KeccakMode
		if cfg.AltDAGeneric {
			mode = altda.GenericMode
		}
		b.da, err = altda.NewClient(altda.ClientConfig{URL: cfg.AltDAServer, Mode: mode, PutTimeout: cfg.AltDAPutTimeout})
		if err != nil {
			return nil, fmt.Errorf("--altda.da-server: %w", err)
		}
	}
	b.mach = dafailover.New(cfg.failoverConfig())
	b.chans = channels.New(channels.Config{
		Rollup: b.rcfg, MaxChannelDuration: cfg.MaxChannelDuration, SubSafetyMargin: cfg.SubSafetyMargin,
		NewChannelOut: func(p channels.Plan) (channels.ChannelOut, error) {
			return codec.NewChannelOut(b.rcfg, p, cfg.channelSettings())
		},
		Plan:   func() channels.Plan { return b.plan },
		Log:    b.log.With("module", "channels"),
		Events: b.met,
	})
	b.plan = b.ethPlan(cfg.DAType == DABlobs)
	if cfg.RPCPort >= 0 {
		if err := b.startRPC(); err != nil {
			return nil, err
		}
	}
	ok = true
	return b, nil
}

// Status is what the batcher's loop last saw, as of its last poll.
type Status struct {
	// DA is where the next channel goes: calldata, blobs or altda.
	DA string
	// PendingBlocks are the loaded L2 blocks not yet on L1 in full: in the open
	// channel, in a closed channel with a frame not yet sent, or sent and not yet
	// confirmed (NumConfirmations deep), and blocks not yet in any channel. Blocks of a
	// channel whose every frame is confirmed are left out, though they stay loaded
	// until the rollup node reports them safe. PendingBytes is their size: the
	// transactions' encoded bytes, deposits excluded; the throttle acts on it.
	PendingBlocks int
	PendingBytes  int
	// AltDAAvoided is set while an AltDA batcher stays on Ethereum DA after a 503.
	AltDAAvoided bool
}

// Status returns the loop's last view; the zero value before its first poll.
func (b *Batcher) Status() Status {
	b.stMu.Lock()
	defer b.stMu.Unlock()
	return b.status
}

// From is the batcher's L1 account.
func (b *Batcher) From() [20]byte { return b.tx.From() }

// RollupConfig is the config the rollup node gave.
func (b *Batcher) RollupConfig() *rollup.Config { return b.rcfg }

// RPCEndpoint is the admin RPC URL, empty when disabled.
func (b *Batcher) RPCEndpoint() string {
	if b.rpcLn == nil {
		return ""
	}
	return "http://" + b.rpcLn.Addr().String()
}

func (b *Batcher) ethPlan(blobs bool) channels.Plan {
	if blobs {
		return channels.Plan{DA: channels.Blobs, MaxFrameSize: MaxBlobFrameSize, FramesPerTx: b.cfg.TargetNumFrames}
	}
	return channels.Plan{DA: channels.Calldata, MaxFrameSize: b.cfg.MaxL1TxSize - 1, FramesPerTx: 1}
}

// Start begins submitting. It is an error when already running.
func (b *Batcher) Start() error {
	b.ctlMu.Lock()
	defer b.ctlMu.Unlock()
	if b.running {
		return errors.New("batcher is already running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.running, b.cancel, b.done = true, cancel, make(chan struct{})
	go b.run(ctx, b.done)
	b.log.Info("batch submission started", "from", b.tx.From(), "da", b.cfg.DAType)
	return nil
}

// Stop ends submission, waiting for the loop and its sends to end (or ctx). The queued
// state is dropped: the next Start loads from the safe head again.
func (b *Batcher) Stop(ctx context.Context) error {
	b.ctlMu.Lock()
	defer b.ctlMu.Unlock()
	if !b.running {
		return errors.New("batcher is not running")
	}
	b.cancel()
	select {
	case <-b.done:
	case <-ctx.Done():
		return fmt.Errorf("stop batcher: %w", ctx.Err())
	}
	b.running = false
	b.chans.Clear(eth.BlockID{})
	b.log.Info("batch submission stopped")
	return nil
}

// Running reports whether submission is on.
func (b *Batcher) Running() bool {
	b.ctlMu.Lock()
	defer b.ctlMu.Unlock()
	return b.running
}

// Flush closes the open channel so its frames go out now.
func (b *Batcher) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case b.flushCh <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops submission and the RPC server and closes the clients.
func (b *Batcher) Close() error {
	var err error
	b.closeOnce.Do(func() {
		if b.Running() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = b.Stop(ctx)
			cancel()
		}
		if b.rpcSrv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if e := b.rpcSrv.Shutdown(sctx); e != nil && err == nil {
				err = e
			}
			cancel()
			b.rpcWG.Wait()
		}
		b.closeClients()
	})
	return err
}

func (b *Batcher) closeClients() {
	if b.l1 != nil {
		b.l1.Close()
	}
	if b.l2rpc != nil {
		b.l2rpc.Close()
	}
	if b.rollupRPC != nil {
		b.rollupRPC.Close()
	}
}

// result is the end of one transaction's send.
type result struct {
	id       string
	da       channels.DA
	bytes    int
	receipt  *types.Receipt
	err      error
	failover string // non-empty: the AltDA channel moves to Ethereum, for this reason
}

func (b *Batcher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	results := make(chan result)
	var sends sync.WaitGroup
	defer sends.Wait()
	if b.cfg.WaitNodeSync {
		if err := b.waitNodeSync(ctx); err != nil {
			if ctx.Err() == nil {
				b.log.Error("waiting for the rollup node to sync failed", "err", err)
			}
			return
		}
	}
	var prevCurrentL1 eth.L1BlockRef
	inflight := map[bool]int{} // by blob or not: the L1 pools hold one kind per account at a time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-results:
			inflight[r.da == channels.Blobs]--
			b.handleResult(r)
		case reply := <-b.flushCh:
			reply <- b.chans.Flush()
		case <-timer.C:
			b.poll(ctx, &prevCurrentL1)
			timer.Reset(b.cfg.PollInterval)
		}
		b.publish(ctx, results, &sends, inflight)
	}
}

func (b *Batcher) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.NetworkTimeout)
}

func (b *Batcher) syncStatus(ctx context.Context) (*eth.SyncStatus, error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	var st eth.SyncStatus
	if err := b.rollupRPC.CallContext(cctx, &st, "optimism_syncStatus"); err != nil {
		return nil, fmt.Errorf("optimism_syncStatus: %w", err)
	}
	return &st, nil
}

func (b *Batcher) setPollResult(st *eth.SyncStatus, err error) {
	b.stMu.Lock()
	defer b.stMu.Unlock()
	b.lastErr = err
	if err == nil {
		b.lastStatus, b.lastPoll = st, time.Now()
	}
}

// maxLoadPerPoll bounds how many blocks one poll loads, so a long backlog does not hold
// off transaction results and flushes.
const maxLoadPerPoll = 256

func (b *Batcher) poll(ctx context.Context, prevCurrentL1 *eth.L1BlockRef) {
	st, err := b.syncStatus(ctx)
	b.setPollResult(st, err)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("cannot read the rollup node's sync status", "err", err)
		}
		return
	}
	b.met.safeL2.Set(float64(st.SafeL2.Number))
	b.met.unsafeL2.Set(float64(st.UnsafeL2.Number))
	view := queueView{blocks: b.chans.Blocks(), channels: b.chans.Channels(), hashAt: func(n uint64) (bool, [32]byte) {
		blk := b.chans.BlockAt(n)
		if blk == nil {
			return false, [32]byte{}
		}
		return true, blk.Hash()
	}}
	if o := b.chans.Oldest(); o != nil {
		view.oldest, view.newest = o.NumberU64(), b.chans.Newest().NumberU64()
	}
	a, skip := computeSyncActions(st, *prevCurrentL1, view)
	if skip {
		b.log.Debug("sync status not usable yet", "safe", st.SafeL2.Number, "unsafe", st.UnsafeL2.Number)
		return
	}
	*prevCurrentL1 = st.CurrentL1
	safe := st.LocalSafeL2
	if safe.IsZero() {
		safe = st.SafeL2
	}
	switch {
	case a.clear:
		b.log.Warn("dropping the queued state; loading again from the safe head", "reason", a.reason, "safe", safe.Number)
		b.met.resets.WithLabelValues(strings.ReplaceAll(a.reason, " ", "_")).Inc()
		b.chans.Clear(a.clearOrigin)
	case view.blocks == 0:
		b.chans.Clear(safe.L1Origin)
	}
	b.chans.PruneSafe(a.prune)
	to := min(a.loadTo, a.loadFrom+maxLoadPerPoll-1)
	for n := a.loadFrom; n <= to && a.loadFrom <= a.loadTo; n++ {
		blk, err := b.l2Block(ctx, n)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("cannot load L2 block", "number", n, "err", err)
			}
			break
		}
		if err := b.chans.AddBlock(blk); err != nil {
			if errors.Is(err, channels.ErrReorg) {
				b.log.Warn("L2 reorg: dropping the queued state", "err", err)
				b.met.resets.WithLabelValues("l2_reorg").Inc()
				b.chans.Clear(safe.L1Origin)
			} else {
				b.log.Error("cannot queue L2 block", "number", n, "err", err)
			}
			break
		}
		b.met.blocksLoaded.Inc()
	}
	b.refreshPlan(ctx)
	if err := b.chans.Step(st.HeadL1); err != nil {
		b.log.Error("channel manager step failed", "err", err)
	}
	b.met.pendingBlocks.Set(float64(b.chans.Pending()))
	b.met.pendingBytes.Set(float64(b.chans.PendingBytes()))
	b.met.openChannels.Set(float64(b.chans.OpenChannels()))
	b.machMu.Lock()
	avoided := b.cfg.DAType == DAAltDA && time.Now().Before(b.mach.OffUntil())
	b.machMu.Unlock()
	b.met.altdaAvoided.Set(boolF(avoided))
	b.stMu.Lock()
	b.status = Status{DA: b.plan.DA.String(), PendingBlocks: b.chans.Pending(), PendingBytes: b.chans.PendingBytes(), AltDAAvoided: avoided}
	b.stMu.Unlock()
	b.throttle(ctx)
}

// l2Block reads L2 block n. debug_getRawBlock hands it over as RLP, which decodes at a
// fraction of the CPU of the JSON form (every transaction's fields as hex strings); an
// execution client that does not expose the debug API is read as JSON from then on.
func (b *Batcher) l2Block(ctx context.Context, n uint64) (*types.Block, error) {
	cctx, cancel := b.call(ctx)
	defer cancel()
	if !b.rawBlocksOff {
		var raw hexutil.Bytes
		err := b.l2rpc.CallContext(cctx, &raw, "debug_getRawBlock", hexutil.EncodeUint64(n))
		var rerr rpc.Error
		switch {
		case err == nil:
			if len(raw) == 0 {
				return nil, ethereum.NotFound
			}
			var blk types.Block
			if err := rlp.DecodeBytes(raw, &blk); err != nil {
				return nil, fmt.Errorf("decode raw L2 block %d: %w", n, err)
			}
			return &blk, nil
		case errors.As(err, &rerr) && (rerr.ErrorCode() == -32601 || rerr.ErrorCode() == -32602):
			b.log.Info("the L2 execution client does not serve debug_getRawBlock; reading blocks as JSON (more CPU per block)", "err", err)
			b.rawBlocksOff = true
		default:
			return nil, fmt.Errorf("debug_getRawBlock %d: %w", n, err)
		}
	}
	return b.l2.BlockByNumber(cctx, new(big.Int).SetUint64(n))
}

func boolF(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// refreshPlan picks the plan of the next channel.
func (b *Batcher) refreshPlan(ctx context.Context) {
	switch b.cfg.DAType {
	case DACalldata:
		b.plan = b.ethPlan(false)
	case DABlobs:
		b.plan = b.ethPlan(true)
	case DAAuto:
		b.plan = b.ethPlan(b.autoBlobs(ctx))
	case DAAltDA:
		b.machMu.Lock()
		target := b.mach.NewChannel(time.Now())
		b.machMu.Unlock()
		if target == dafailover.AltDA {
			b.plan = channels.Plan{DA: channels.AltDA, MaxFrameSize: b.cfg.MaxL1TxSize - 1, FramesPerTx: 1}
		} else {
			b.plan = b.ethPlan(b.autoBlobs(ctx))
		}
	}
}

// autoBlobs applies the auto rule to the L1's current fees; on an error it keeps the
// last choice.
func (b *Batcher) autoBlobs(ctx context.Context) bool {
	last := b.plan.DA == channels.Blobs
	cctx, cancel := b.call(ctx)
	defer cancel()
	head, err := b.l1.HeaderByNumber(cctx, nil)
	if err != nil || head.BaseFee == nil {
		b.log.Warn("cannot read L1 fees for the auto DA rule; keeping the last choice", "err", err)
		return last
	}
	tip, err := b.l1.SuggestGasTipCap(cctx)
	if err != nil {
		return last
	}
	blobFee, err := b.l1.BlobBaseFee(cctx)
	if err != nil {
		return last
	}
	blobs := blobsCheaper(b.cfg.MaxL1TxSize, b.cfg.TargetNumFrames, head.BaseFee, tip, blobFee)
	if blobs != last {
		b.log.Info("auto DA rule switched", "blobs", blobs, "base_fee", head.BaseFee, "tip", tip, "blob_base_fee", blobFee)
	}
	return blobs
}

func (b *Batcher) publish(ctx context.Context, results chan<- result, sends *sync.WaitGroup, inflight map[bool]int) {
	for inflight[true]+inflight[false] < b.cfg.MaxPendingTx {
		td, err := b.chans.NextTxData()
		if errors.Is(err, io.EOF) {
			return
		}
		blob := td.DA == channels.Blobs
		if inflight[!blob] > 0 {
			// The L1 pools keep an account's blob and other transactions apart: wait for
			// the other kind to land first.
			b.chans.TxFailed(td.ID)
			return
		}
		inflight[blob]++
		sends.Add(1)
		// The nonce order is fixed here, in channel order: each send builds its
		// sidecar (or stores its frame on the DA server) in parallel with the others,
		// and one that finishes early waits for the earlier slots to take their nonces.
		// Nonces in finishing order would land later frames first, and the node drops
		// a span batch from the future.
		slot := b.tx.Slot()
		go func() {
			defer sends.Done()
			r := b.send(ctx, td, slot)
			select {
			case results <- r:
			case <-ctx.Done():
			}
		}()
	}
}

func (b *Batcher) send(ctx context.Context, td channels.TxData, slot *txmgr.Slot) result {
	defer slot.Pass() // a send that ends before SendIn lets the later ones go on
	r := result{id: td.ID, da: td.DA}
	var cand txmgr.Candidate
	cand.To = b.rcfg.BatchInboxAddress
	switch td.DA {
	case channels.Calldata:
		cand.Data = td.Data()
	case channels.Blobs:
		sc, err := b.sidecar(td)
		if err != nil {
			r.err = err
			return r
		}
		cand.Sidecar = sc
	case channels.AltDA:
		comm, reason, err := b.putAltDA(ctx, td)
		if err != nil {
			r.err = err
			return r
		}
		if reason != "" {
			r.failover = reason
			return r
		}
		cand.Data = comm.TxData()
	}
	for _, f := range td.Frames {
		r.bytes += len(f.Bytes) + 1
	}
	r.receipt, r.err = b.tx.SendIn(ctx, slot, cand)
	return r
}

// sidecar encodes the frames of a blob transaction into blobs and builds their sidecar,
// or takes the one built for the same blobs by an earlier send of the same frames: a
// send that failed (an L1 outage, a nonce taken) puts its frames back, and proving
// them again would cost hundreds of milliseconds of CPU a blob each time.
func (b *Batcher) sidecar(td channels.TxData) (*types.BlobTxSidecar, error) {
	if b.beforeSidecar != nil {
		b.beforeSidecar(td.ID)
	}
	blobs := make([]kzg4844.Blob, len(td.Frames))
	for i, f := range td.Frames {
		blob, err := b.codec.EncodeBlob(f.FrameData())
		if err != nil {
			return nil, fmt.Errorf("encode blob: %w", err)
		}
		blobs[i] = blob
	}
	cellProofs := b.cellProofs(time.Now())
	b.scMu.Lock()
	cached := b.scCache[td.ID]
	b.scMu.Unlock()
	if cached != nil && sameBlobs(cached.Blobs, blobs) && (cached.Version == types.BlobSidecarVersion1) == cellProofs {
		b.met.sidecarReuses.Inc()
		return cached, nil
	}
	sc, err := txmgr.NewSidecar(blobs, cellProofs)
	if err != nil {
		return nil, err
	}
	b.scMu.Lock()
	if b.scCache == nil {
		b.scCache = map[string]*types.BlobTxSidecar{}
	}
	// Only the sends in flight can come back: bound the cache by them.
	if len(b.scCache) >= 2*b.cfg.MaxPendingTx {
		clear(b.scCache)
	}
	b.scCache[td.ID] = sc
	b.scMu.Unlock()
	return sc, nil
}

// forgetSidecar drops the cached sidecar of a confirmed transaction.
func (b *Batcher) forgetSidecar(id string) {
	b.scMu.Lock()
	delete(b.scCache, id)
	b.scMu.Unlock()
}

// cellProofs reports whether blob transactions sent at now carry cell proofs (version-1
// sidecars): from --txmgr.cell-proof-time, the L1's Osaka time, on, with op-batcher's
// 12-second allowance for the L1 head's timestamp trailing the wall clock.
func (b *Batcher) cellProofs(now time.Time) bool {
	return b.cfg.CellProofTime < uint64(max(now.Add(-12*time.Second).Unix(), 0))
}

func sameBlobs(a, b []kzg4844.Blob) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// putAltDA stores the frame on the DA server as the failover machine directs. It
// returns the commitment to post, or the reason to fail the channel over.
func (b *Batcher) putAltDA(ctx context.Context, td channels.TxData) (altda.Commitment, string, error) {
	body := td.Data()
	var put dafailover.Put
	for {
		comm, err := b.da.Put(ctx, body)
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		o, retryAfter := dafailover.Classify(err)
		b.met.altdaPuts.WithLabelValues(o.String()).Inc()
		b.machMu.Lock()
		a := b.mach.Step(&put, o, retryAfter, time.Now())
		offUntil := b.mach.OffUntil()
		b.machMu.Unlock()
		switch a.Kind {
		case dafailover.Post:
			if a.PartialCommitted {
				b.met.partialCommitted.Inc()
				b.log.Warn("posting a commitment the DA server stored only partially", "tx", td.ID, "resends", put.Partials()-1, "err", err)
			}
			return comm, "", nil
		case dafailover.Resend:
			if o == dafailover.Partial {
				b.met.partialResends.Inc()
			}
			b.log.Info("resending to the DA server", "tx", td.ID, "outcome", o, "after", a.Delay, "err", err)
			t := time.NewTimer(a.Delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, "", ctx.Err()
			case <-t.C:
			}
		case dafailover.Failover:
			if o == dafailover.BadRequest {
				b.log.Error("THE DA SERVER REFUSED A FRAME AS A BAD REQUEST: check --max-l1-tx-size-bytes and the commitment mode against the server; this channel goes to Ethereum DA", "tx", td.ID, "err", err)
			} else {
				b.log.Warn("DA server failover: this channel goes to Ethereum DA", "tx", td.ID, "outcome", o, "altda_off_until", offUntil, "err", err)
			}
			return nil, strings.ReplaceAll(a.Reason, " ", "_"), nil
		}
	}
}

func (b *Batcher) handleResult(r result) {
	switch {
	case r.failover != "":
		b.met.failovers.WithLabelValues(r.failover).Inc()
		if da, ok := b.chans.ChannelDA(r.id); ok && da == channels.AltDA {
			// Ethereum DA for the rest of this channel, by the auto rule's current choice.
			p := b.ethPlan(b.lastAutoBlobs())
			b.chans.FailOver(r.id, p)
		} else {
			b.chans.TxFailed(r.id)
		}
	case r.err != nil:
		if !errors.Is(r.err, context.Canceled) {
			b.log.Warn("batch transaction failed; its frames go out again", "tx", r.id, "err", r.err)
			b.met.txsFailed.Inc()
		}
		b.chans.TxFailed(r.id)
	default:
		b.met.txsConfirmed.WithLabelValues(r.da.String()).Inc()
		b.met.txData.WithLabelValues(r.da.String()).Add(float64(r.bytes))
		b.log.Info("batch transaction confirmed", "tx", r.id, "da", r.da, "l1_block", r.receipt.BlockNumber, "l1_tx", r.receipt.TxHash)
		b.chans.TxConfirmed(r.id, eth.BlockID{Hash: r.receipt.BlockHash, Number: r.receipt.BlockNumber.Uint64()})
		b.forgetSidecar(r.id)
	}
}

// lastAutoBlobs is the Ethereum DA choice for a failed-over channel without an L1 call
// on the loop: blobs when the current plan is blobs, else what the auto rule would pick
// at the fees of the last poll. A failover is rare; one fee read is cheap.
func (b *Batcher) lastAutoBlobs() bool {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.NetworkTimeout)
	defer cancel()
	return b.autoBlobs(ctx)
}

// waitNodeSync waits until the rollup node's current L1 block is at or past the block
// holding this account's latest transaction, so that what an earlier run posted is
// derived before blocks are loaded.
func (b *Batcher) waitNodeSync(ctx context.Context) error {
	cctx, cancel := b.call(ctx)
	head, err := b.l1.BlockNumber(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("L1 head: %w", err)
	}
	nonceAt := func(n uint64) (uint64, error) {
		cctx, cancel := b.call(ctx)
		defer cancel()
		return b.l1.NonceAt(cctx, b.tx.From(), new(big.Int).SetUint64(n))
	}
	top, err := nonceAt(head)
	if err != nil {
		return fmt.Errorf("nonce at L1 head: %w", err)
	}
	lo := uint64(0)
	if d := b.cfg.CheckRecentTxsDepth; d > 0 && head > d {
		lo = head - d
	}
	if n, err := nonceAt(lo); err != nil {
		return err
	} else if n == top {
		return nil // no transaction of ours in the searched range
	}
	// The first block whose nonce is top holds our latest transaction.
	hi := head
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		n, err := nonceAt(mid)
		if err != nil {
			return err
		}
		if n == top {
			hi = mid
		} else {
			lo = mid
		}
	}
	b.log.Info("waiting for the rollup node to read past the last batch transaction", "l1_block", hi)
	for {
		st, err := b.syncStatus(ctx)
		if err == nil && st.CurrentL1.Number >= hi {
			return nil
		}
		t := time.NewTimer(b.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// throttle asks the L2 block builder to limit DA usage as the backlog grows.
func (b *Batcher) throttle(ctx context.Context) {
	tc := b.cfg.Throttle
	if tc.LowerThreshold == 0 || b.throttleOff {
		return
	}
	intensity, want := throttleLimits(tc, uint64(b.chans.PendingBytes()))
	b.met.throttleIntensity.Set(intensity)
	if b.throttleSet && want == b.lastThrottle {
		return
	}
	cctx, cancel := b.call(ctx)
	defer cancel()
	var ok bool
	err := b.l2rpc.CallContext(cctx, &ok, "miner_setMaxDASize",
		(*hexutil.Big)(new(big.Int).SetUint64(want[0])), (*hexutil.Big)(new(big.Int).SetUint64(want[1])))
	var rerr rpc.Error
	if errors.As(err, &rerr) && rerr.ErrorCode() == -32601 {
		b.log.Warn("the L2 execution client does not expose miner_setMaxDASize: throttling is off; enable the miner API on it (--http.api ...,miner) to throttle block building while the batcher is behind")
		b.throttleOff = true
		return
	}
	if err != nil {
		b.log.Warn("miner_setMaxDASize failed", "err", err)
		return
	}
	b.lastThrottle, b.throttleSet = want, true
	b.log.Debug("throttle set", "intensity", intensity, "max_tx_size", want[0], "max_block_size", want[1])
}

// throttleLimits is the linear throttle: intensity 0 below the lower threshold, 1 at the
// upper one, and the per-transaction and per-block DA limits it asks for (a zero
// transaction limit is no limit).
func throttleLimits(tc ThrottleConfig, pending uint64) (float64, [2]uint64) {
	intensity := 0.0
	switch {
	case pending <= tc.LowerThreshold:
	case tc.UpperThreshold <= tc.LowerThreshold || pending >= tc.UpperThreshold:
		intensity = 1
	default:
		intensity = float64(pending-tc.LowerThreshold) / float64(tc.UpperThreshold-tc.LowerThreshold)
	}
	lerp := func(upper, lower uint64) uint64 {
		return upper - uint64(intensity*float64(upper-min(lower, upper)))
	}
	txSize := uint64(0)
	if intensity > 0 {
		txSize = lerp(tc.TxSizeUpperLimit, tc.TxSizeLowerLimit)
	}
	return intensity, [2]uint64{txSize, lerp(tc.BlockSizeUpperLimit, tc.BlockSizeLowerLimit)}
}

// adminAPI serves admin_startBatcher, admin_stopBatcher and admin_flushBatcher.
type adminAPI struct{ b *Batcher }

func (a *adminAPI) StartBatcher(context.Context) error { return a.b.Start() }

func (a *adminAPI) StopBatcher(ctx context.Context) error { return a.b.Stop(ctx) }

func (a *adminAPI) FlushBatcher(ctx context.Context) error {
	if !a.b.Running() {
		return errors.New("batcher is not running")
	}
	return a.b.Flush(ctx)
}

func (b *Batcher) startRPC() error {
	srv := rpc.NewServer()
	if err := srv.RegisterName("admin", &adminAPI{b: b}); err != nil {
		return fmt.Errorf("register admin API: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(b.cfg.RPCAddr, strconv.Itoa(b.cfg.RPCPort)))
	if err != nil {
		srv.Stop()
		return fmt.Errorf("--rpc.port: %w", err)
	}
	b.rpcLn = ln
	b.rpcSrv = &http.Server{Handler: http.MaxBytesHandler(srv, 1<<20), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: time.Minute}
	b.rpcSrv.RegisterOnShutdown(srv.Stop)
	b.rpcWG.Add(1)
	go func() {
		defer b.rpcWG.Done()
		if err := b.rpcSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("admin RPC server stopped", "err", err)
		}
	}()
	return nil
}

// Health answers /health: 200 while submission runs and the rollup node answered within
// the last 10 poll intervals (or submission is stopped on purpose), 503 otherwise; the
// body says why.
func (b *Batcher) Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		running := b.Running()
		b.stMu.Lock()
		st, last, lastErr := b.lastStatus, b.lastPoll, b.lastErr
		b.stMu.Unlock()
		body := map[string]any{"running": running}
		if st != nil {
			body["safe_l2"] = st.SafeL2.Number
			body["unsafe_l2"] = st.UnsafeL2.Number
		}
		if lastErr != nil {
			body["error"] = lastErr.Error()
		}
		code := http.StatusOK
		if running && (last.IsZero() || time.Since(last) > 10*b.cfg.PollInterval) && lastErr != nil {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
}
