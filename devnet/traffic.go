package devnet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/params"
)

// sequencedL2 is the devnet's L2 as a LoadChain: its sequencer seals the blocks, so the
// load only sends. Dev accounts 0 and 1 are left out, so that a person sending from
// account 0 (opkit devnet send) does not race the load for nonces.
type sequencedL2 struct{ d *Devnet }

func (c sequencedL2) Backend() *eth.Ethereum           { return c.d.L2.Backend() }
func (c sequencedL2) ChainConfig() *params.ChainConfig { return c.d.L2.ChainConfig() }
func (c sequencedL2) Accounts() []Account              { return c.d.L1.Accounts()[2:] }
func (c sequencedL2) Head() *types.Header              { return c.d.L2.Backend().BlockChain().CurrentBlock() }
func (c sequencedL2) Mine() (*types.Header, error) {
	return nil, errors.New("the devnet's L2 is sealed by its sequencer")
}

// RunLoad sends perBlock transactions of Load's mix for every new L2 block until ctx
// ends. A block whose transactions the pool refuses (after a reorg, say) makes the load
// re-read its nonces and carry on.
func (d *Devnet) RunLoad(ctx context.Context, perBlock int) error {
	g := NewLoad(sequencedL2{d}, LoadConfig{TxsPerBlock: perBlock, Seed: 1})
	var last uint64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		head := d.L2.Backend().BlockChain().CurrentBlock().Number.Uint64()
		if head == last {
			continue
		}
		last = head
		if err := g.SendBlock(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.cfg.Logger.With("system", "devnet").Warn("load: block not sent, re-reading nonces", "err", fmt.Errorf("at L2 block %d: %w", head, err))
			g.Resync()
		}
	}
}
