package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus"
	"github.com/ethereum/go-ethereum/consensus/beacon"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/stateless"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/triedb"
)

// ErrMismatch marks a block whose replay disagrees with its header: the state root, the
// receipts root, gas used or the logs bloom. It is never a transient condition.
var ErrMismatch = errors.New("replayed block does not match its header")

// Headers resolves ancestor headers for the BLOCKHASH opcode and system contracts.
type Headers interface {
	GetHeader(hash common.Hash, number uint64) *types.Header
}

// chain is the minimal header chain the state processor needs.
type chain struct {
	config  *params.ChainConfig
	headers Headers
	engine  consensus.Engine
}

func (c *chain) Config() *params.ChainConfig                     { return c.config }
func (c *chain) CurrentHeader() *types.Header                    { return nil }
func (c *chain) GetHeaderByNumber(uint64) *types.Header          { return nil }
func (c *chain) GetHeaderByHash(common.Hash) *types.Header       { return nil }
func (c *chain) Engine() consensus.Engine                        { return c.engine }
func (c *chain) GetHeader(h common.Hash, n uint64) *types.Header { return c.headers.GetHeader(h, n) }

// execute runs block on the state at parentRoot read from kv, checks the result against
// the header and returns the state after the block (uncommitted).
func execute(ctx context.Context, config *params.ChainConfig, block *types.Block, parentRoot common.Hash, kv ethdb.KeyValueStore, headers Headers) (*state.StateDB, *triedb.Database, error) {
	tdb := triedb.NewDatabase(rawdb.NewDatabase(kv), triedb.HashDefaults)
	sdb, err := state.New(parentRoot, state.NewDatabase(tdb, state.NewCodeDB(kv)))
	if err != nil {
		return nil, nil, fmt.Errorf("open parent state %s of block %d: %w", parentRoot, block.NumberU64(), err)
	}
	c := &chain{config: config, headers: headers, engine: beacon.New(ethash.NewFaker())}
	res, err := core.NewStateProcessor(c).Process(ctx, block, sdb, vm.Config{})
	if err != nil {
		return nil, nil, fmt.Errorf("execute block %d: %w", block.NumberU64(), err)
	}
	if err := sdb.Error(); err != nil {
		// A trie node or code the source could not supply: the state read is incomplete.
		return nil, nil, fmt.Errorf("execute block %d: state read: %w", block.NumberU64(), err)
	}
	// ValidateState recomputes the receipts root, requests hash and post-state root and
	// compares them with the header, which is the check a fault-proof program makes.
	if err := core.NewBlockValidator(config, nil).ValidateState(block, sdb, res, false); err != nil {
		if serr := sdb.Error(); serr != nil {
			return nil, nil, fmt.Errorf("execute block %d: state read: %w", block.NumberU64(), serr)
		}
		return nil, nil, fmt.Errorf("block %d (%s): %w: %w", block.NumberU64(), block.Hash(), ErrMismatch, err)
	}
	return sdb, tdb, nil
}

// Misses executes block over the pre-state in ext without checking the result, answering
// every account and storage slot the pre-state cannot resolve as absent, and returns
// those reads: an address maps to the slots it missed, and an address with no slots
// missed the account itself. They are what the witness lacks (accounts and slots that do
// not exist are read from the execution client's flat state, not its tries, so their
// paths are not recorded). Only the reads are of use; with a read answered wrongly the
// execution may go astray, which the checked replay after it catches.
func Misses(ctx context.Context, config *params.ChainConfig, block *types.Block, ext *stateless.ExtWitness) (map[common.Address]map[common.Hash]bool, error) {
	if len(ext.Headers) == 0 {
		return nil, fmt.Errorf("witness of block %d has no headers", block.NumberU64())
	}
	var w stateless.Witness
	if err := w.FromExtWitness(ext); err != nil {
		return nil, fmt.Errorf("decode witness of block %d: %w", block.NumberU64(), err)
	}
	memdb := w.MakeHashDB()
	parentRoot := ext.Headers[0].Root
	tdb := triedb.NewDatabase(rawdb.NewDatabase(memdb), triedb.HashDefaults)
	defer tdb.Close()
	db := state.NewDatabase(tdb, state.NewCodeDB(memdb))
	reader, err := db.Reader(parentRoot)
	if err != nil {
		return nil, fmt.Errorf("open parent state %s of block %d: %w", parentRoot, block.NumberU64(), err)
	}
	mr := &missReader{Reader: reader, misses: map[common.Address]map[common.Hash]bool{}}
	sdb, err := state.NewWithReader(parentRoot, db, mr)
	if err != nil {
		return nil, fmt.Errorf("open parent state %s of block %d: %w", parentRoot, block.NumberU64(), err)
	}
	c := &chain{config: config, headers: rawdbHeaders{memdb}, engine: beacon.New(ethash.NewFaker())}
	// An error here (a transaction made invalid by a read answered as absent) still
	// leaves the reads made up to it, which is what is asked for.
	_, _ = core.NewStateProcessor(c).Process(ctx, block, sdb, vm.Config{})
	if mr.err != nil {
		return nil, fmt.Errorf("execute block %d: state read: %w", block.NumberU64(), mr.err)
	}
	return mr.misses, nil
}

// missReader answers reads its pre-state cannot resolve as absent and records them.
type missReader struct {
	state.Reader
	misses map[common.Address]map[common.Hash]bool
	err    error // the first failure that is not a missing node
}

