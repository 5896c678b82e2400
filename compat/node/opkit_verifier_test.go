package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/holiman/uint256"

	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
	opkitrollup "github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/node"
)

// opkitVerifier is an opkit rollup node without a sequencer, deriving the chain from the
// dev L1 on its own op-geth.
type opkitVerifier struct {
	t     *testing.T
	cfg   node.Config
	l2cfg devnet.L2Config
	L2    *devnet.L2
	Node  *node.Node
	RPC   *peers.RollupClient
}

// startOpkitVerifier starts op-geth from genesis (in dataDir, or in memory when it is
// empty) and an opkit verifier on it reading l1 over its untrusted JSON-RPC and beacon API.
func startOpkitVerifier(ctx context.Context, t *testing.T, l1 *devnet.L1, rcfg *opkitrollup.Config, genesis *core.Genesis, dataDir string) *opkitVerifier {
	t.Helper()
	v := &opkitVerifier{t: t, l2cfg: devnet.L2Config{DataDir: dataDir, Genesis: genesis, Logger: quiet()}}
	var err error
	if v.L2, err = devnet.StartL2(v.l2cfg); err != nil {
		t.Fatal(err)
	}
	// One cleanup for both, closing whichever node and execution client run at the end.
	t.Cleanup(func() {
		if v.Node != nil {
			if err := v.Node.Err(); err != nil {
				t.Errorf("opkit verifier stopped itself: %v", err)
			}
			if err := v.Node.Close(); err != nil {
				t.Errorf("close opkit verifier: %v", err)
			}
		}
		if v.RPC != nil {
			v.RPC.Close()
		}
		if err := v.L2.Close(); err != nil {
			t.Errorf("close opkit verifier's L2: %v", err)
		}
	})
	v.cfg = node.Config{
		Rollup: rcfg, L1ChainConfig: l1.ChainConfig(),
		L1URL: l1.HTTPEndpoint(), L1BeaconURL: l1.BeaconURL(),
		L2EngineURL: v.L2.EngineEndpoint(), JWTSecret: v.L2.JWTSecret(),
		MetricsDisabled: true, L1PollInterval: 100 * time.Millisecond, Log: quiet(),
	}
	v.startNode(ctx)
	return v
}

func (v *opkitVerifier) startNode(ctx context.Context) {
	v.t.Helper()
	n, err := node.Start(ctx, v.cfg)
	if err != nil {
		v.t.Fatal(err)
	}
	v.Node = n
	if v.RPC != nil {
		v.RPC.Close()
	}
	if v.RPC, err = peers.DialRollup(ctx, n.RPCEndpoint()); err != nil {
		v.t.Fatal(err)
	}
}

// waitSafe waits until the verifier's safe head is at least n, failing as soon as the
// node stops itself.
func (v *opkitVerifier) waitSafe(ctx context.Context, n uint64) *opeth.SyncStatus {
	v.t.Helper()
	return v.waitFor(ctx, fmt.Sprintf("safe head %d", n), func(s *opeth.SyncStatus) bool { return s.SafeL2.Number >= n })
}

// waitFor polls the verifier's sync status until cond holds, failing as soon as the node
// stops itself.
func (v *opkitVerifier) waitFor(ctx context.Context, what string, cond func(*opeth.SyncStatus) bool) *opeth.SyncStatus {
	v.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := v.Node
	go func() {
		select {
		case <-n.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	st, err := v.RPC.WaitFor(ctx, what, cond)
	if err != nil {
		if nerr := n.Err(); nerr != nil {
			v.t.Fatalf("opkit verifier stopped while waiting for %s: %v", what, nerr)
		}
		v.t.Fatal(err)
	}
	return st
}

// restartNode stops the rollup node and starts a new one on the same op-geth.
func (v *opkitVerifier) restartNode(ctx context.Context) {
	v.t.Helper()
	if err := v.Node.Close(); err != nil {
		v.t.Fatal(err)
	}
	v.Node = nil
	v.startNode(ctx)
}

// stopL2 stops the verifier's op-geth under the running node; the returned function
// starts it again on the same datadir, ports and secret.
func (v *opkitVerifier) stopL2() (restart func()) {
	v.t.Helper()
	if v.l2cfg.DataDir == "" {
		v.t.Fatal("the verifier's op-geth has no datadir to restart on")
	}
	cfg := v.l2cfg
	cfg.Port, cfg.AuthPort, cfg.JWTSecret = portOf(v.t, v.L2.HTTPEndpoint()), portOf(v.t, v.L2.EngineEndpoint()), v.L2.JWTSecret()
	if err := v.L2.Close(); err != nil {
		v.t.Fatal(err)
	}
	return func() {
		v.t.Helper()
		l2, err := devnet.StartL2(cfg)
		if err != nil {
			v.t.Fatalf("restart the verifier's op-geth: %v", err)
		}
		v.L2 = l2
	}
}

func portOf(t *testing.T, endpoint string) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("port of %s: %v", endpoint, err)
	}
	return p
}

