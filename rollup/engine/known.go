package engine

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/rollup"
)

// knownBlocksSize bounds the system configs remembered by block hash: derivation and
// sequencing ask for the block just inserted and, after a reset, for the block a channel
// timeout back; older ones are read from the execution client again.
const knownBlocksSize = 1024

// knownBlocks remembers the system config of L2 blocks by hash. A block hash commits to
// the whole block, so what it maps to never changes, reorgs included; entries come from
// payloads the execution client accepted as VALID and from blocks it served.
type knownBlocks struct {
	mu     sync.Mutex
	byHash map[common.Hash]rollup.SystemConfig
	order  []common.Hash // ring of remembered hashes; order[next] is evicted next once full
	next   int
}

func newKnownBlocks(n int) *knownBlocks {
	return &knownBlocks{byHash: make(map[common.Hash]rollup.SystemConfig, n), order: make([]common.Hash, 0, n)}
}

func (k *knownBlocks) get(h common.Hash) (rollup.SystemConfig, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sys, ok := k.byHash[h]
	return sys, ok
}

func (k *knownBlocks) add(h common.Hash, sys rollup.SystemConfig) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.byHash[h]; ok {
		return
	}
	if len(k.order) < cap(k.order) {
		k.order = append(k.order, h)
	} else {
		delete(k.byHash, k.order[k.next])
		k.order[k.next] = h
		k.next = (k.next + 1) % len(k.order)
	}
	k.byHash[h] = sys
}
