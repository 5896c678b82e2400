package txmgr

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
)

// Backend is the part of an L1 client the manager uses; *ethclient.Client has it.
type Backend interface {
	NonceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	BlobBaseFee(ctx context.Context) (*big.Int, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	BlockNumber(ctx context.Context) (uint64, error)
}

// Config configures a Manager. Zero durations and fees take the defaults noted.
type Config struct {
	ChainID *big.Int
	Key     *ecdsa.PrivateKey
	// NumConfirmations is the depth a receipt must reach; default 1.
	NumConfirmations uint64
	// ResubmissionTimeout is how long a published transaction may stay unmined before
	// it is published again with higher fees; default 48s.
	ResubmissionTimeout time.Duration
	// NetworkTimeout bounds every L1 call; default 10s.
	NetworkTimeout time.Duration
	// ReceiptQueryInterval is how often receipts are polled; default 12s.
	ReceiptQueryInterval time.Duration
	// RetryInterval is the pause after a failed L1 call; default 1s.
	RetryInterval time.Duration
	// FeeLimitMultiplier caps bumped fees at this multiple of the current estimate,
	// once they are above FeeLimitThreshold; default 5.
	FeeLimitMultiplier uint64
	FeeLimitThreshold  *big.Int // default 100 gwei
	// MinTipCap and MinBaseFee floor the estimates; defaults 1 gwei each.
	MinTipCap, MinBaseFee *big.Int
	// MinBlobFee floors the blob fee cap; default 1 gwei.
	MinBlobFee *big.Int
	Log        *slog.Logger
	// Metrics receives what happened; nil records nothing.
	Metrics Metrics
}

// Metrics is what the manager reports.
type Metrics interface {
	// TxPublished counts every publication, first or replacement.
	TxPublished(replacement bool)
	// TxConfirmed reports a confirmed transaction's fees (wei): execution and blob.
	TxConfirmed(execFee, blobFee *big.Int)
	// PendingTxs is the number of sends in progress.
	PendingTxs(n int)
}

type noMetrics struct{}

func (noMetrics) TxPublished(bool)               {}
func (noMetrics) TxConfirmed(*big.Int, *big.Int) {}
func (noMetrics) PendingTxs(int)                 {}
func gwei(n int64) *big.Int                      { return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.GWei)) }

