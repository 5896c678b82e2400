package batcher_test

import (
	"bytes"
	"context"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	opaltda "github.com/ethereum-optimism/optimism/op-alt-da"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/log"

	"github.com/opkit/opkit/batcher"
	"github.com/opkit/opkit/compat/peers"
	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
	"github.com/opkit/opkit/rollup/driver"
	"github.com/opkit/opkit/rollup/node"
)

// TestKeccakAltDAOnReferenceServer: opkit batcher in altda mode with keccak commitments
// writes every frame to op-alt-da v1.16.13's reference DA server (in-process, memory
// store) and posts 0x01 ‖ 0x00 ‖ keccak256(frame) to L1. Two verifiers read the data
// back from that server: the opkit node (which also sequences) and op-node v1.16.13 on
// its own op-geth; both safe heads advance, and op-node's chain has the sequencer's
// block hashes and output roots up to its safe head.
func TestKeccakAltDAOnReferenceServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := peers.Build(ctx); err != nil {
		t.Fatal(err)
	}
	ref := opaltda.NewDAServer("127.0.0.1", 0, opaltda.NewMemStore(), log.NewLogger(log.DiscardHandler()), false)
	if err := ref.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Stop() })
	refURL := ref.HttpEndpoint()

	l1, err := devnet.StartL1(devnet.L1Config{BlockTime: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l1.Close() })
	g, rcfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: l1.Backend().BlockChain().Genesis().Header(),
		L1ChainID: l1.ChainConfig().ChainID.Uint64(), BlockTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	// op-node takes keccak commitments only with a challenge contract; none is deployed
	// at this address, so no commitment is ever challenged.
	rcfg.AltDAConfig = &rollup.AltDAConfig{CommitmentType: rollup.KeccakCommitment,
		DAChallengeAddress: common.HexToAddress("0x000000000000000000000000000000000000dac0"),
		DAChallengeWindow:  16, DAResolveWindow: 16}
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	seqNode, err := node.Start(ctx, node.Config{
		Rollup: rcfg, L1ChainConfig: l1.ChainConfig(), L1URL: l1.HTTPEndpoint(), L1BeaconURL: l1.BeaconURL(),
		L2EngineURL: l2.EngineEndpoint(), JWTSecret: l2.JWTSecret(), AltDAEnabled: true, AltDAServer: refURL,
		Driver: driver.Config{SequencerEnabled: true}, RPCPort: 0, MetricsDisabled: true,
		L1PollInterval: 100 * time.Millisecond, Log: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seqNode.Close() })
	ver, err := peers.StartOpNode(ctx, peers.OpNodeConfig{L1: l1, Rollup: rcfg, L2Genesis: g, Dir: t.TempDir(),
		ExtraFlags: []string{"--altda.enabled", "--altda.da-server=" + refURL, "--altda.da-service=false"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ver.Close() })

	b, err := batcher.New(ctx, batcher.Config{
		L1URL: l1.HTTPEndpoint(), L2URL: l2.HTTPEndpoint(), RollupURL: seqNode.RPCEndpoint(),
		Key: devnet.DevAccounts(2)[1].Key, DAType: batcher.DAAltDA, AltDAServer: refURL,
		TargetNumFrames: 1, MaxL1TxSize: 120_000, Compression: "zlib", NumConfirmations: 1,
		ResubmissionTimeout: 10 * time.Second, NetworkTimeout: 5 * time.Second, ReceiptInterval: 100 * time.Millisecond,
		PollInterval: 200 * time.Millisecond, MaxPendingTx: 1, MaxChannelDuration: 1, SubSafetyMargin: 4,
		AltDAPutTimeout: 5 * time.Second, AltDARetryAfter: 5 * time.Second, AltDAMaxRetries: 3, AltDAPartialMax: 3,
		RPCPort: -1, Log: quiet(),
	}, batcher.DefaultCodec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}

	seq, err := peers.DialRollup(ctx, seqNode.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Close()
	vc, err := peers.DialRollup(ctx, ver.RPCEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	st, err := vc.WaitSafe(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := peers.Agree(ctx, 0, st.SafeL2.Number, seq, vc); err != nil {
		t.Fatal(err)
	}
	// The opkit node derived as far from the same commitments.
	ss, err := seq.WaitSafe(ctx, st.SafeL2.Number)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("safe heads: op-node %d, opkit node %d", st.SafeL2.Number, ss.SafeL2.Number)

	// Every batcher transaction is a keccak commitment whose preimage the reference
	// server returns.
	c, err := ethclient.DialContext(ctx, l1.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, err := c.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := uint64(1); i <= head; i++ {
		blk, err := c.BlockByNumber(ctx, new(big.Int).SetUint64(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range blk.Transactions() {
			if tx.To() == nil || *tx.To() != rcfg.BatchInboxAddress {
				continue
			}
			d := tx.Data()
			if len(d) != 34 || d[0] != 0x01 || d[1] != 0x00 {
				t.Fatalf("batcher tx %s carries %d bytes starting %x, want 0x01 0x00 and a keccak256", tx.Hash(), len(d), d[:min(len(d), 2)])
			}
			preimage := getReference(ctx, t, refURL, d[1:])
			if got := crypto.Keccak256(preimage); !bytes.Equal(got, d[2:]) {
				t.Fatalf("the reference server's data for %x hashes to %x", d[1:], got)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no batcher transaction on L1")
	}
}

func getReference(ctx context.Context, t *testing.T, url string, comm []byte) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/get/"+hexutil.Encode(comm), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %x from the reference server: %d %v", comm, resp.StatusCode, err)
	}
	return body
}
