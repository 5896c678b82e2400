package devnet

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

func startTestL1(t *testing.T, cfg L1Config) *L1 {
	t.Helper()
	l1, err := StartL1(cfg)
	if err != nil {
		t.Fatalf("start L1: %v", err)
	}
	t.Cleanup(func() {
		if err := l1.Close(); err != nil {
			t.Errorf("close L1: %v", err)
		}
	})
	return l1
}

func TestL1SealsOnPeriod(t *testing.T) {
	l1 := startTestL1(t, L1Config{BlockTime: 100 * time.Millisecond, Scheme: Path})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(ctx, l1.WSEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	heads := make(chan *types.Header, 16)
	sub, err := client.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatalf("subscribe over websocket: %v", err)
	}
	defer sub.Unsubscribe()
	var last uint64
	for seen := 0; seen < 3; {
		select {
		case h := <-heads:
			if h.Number.Uint64() <= last {
				t.Fatalf("head went from %d to %d", last, h.Number)
			}
			last = h.Number.Uint64()
			seen++
		case err := <-sub.Err():
			t.Fatalf("subscription: %v", err)
		case <-ctx.Done():
			t.Fatalf("only reached block %d before the deadline", last)
		}
	}
}

// storeContract's init code deploys a runtime that stores calldata word 0 at slot 0.
// runtime: PUSH1 0 CALLDATALOAD PUSH1 0 SSTORE STOP
var storeRuntime = []byte{0x60, 0x00, 0x35, 0x60, 0x00, 0x55, 0x00}

// initCode copies the runtime to memory and returns it, after storing 0x2a at slot 1.
func initCode(runtime []byte) []byte {
	code := []byte{
		0x60, 0x2a, 0x60, 0x01, 0x55, // SSTORE(1, 42)
		0x60, byte(len(runtime)), // PUSH1 len
		0x80,       // DUP1
		0x60, 0x00, // PUSH1 offset (patched)
		0x60, 0x00, // PUSH1 0
		0x39,       // CODECOPY(0, offset, len)
		0x60, 0x00, // PUSH1 0
		0xf3, // RETURN(0, len)
	}
	code[9] = byte(len(code))
	return append(code, runtime...)
}