func maxBig(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

func mulDivCeil(x *big.Int, num, den int64) *big.Int {
	r := new(big.Int).Mul(x, big.NewInt(num))
	r.Add(r, big.NewInt(den-1))
	return r.Div(r, big.NewInt(den))
}

func (c *Config) applyDefaults() {
	if c.NumConfirmations == 0 {
		c.NumConfirmations = 1
	}
	if c.ResubmissionTimeout <= 0 {
		c.ResubmissionTimeout = 48 * time.Second
	}
	if c.NetworkTimeout <= 0 {
		c.NetworkTimeout = 10 * time.Second
	}
	if c.ReceiptQueryInterval <= 0 {
		c.ReceiptQueryInterval = 12 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.FeeLimitMultiplier == 0 {
		c.FeeLimitMultiplier = 5
	}
	if c.FeeLimitThreshold == nil {
		c.FeeLimitThreshold = gwei(100)
	}
	if c.MinTipCap == nil {
		c.MinTipCap = gwei(1)
	}
	if c.MinBaseFee == nil {
		c.MinBaseFee = gwei(1)
	}
	if c.MinBlobFee == nil {
		c.MinBlobFee = gwei(1)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
}

// ErrNonceConsumed: the nonce a send held was used by a transaction this send did not
// publish (another process with the same key, or a transaction left from an earlier
// run). The data was not posted; send it again.
var ErrNonceConsumed = errors.New("txmgr: nonce consumed by another transaction")

// Candidate is the content of a transaction: calldata to an address, or blobs.
type Candidate struct {
	To   common.Address
	Data []byte
	// Sidecar, when set, makes a blob transaction (version-1 sidecars with cell proofs
	// for an Osaka L1); see NewSidecar.
	Sidecar *types.BlobTxSidecar
}

// Manager sends transactions from one account.
type Manager struct {
	cfg    Config
	from   common.Address
	signer types.Signer
	l1     Backend

	mu      sync.Mutex
	nonce   uint64
	synced  bool // nonce is valid; false reads it from the chain again
	pending int

	// Sends take their nonces in the order their slots were handed out (see Slot), not
	// in the order their candidates are ready: a blob sidecar built slower than a
	// later one must not let the later transaction take the lower nonce.
	turnMu    sync.Mutex
	nextSlot  uint64              // the number the next Slot gets
	turn      uint64              // the slot whose send may take a nonce now
	passed    map[uint64]struct{} // slots given up before their turn came
	turnMoved chan struct{}       // closed and replaced each time turn advances
}

// Slot is a place in the order in which sends take their nonces. Take it with
// Manager.Slot where the order is decided, then hand it to SendIn once the candidate is
// built, or give it up with Pass; every slot must end one way or the other, or the
// sends behind it wait for ever (until their contexts end).
type Slot struct {
	m    *Manager
	n    uint64
	once sync.Once
}

// Slot hands out the next place in the nonce order. It does no I/O.
func (m *Manager) Slot() *Slot {
	m.turnMu.Lock()
	defer m.turnMu.Unlock()
	s := &Slot{m: m, n: m.nextSlot}
	m.nextSlot++
	return s
}

// Pass gives the slot up without taking a nonce (the candidate was never built, or goes
// elsewhere); the sends behind it go on. Passing a used slot does nothing.
func (s *Slot) Pass() { s.once.Do(func() { s.m.endTurn(s.n) }) }

// endTurn marks slot n done: the turn moves past it and every passed slot after it.
func (m *Manager) endTurn(n uint64) {
	m.turnMu.Lock()
	defer m.turnMu.Unlock()
	if n != m.turn {
		if m.passed == nil {
			m.passed = map[uint64]struct{}{}
		}
		m.passed[n] = struct{}{}
		return
	}
	m.turn++
	for {
		if _, ok := m.passed[m.turn]; !ok {
			break
		}
		delete(m.passed, m.turn)
		m.turn++
	}
	if m.turnMoved != nil {
		close(m.turnMoved)
		m.turnMoved = nil
	}
}

// waitTurn blocks until slot n may take a nonce, or ctx ends.
func (m *Manager) waitTurn(ctx context.Context, n uint64) error {
	for {
		m.turnMu.Lock()
		if m.turn == n {
			m.turnMu.Unlock()
			return nil
		}
		if m.turnMoved == nil {
			m.turnMoved = make(chan struct{})
		}
		ch := m.turnMoved
		m.turnMu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// New returns a manager for the account of cfg.Key.
func New(l1 Backend, cfg Config) (*Manager, error) {
	if cfg.Key == nil {
		return nil, errors.New("txmgr: a signing key is required")
	}
	if cfg.ChainID == nil || cfg.ChainID.Sign() <= 0 {
		return nil, errors.New("txmgr: the L1 chain ID is required")
	}
	cfg.applyDefaults()
	return &Manager{
		cfg:    cfg,
		from:   crypto.PubkeyToAddress(cfg.Key.PublicKey),
		signer: types.LatestSignerForChainID(cfg.ChainID),
		l1:     l1,
	}, nil
}

// From is the sending account.
func (m *Manager) From() common.Address { return m.from }

// Pending is the number of sends in progress.
func (m *Manager) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

// ResetNonce makes the next send read the nonce from the chain.
func (m *Manager) ResetNonce() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.synced = false
}

func (m *Manager) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.NetworkTimeout)
}

// reserve hands out the next nonce, reading it from the chain when not in sync.
func (m *Manager) reserve(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.synced {
		cctx, cancel := m.call(ctx)
		n, err := m.l1.NonceAt(cctx, m.from, nil)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("txmgr: read nonce of %s: %w", m.from, err)
		}
		m.nonce, m.synced = n, true
	}
	n := m.nonce
	m.nonce++
	m.pending++
	m.cfg.Metrics.PendingTxs(m.pending)
	return n, nil
}

// release ends a send; a send whose nonce may still be free makes the next one resync.
func (m *Manager) release(consumed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending--
	m.cfg.Metrics.PendingTxs(m.pending)
	if !consumed {
		m.synced = false
	}
}

// Fees are the caps of one transaction.
type Fees struct {
	TipCap, FeeCap, BlobFeeCap *big.Int
}

// Estimate prices a transaction from the L1's current state: the suggested tip, a fee
// cap of tip + 2 × base fee, and for blobs 2 × the blob base fee, each floored.
func (m *Manager) Estimate(ctx context.Context, blob bool) (Fees, error) {
	cctx, cancel := m.call(ctx)
	defer cancel()
	tip, err := m.l1.SuggestGasTipCap(cctx)
	if err != nil {
		return Fees{}, fmt.Errorf("txmgr: suggest tip: %w", err)
	}
	head, err := m.l1.HeaderByNumber(cctx, nil)
	if err != nil {
		return Fees{}, fmt.Errorf("txmgr: read L1 head: %w", err)
	}
	if head.BaseFee == nil {
		return Fees{}, errors.New("txmgr: L1 head has no base fee (pre-London L1)")
	}
	tip = maxBig(tip, m.cfg.MinTipCap)
	base := maxBig(head.BaseFee, m.cfg.MinBaseFee)
	f := Fees{TipCap: tip, FeeCap: new(big.Int).Add(tip, new(big.Int).Lsh(base, 1))}
	if blob {
		bb, err := m.l1.BlobBaseFee(cctx)
		if err != nil {
			return Fees{}, fmt.Errorf("txmgr: read blob base fee: %w", err)
		}
		f.BlobFeeCap = maxBig(new(big.Int).Lsh(bb, 1), m.cfg.MinBlobFee)
	}
	return f, nil
}

// Bump returns the caps of a replacement for old: the larger of the new estimate and
// what the pools demand of a replacement (+10%, or +100% on every cap of a blob
// transaction), rounded up.
func Bump(old, est Fees) Fees {
	num := int64(110)
	if old.BlobFeeCap != nil {
		num = 200
	}
	f := Fees{
		TipCap: maxBig(est.TipCap, mulDivCeil(old.TipCap, num, 100)),
		FeeCap: maxBig(est.FeeCap, mulDivCeil(old.FeeCap, num, 100)),
	}
	if f.FeeCap.Cmp(f.TipCap) < 0 {
		f.FeeCap = new(big.Int).Set(f.TipCap)
	}
	if old.BlobFeeCap != nil {
		f.BlobFeeCap = maxBig(est.BlobFeeCap, mulDivCeil(old.BlobFeeCap, 2, 1))
	}
	return f
}

// overLimit reports whether f is above the fee limit relative to est.
func (m *Manager) overLimit(f, est Fees) bool {
	limit := new(big.Int).Mul(est.FeeCap, new(big.Int).SetUint64(m.cfg.FeeLimitMultiplier))
	if f.FeeCap.Cmp(m.cfg.FeeLimitThreshold) > 0 && f.FeeCap.Cmp(limit) > 0 {
		return true
	}
	if f.BlobFeeCap != nil && est.BlobFeeCap != nil {
		blimit := new(big.Int).Mul(est.BlobFeeCap, new(big.Int).SetUint64(m.cfg.FeeLimitMultiplier))
		if f.BlobFeeCap.Cmp(m.cfg.FeeLimitThreshold) > 0 && f.BlobFeeCap.Cmp(blimit) > 0 {
			return true
		}
	}
	return false
}

// Gas is what a transaction with data to an account without code uses: the larger of
// the intrinsic gas and the EIP-7623 calldata floor.
func Gas(data []byte) (uint64, error) {
	intrinsic, err := core.IntrinsicGas(data, nil, nil, false, true, true, true)
	if err != nil {
		return 0, fmt.Errorf("txmgr: intrinsic gas: %w", err)
	}
	floor, err := core.FloorDataGas(data)
	if err != nil {
		return 0, fmt.Errorf("txmgr: floor data gas: %w", err)
	}
	return max(intrinsic, floor), nil
}

func (m *Manager) sign(c Candidate, nonce, gas uint64, f Fees) (*types.Transaction, error) {
	var inner types.TxData
	if c.Sidecar != nil {
		inner = &types.BlobTx{
			ChainID:    uint256.MustFromBig(m.cfg.ChainID),
			Nonce:      nonce,
			GasTipCap:  uint256.MustFromBig(f.TipCap),
			GasFeeCap:  uint256.MustFromBig(f.FeeCap),
			Gas:        gas,
			To:         c.To,
			Data:       c.Data,
			BlobFeeCap: uint256.MustFromBig(f.BlobFeeCap),
			BlobHashes: c.Sidecar.BlobHashes(),
			Sidecar:    c.Sidecar,
		}
	} else {
		to := c.To
		inner = &types.DynamicFeeTx{
			ChainID: m.cfg.ChainID, Nonce: nonce, GasTipCap: f.TipCap, GasFeeCap: f.FeeCap,
			Gas: gas, To: &to, Data: c.Data,
		}
	}
	tx, err := types.SignNewTx(m.cfg.Key, m.signer, inner)
	if err != nil {
		return nil, fmt.Errorf("txmgr: sign: %w", err)
	}
	return tx, nil
}

// publishResult classifies a SendTransaction error.
type publishResult int

const (
	published publishResult = iota
	underpriced
	nonceTooLow
	failed
)

func classifySend(err error) publishResult {
	if err == nil {
		return published
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "already known"):
		return published
	case strings.Contains(msg, "nonce too low"):
		return nonceTooLow
	case strings.Contains(msg, "underpriced"), strings.Contains(msg, "fee too low"):
		return underpriced
	}
	return failed
}

