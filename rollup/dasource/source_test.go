package dasource_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/holiman/uint256"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/dasource"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/l1"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

var testInbox = common.HexToAddress("0xff00000000000000000000000000000000000901")

// testL1 is a dev L1 that seals only when told, with a client to send raw transactions.
type testL1 struct {
	*devnet.L1
	client *ethclient.Client
	src    *l1.Source
	signer types.Signer
	nonces map[common.Address]uint64
}

func startL1(t *testing.T) *testL1 {
	t.Helper()
	chain, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	client, err := ethclient.Dial(chain.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	src, err := l1.Dial(context.Background(), chain.HTTPEndpoint(), l1.Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return &testL1{L1: chain, client: client, src: src, signer: types.LatestSignerForChainID(chain.ChainConfig().ChainID), nonces: map[common.Address]uint64{}}
}

func (c *testL1) rollupConfig() *rollup.Config {
	return &rollup.Config{BatchInboxAddress: testInbox, L1ChainID: c.ChainConfig().ChainID}
}

// send signs and submits a transaction without sealing; it returns its hash.
func (c *testL1) send(t *testing.T, from devnet.Account, txdata func(nonce uint64) types.TxData) common.Hash {
	t.Helper()
	tx := types.MustSignNewTx(from.Key, c.signer, txdata(c.nonces[from.Address]))
	if err := c.client.SendTransaction(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	c.nonces[from.Address]++
	return tx.Hash()
}

func (c *testL1) calldata(t *testing.T, from devnet.Account, to common.Address, data []byte) common.Hash {
	return c.send(t, from, func(n uint64) types.TxData {
		return &types.DynamicFeeTx{ChainID: c.ChainConfig().ChainID, Nonce: n, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9), Gas: 100_000, To: &to, Data: data}
	})
}

func (c *testL1) legacy(t *testing.T, from devnet.Account, to common.Address, data []byte) common.Hash {
	return c.send(t, from, func(n uint64) types.TxData {
		return &types.LegacyTx{Nonce: n, GasPrice: big.NewInt(100e9), Gas: 100_000, To: &to, Data: data}
	})
}

func (c *testL1) blobs(t *testing.T, from devnet.Account, to common.Address, calldata []byte, blobs ...*kzg4844.Blob) common.Hash {
	t.Helper()
	var bs []kzg4844.Blob
	for _, b := range blobs {
		bs = append(bs, *b)
	}
	sidecar, err := devnet.BlobSidecar(bs)
	if err != nil {
		t.Fatal(err)
	}
	return c.send(t, from, func(n uint64) types.TxData {
		return &types.BlobTx{ChainID: uint256.MustFromBig(c.ChainConfig().ChainID), Nonce: n, GasTipCap: uint256.NewInt(1e9),
			GasFeeCap: uint256.NewInt(100e9), Gas: 100_000, To: to, Data: calldata, BlobFeeCap: uint256.NewInt(1e10),
			BlobHashes: sidecar.BlobHashes(), Sidecar: sidecar}
	})
}

// mine seals the pending transactions into one block, checking all of them made it.
func (c *testL1) mine(t *testing.T, want int) eth.L1BlockRef {
	t.Helper()
	h, err := c.Mine()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Backend().BlockChain().GetBlockByHash(h.Hash()).Transactions()); n != want {
		t.Fatalf("block %d holds %d transactions, want %d", h.Number, n, want)
	}
	return eth.BlockRefFromHeader(h)
}

// expected lists, in block order, the data each transaction contributes.
func (c *testL1) expected(ref eth.L1BlockRef, items map[common.Hash][][]byte) [][]byte {
	var out [][]byte
	for _, tx := range c.Backend().BlockChain().GetBlockByHash(ref.Hash).Transactions() {
		out = append(out, items[tx.Hash()]...)
	}
	return out
}

func sameItems(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d: %x", len(got), len(want), got)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("item %d: %x, want %x", i, got[i], want[i])
		}
	}
}

type countingMetrics struct{ dropped map[string]int }

func (m *countingMetrics) DataDropped(reason string) { m.dropped[reason]++ }

