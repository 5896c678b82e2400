package collector

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/triedb"

	"github.com/opkit/opkit/collector/replay"
	"github.com/opkit/opkit/collector/store"
)

// op-geth's execution witness is not the whole pre-state a block needs. It records the
// trie nodes its tries resolved, and two kinds of read never go through a trie while the
// witness is recorded: accounts (and storage slots) that do not exist, which the state
// reader answers from the flat state, and the L2ToL1MessagePasser's storage root, which
// block validation reads after the witness is complete. The collector fills both in while
// the parent state is still live: it executes the block over the witness once, recording
// every account and slot the witness cannot resolve (replay.Misses), and eth_getProof at
// the parent gives their paths and the message passer's. The checked replay then proves
// the result complete. (Asking the client for a prestate trace instead names every
// account the block touched, at the cost of a third execution on the client and a large
// answer; the collector's own execution names only what is missing.)

// proofQuery is one eth_getProof the collector makes.
type proofQuery struct {
	addr  common.Address
	slots []common.Hash
}

// maxProofBatch bounds how many eth_getProof calls go in one batch request.
const maxProofBatch = 64

// preStateQueries lists what a block's pre-state proofs must cover: the reads its
// witness could not resolve (misses, as replay.Misses reports them), the message passer
// and the kept accounts.
func (c *Collector) preStateQueries(misses map[common.Address]map[common.Hash]bool) []proofQuery {
	// The message passer always: its storage root is read after the witness is complete,
	// and the held set follows its storage.
	want := map[common.Address]map[common.Hash]bool{MessagePasser: {}}
	for _, a := range c.cfg.Accounts {
		want[a] = map[common.Hash]bool{}
	}
	for addr, slots := range misses {
		if want[addr] == nil {
			want[addr] = map[common.Hash]bool{}
		}
		for slot := range slots {
			want[addr][slot] = true
		}
	}
	out := make([]proofQuery, 0, len(want))
	for _, addr := range slices.SortedFunc(maps.Keys(want), func(a, b common.Address) int { return a.Cmp(b) }) {
		slots := slices.SortedFunc(maps.Keys(want[addr]), func(a, b common.Hash) int { return a.Cmp(b) })
		out = append(out, proofQuery{addr: addr, slots: slots})
	}
	return out
}

// getProofResult is the part of an eth_getProof answer the collector keeps.
type getProofResult struct {
	AccountProof []hexutil.Bytes `json:"accountProof"`
	StorageHash  common.Hash     `json:"storageHash"`
	StorageProof []struct {
		Key   string          `json:"key"`
		Proof []hexutil.Bytes `json:"proof"`
	} `json:"storageProof"`
}

// proveAt fetches the queries' proofs at the block with hash at and checks each one
// against root: every node returned is on a verified path, so nothing unproven is
// stored. It returns the nodes, each once.
func (c *Collector) proveAt(ctx context.Context, at common.Hash, root common.Hash, queries []proofQuery) ([][]byte, error) {
	var nodes [][]byte
	seen := map[common.Hash]bool{}
	for start := 0; start < len(queries); start += maxProofBatch {
		part := queries[start:min(start+maxProofBatch, len(queries))]
		results := make([]getProofResult, len(part))
		batch := make([]rpc.BatchElem, len(part))
		for i, q := range part {
			slots := make([]string, len(q.slots))
			for j, s := range q.slots {
				slots[j] = s.Hex()
			}
			batch[i] = rpc.BatchElem{Method: "eth_getProof", Args: []any{q.addr, slots, at}, Result: &results[i]}
		}
		if err := c.batchCall(ctx, batch); err != nil {
			return nil, fmt.Errorf("proofs at %s: %w", at, err)
		}
		for i, q := range part {
			if err := batch[i].Error; err != nil {
				return nil, fmt.Errorf("proof of %s at %s: %w", q.addr, at, err)
			}
			res := &results[i]
			if err := verifyPath(root, crypto.Keccak256(q.addr[:]), res.AccountProof); err != nil {
				return nil, fmt.Errorf("proof of %s at %s: %w", q.addr, at, err)
			}
			add := func(proof []hexutil.Bytes) {
				for _, n := range proof {
					h := crypto.Keccak256Hash(n)
					if !seen[h] {
						seen[h] = true
						nodes = append(nodes, n)
					}
				}
			}
			add(res.AccountProof)
			if len(res.StorageProof) != len(q.slots) {
				return nil, fmt.Errorf("proof of %s at %s: %d storage proofs for %d slots", q.addr, at, len(res.StorageProof), len(q.slots))
			}
			for j, sp := range res.StorageProof {
				if res.StorageHash == types.EmptyRootHash || res.StorageHash == (common.Hash{}) {
					break
				}
				if err := verifyPath(res.StorageHash, crypto.Keccak256(q.slots[j][:]), sp.Proof); err != nil {
					return nil, fmt.Errorf("proof of slot %s of %s at %s: %w", q.slots[j], q.addr, at, err)
				}
				add(sp.Proof)
			}
		}
	}
	return nodes, nil
}

