package collector

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
)

// op-geth's execution witness is not the whole pre-state a block needs. It records the
// trie nodes its tries resolved, and two kinds of read never go through a trie while the
// witness is recorded: accounts (and storage slots) that do not exist, which the state
// reader answers from the flat state, and the L2ToL1MessagePasser's storage root, which
// block validation reads after the witness is complete. The collector fills both in while
// the parent state is still live: a prestate trace of the block names every account and
// slot it touched, and eth_getProof at the parent gives the paths of the empty ones and of
// the message passer. The replay then proves the result complete.

// traceAccount is one account of a prestateTracer result (includeEmpty: accounts that do
// not exist are listed too, with nothing set).
type traceAccount struct {
	Balance *hexutil.Big                `json:"balance"`
	Nonce   uint64                      `json:"nonce"`
	Code    hexutil.Bytes               `json:"code"`
	Storage map[common.Hash]common.Hash `json:"storage"`
}

func (a *traceAccount) empty() bool {
	return (a.Balance == nil || a.Balance.ToInt().Sign() == 0) && a.Nonce == 0 && len(a.Code) == 0
}

// proofQuery is one eth_getProof the collector makes.
type proofQuery struct {
	addr  common.Address
	slots []common.Hash
}

// maxProofBatch bounds how many eth_getProof calls go in one batch request.
const maxProofBatch = 64

// preStateQueries lists what block's pre-state proofs must cover: every account the block
// read that does not exist, every slot it read that is empty (in an account that exists),
// and the kept accounts.
func (c *Collector) preStateQueries(ctx context.Context, block *types.Block) ([]proofQuery, error) {
	var trace []struct {
		Result map[common.Address]*traceAccount `json:"result"`
	}
	cfg := map[string]any{"tracer": "prestateTracer", "tracerConfig": map[string]any{"includeEmpty": true}}
	if err := c.call(ctx, &trace, "debug_traceBlockByHash", block.Hash(), cfg); err != nil {
		return nil, fmt.Errorf("prestate trace of block %d: %w", block.NumberU64(), err)
	}
	want := map[common.Address]map[common.Hash]bool{}
	for _, a := range c.cfg.Accounts {
		want[a] = map[common.Hash]bool{}
	}
	for _, tx := range trace {
		for addr, acc := range tx.Result {
			if acc == nil {
				continue
			}
			if acc.empty() {
				if want[addr] == nil {
					want[addr] = map[common.Hash]bool{}
				}
				continue
			}
			for slot, val := range acc.Storage {
				if val == (common.Hash{}) {
					if want[addr] == nil {
						want[addr] = map[common.Hash]bool{}
					}
					want[addr][slot] = true
				}
			}
		}
	}
	out := make([]proofQuery, 0, len(want))
	for _, addr := range slices.SortedFunc(maps.Keys(want), func(a, b common.Address) int { return a.Cmp(b) }) {
		slots := slices.SortedFunc(maps.Keys(want[addr]), func(a, b common.Hash) int { return a.Cmp(b) })
		out = append(out, proofQuery{addr: addr, slots: slots})
	}
	return out, nil
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