// TestCalldataAndBlobsFromDevL1: in one real L1 block, only the batcher's transactions
// to the inbox count, blob transactions contribute their blobs (fetched from the dev L1's
// beacon API and verified) and not their calldata, and a blob that does not decode is
// skipped and counted.
func TestCalldataAndBlobsFromDevL1(t *testing.T) {
	c := startL1(t)
	accts := c.Accounts()
	batcher, other := accts[1], accts[2]
	good1, good2 := dataBlob(t, []byte{0, 0xb1}), dataBlob(t, []byte{0, 0xb2, 0xb2})
	bad := *dataBlob(t, []byte{0, 0xee})
	bad[1] = 1 // encoding version 1 does not exist
	third := accts[3]
	// An account's transactions are either all blob or all not while pending, so the
	// first block has the calldata cases and the second the blob ones.
	items := map[common.Hash][][]byte{}
	items[c.calldata(t, batcher, testInbox, []byte{0, 1, 2, 3})] = [][]byte{{0, 1, 2, 3}}
	c.calldata(t, other, testInbox, []byte{0, 9})
	c.calldata(t, batcher, common.Address{7}, []byte{0, 8})
	items[c.legacy(t, batcher, testInbox, []byte{0, 4})] = [][]byte{{0, 4}}
	items[c.calldata(t, batcher, testInbox, nil)] = [][]byte{{}}
	c.blobs(t, third, testInbox, nil, good1)
	ref1 := c.mine(t, 6)
	items[c.blobs(t, batcher, testInbox, []byte{0, 7}, good1, &bad, good2)] = [][]byte{{0, 0xb1}, {0, 0xb2, 0xb2}}
	c.calldata(t, other, testInbox, []byte{0, 10})
	ref := c.mine(t, 2)

	m := &countingMetrics{dropped: map[string]int{}}
	src, err := dasource.New(dasource.Config{Rollup: c.rollupConfig(), L1: c.src, Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: c.BeaconURL()}), Log: quiet(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []eth.L1BlockRef{ref1, ref} {
		got, err := src.TxData(context.Background(), r, batcher.Address)
		if err != nil {
			t.Fatal(err)
		}
		sameItems(t, got, c.expected(r, items))
	}
	if st := src.Stats(); st.BadBlobs != 1 || m.dropped[dasource.DropBadBlob] != 1 {
		t.Fatalf("stats %+v, metrics %v", st, m.dropped)
	}
	// Another batcher address sees only its own transactions.
	got, err := src.TxData(context.Background(), ref1, third.Address)
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, got, [][]byte{{0, 0xb1}})
	got, err = src.TxData(context.Background(), ref, other.Address)
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, got, [][]byte{{0, 10}})

	// Without a beacon endpoint the blob transaction cannot be read: critical.
	noBeacon, _ := dasource.New(dasource.Config{Rollup: c.rollupConfig(), L1: c.src, Log: quiet()})
	if _, err := noBeacon.TxData(context.Background(), ref, batcher.Address); !errors.Is(err, derive.ErrCritical) || !errors.Is(err, dasource.ErrNoBeacon) {
		t.Fatalf("no beacon: %v", err)
	}
	// A block L1 does not know: reset.
	gone := ref
	gone.Hash = common.Hash{1}
	if _, err := src.TxData(context.Background(), gone, batcher.Address); !errors.Is(err, derive.ErrReset) {
		t.Fatalf("unknown block: %v", err)
	}
}

// TestMissingAndWrongBlobs injects a beacon node that has no blobs (reset) and one that
// answers with other blobs (temporary) for a real L1 block.
func TestMissingAndWrongBlobs(t *testing.T) {
	c := startL1(t)
	batcher := c.Accounts()[1]
	blob := dataBlob(t, []byte{0, 1})
	c.blobs(t, batcher, testInbox, nil, blob)
	ref := c.mine(t, 1)
	genesis := c.BeaconGenesisTime()
	empty := httptest.NewServer(&blobServer{genesis: genesis, slotLen: devnet.BeaconSecondsPerSlot, slot: ^uint64(0)})
	defer empty.Close()
	src, _ := dasource.New(dasource.Config{Rollup: c.rollupConfig(), L1: c.src, Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: empty.URL}), Log: quiet()})
	if _, err := src.TxData(context.Background(), ref, batcher.Address); !errors.Is(err, derive.ErrReset) {
		t.Fatalf("missing blobs: %v", err)
	}
	wrong := httptest.NewServer(&blobServer{genesis: genesis, slotLen: devnet.BeaconSecondsPerSlot, slot: c.SlotOf(ref.Time), blobs: []*kzg4844.Blob{dataBlob(t, []byte{0, 2})}})
	defer wrong.Close()
	src, _ = dasource.New(dasource.Config{Rollup: c.rollupConfig(), L1: c.src, Beacon: dasource.NewBeacon(dasource.BeaconConfig{URL: wrong.URL}), Log: quiet()})
	if _, err := src.TxData(context.Background(), ref, batcher.Address); !errors.Is(err, derive.ErrTemporary) || !errors.Is(err, dasource.ErrBlobMismatch) {
		t.Fatalf("wrong blobs: %v", err)
	}
}
