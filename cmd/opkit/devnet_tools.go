package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/devnet"
	"github.com/opkit/opkit/rollup"
)

// The devnet's helper commands act for a dev account against a running devnet: the keys
// are the deterministic dev keys every devnet funds.

func devnetSendCommand() *cli.Command {
	const cmd = "devnet_send"
	return &cli.Command{
		Name:  "send",
		Usage: "send ETH on the devnet's L2 from a dev account and wait for the receipt",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "l2", Value: "http://127.0.0.1:9546", Usage: "L2 JSON-RPC", EnvVars: envVars(cmd, "l2")},
			&cli.IntFlag{Name: "account", Value: 0, Usage: "dev account that sends", EnvVars: envVars(cmd, "account")},
			&cli.StringFlag{Name: "to", Usage: "recipient address (default: dev account 2)", EnvVars: envVars(cmd, "to")},
			&cli.Float64Flag{Name: "eth", Value: 0.01, Usage: "amount in ETH", EnvVars: envVars(cmd, "eth")},
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "how long to wait for the receipt", EnvVars: envVars(cmd, "timeout")},
		},
		Action: func(c *cli.Context) error {
			from, err := devAccount(c.Int("account"))
			if err != nil {
				return err
			}
			to := devnet.DevAccounts(3)[2].Address
			if s := c.String("to"); s != "" {
				if !common.IsHexAddress(s) {
					return fmt.Errorf("--to: %q is not an address", s)
				}
				to = common.HexToAddress(s)
			}
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			cl, err := ethclient.DialContext(ctx, c.String("l2"))
			if err != nil {
				return fmt.Errorf("--l2: %w", err)
			}
			defer cl.Close()
			r, err := sendValue(ctx, cl, from, to, ethToWei(c.Float64("eth")))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "sent %g ETH from %s to %s on L2: tx %s in block %d\n", c.Float64("eth"), from.Address, to, r.TxHash, r.BlockNumber)
			return nil
		},
	}
}

func devnetDepositCommand() *cli.Command {
	const cmd = "devnet_deposit"
	return &cli.Command{
		Name:  "deposit",
		Usage: "bridge ETH from L1 to L2: send it to the deposit contract from a dev account and wait until L2 has minted it",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "l1", Value: "http://127.0.0.1:8545", Usage: "L1 JSON-RPC", EnvVars: envVars(cmd, "l1")},
			&cli.StringFlag{Name: "l2", Value: "http://127.0.0.1:9546", Usage: "L2 JSON-RPC", EnvVars: envVars(cmd, "l2")},
			&cli.StringFlag{Name: "rollup-rpc", Value: "http://127.0.0.1:9545", Usage: "rollup node RPC (for the deposit contract's address)", EnvVars: envVars(cmd, "rollup-rpc")},
			&cli.IntFlag{Name: "account", Value: 0, Usage: "dev account that deposits (and receives on L2)", EnvVars: envVars(cmd, "account")},
			&cli.Float64Flag{Name: "eth", Value: 1, Usage: "amount in ETH", EnvVars: envVars(cmd, "eth")},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long to wait for the deposit to arrive on L2", EnvVars: envVars(cmd, "timeout")},
		},
		Action: func(c *cli.Context) error {
			from, err := devAccount(c.Int("account"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			node, err := rpc.DialContext(ctx, c.String("rollup-rpc"))
			if err != nil {
				return fmt.Errorf("--rollup-rpc: %w", err)
			}
			defer node.Close()
			var rcfg rollup.Config
			if err := node.CallContext(ctx, &rcfg, "optimism_rollupConfig"); err != nil {
				return fmt.Errorf("--rollup-rpc: optimism_rollupConfig: %w", err)
			}
			l1, err := ethclient.DialContext(ctx, c.String("l1"))
			if err != nil {
				return fmt.Errorf("--l1: %w", err)
			}
			defer l1.Close()
			l2, err := ethclient.DialContext(ctx, c.String("l2"))
			if err != nil {
				return fmt.Errorf("--l2: %w", err)
			}
			defer l2.Close()
			before, err := l2.BalanceAt(ctx, from.Address, nil)
			if err != nil {
				return fmt.Errorf("--l2: balance: %w", err)
			}
			value := ethToWei(c.Float64("eth"))
			r, err := sendValue(ctx, l1, from, rcfg.DepositContractAddress, value)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "deposited %g ETH on L1: tx %s in L1 block %d; waiting for L2\n", c.Float64("eth"), r.TxHash, r.BlockNumber)
			// A deposit's L2 gas is bought on L1, so the account's L2 balance grows by the
			// whole deposit (unless it spends on L2 meanwhile).
			want := new(big.Int).Add(before, value)
			for {
				bal, err := l2.BalanceAt(ctx, from.Address, nil)
				if err == nil && bal.Cmp(want) >= 0 {
					fmt.Fprintf(c.App.Writer, "arrived: %s has %s wei on L2\n", from.Address, bal)
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("deposit did not arrive on L2 within --timeout (balance %v, want at least %v)", bal, want)
				case <-time.After(time.Second):
				}
			}
		},
	}
}

func devAccount(i int) (devnet.Account, error) {
	const n = 10
	if i < 0 || i >= n {
		return devnet.Account{}, fmt.Errorf("--account: %d is not a dev account (0..%d)", i, n-1)
	}
	return devnet.DevAccounts(n)[i], nil
}

func ethToWei(eth float64) *big.Int {
	f := new(big.Float).Mul(big.NewFloat(eth), big.NewFloat(params.Ether))
	wei, _ := f.Int(nil)
	return wei
}

// sendValue sends value from a dev account with current fees and waits for the receipt,
// which must be successful.
func sendValue(ctx context.Context, cl *ethclient.Client, from devnet.Account, to common.Address, value *big.Int) (*types.Receipt, error) {
	chainID, err := cl.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain ID: %w", err)
	}
	nonce, err := cl.PendingNonceAt(ctx, from.Address)
	if err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	tip, err := cl.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, fmt.Errorf("gas tip: %w", err)
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	gas, err := cl.EstimateGas(ctx, ethereum.CallMsg{From: from.Address, To: &to, Value: value})
	if err != nil {
		return nil, fmt.Errorf("estimate gas: %w", err)
	}
	tx := types.MustSignNewTx(from.Key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &to, Value: value,
	})
	if err := cl.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	for {
		r, err := cl.TransactionReceipt(ctx, tx.Hash())
		switch {
		case err == nil && r.Status != types.ReceiptStatusSuccessful:
			return nil, fmt.Errorf("transaction %s failed", tx.Hash())
		case err == nil:
			return r, nil
		case !errors.Is(err, ethereum.NotFound) && !strings.Contains(err.Error(), "not found"):
			return nil, fmt.Errorf("receipt: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("transaction %s not included: %w", tx.Hash(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
