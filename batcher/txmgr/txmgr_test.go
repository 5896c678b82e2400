package txmgr_test

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/opkit/opkit/batcher/txmgr"
	"github.com/opkit/opkit/devnet"
)

type (
	Backend   = txmgr.Backend
	Candidate = txmgr.Candidate
	Config    = txmgr.Config
	Fees      = txmgr.Fees
	Manager   = txmgr.Manager
)

var (
	New              = txmgr.New
	NewSidecar       = txmgr.NewSidecar
	Bump             = txmgr.Bump
	Gas              = txmgr.Gas
	ErrNonceConsumed = txmgr.ErrNonceConsumed
)

var inbox = common.HexToAddress("0xff00000000000000000000000000000000000901")

type testL1 struct {
	*devnet.L1
	client *ethclient.Client
}

// startL1 starts the dev L1 and seals a block every interval (0: none; tests mine).
func startL1(t *testing.T, every time.Duration) *testL1 {
	t.Helper()
	l1, err := devnet.StartL1(devnet.L1Config{BlockTime: every})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l1.Close(); err != nil {
			t.Errorf("close L1: %v", err)
		}
	})
	c, err := ethclient.Dial(l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &testL1{L1: l1, client: c}
}

// TestMain loads the KZG trusted setup before any test runs: it takes seconds (far more
// under the race detector), which would otherwise come out of the blob test's deadline.
func TestMain(m *testing.M) {
	if _, err := kzg4844.BlobToCommitment(new(kzg4844.Blob)); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newManager(t *testing.T, b txmgr.Backend, l1 *devnet.L1, mod func(*txmgr.Config)) *txmgr.Manager {
	t.Helper()
	cfg := txmgr.Config{
		ChainID: l1.ChainConfig().ChainID, Key: l1.Accounts()[1].Key,
		NumConfirmations: 1, ResubmissionTimeout: 2 * time.Second, NetworkTimeout: 5 * time.Second,
		ReceiptQueryInterval: 20 * time.Millisecond, RetryInterval: 20 * time.Millisecond, Log: testLog(),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := txmgr.New(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendCalldataReachesDepth(t *testing.T) {
	l1 := startL1(t, 100*time.Millisecond)
	m := newManager(t, l1.client, l1.L1, func(c *txmgr.Config) { c.NumConfirmations = 3 })
	ctx := ctxT(t, 30*time.Second)
	data := []byte{0, 1, 2, 3}
	r, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt status %d", r.Status)
	}
	head, _ := l1.client.BlockNumber(ctx)
	if head < r.BlockNumber.Uint64()+2 {
		t.Fatalf("returned at depth %d, want 3", head-r.BlockNumber.Uint64()+1)
	}
	tx, _, err := l1.client.TransactionByHash(ctx, r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if string(tx.Data()) != string(data) || *tx.To() != inbox {
		t.Fatal("mined transaction carries other data")
	}
	// Sequential sends use consecutive nonces.
	r2, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	tx2, _, _ := l1.client.TransactionByHash(ctx, r2.TxHash)
	if tx2.Nonce() != tx.Nonce()+1 {
		t.Fatalf("nonces %d then %d", tx.Nonce(), tx2.Nonce())
	}
}

func TestSendBlobsWithCellProofs(t *testing.T) {
	l1 := startL1(t, 100*time.Millisecond)
	m := newManager(t, l1.client, l1.L1, nil)
	// The pool checks 256 cell proofs before it answers: seconds each time under the race
	// detector on a loaded machine, past the manager's network timeout, so the send may
	// take a few rounds (publish timed out, nonce too low, receipt).
	ctx := ctxT(t, 150*time.Second)
	blobs := make([]kzg4844.Blob, 2)
	blobs[0][1] = 7
	blobs[1][100] = 9
	sc, err := txmgr.NewSidecar(blobs, true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Send(ctx, txmgr.Candidate{To: inbox, Sidecar: sc})
	if err != nil {
		t.Fatal(err)
	}
	tx, _, err := l1.client.TransactionByHash(ctx, r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Type() != types.BlobTxType || len(tx.BlobHashes()) != 2 || tx.BlobHashes()[0] != sc.BlobHashes()[0] {
		t.Fatalf("mined %d-type tx with %d blob hashes", tx.Type(), len(tx.BlobHashes()))
	}
	if r.BlobGasUsed != 2*params.BlobTxBlobGasPerBlob {
		t.Fatalf("blob gas used %d", r.BlobGasUsed)
	}
}

// A transaction of an earlier run, priced below the base fee, holds the nonce forever:
// the manager starts from the mined nonce, and its transaction replaces the stuck one.
func TestStuckLowFeeTransactionIsReplaced(t *testing.T) {
	l1 := startL1(t, 100*time.Millisecond)
	ctx := ctxT(t, 30*time.Second)
	acct := l1.Accounts()[1]
	nonce, err := l1.client.NonceAt(ctx, acct.Address, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(l1.ChainConfig().ChainID)
	stuck := types.MustSignNewTx(acct.Key, signer, &types.DynamicFeeTx{
		ChainID: l1.ChainConfig().ChainID, Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1),
		Gas: 21_000, To: &inbox,
	})
	if err := l1.client.SendTransaction(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	// The stuck transaction stays unmined while blocks go by.
	start, _ := l1.client.BlockNumber(ctx)
	for {
		n, _ := l1.client.BlockNumber(ctx)
		if n >= start+3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := l1.client.TransactionReceipt(ctx, stuck.Hash()); err == nil {
		t.Fatal("the underpriced transaction was mined")
	}
	m := newManager(t, l1.client, l1.L1, nil)
	r, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: []byte{0, 42}})
	if err != nil {
		t.Fatal(err)
	}
	tx, _, _ := l1.client.TransactionByHash(ctx, r.TxHash)
	if tx.Nonce() != nonce {
		t.Fatalf("replacement used nonce %d, stuck one %d", tx.Nonce(), nonce)
	}
	if _, err := l1.client.TransactionReceipt(ctx, stuck.Hash()); err == nil {
		t.Fatal("stuck transaction mined as well")
	}
}

// faultyL1 wraps the real L1 client and injects faults.
type faultyL1 struct {
	txmgr.Backend
	dropSends    atomic.Int32 // SendTransaction reports success without sending, this many times
	failReceipts atomic.Int32 // TransactionReceipt fails this many times
	mu           sync.Mutex
	published    []*types.Transaction
	forwarded    []*types.Transaction
}

func (f *faultyL1) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	f.mu.Lock()
	f.published = append(f.published, tx)
	f.mu.Unlock()
	if f.dropSends.Add(-1) >= 0 {
		return nil
	}
	if err := f.Backend.SendTransaction(ctx, tx); err != nil {
		return err
	}
	f.mu.Lock()
	f.forwarded = append(f.forwarded, tx)
	f.mu.Unlock()
	return nil
}

func (f *faultyL1) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	if f.failReceipts.Add(-1) >= 0 {
		return nil, errors.New("injected: receipt query failed")
	}
	return f.Backend.TransactionReceipt(ctx, h)
}

// A transaction the L1 never got is published again after the resubmission timeout,
// with fees at least 10% higher.
func TestLostTransactionIsResubmittedWithBumpedFees(t *testing.T) {
	l1 := startL1(t, 100*time.Millisecond)
	f := &faultyL1{Backend: l1.client}
	f.dropSends.Store(1)
	f.failReceipts.Store(3)
	m := newManager(t, f, l1.L1, func(c *txmgr.Config) { c.ResubmissionTimeout = 300 * time.Millisecond })
	ctx := ctxT(t, 30*time.Second)
	r, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: []byte{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.published) < 2 {
		t.Fatalf("published %d times", len(f.published))
	}
	first, last := f.published[0], f.forwarded[len(f.forwarded)-1]
	if last.Hash() != r.TxHash {
		t.Fatal("the receipt is not the forwarded transaction's")
	}
	if last.Nonce() != first.Nonce() {
		t.Fatal("resubmission changed the nonce")
	}
	min := func(x *big.Int) *big.Int {
		return new(big.Int).Div(new(big.Int).Mul(x, big.NewInt(110)), big.NewInt(100))
	}
	if last.GasTipCap().Cmp(min(first.GasTipCap())) < 0 || last.GasFeeCap().Cmp(min(first.GasFeeCap())) < 0 {
		t.Fatalf("fees went from %v/%v to %v/%v", first.GasTipCap(), first.GasFeeCap(), last.GasTipCap(), last.GasFeeCap())
	}
}

// Another transaction takes the nonce while ours is lost: the send fails with
// txmgr.ErrNonceConsumed and the next send reads the nonce again.
func TestNonceTakenByAnotherTransaction(t *testing.T) {
	l1 := startL1(t, 100*time.Millisecond)
	f := &faultyL1{Backend: l1.client}
	f.dropSends.Store(1 << 20)
	m := newManager(t, f, l1.L1, func(c *txmgr.Config) { c.ResubmissionTimeout = time.Hour })
	ctx := ctxT(t, 30*time.Second)
	acct := l1.Accounts()[1]
	nonce, _ := l1.client.NonceAt(ctx, acct.Address, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: []byte{0, 1}})
		errc <- err
	}()
	signer := types.LatestSignerForChainID(l1.ChainConfig().ChainID)
	other := types.MustSignNewTx(acct.Key, signer, &types.DynamicFeeTx{
		ChainID: l1.ChainConfig().ChainID, Nonce: nonce, GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(10 * params.GWei),
		Gas: 21_000, To: &inbox,
	})
	if err := l1.client.SendTransaction(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, txmgr.ErrNonceConsumed) {
		t.Fatalf("send ended with %v", err)
	}
	f.dropSends.Store(0)
	r, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: []byte{0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	tx, _, _ := l1.client.TransactionByHash(ctx, r.TxHash)
	if tx.Nonce() != nonce+1 {
		t.Fatalf("next send used nonce %d, want %d", tx.Nonce(), nonce+1)
	}
}

// A transaction mined and then reorged out before it is deep enough is waited for again;
// the receipt returned is from the canonical chain.
func TestReorgBeforeDepthWaitsForTheNewInclusion(t *testing.T) {
	l1 := startL1(t, 0)
	m := newManager(t, l1.client, l1.L1, func(c *txmgr.Config) { c.NumConfirmations = 3 })
	ctx := ctxT(t, 30*time.Second)
	base := l1.Head()
	type result struct {
		r   *types.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := m.Send(ctx, txmgr.Candidate{To: inbox, Data: []byte{0, 3}})
		done <- result{r, err}
	}()
	// Wait until the transaction is in the pool, then mine it into block base+1.
	for {
		p, _ := l1.client.PendingTransactionCount(ctx)
		if p > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	first, err := l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	if len(l1.Backend().BlockChain().GetBlockByHash(first.Hash()).Transactions()) != 1 {
		t.Fatal("transaction not mined")
	}
	// Reorg it out: the old block's transaction returns to the pool.
	if err := l1.Reorg(base.Hash()); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.MineWithGap(3 * time.Second); err != nil {
		t.Logf("empty block on the new branch: %v", err)
	}
	for i := 0; i < 6; i++ {
		if _, err := l1.Mine(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.r.BlockHash == first.Hash() {
		t.Fatal("returned the receipt of the reorged-out block")
	}
	canon := l1.Backend().BlockChain().GetHeaderByNumber(res.r.BlockNumber.Uint64())
	if canon.Hash() != res.r.BlockHash {
		t.Fatal("receipt block is not canonical")
	}
}

func TestBumpRules(t *testing.T) {
	old := txmgr.Fees{TipCap: big.NewInt(100), FeeCap: big.NewInt(1000)}
	est := txmgr.Fees{TipCap: big.NewInt(1), FeeCap: big.NewInt(2)}
	b := txmgr.Bump(old, est)
	if b.TipCap.Int64() != 110 || b.FeeCap.Int64() != 1100 {
		t.Fatalf("calldata bump %v/%v", b.TipCap, b.FeeCap)
	}
	old.BlobFeeCap = big.NewInt(50)
	est.BlobFeeCap = big.NewInt(1)
	b = txmgr.Bump(old, est)
	if b.TipCap.Int64() != 200 || b.FeeCap.Int64() != 2000 || b.BlobFeeCap.Int64() != 100 {
		t.Fatalf("blob bump %v/%v/%v", b.TipCap, b.FeeCap, b.BlobFeeCap)
	}
	est = txmgr.Fees{TipCap: big.NewInt(500), FeeCap: big.NewInt(5000), BlobFeeCap: big.NewInt(1000)}
	b = txmgr.Bump(old, est)
	if b.TipCap.Int64() != 500 || b.FeeCap.Int64() != 5000 || b.BlobFeeCap.Int64() != 1000 {
		t.Fatalf("estimate above the bump not taken: %v/%v/%v", b.TipCap, b.FeeCap, b.BlobFeeCap)
	}
	// Rounding up: 10% of 15 is 1.5, the replacement must pay 17.
	b = txmgr.Bump(txmgr.Fees{TipCap: big.NewInt(15), FeeCap: big.NewInt(15)}, txmgr.Fees{TipCap: big.NewInt(0), FeeCap: big.NewInt(0)})
	if b.TipCap.Int64() != 17 {
		t.Fatalf("tip %v", b.TipCap)
	}
}

func TestGasCoversTheCalldataFloor(t *testing.T) {
	data := make([]byte, 120_000)
	for i := range data {
		data[i] = 1
	}
	g, err := txmgr.Gas(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(21_000 + 120_000*4*10); g != want {
		t.Fatalf("gas %d, want %d", g, want)
	}
}

// Version 1 sidecars carry 128 cell proofs a blob, version 0 one blob proof; both
// verify against the commitments.
func TestSidecarVersions(t *testing.T) {
	blobs := make([]kzg4844.Blob, 2)
	blobs[0][1], blobs[1][200] = 3, 5
	v1, err := txmgr.NewSidecar(blobs, true)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != types.BlobSidecarVersion1 || len(v1.Proofs) != 2*kzg4844.CellProofsPerBlob {
		t.Fatalf("cell-proof sidecar: version %d, %d proofs", v1.Version, len(v1.Proofs))
	}
	if err := kzg4844.VerifyCellProofs(v1.Blobs, v1.Commitments, v1.Proofs); err != nil {
		t.Fatal(err)
	}
	v0, err := txmgr.NewSidecar(blobs, false)
	if err != nil {
		t.Fatal(err)
	}
	if v0.Version != types.BlobSidecarVersion0 || len(v0.Proofs) != 2 {
		t.Fatalf("blob-proof sidecar: version %d, %d proofs", v0.Version, len(v0.Proofs))
	}
	for i := range blobs {
		if v0.Commitments[i] != v1.Commitments[i] {
			t.Fatalf("blob %d: commitments differ between versions", i)
		}
		if err := kzg4844.VerifyBlobProof(&v0.Blobs[i], v0.Commitments[i], v0.Proofs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

// Sends take nonces in the order of their slots, whatever order they call SendIn in; a
// passed slot takes none and holds nobody up, and a send whose context ends while it
// waits for its turn gives the turn on.
func TestSlotsOrderNonces(t *testing.T) {
	l1 := startL1(t, 100*time.Millisecond)
	m := newManager(t, l1.client, l1.L1, nil)
	ctx := ctxT(t, 30*time.Second)
	slots := []*txmgr.Slot{m.Slot(), m.Slot(), m.Slot(), m.Slot(), m.Slot()}
	// Slot 3's send gives up while it waits behind slot 0.
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() {
		_, err := m.SendIn(cctx, slots[3], txmgr.Candidate{To: inbox, Data: []byte{3}})
		cancelled <- err
	}()
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("a send cancelled while waiting its turn: %v", err)
	}
	slots[1].Pass()
	type sent struct {
		slot int
		r    *types.Receipt
		err  error
	}
	results := make(chan sent, 3)
	for _, i := range []int{4, 2, 0} { // the last slot first
		go func() {
			r, err := m.SendIn(ctx, slots[i], txmgr.Candidate{To: inbox, Data: []byte{byte(i)}})
			results <- sent{i, r, err}
		}()
		time.Sleep(50 * time.Millisecond) // only to make the reverse order likely; the check holds either way
	}
	nonces := map[int]uint64{}
	for range 3 {
		s := <-results
		if s.err != nil {
			t.Fatalf("slot %d: %v", s.slot, s.err)
		}
		tx, _, err := l1.client.TransactionByHash(ctx, s.r.TxHash)
		if err != nil {
			t.Fatal(err)
		}
		nonces[s.slot] = tx.Nonce()
	}
	if nonces[2] != nonces[0]+1 || nonces[4] != nonces[2]+1 {
		t.Fatalf("nonces by slot: %v", nonces)
	}
}