// Send publishes c and waits until it is NumConfirmations deep. It retries until it
// succeeds, ctx ends, or the nonce is consumed by another transaction. Concurrent sends
// take nonces in no set order; SendIn orders them.
func (m *Manager) Send(ctx context.Context, c Candidate) (*types.Receipt, error) {
	return m.SendIn(ctx, m.Slot(), c)
}

// SendIn is Send taking its nonce in slot's turn: after every send of an earlier slot
// has taken its nonce or passed. The slot is used up when SendIn returns.
func (m *Manager) SendIn(ctx context.Context, slot *Slot, c Candidate) (*types.Receipt, error) {
	defer slot.Pass()
	gas, err := Gas(c.Data)
	if err != nil {
		return nil, err
	}
	if c.Sidecar != nil && len(c.Sidecar.Blobs) == 0 {
		return nil, errors.New("txmgr: blob transaction without blobs")
	}
	if err := m.waitTurn(ctx, slot.n); err != nil {
		return nil, err
	}
	var nonce uint64
	for {
		if nonce, err = m.reserve(ctx); err == nil {
			break
		}
		m.cfg.Log.Warn("cannot read the batcher nonce, retrying", "err", err)
		if err := m.pause(ctx, m.cfg.RetryInterval); err != nil {
			return nil, err
		}
	}
	slot.Pass() // the nonce is taken: the next slot's turn
	s := &send{m: m, c: c, nonce: nonce, gas: gas}
	r, err := s.run(ctx)
	m.release(err == nil)
	return r, err
}