// verifyPath checks a Merkle proof of key (present or absent) against root.
func verifyPath(root common.Hash, key []byte, proof []hexutil.Bytes) error {
	db := memorydb.New()
	for _, n := range proof {
		if err := db.Put(crypto.Keccak256(n), n); err != nil {
			return err
		}
	}
	if _, err := trie.VerifyProof(root, key, db); err != nil {
		return fmt.Errorf("does not verify against root %s: %w", root, err)
	}
	return nil
}

// The collector keeps the message passer's storage trie provable at every retained block,
// so that a withdrawal prover can ask for a slot (the proof of a sent message) at any block
// of the window, not only for the slots that block wrote. Keeping the trie per block would
// cost its size per block; instead the store's held set tracks the trie as it is now:
// every block adds the nodes it created in the trie and drops the ones it superseded. A
// superseded node is on a path the block changed, so it is in the block's own pre-state
// and stays referenced by the block until the block leaves the window, by which time no
// retained block needs it.
//
// The held set starts, at the first block collected after an empty store or a gap, as the
// paths of the proxy slots every predeploy has (EIP-1967 implementation and admin): a
// path-scheme client cannot list a contract's storage (debug_storageRangeAt and
// debug_accountRange fail on op-geth's path scheme, and eth_getProof needs the slot keys,
// which are hashed in the trie). So slots written before collection began are provable only
// where their paths share nodes with later writes; every message sent while the collector
// runs is provable at every later block of the window. On a chain collected from its
// genesis, that is every slot.

// proxySlots are the EIP-1967 implementation and admin slots.
var proxySlots = []common.Hash{
	common.HexToHash("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"),
	common.HexToHash("0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103"),
}

// holdMessagePasser starts the held set at block's parent: the message passer's storage
// paths of the proxy slots, from a proof checked against the parent's state root.
func (c *Collector) holdMessagePasser(ctx context.Context, block *types.Block, parentRoot common.Hash) error {
	slots := make([]string, len(proxySlots))
	for i, s := range proxySlots {
		slots[i] = s.Hex()
	}
	var res getProofResult
	if err := c.call(ctx, &res, "eth_getProof", MessagePasser, slots, block.ParentHash()); err != nil {
		return fmt.Errorf("proof of the message passer at block %d: %w", block.NumberU64()-1, err)
	}
	if err := verifyPath(parentRoot, crypto.Keccak256(MessagePasser[:]), res.AccountProof); err != nil {
		return fmt.Errorf("proof of the message passer at block %d: %w", block.NumberU64()-1, err)
	}
	held := map[common.Hash][]byte{}
	if res.StorageHash != types.EmptyRootHash && res.StorageHash != (common.Hash{}) {
		if len(res.StorageProof) != len(proxySlots) {
			return fmt.Errorf("proof of the message passer at block %d: %d storage proofs for %d slots", block.NumberU64()-1, len(res.StorageProof), len(proxySlots))
		}
		for i, sp := range res.StorageProof {
			if err := verifyPath(res.StorageHash, crypto.Keccak256(proxySlots[i][:]), sp.Proof); err != nil {
				return fmt.Errorf("proof of message passer slot %s at block %d: %w", proxySlots[i], block.NumberU64()-1, err)
			}
			for _, n := range sp.Proof {
				held[crypto.Keccak256Hash(n)] = n
			}
		}
	}
	return c.store.Hold(slices.Collect(maps.Keys(held)), held)
}

