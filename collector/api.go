package collector

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/stateless"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/triedb"

	"github.com/opkit/opkit/collector/replay"
	"github.com/opkit/opkit/collector/store"
	opeth "github.com/opkit/opkit/eth"
)

// maxProofKeys bounds the storage slots one eth_getProof may ask for, as geth does.
const maxProofKeys = 1024

// codeKeyPrefix is geth's key prefix for contract code: debug_dbGet("0x63" ‖ hash).
const codeKeyPrefix = 0x63

// APIs are the JSON-RPC namespaces the collector serves.
func (c *Collector) APIs() []rpc.API {
	return []rpc.API{
		{Namespace: "debug", Service: &debugAPI{c}},
		{Namespace: "eth", Service: &ethAPI{c}},
		{Namespace: "collector", Service: &statusAPI{c}},
	}
}

type statusAPI struct{ c *Collector }

// Status is collector_status.
func (a *statusAPI) Status() (*Status, error) { return a.c.Status() }

// OutputResponse is collector_outputAtBlock's answer: the version-0 output root of a block
// and what it commits to, as op-node's optimism_outputAtBlock reports them.
type OutputResponse struct {
	Version               common.Hash    `json:"version"`
	OutputRoot            common.Hash    `json:"outputRoot"`
	BlockHash             common.Hash    `json:"blockHash"`
	BlockNumber           hexutil.Uint64 `json:"blockNumber"`
	StateRoot             common.Hash    `json:"stateRoot"`
	WithdrawalStorageRoot common.Hash    `json:"withdrawalStorageRoot"`
}

// OutputAtBlock is collector_outputAtBlock: the output root of a block in the window,
// computed from the store alone (the message passer's storage root is read from the
// stored state trie at the block's root).
func (a *statusAPI) OutputAtBlock(ctx context.Context, bn rpc.BlockNumberOrHash) (*OutputResponse, error) {
	b, err := a.c.retained(bn)
	if err != nil {
		return nil, err
	}
	tdb := a.c.storeTrieDB(ctx)
	defer tdb.Close()
	acc, err := accountAt(tdb, b, MessagePasser)
	if err != nil {
		return nil, err
	}
	if acc == nil {
		return nil, fmt.Errorf("block %d: the L2ToL1MessagePasser %s does not exist", b.Number, MessagePasser)
	}
	out := opeth.OutputV0{StateRoot: b.Root, MessagePasserStorageRoot: acc.Root, BlockHash: b.Hash}
	return &OutputResponse{
		Version: opeth.OutputVersionV0, OutputRoot: out.Root(), BlockHash: b.Hash, BlockNumber: hexutil.Uint64(b.Number),
		StateRoot: b.Root, WithdrawalStorageRoot: acc.Root,
	}, nil
}

// storeTrieDB is a read-only hash-scheme trie database over the store.
func (c *Collector) storeTrieDB(ctx context.Context) *triedb.Database {
	return triedb.NewDatabase(rawdb.NewDatabase(replay.NewKV(ctx, storeSource{c.store})), triedb.HashDefaults)
}

// accountAt reads an account from the stored state trie at block b; nil when it does not
// exist.
func accountAt(tdb *triedb.Database, b *store.Summary, addr common.Address) (*types.StateAccount, error) {
	tr, err := trie.NewStateTrie(trie.StateTrieID(b.Root), tdb)
	if err != nil {
		return nil, fmt.Errorf("state of block %d: %w", b.Number, err)
	}
	acc, err := tr.GetAccount(addr)
	if err != nil {
		return nil, fmt.Errorf("account %s at block %d: %w", addr, b.Number, err)
	}
	return acc, nil
}

type debugAPI struct{ c *Collector }

// DbGet is debug_dbGet: a 32-byte hash gives the trie node or code with that hash,
// 0x63 ‖ hash gives code. A missing key is an error.
func (a *debugAPI) DbGet(key string) (hexutil.Bytes, error) {
	raw, err := hexutil.Decode(key)
	if err != nil {
		return nil, &invalidParams{fmt.Sprintf("key %q: %v", key, err)}
	}
	switch {
	case len(raw) == common.HashLength:
	case len(raw) == 1+common.HashLength && raw[0] == codeKeyPrefix:
		raw = raw[1:]
	default:
		return nil, &invalidParams{fmt.Sprintf("key of %d bytes: want a 32-byte hash or 0x63 followed by a 32-byte code hash", len(raw))}
	}
	h := common.BytesToHash(raw)
	v, err := a.c.store.Preimage(h)
	if err != nil {
		return nil, err
	}
	if crypto.Keccak256Hash(v) != h {
		return nil, fmt.Errorf("stored preimage of %s is corrupt", h)
	}
	return v, nil
}