func TestL1TransfersDeploysAndProves(t *testing.T) {
	l1 := startTestL1(t, L1Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(ctx, l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	chainID, err := client.ChainID(ctx)
	if err != nil || chainID.Uint64() != 900 {
		t.Fatalf("chain id %v, %v", chainID, err)
	}
	from := l1.Accounts()[0]
	to := l1.Accounts()[1].Address
	signer := types.LatestSignerForChainID(chainID)
	head, err := client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip := big.NewInt(1e9)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	value := big.NewInt(12345)
	balBefore, err := client.BalanceAt(ctx, to, nil)
	if err != nil {
		t.Fatal(err)
	}

	transfer := types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 0, GasTipCap: tip, GasFeeCap: feeCap, Gas: 21000, To: &to, Value: value,
	})
	deploy := types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 1, GasTipCap: tip, GasFeeCap: feeCap, Gas: 200000, Data: initCode(storeRuntime),
	})
	for _, tx := range []*types.Transaction{transfer, deploy} {
		if err := client.SendTransaction(ctx, tx); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	sealed, err := l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range []*types.Transaction{transfer, deploy} {
		rcpt, err := client.TransactionReceipt(ctx, tx.Hash())
		if err != nil {
			t.Fatalf("receipt of %s: %v", tx.Hash(), err)
		}
		if rcpt.Status != types.ReceiptStatusSuccessful || rcpt.BlockHash != sealed.Hash() {
			t.Fatalf("tx %s: status %d in block %s, sealed %s", tx.Hash(), rcpt.Status, rcpt.BlockHash, sealed.Hash())
		}
	}
	balAfter, err := client.BalanceAt(ctx, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	if new(big.Int).Sub(balAfter, balBefore).Cmp(value) != 0 {
		t.Fatalf("balance moved by %v, want %v", new(big.Int).Sub(balAfter, balBefore), value)
	}
	contract := crypto.CreateAddress(from.Address, 1)
	code, err := client.CodeAt(ctx, contract, nil)
	if err != nil || common.Bytes2Hex(code) != common.Bytes2Hex(storeRuntime) {
		t.Fatalf("deployed code %x, %v", code, err)
	}

	// eth_getProof for the head block: the account proof must verify against the state root.
	var proof struct {
		Balance      *hexutil.Big    `json:"balance"`
		StorageHash  common.Hash     `json:"storageHash"`
		AccountProof []hexutil.Bytes `json:"accountProof"`
		StorageProof []struct {
			Value *hexutil.Big    `json:"value"`
			Proof []hexutil.Bytes `json:"proof"`
		} `json:"storageProof"`
	}
	rpcClient := client.Client()
	if err := rpcClient.CallContext(ctx, &proof, "eth_getProof", contract, []string{"0x1"}, sealed.Hash()); err != nil {
		t.Fatalf("eth_getProof: %v", err)
	}
	if len(proof.AccountProof) == 0 || proof.StorageProof[0].Value.ToInt().Uint64() != 42 {
		t.Fatalf("proof does not show slot 1 = 42: %+v", proof)
	}
	if crypto.Keccak256Hash(proof.AccountProof[0]) != sealed.Root {
		t.Fatalf("first account proof node does not hash to the state root")
	}
	if crypto.Keccak256Hash(proof.StorageProof[0].Proof[0]) != proof.StorageHash {
		t.Fatalf("first storage proof node does not hash to the storage root")
	}

	// debug_executionWitness for the head block: the witness must carry the parent header
	// and trie nodes, each keyed by nothing but its own content.
	var witness struct {
		Headers []json.RawMessage `json:"headers"`
		Codes   []hexutil.Bytes   `json:"codes"`
		State   []hexutil.Bytes   `json:"state"`
	}
	if err := rpcClient.CallContext(ctx, &witness, "debug_executionWitness", rpc.BlockNumber(sealed.Number.Int64())); err != nil {
		t.Fatalf("debug_executionWitness: %v", err)
	}
	if len(witness.Headers) == 0 || len(witness.State) == 0 {
		t.Fatalf("empty witness: %d headers, %d state nodes", len(witness.Headers), len(witness.State))
	}
	parent, err := client.HeaderByHash(ctx, sealed.ParentHash)
	if err != nil {
		t.Fatal(err)
	}
	foundParentRoot := false
	for _, node := range witness.State {
		if crypto.Keccak256Hash(node) == parent.Root {
			foundParentRoot = true
		}
	}
	if !foundParentRoot {
		t.Fatal("witness lacks the parent state root node")
	}

	// A tracer is registered and answers.
	var trace json.RawMessage
	if err := rpcClient.CallContext(ctx, &trace, "debug_traceTransaction", deploy.Hash(), map[string]any{"tracer": "callTracer"}); err != nil {
		t.Fatalf("callTracer: %v", err)
	}
	var netVersion string
	if err := rpcClient.CallContext(ctx, &netVersion, "net_version"); err != nil || netVersion != "900" {
		t.Fatalf("net_version %q, %v", netVersion, err)
	}
}

func TestL1ReorgAndResume(t *testing.T) {
	dir := t.TempDir()
	l1, err := StartL1(L1Config{DataDir: dir, Scheme: Path})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l1.MineUntil(ctx, 5); err != nil {
		t.Fatal(err)
	}
	oldFive := l1.Head()
	three := l1.Backend().BlockChain().GetHeaderByNumber(3)
	if err := l1.Reorg(three.Hash()); err != nil {
		t.Fatal(err)
	}
	if got := l1.Head().Number.Uint64(); got != 3 {
		t.Fatalf("head after reorg %d, want 3", got)
	}
	if err := l1.MineUntil(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if l1.Backend().BlockChain().GetHeaderByNumber(5).Hash() == oldFive.Hash() {
		t.Fatal("block 5 was not replaced by the new branch")
	}
	head := l1.Head()
	genesis := l1.Genesis().ToBlock().Hash()
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}

	again := startTestL1(t, L1Config{DataDir: dir, Scheme: Path})
	if again.Head().Hash() != head.Hash() {
		t.Fatalf("resumed at %d %s, closed at %d %s", again.Head().Number, again.Head().Hash(), head.Number, head.Hash())
	}
	if again.Genesis().ToBlock().Hash() != genesis {
		t.Fatal("resumed with another genesis")
	}
	if _, err := again.Mine(); err != nil {
		t.Fatalf("mine after resume: %v", err)
	}
}

func TestDevAccountsAreStable(t *testing.T) {
	a, b := DevAccounts(3), DevAccounts(3)
	for i := range a {
		if a[i].Address != b[i].Address {
			t.Fatalf("account %d differs between calls", i)
		}
	}
	if a[0].Address == a[1].Address {
		t.Fatal("accounts collide")
	}
}

func TestUnknownSchemeIsRejected(t *testing.T) {
	if _, err := StartL1(L1Config{Scheme: "bogus"}); err == nil {
		t.Fatal("bogus scheme accepted")
	}
}

// TestL1AnswersGetLogs: the dev L1 keeps no log search index, and eth_getLogs must still find
// logs by scanning blocks.
func TestL1AnswersGetLogs(t *testing.T) {
	l1 := startTestL1(t, L1Config{Scheme: Path})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := ethclient.DialContext(ctx, l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	chainID, err := client.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from := l1.Accounts()[2]
	signer := types.LatestSignerForChainID(chainID)
	feeCap, tip := big.NewInt(100e9), big.NewInt(1e9)
	// runtime: LOG1(0, 0, topic 0x2a) STOP
	emitter := []byte{0x60, 0x2a, 0x60, 0x00, 0x60, 0x00, 0xa1, 0x00}
	deploy := types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 0, GasTipCap: tip, GasFeeCap: feeCap, Gas: 200000, Data: initCode(emitter),
	})
	contract := crypto.CreateAddress(from.Address, 0)
	call := types.MustSignNewTx(from.Key, signer, &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 1, GasTipCap: tip, GasFeeCap: feeCap, Gas: 100000, To: &contract,
	})
	for _, tx := range []*types.Transaction{deploy, call} {
		if err := client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	block, err := l1.Mine()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l1.Mine(); err != nil {
			t.Fatal(err)
		}
	}
	logs, err := client.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), Addresses: []common.Address{contract}})
	if err != nil {
		t.Fatalf("eth_getLogs: %v", err)
	}
	if len(logs) != 1 || logs[0].BlockHash != block.Hash() || logs[0].TxHash != call.Hash() ||
		len(logs[0].Topics) != 1 || logs[0].Topics[0] != common.BigToHash(big.NewInt(0x2a)) {
		t.Fatalf("eth_getLogs answered %+v", logs)
	}
}