func (m *Manager) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// send is one nonce's life: every transaction published for it, until one is deep enough.
type send struct {
	m     *Manager
	c     Candidate
	nonce uint64
	gas   uint64

	fees        Fees
	sent        []*types.Transaction
	lastPublish time.Time
}

func (s *send) log() *slog.Logger { return s.m.cfg.Log.With("nonce", s.nonce) }

func (s *send) run(ctx context.Context) (*types.Receipt, error) {
	blob := s.c.Sidecar != nil
	for {
		est, err := s.m.Estimate(ctx, blob)
		if err == nil {
			s.fees = est
			break
		}
		s.log().Warn("cannot estimate fees, retrying", "err", err)
		if err := s.m.pause(ctx, s.m.cfg.RetryInterval); err != nil {
			return nil, err
		}
	}
	needPublish := true
	for {
		if needPublish {
			done, err := s.publish(ctx)
			if err != nil {
				return nil, err
			}
			needPublish = !done
			if needPublish {
				if err := s.m.pause(ctx, s.m.cfg.RetryInterval); err != nil {
					return nil, err
				}
				continue
			}
		}
		if err := s.m.pause(ctx, s.m.cfg.ReceiptQueryInterval); err != nil {
			return nil, err
		}
		r, mined, err := s.check(ctx)
		if err != nil {
			return nil, err
		}
		if r != nil {
			return r, nil
		}
		if !mined && time.Since(s.lastPublish) >= s.m.cfg.ResubmissionTimeout {
			s.rebump(ctx)
			needPublish = true
		}
	}
}

// remember adds tx to the transactions whose receipts are looked for.
func (s *send) remember(tx *types.Transaction) {
	for _, t := range s.sent {
		if t.Hash() == tx.Hash() {
			return
		}
	}
	s.sent = append(s.sent, tx)
}

// rebump raises the fees for a replacement, unless that would pass the fee limit.
func (s *send) rebump(ctx context.Context) {
	est, err := s.m.Estimate(ctx, s.c.Sidecar != nil)
	if err != nil {
		s.log().Warn("cannot estimate fees for a replacement; bumping the last ones", "err", err)
		est = s.fees
	}
	next := Bump(s.fees, est)
	if s.m.overLimit(next, est) {
		s.log().Warn("replacement fees would pass the fee limit; waiting on the published transaction",
			"fee_cap", next.FeeCap, "estimate", est.FeeCap, "multiplier", s.m.cfg.FeeLimitMultiplier)
		s.lastPublish = time.Now()
		return
	}
	s.fees = next
}