// sameBlocks checks that the execution clients at urls hold the same block hash at every
// height from..to (the rollup nodes' outputAtBlock is checked by peers.Agree).
func sameBlocks(ctx context.Context, from, to uint64, urls ...string) error {
	clients := make([]*ethclient.Client, len(urls))
	for i, u := range urls {
		c, err := ethclient.DialContext(ctx, u)
		if err != nil {
			return fmt.Errorf("dial %s: %w", u, err)
		}
		defer c.Close()
		clients[i] = c
	}
	for n := from; n <= to; n++ {
		var want common.Hash
		for i, c := range clients {
			h, err := c.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
			if err != nil {
				return fmt.Errorf("block %d from %s: %w", n, urls[i], err)
			}
			if i == 0 {
				want = h.Hash()
			} else if h.Hash() != want {
				return fmt.Errorf("block %d: %s has %s, %s has %s", n, urls[0], want, urls[i], h.Hash())
			}
		}
	}
	return nil
}

// sendEveryTxType sends, from a dev account funded in the L2 genesis, one transaction of
// each type a batch may carry (legacy, access list, dynamic fee, set code) to the L2 at
// url, and returns their hashes.
func sendEveryTxType(ctx context.Context, l2URL string, chainID *big.Int, from devnet.Account) ([]common.Hash, error) {
	c, err := ethclient.DialContext(ctx, l2URL)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", l2URL, err)
	}
	defer c.Close()
	nonce, err := c.PendingNonceAt(ctx, from.Address)
	if err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	signer := types.LatestSignerForChainID(chainID)
	to := common.HexToAddress("0x00000000000000000000000000000000000c0de7")
	gasPrice := big.NewInt(10e9)
	// The set-code transaction delegates an account that never sent a transaction, so its
	// authorization nonce is 0 whatever the sender's nonce is.
	delegated, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	auth, err := types.SignSetCode(delegated, types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(chainID), Address: to, Nonce: 0})
	if err != nil {
		return nil, fmt.Errorf("sign authorization: %w", err)
	}
	txs := []types.TxData{
		&types.LegacyTx{Nonce: nonce, GasPrice: gasPrice, Gas: 21_000, To: &to, Value: big.NewInt(1)},
		&types.AccessListTx{ChainID: chainID, Nonce: nonce + 1, GasPrice: gasPrice, Gas: 30_000, To: &to, Value: big.NewInt(2),
			AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{{0x01}}}}},
		&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce + 2, GasTipCap: big.NewInt(1e9), GasFeeCap: gasPrice, Gas: 50_000, To: &to,
			Value: big.NewInt(3), Data: []byte("opkit")},
		&types.SetCodeTx{ChainID: uint256.MustFromBig(chainID), Nonce: nonce + 3, GasTipCap: uint256.NewInt(1e9), GasFeeCap: uint256.MustFromBig(gasPrice),
			Gas: 100_000, To: to, Value: uint256.NewInt(4), AuthList: []types.SetCodeAuthorization{auth}},
	}
	var hashes []common.Hash
	for _, data := range txs {
		tx, err := types.SignNewTx(from.Key, signer, data)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		if err := c.SendTransaction(ctx, tx); err != nil {
			return nil, fmt.Errorf("send type %d: %w", tx.Type(), err)
		}
		hashes = append(hashes, tx.Hash())
	}
	return hashes, nil
}

