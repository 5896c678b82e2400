package node_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum-optimism/optimism/op-node/rollup/derive"
	opeth "github.com/ethereum-optimism/optimism/op-service/eth"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/opkit/opkit/devnet"
	opkitrollup "github.com/opkit/opkit/rollup"
	enginepkg "github.com/opkit/opkit/rollup/engine"
	"github.com/opkit/opkit/rollup/l1"
)

// TestJovianActivationOnOpGeth builds an L2 chain across the Jovian activation on a real
// op-geth with attributes from BuildAttributes: the engine accepts every block, the five
// upgrade transactions succeed, the new L1Block takes the Jovian L1-attributes call (its DA
// footprint gas scalar reads 400, the default for 0), the GasPriceOracle reports Jovian,
// and each block's system config read back equals op-node's reading of it.
func TestJovianActivationOnOpGeth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	chain, err := devnet.StartL1(devnet.L1Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	origin := chain.Backend().BlockChain().Genesis().Header()
	g, cfg, err := devnet.PlanL2(devnet.ChainPlan{L1Origin: origin, L1ChainID: 900, BlockTime: 2})
	if err != nil {
		t.Fatal(err)
	}
	jovian := g.Timestamp + 6 // block 3
	g.Config.JovianTime, cfg.JovianTime = &jovian, &jovian
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	l2, err := devnet.StartL2(devnet.L2Config{Genesis: g, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	ec, err := enginepkg.Dial(ctx, l2.EngineEndpoint(), l2.JWTSecret())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	eng := enginepkg.New(cfg, ec, quiet())
	if err := eng.Init(ctx); err != nil {
		t.Fatal(err)
	}
	src, err := l1.Dial(ctx, chain.HTTPEndpoint(), l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	client, err := ethclient.DialContext(ctx, l2.HTTPEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	theirs := opNodeConfig(t, cfg)

	for n := uint64(1); n <= 6; n++ {
		parent := eng.UnsafeHead()
		parentBlock, err := ec.BlockByHash(ctx, parent.Hash)
		if err != nil {
			t.Fatal(err)
		}
		sys, err := opkitrollup.SystemConfigFromL2Block(cfg, parentBlock)
		if err != nil {
			t.Fatalf("block %d: system config of the parent: %v", n, err)
		}
		if n > 1 {
			payload, err := opeth.BlockAsPayload(parentBlock, l2.ChainConfig())
			if err != nil {
				t.Fatal(err)
			}
			want, err := derive.PayloadToSystemConfig(theirs, payload)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSys(t, sys, want) {
				t.Fatalf("block %d: system config\n opkit   %+v\n op-node %+v", n-1, sys, want)
			}
		}
		attrs, _, err := cfg.BuildAttributes(ctx, src, chain.ChainConfig(), sys, parent, cfg.Genesis.L1)
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		id, err := eng.StartBuilding(ctx, parent, attrs)
		if err != nil {
			t.Fatalf("block %d: start building: %v", n, err)
		}
		_, ref, err := eng.SealBuilding(ctx, id)
		if err != nil {
			t.Fatalf("block %d: seal: %v", n, err)
		}
		block, err := ec.BlockByHash(ctx, ref.Hash)
		if err != nil {
			t.Fatal(err)
		}
		// Every deposit of the block succeeded.
		for i, tx := range block.Transactions() {
			rec, err := client.TransactionReceipt(ctx, tx.Hash())
			if err != nil {
				t.Fatal(err)
			}
			if rec.Status != 1 {
				t.Fatalf("block %d tx %d (of %d) failed", n, i, len(block.Transactions()))
			}
		}
		if cfg.IsJovianActivationBlock(block.Time()) && len(block.Transactions()) != 6 {
			t.Fatalf("activation block %d has %d transactions", n, len(block.Transactions()))
		}
	}
	call := func(to common.Address, sig string) []byte {
		t.Helper()
		out, err := client.CallContract(ctx, ethereum.CallMsg{To: &to, Data: crypto.Keccak256([]byte(sig))[:4]}, nil)
		if err != nil {
			t.Fatalf("%s: %v", sig, err)
		}
		return out
	}
	if v := new(big.Int).SetBytes(call(opkitrollup.L1BlockAddress, "daFootprintGasScalar()")); v.Uint64() != opkitrollup.DAFootprintGasScalarDefault {
		t.Fatalf("L1Block DA footprint gas scalar %v", v)
	}
	if v := new(big.Int).SetBytes(call(opkitrollup.GasPriceOracleAddress, "isJovian()")); v.Uint64() != 1 {
		t.Fatalf("GasPriceOracle isJovian() = %v", v)
	}
}
