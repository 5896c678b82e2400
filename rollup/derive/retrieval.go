package derive

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup"
)

// l1Blocks is what retrieval reads from: traversal.
type l1Blocks interface {
	NextL1Block(ctx context.Context) (eth.L1BlockRef, error)
	Origin() eth.L1BlockRef
	SystemConfig() rollup.SystemConfig
}

// l1Retrieval fetches the batcher data of each L1 block traversal hands out, with the
// batcher address in force after that block's own config updates, and serves it one item
// at a time; io.EOF once the block's items are used up.
type l1Retrieval struct {
	prev  l1Blocks
	src   DataSource
	items [][]byte
	open  bool
	// fetching: ref was handed out by traversal but its data is not fetched yet.
	fetching bool
	ref      eth.L1BlockRef
}

func newL1Retrieval(prev l1Blocks, src DataSource) *l1Retrieval {
	return &l1Retrieval{prev: prev, src: src}
}

func (r *l1Retrieval) Origin() eth.L1BlockRef { return r.prev.Origin() }

func (r *l1Retrieval) NextData(ctx context.Context) ([]byte, error) {
	if !r.open {
		if !r.fetching {
			ref, err := r.prev.NextL1Block(ctx)
			if err != nil {
				return nil, err
			}
			r.ref, r.fetching = ref, true
		}
		// traversal hands a block out once, so a failed fetch is retried from r.ref.
		items, err := r.src.TxData(ctx, r.ref, r.prev.SystemConfig().BatcherAddr)
		if err != nil {
			return nil, classify(fmt.Errorf("batcher data of L1 block %s: %w", r.ref, err))
		}
		r.items, r.open, r.fetching = items, true, false
	}
	if len(r.items) == 0 {
		r.open = false
		return nil, io.EOF
	}
	item := r.items[0]
	r.items = r.items[1:]
	return item, nil
}

func (r *l1Retrieval) reset() {
	r.items, r.open, r.fetching = nil, false, false
}

// classify keeps an error's class and makes an unclassified one temporary.
func classify(err error) error {
	if errors.Is(err, ErrReset) || errors.Is(err, ErrCritical) || errors.Is(err, ErrTemporary) ||
		errors.Is(err, ErrNotEnoughData) || errors.Is(err, ErrEngineSyncing) {
		return err
	}
	return NewTemporaryError(err)
}