// waitIncluded waits until every transaction has a successful receipt on the L2 at url,
// and returns the highest block holding one.
func waitIncluded(ctx context.Context, l2URL string, hashes []common.Hash) (uint64, error) {
	c, err := ethclient.DialContext(ctx, l2URL)
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", l2URL, err)
	}
	defer c.Close()
	var last uint64
	for _, h := range hashes {
		for {
			r, err := c.TransactionReceipt(ctx, h)
			if err == nil {
				if r.Status != types.ReceiptStatusSuccessful {
					return 0, fmt.Errorf("transaction %s (type %d) failed in block %d", h, r.Type, r.BlockNumber)
				}
				last = max(last, r.BlockNumber.Uint64())
				break
			}
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("transaction %s not included: %w (last error %v)", h, ctx.Err(), err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return last, nil
}

// TestOpkitVerifierDerivesOpNodeSequencerAcrossJovian: op-node v1.16.13 sequences a chain
// whose rollup.json activates Jovian a few blocks in (on the L2 genesis too, so op-geth
// runs its rules), op-batcher v1.16.13 posts it to the dev L1 in calldata and then in
// blobs, and an opkit verifier on its own op-geth derives it from L1 alone: every height
// up to the verifier's safe head (which op-node's own safe head, derived from the same
// batches, reaches too), across the activation block, has op-node's block hash on both
// execution clients and the same optimism_outputAtBlock on both rollup nodes. The
// chain carries a transaction of every type before and after the activation.
func TestOpkitVerifierDerivesOpNodeSequencerAcrossJovian(t *testing.T) {
	buildPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l1, err := devnet.StartL1(devnet.L1Config{BlockTime: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l1.Close() })
	genesis, rcfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(), L1ChainID: 900, BlockTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Far enough in that calldata batches cover blocks before it; the genesis time is the
	// dev L1's genesis, a moment ago.
	const jovianBlock = 12
	jovian := genesis.Timestamp + jovianBlock*rcfg.BlockTime
	genesis.Config.JovianTime, rcfg.JovianTime = &jovian, &jovian
	if err := rcfg.Check(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sequencer := startOpNode(ctx, t, peers.OpNodeConfig{L1: l1, Rollup: rcfg, L2Genesis: genesis, Sequencer: true})
	ver := startOpkitVerifier(ctx, t, l1, rcfg, genesis, "")
	seq := dialRollup(ctx, t, sequencer.RPCEndpoint())
	chainID := rcfg.L2ChainID
	sender := devnet.DevAccounts(6)[5]

	before, err := sendEveryTxType(ctx, sequencer.L2.HTTPEndpoint(), chainID, sender)
	if err != nil {
		t.Fatal(err)
	}
	calldata := startBatcher(ctx, t, peers.BatcherConfig{L1: l1, L2RPC: sequencer.L2.HTTPEndpoint(), RollupRPC: sequencer.RPCEndpoint(), DataAvailability: "calldata"})
	if _, err := waitIncluded(ctx, sequencer.L2.HTTPEndpoint(), before); err != nil {
		t.Fatal(err)
	}
	ver.waitSafe(ctx, 5)
	if err := calldata.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := seq.SyncStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lastCalldata := st.UnsafeL2.Number
	t.Logf("%s: opkit safe 5 from calldata; op-node's unsafe head %d", time.Since(start), lastCalldata)
	startBatcher(ctx, t, peers.BatcherConfig{L1: l1, L2RPC: sequencer.L2.HTTPEndpoint(), RollupRPC: sequencer.RPCEndpoint(), DataAvailability: "blobs"})
	// Transactions after the activation, once op-node builds Jovian blocks.
	if _, err := seq.WaitFor(ctx, "unsafe past the Jovian activation", func(s *opeth.SyncStatus) bool { return s.UnsafeL2.Time > jovian }); err != nil {
		t.Fatal(err)
	}
	// Jovian's system config: a minimum base fee and a DA-footprint gas scalar, with new
	// EIP-1559 parameters and operator fees, for the blocks whose origin follows them.
	const (
		minBaseFee                       = 3_000_000_000
		daScalar                         = 321
		denominator, elasticity          = 100, 4
		operatorScalar, operatorConstant = 1000, 7
	)
	var lastUpdate uint64
	for _, update := range []func() (*types.Receipt, error){
		func() (*types.Receipt, error) { return l1.SetMinBaseFee(ctx, minBaseFee) },
		func() (*types.Receipt, error) { return l1.SetDAFootprintGasScalar(ctx, daScalar) },
		func() (*types.Receipt, error) { return l1.SetEIP1559Params(ctx, denominator, elasticity) },
		func() (*types.Receipt, error) { return l1.SetOperatorFeeScalars(ctx, operatorScalar, operatorConstant) },
	} {
		r, err := update()
		if err != nil {
			t.Fatal(err)
		}
		lastUpdate = max(lastUpdate, r.BlockNumber.Uint64())
	}
	if _, err := seq.WaitFor(ctx, "an L1 origin with the config updates", func(s *opeth.SyncStatus) bool { return s.UnsafeL2.L1Origin.Number >= lastUpdate }); err != nil {
		t.Fatal(err)
	}
	after, err := sendEveryTxType(ctx, sequencer.L2.HTTPEndpoint(), chainID, sender)
	if err != nil {
		t.Fatal(err)
	}
	lastTx, err := waitIncluded(ctx, sequencer.L2.HTTPEndpoint(), after)
	if err != nil {
		t.Fatal(err)
	}
	vst := ver.waitSafe(ctx, max(lastTx, lastCalldata+4, jovianBlock+2))
	t.Logf("%s: opkit safe %d from blobs", time.Since(start), vst.SafeL2.Number)
	if cd, bl := inboxTxs(l1, rcfg.BatchInboxAddress); cd == 0 || bl == 0 {
		t.Fatalf("the inbox got %d calldata and %d blob transactions", cd, bl)
	}
	if vst.UnsafeL2.Number > vst.SafeL2.Number {
		t.Fatalf("the verifier has unsafe %d above safe %d with no gossip", vst.UnsafeL2.Number, vst.SafeL2.Number)
	}
	// op-node derives the same batches: its own safe head gets there too.
	if _, err := seq.WaitSafe(ctx, vst.SafeL2.Number); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(sameBlocks(ctx, 0, vst.SafeL2.Number, sequencer.L2.HTTPEndpoint(), ver.L2.HTTPEndpoint()),
		peers.Agree(ctx, 0, vst.SafeL2.Number, seq, ver.RPC)); err != nil {
		t.Fatal(err)
	}
	// The activation block is op-node's: its upgrade transactions are in both chains.
	c, err := ethclient.DialContext(ctx, ver.L2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	act, err := c.BlockByNumber(ctx, big.NewInt(jovianBlock))
	if err != nil {
		t.Fatal(err)
	}
	if act.Time() != jovian || !rcfg.IsJovianActivationBlock(act.Time()) || len(act.Transactions()) < 6 {
		t.Fatalf("block %d at %d (Jovian at %d) has %d transactions", jovianBlock, act.Time(), jovian, len(act.Transactions()))
	}
	// And the updates reached the chain: the block holding the last transactions carries
	// them in its extraData (Jovian's v1), its base fee and its L1-attributes deposit, as
	// op-node's decoder reads it.
	last, err := c.BlockByNumber(ctx, new(big.Int).SetUint64(lastTx))
	if err != nil {
		t.Fatal(err)
	}
	denom, elast, floor := eip1559.DecodeJovianExtraData(last.Extra())
	if floor == nil || *floor != minBaseFee || denom != denominator || elast != elasticity || last.BaseFee().Uint64() < minBaseFee {
		t.Fatalf("block %d: extraData %x (denominator %d, elasticity %d, min base fee %v), base fee %v", lastTx, last.Extra(), denom, elast, floor, last.BaseFee())
	}
	info, err := derive.L1BlockInfoFromBytes(opNodeConfig(t, rcfg), last.Time(), last.Transactions()[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if info.DAFootprintGasScalar != daScalar || info.OperatorFeeScalar != operatorScalar || info.OperatorFeeConstant != operatorConstant {
		t.Fatalf("block %d: L1 attributes %+v", lastTx, info)
	}
}