// publish signs and sends the transaction with the current fees. It returns true when
// the transaction is in the pool (or already mined).
func (s *send) publish(ctx context.Context) (bool, error) {
	for range 20 {
		tx, err := s.m.sign(s.c, s.nonce, s.gas, s.fees)
		if err != nil {
			return false, err
		}
		cctx, cancel := s.m.call(ctx)
		err = s.m.l1.SendTransaction(cctx, tx)
		cancel()
		switch classifySend(err) {
		case published:
			s.m.cfg.Metrics.TxPublished(len(s.sent) > 0 && s.sent[len(s.sent)-1].Hash() != tx.Hash())
			s.remember(tx)
			s.lastPublish = time.Now()
			s.log().Debug("published batch transaction", "tx", tx.Hash(), "tip", s.fees.TipCap, "fee_cap", s.fees.FeeCap, "blob_fee_cap", s.fees.BlobFeeCap, "replacement", len(s.sent) > 1)
			return true, nil
		case underpriced:
			// A transaction of an earlier run (or an earlier publication of this one)
			// holds the nonce at a higher price: bump until the pool takes ours.
			est, eerr := s.m.Estimate(ctx, s.c.Sidecar != nil)
			if eerr != nil {
				est = s.fees
			}
			s.fees = Bump(s.fees, est)
			s.log().Info("replacement underpriced, bumping fees", "tip", s.fees.TipCap, "fee_cap", s.fees.FeeCap)
			continue
		case nonceTooLow:
			if len(s.sent) > 0 {
				// One of ours was mined: go and wait for its receipt.
				return true, nil
			}
			s.m.ResetNonce()
			return false, fmt.Errorf("%w: nonce %d: %w", ErrNonceConsumed, s.nonce, err)
		default:
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			var rerr rpc.Error
			if !errors.As(err, &rerr) {
				// No answer (a timeout, a dropped connection): the pool may have taken it,
				// so its receipt is looked for like any published one's.
				s.remember(tx)
			}
			s.log().Warn("publishing batch transaction failed, retrying", "err", err)
			return false, nil
		}
	}
	s.log().Warn("pool refused every fee bump in a row; retrying later")
	return false, nil
}

// check looks for a receipt of any published transaction. It returns the receipt once it
// is deep enough, and whether one is mined at all.
func (s *send) check(ctx context.Context) (*types.Receipt, bool, error) {
	cctx, cancel := s.m.call(ctx)
	defer cancel()
	for _, tx := range s.sent {
		r, err := s.m.l1.TransactionReceipt(cctx, tx.Hash())
		if errors.Is(err, ethereum.NotFound) {
			continue
		}
		if err != nil {
			s.log().Warn("cannot read receipt", "tx", tx.Hash(), "err", err)
			return nil, true, nil // unknown: do not resubmit on a failed query
		}
		head, err := s.m.l1.BlockNumber(cctx)
		if err != nil {
			s.log().Warn("cannot read L1 head", "err", err)
			return nil, true, nil
		}
		n := r.BlockNumber.Uint64()
		if head+1 < n+s.m.cfg.NumConfirmations {
			return nil, true, nil
		}
		// Deep enough: make sure the block the receipt names is still canonical.
		h, err := s.m.l1.HeaderByNumber(cctx, r.BlockNumber)
		if err != nil || h.Hash() != r.BlockHash {
			return nil, true, nil
		}
		s.recordFees(r)
		return r, true, nil
	}
	// Nothing of ours is mined. If the chain moved past our nonce, someone else used it.
	if len(s.sent) > 0 {
		n, err := s.m.l1.NonceAt(cctx, s.m.from, nil)
		if err == nil && n > s.nonce {
			// A receipt can lag the nonce by a block; look once more before giving up.
			for _, tx := range s.sent {
				if r, err := s.m.l1.TransactionReceipt(cctx, tx.Hash()); err == nil && r != nil {
					return nil, true, nil
				}
			}
			s.m.ResetNonce()
			return nil, false, fmt.Errorf("%w: nonce %d", ErrNonceConsumed, s.nonce)
		}
	}
	return nil, false, nil
}

func (s *send) recordFees(r *types.Receipt) {
	exec := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
	blob := new(big.Int)
	if r.BlobGasPrice != nil {
		blob.Mul(new(big.Int).SetUint64(r.BlobGasUsed), r.BlobGasPrice)
	}
	s.m.cfg.Metrics.TxConfirmed(exec, blob)
}
