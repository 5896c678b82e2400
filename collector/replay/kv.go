package replay

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
)

// Source supplies preimages by hash: a trie node, or contract code when code is true.
type Source interface {
	Preimage(ctx context.Context, hash common.Hash, code bool) ([]byte, error)
}

// codePrefix is geth's key prefix for contract code ('c').
const codePrefix = 'c'

// lazyKV is a key-value store that answers geth's hash-scheme reads (trie node by
// 32-byte hash, code by 'c' ‖ hash) from a Source, checking that every value hashes to
// its key and caching it. Everything else behaves as an in-memory database, so the
// state machinery can write its scratch data.
type lazyKV struct {
	*memorydb.Database
	ctx context.Context
	src Source
}

// NewKV returns a store that fetches trie nodes and code from src on first use. A
// value that does not hash to its key is refused, so a wrong answer from src surfaces
// as a missing node, never as wrong state.
func NewKV(ctx context.Context, src Source) ethdb.KeyValueStore {
	return &lazyKV{Database: memorydb.New(), ctx: ctx, src: src}
}

func (kv *lazyKV) Get(key []byte) ([]byte, error) {
	if v, err := kv.Database.Get(key); err == nil {
		return v, nil
	}
	var (
		h    common.Hash
		code bool
	)
	switch {
	case len(key) == common.HashLength:
		h = common.BytesToHash(key)
	case len(key) == 1+common.HashLength && key[0] == codePrefix:
		h, code = common.BytesToHash(key[1:]), true
	default:
		return nil, fmt.Errorf("key %x: not found", key)
	}
	v, err := kv.src.Preimage(kv.ctx, h, code)
	if err != nil {
		return nil, err
	}
	if got := crypto.Keccak256Hash(v); got != h {
		return nil, fmt.Errorf("preimage of %s hashes to %s", h, got)
	}
	if err := kv.Database.Put(key, v); err != nil {
		return nil, err
	}
	return v, nil
}

func (kv *lazyKV) Has(key []byte) (bool, error) {
	_, err := kv.Get(key)
	return err == nil, nil
}