// ExecutionWitness is debug_executionWitness for a block in the window, served from
// the store: the witness the execution client gave when the block was collected.
func (a *debugAPI) ExecutionWitness(bn rpc.BlockNumberOrHash) (*stateless.ExtWitness, error) {
	sum, err := a.c.retained(bn)
	if err != nil {
		return nil, err
	}
	b, err := a.c.store.Block(sum.Number)
	if err != nil {
		return nil, err
	}
	headers, err := b.DecodeHeaders()
	if err != nil {
		return nil, err
	}
	w := &stateless.ExtWitness{Headers: headers, Codes: []hexutil.Bytes{}, State: []hexutil.Bytes{}, Keys: []hexutil.Bytes{}}
	for _, list := range []struct {
		hashes []common.Hash
		out    *[]hexutil.Bytes
	}{{b.State, &w.State}, {b.Codes, &w.Codes}} {
		for _, h := range list.hashes {
			v, err := a.c.store.Preimage(h)
			if err != nil {
				return nil, fmt.Errorf("witness of block %d: %w", b.Number, err)
			}
			*list.out = append(*list.out, v)
		}
	}
	return w, nil
}

// retained resolves a block number, tag or hash to a block in the window. A block the
// store does not hold is refused with the reason: outside the window (named), in a gap,
// or not a canonical block the collector saw.
func (c *Collector) retained(bn rpc.BlockNumberOrHash) (*store.Summary, error) {
	first, last, any, err := c.store.Bounds()
	if err != nil {
		return nil, err
	}
	if !any {
		return nil, errors.New("no block collected yet: the window is empty")
	}
	if h, ok := bn.Hash(); ok {
		b, err := c.store.SummaryByHash(h)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("block %s is not in the collector's window %d..%d (older, in a gap, not canonical or not yet collected): %w", h, first, last, err)
		}
		return b, err
	}
	n, ok := bn.Number()
	if !ok {
		return nil, &invalidParams{"block number or hash required"}
	}
	switch {
	case n >= 0:
	case n == rpc.LatestBlockNumber || n == rpc.PendingBlockNumber:
		n = rpc.BlockNumber(last)
	default:
		return nil, &invalidParams{fmt.Sprintf("block tag %s is not served: use a number or hash", n)}
	}
	num := uint64(n)
	if num < first || num > last {
		return nil, fmt.Errorf("block %d is outside the collector's window %d..%d: %w", num, first, last, store.ErrNotFound)
	}
	b, err := c.store.Summary(num)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("block %d is in a gap of the collector's window %d..%d (never collected): %w", num, first, last, err)
	}
	return b, err
}

type ethAPI struct{ c *Collector }

// AccountResult is eth_getProof's answer.
type AccountResult struct {
	Address      common.Address  `json:"address"`
	AccountProof []string        `json:"accountProof"`
	Balance      *hexutil.Big    `json:"balance"`
	CodeHash     common.Hash     `json:"codeHash"`
	Nonce        hexutil.Uint64  `json:"nonce"`
	StorageHash  common.Hash     `json:"storageHash"`
	StorageProof []StorageResult `json:"storageProof"`
}

// StorageResult is one slot of an eth_getProof answer.
type StorageResult struct {
	Key   string       `json:"key"`
	Value *hexutil.Big `json:"value"`
	Proof []string     `json:"proof"`
}

type proofList []string

func (p *proofList) Put(_, value []byte) error {
	*p = append(*p, hexutil.Encode(value))
	return nil
}

func (p *proofList) Delete([]byte) error { return errors.New("proof list is append-only") }

// storeSource serves replay's lazy key-value store from the preimage store.
type storeSource struct{ s *store.Store }