// heldChange is what block changed in the message passer's storage trie: the nodes it
// added and those it superseded. Nodes come from the block's preimages, then the store.
func (c *Collector) heldChange(ctx context.Context, parentRoot, root common.Hash, pre map[common.Hash][]byte) (add, drop []common.Hash, err error) {
	before, err := accountIn(pre, parentRoot, MessagePasser)
	if err != nil {
		return nil, nil, err
	}
	after, err := accountIn(pre, root, MessagePasser)
	if err != nil {
		return nil, nil, err
	}
	rootOf := func(a *types.StateAccount) common.Hash {
		if a == nil {
			return types.EmptyRootHash
		}
		return a.Root
	}
	if rootOf(before) == rootOf(after) {
		return nil, nil, nil
	}
	tdb := triedb.NewDatabase(rawdb.NewDatabase(replay.NewKV(ctx, blockSource{pre, c.store})), triedb.HashDefaults)
	defer tdb.Close()
	owner := crypto.Keccak256Hash(MessagePasser[:])
	open := func(stateRoot, storageRoot common.Hash) (trie.NodeIterator, error) {
		tr, err := trie.New(trie.StorageTrieID(stateRoot, owner, storageRoot), tdb)
		if err != nil {
			return nil, err
		}
		return tr.NodeIterator(nil)
	}
	diff := func(a, b trie.NodeIterator) ([]common.Hash, error) {
		var out []common.Hash
		it, _ := trie.NewDifferenceIterator(a, b)
		for it.Next(true) {
			if h := it.Hash(); h != (common.Hash{}) {
				out = append(out, h)
			}
		}
		return out, it.Error()
	}
	for i, dst := range []*[]common.Hash{&add, &drop} {
		oldIt, err := open(parentRoot, rootOf(before))
		if err != nil {
			return nil, nil, err
		}
		newIt, err := open(root, rootOf(after))
		if err != nil {
			return nil, nil, err
		}
		if i == 1 {
			oldIt, newIt = newIt, oldIt
		}
		if *dst, err = diff(oldIt, newIt); err != nil {
			return nil, nil, fmt.Errorf("message passer storage change: %w", err)
		}
	}
	// The set is a set: only what is held can be released (it may know part of the
	// trie), and a node is added once.
	filter := func(in []common.Hash, want bool) ([]common.Hash, error) {
		var out []common.Hash
		seen := map[common.Hash]bool{}
		for _, h := range in {
			held, err := c.store.IsHeld(h)
			if err != nil {
				return nil, err
			}
			if held == want && !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
		return out, nil
	}
	if add, err = filter(add, false); err != nil {
		return nil, nil, err
	}
	if drop, err = filter(drop, true); err != nil {
		return nil, nil, err
	}
	return add, drop, nil
}

// accountIn reads an account from the state trie at root over the given nodes.
func accountIn(nodes map[common.Hash][]byte, root common.Hash, addr common.Address) (*types.StateAccount, error) {
	tdb := triedb.NewDatabase(rawdb.NewDatabase(replay.NewKV(context.Background(), mapSource(nodes))), triedb.HashDefaults)
	defer tdb.Close()
	tr, err := trie.NewStateTrie(trie.StateTrieID(root), tdb)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", root, err)
	}
	acc, err := tr.GetAccount(addr)
	if err != nil {
		return nil, fmt.Errorf("account %s in state %s: %w", addr, root, err)
	}
	return acc, nil
}

// mapSource serves preimages from a map.
type mapSource map[common.Hash][]byte

func (m mapSource) Preimage(_ context.Context, h common.Hash, _ bool) ([]byte, error) {
	if v, ok := m[h]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("preimage %s: %w", h, store.ErrNotFound)
}

// blockSource serves a block's preimages, then the store's.
type blockSource struct {
	pre   map[common.Hash][]byte
	store *store.Store
}

func (b blockSource) Preimage(_ context.Context, h common.Hash, _ bool) ([]byte, error) {
	if v, ok := b.pre[h]; ok {
		return v, nil
	}
	return b.store.Preimage(h)
}