func (r *missReader) missing(err error) bool {
	var mn *trie.MissingNodeError
	if errors.As(err, &mn) {
		return true
	}
	if r.err == nil {
		r.err = err
	}
	return false
}

func (r *missReader) Account(addr common.Address) (*types.StateAccount, error) {
	acc, err := r.Reader.Account(addr)
	if err != nil && r.missing(err) {
		if r.misses[addr] == nil {
			r.misses[addr] = map[common.Hash]bool{}
		}
		return nil, nil
	}
	return acc, err
}

func (r *missReader) Storage(addr common.Address, slot common.Hash) (common.Hash, error) {
	v, err := r.Reader.Storage(addr, slot)
	if err != nil && r.missing(err) {
		if r.misses[addr] == nil {
			r.misses[addr] = map[common.Hash]bool{}
		}
		r.misses[addr][slot] = true
		return common.Hash{}, nil
	}
	return v, err
}

// Verify re-executes block over the parent state rooted at parentRoot, reading trie
// nodes and code from kv by hash (geth's hash-scheme keys: the 32-byte hash for a node,
// 'c' ‖ hash for code), and checks its state root, receipts root, gas and bloom.
func Verify(ctx context.Context, config *params.ChainConfig, block *types.Block, parentRoot common.Hash, kv ethdb.KeyValueStore, headers Headers) error {
	_, _, err := execute(ctx, config, block, parentRoot, kv, headers)
	return err
}

// Collected is what one block needs: its witness and the trie nodes and code it creates.
type Collected struct {
	// Headers are the RLP-encoded witness headers, parent first.
	Headers [][]byte
	// State are the hashes of the pre-state trie nodes in the witness.
	State []common.Hash
	// Codes are the hashes of the code the block loads or deploys.
	Codes []common.Hash
	// Created are the hashes of trie nodes the block writes that the witness lacks.
	Created []common.Hash
	// Preimages holds the value of every hash above except the headers.
	Preimages map[common.Hash][]byte
}

// Collect replays block over its execution witness, checks the result against the
// header, and returns every preimage needed to execute the block and to read the paths
// it touched in its post-state.
func Collect(ctx context.Context, config *params.ChainConfig, block *types.Block, ext *stateless.ExtWitness) (*Collected, error) {
	if len(ext.Headers) == 0 {
		return nil, fmt.Errorf("witness of block %d has no headers", block.NumberU64())
	}
	parent := ext.Headers[0]
	if parent.Hash() != block.ParentHash() {
		return nil, fmt.Errorf("witness of block %d starts at %s, not at its parent %s", block.NumberU64(), parent.Hash(), block.ParentHash())
	}
	var w stateless.Witness
	if err := w.FromExtWitness(ext); err != nil {
		return nil, fmt.Errorf("decode witness of block %d: %w", block.NumberU64(), err)
	}
	memdb := w.MakeHashDB()
	out := &Collected{Preimages: make(map[common.Hash][]byte, len(ext.State)+len(ext.Codes))}
	for _, h := range ext.Headers {
		enc, err := rlp.EncodeToBytes(h)
		if err != nil {
			return nil, fmt.Errorf("encode witness header: %w", err)
		}
		out.Headers = append(out.Headers, enc)
	}
	witness := make(map[common.Hash]bool, len(ext.State))
	for _, node := range ext.State {
		h := crypto.Keccak256Hash(node)
		if !witness[h] {
			witness[h] = true
			out.State = append(out.State, h)
			out.Preimages[h] = node
		}
	}
	sdb, tdb, err := execute(ctx, config, block, parent.Root, memdb, rawdbHeaders{memdb})
	if err != nil {
		return nil, err
	}
	root, err := sdb.Commit(block.NumberU64(), config.IsEIP158(block.Number()), config.IsCancun(block.Number(), block.Time()))
	if err != nil {
		return nil, fmt.Errorf("commit state of block %d: %w", block.NumberU64(), err)
	}
	if root != block.Root() {
		return nil, fmt.Errorf("block %d: %w: committed root %s, header %s", block.NumberU64(), ErrMismatch, root, block.Root())
	}
	if err := tdb.Commit(root, false); err != nil {
		return nil, fmt.Errorf("flush trie nodes of block %d: %w", block.NumberU64(), err)
	}
	// The memory database now holds the witness plus everything the block wrote: trie
	// nodes under their 32-byte hash, code under 'c' ‖ hash.
	it := memdb.NewIterator(nil, nil)
	defer it.Release()
	for it.Next() {
		key := it.Key()
		switch {
		case len(key) == common.HashLength:
			h := common.BytesToHash(key)
			if !witness[h] {
				out.Created = append(out.Created, h)
				out.Preimages[h] = common.CopyBytes(it.Value())
			}
		case len(key) == 1+common.HashLength && key[0] == 'c':
			h := common.BytesToHash(key[1:])
			out.Codes = append(out.Codes, h)
			out.Preimages[h] = common.CopyBytes(it.Value())
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("list preimages of block %d: %w", block.NumberU64(), err)
	}
	return out, nil
}

// rawdbHeaders reads headers from a database written by Witness.MakeHashDB.
type rawdbHeaders struct{ db ethdb.Reader }

func (r rawdbHeaders) GetHeader(h common.Hash, n uint64) *types.Header {
	return rawdb.ReadHeader(r.db, h, n)
}
