package derivetest

import (
	"context"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
)

// Data is a batcher data source: items posted per L1 block and sender. TxData answers
// the items of the block sent by the batcher asked for, in the order they were added.
type Data struct {
	mu    sync.Mutex
	items map[common.Hash][]item
	asked []common.Address
	fail  error
	failN int
}

type item struct {
	from common.Address
	data []byte
}

// NewData returns an empty source.
func NewData() *Data { return &Data{items: map[common.Hash][]item{}} }

// Add posts data from sender in block.
func (d *Data) Add(block common.Hash, from common.Address, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.items[block] = append(d.items[block], item{from, append([]byte(nil), data...)})
}

// FailNext makes the next n calls fail with err.
func (d *Data) FailNext(n int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail, d.failN = err, n
}

// Asked lists the batcher addresses TxData was called with.
func (d *Data) Asked() []common.Address {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]common.Address(nil), d.asked...)
}

func (d *Data) TxData(_ context.Context, ref eth.L1BlockRef, batcher common.Address) ([][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked = append(d.asked, batcher)
	if d.failN > 0 {
		d.failN--
		return nil, d.fail
	}
	var out [][]byte
	for _, it := range d.items[ref.Hash] {
		if it.from == batcher {
			out = append(out, it.data)
		}
	}
	return out, nil
}