func (s storeSource) Preimage(_ context.Context, h common.Hash, _ bool) ([]byte, error) {
	return s.s.Preimage(h)
}

// GetProof is eth_getProof at a block in the window. Every node on the requested paths
// must be in the store; a missing one is an error, so the answer is never wrong.
func (a *ethAPI) GetProof(ctx context.Context, address common.Address, keys []string, bn rpc.BlockNumberOrHash) (*AccountResult, error) {
	if len(keys) > maxProofKeys {
		return nil, &invalidParams{fmt.Sprintf("too many storage keys (max %d, got %d)", maxProofKeys, len(keys))}
	}
	slots := make([]common.Hash, len(keys))
	for i, k := range keys {
		raw, err := decodeSlot(k)
		if err != nil {
			return nil, &invalidParams{fmt.Sprintf("storage key %q: want 0x-hex of at most 32 bytes", k)}
		}
		slots[i] = common.BytesToHash(raw)
	}
	b, err := a.c.retained(bn)
	if err != nil {
		return nil, err
	}
	tdb := a.c.storeTrieDB(ctx)
	defer tdb.Close()
	tr, err := trie.NewStateTrie(trie.StateTrieID(b.Root), tdb)
	if err != nil {
		return nil, fmt.Errorf("state of block %d: %w", b.Number, err)
	}
	acc, err := tr.GetAccount(address)
	if err != nil {
		return nil, fmt.Errorf("account %s at block %d: %w", address, b.Number, err)
	}
	var accProof proofList
	if err := tr.Prove(crypto.Keccak256(address[:]), &accProof); err != nil {
		return nil, fmt.Errorf("prove account %s at block %d: %w", address, b.Number, err)
	}
	// An account that does not exist reports zero hashes, as geth does.
	res := &AccountResult{Address: address, AccountProof: accProof, Balance: (*hexutil.Big)(new(big.Int)),
		StorageProof: make([]StorageResult, len(keys))}
	if acc != nil {
		res.Balance = (*hexutil.Big)(acc.Balance.ToBig())
		res.CodeHash = common.BytesToHash(acc.CodeHash)
		res.Nonce = hexutil.Uint64(acc.Nonce)
		res.StorageHash = acc.Root
	}
	var st *trie.StateTrie
	if acc != nil && res.StorageHash != types.EmptyRootHash {
		st, err = trie.NewStateTrie(trie.StorageTrieID(b.Root, crypto.Keccak256Hash(address[:]), res.StorageHash), tdb)
		if err != nil {
			return nil, fmt.Errorf("storage of %s at block %d: %w", address, b.Number, err)
		}
	}
	for i, slot := range slots {
		sr := StorageResult{Key: keys[i], Value: (*hexutil.Big)(new(big.Int)), Proof: []string{}}
		if st != nil {
			enc, err := st.GetStorage(address, slot[:])
			if err != nil {
				return nil, fmt.Errorf("slot %s of %s at block %d: %w", slot, address, b.Number, err)
			}
			sr.Value = (*hexutil.Big)(new(big.Int).SetBytes(enc))
			var p proofList
			if err := st.Prove(crypto.Keccak256(slot[:]), &p); err != nil {
				return nil, fmt.Errorf("prove slot %s of %s at block %d: %w", slot, address, b.Number, err)
			}
			sr.Proof = p
		}
		res.StorageProof[i] = sr
	}
	return res, nil
}

// invalidParams is a JSON-RPC invalid-params error (-32602).
type invalidParams struct{ msg string }

func (e *invalidParams) Error() string  { return e.msg }
func (e *invalidParams) ErrorCode() int { return -32602 }

// decodeSlot accepts a storage key the way geth does: 0x-hex of at most 32 bytes, an odd
// number of digits allowed ("0x0").
func decodeSlot(k string) ([]byte, error) {
	digits, ok := strings.CutPrefix(k, "0x")
	if !ok {
		digits, _ = strings.CutPrefix(k, "0X")
	}
	if len(digits)%2 == 1 {
		digits = "0" + digits
	}
	raw, err := hex.DecodeString(digits)
	if err != nil {
		return nil, err
	}
	if len(raw) > common.HashLength {
		return nil, errors.New("longer than 32 bytes")
	}
	return raw, nil
}
