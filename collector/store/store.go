package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// ErrNotFound is returned for a preimage or block the store does not hold.
var ErrNotFound = errors.New("not found")

// Key prefixes. Each kind of record has its own one-byte prefix so that a range scan over
// one kind never meets another.
const (
	prefixPreimage = 'p' // 'p' ‖ hash → value
	prefixRefs     = 'r' // 'r' ‖ hash → uint32 reference count ‖ uint32 value size
	prefixBlock    = 'b' // 'b' ‖ number(8, big endian) → Block RLP
	prefixGap      = 'g' // 'g' ‖ from(8) → to(8): blocks that could not be collected
	prefixHash     = 'h' // 'h' ‖ block hash → number(8)
	prefixHeld     = 'k' // 'k' ‖ hash → (empty): a reference held by the kept state
	prefixSummary  = 's' // 's' ‖ number(8) → hash ‖ parent hash ‖ state root
)

var keyStats = []byte("mstats") // node count and byte total, kept with every batch

// Block is a retained block and the preimages it holds a reference to.
type Block struct {
	Number     uint64
	Hash       common.Hash
	ParentHash common.Hash
	Root       common.Hash
	// Headers are the RLP-encoded ancestor headers of the execution witness.
	Headers [][]byte
	// State are the pre-state trie nodes read while executing the block.
	State []common.Hash
	// Codes are the contract codes the block loads or deploys.
	Codes []common.Hash
	// Created are the post-state trie nodes the block writes.
	Created []common.Hash
	// Proofs are post-state nodes on the paths of accounts kept for every block (the
	// L2ToL1MessagePasser), whether or not the block touched them.
	Proofs []common.Hash
	// HeldAdd and HeldDrop change the held set (the kept storage trie, see Hold): the
	// nodes the block added to it and those it superseded. HeldDrop must be among the
	// block's own references, so that dropping an orphan can restore them.
	HeldAdd  []common.Hash `rlp:"optional"`
	HeldDrop []common.Hash `rlp:"optional"`
}

// Refs is the set of preimages the block needs, without duplicates.
func (b *Block) Refs() []common.Hash {
	all := make([]common.Hash, 0, len(b.State)+len(b.Codes)+len(b.Created)+len(b.Proofs))
	all = append(all, b.State...)
	all = append(all, b.Codes...)
	all = append(all, b.Created...)
	all = append(all, b.Proofs...)
	slices.SortFunc(all, func(x, y common.Hash) int { return x.Cmp(y) })
	return slices.Compact(all)
}

// ID is the block's number and hash.
func (b *Block) ID() BlockID { return BlockID{Number: b.Number, Hash: b.Hash} }

// Summary is a retained block's identity and state root: what a state read at the block
// needs, without the reference lists (a block's record runs to thousands of hashes, and
// decoding it for every eth_getProof was most of the call's cost).
type Summary struct {
	Number     uint64
	Hash       common.Hash
	ParentHash common.Hash
	Root       common.Hash
}

// Summary is the block's summary.
func (b *Block) Summary() *Summary {
	return &Summary{Number: b.Number, Hash: b.Hash, ParentHash: b.ParentHash, Root: b.Root}
}

// ID is the block's number and hash.
func (s *Summary) ID() BlockID { return BlockID{Number: s.Number, Hash: s.Hash} }

func (s *Summary) encode() []byte {
	out := make([]byte, 0, 3*common.HashLength)
	out = append(out, s.Hash[:]...)
	out = append(out, s.ParentHash[:]...)
	return append(out, s.Root[:]...)
}

// BlockID names a block.
type BlockID struct {
	Number uint64      `json:"number"`
	Hash   common.Hash `json:"hash"`
}

// Gap is a range of blocks, inclusive, that could not be collected.
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Stats counts what the store holds.
type Stats struct {
	Preimages uint64 `json:"preimages"`
	Bytes     uint64 `json:"bytes"`
}

// Store is the preimage store. Reads are safe from any goroutine; writes (AddBlock,
// RemoveBlock, AddGap) must come from one writer at a time, which the follower is.
type Store struct {
	db  *pebble.DB
	dir string // empty for a store in memory

	mu    sync.Mutex
	stats Stats
	// bounds of the block index, kept in memory: a scan from the start of the index
	// would wade through the tombstones of every block that left the window.
	first, last uint64
	nonEmpty    bool
	// writeMu serialises writers so that reference counts read for one batch are not
	// changed by another before it commits.
	writeMu sync.Mutex
}

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	return open(dir, &pebble.Options{FS: noPreallocFS{vfs.Default}})
}

// OpenInMemory opens a store that lives in memory only, for tests.
func OpenInMemory() (*Store, error) {
	return open("", &pebble.Options{FS: vfs.NewMem()})
}

// cacheBytes is Pebble's block cache. Most lookups while adding a block are for nodes
// the store does not hold yet; bloom filters answer those without reading a table.
const cacheBytes = 128 << 20

// memTableBytes is Pebble's memtable, and so about the size of each write-ahead log.
// Pebble queues full memtables until together they reach this size before it flushes
// them, each behind its own log: a large memtable keeps that many logs on disk, which on
// a store of a few windows is most of its size, and makes the disk figure swing with the
// queue rather than follow the window.
const memTableBytes = 8 << 20

func open(dir string, opts *pebble.Options) (*Store, error) {
	opts.Logger = quietLogger{}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()
	opts.Cache = cache
	opts.MemTableSize = memTableBytes
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open preimage store %q: %w", dir, err)
	}
	s := &Store{db: db, dir: dir}
	if err := s.loadBounds(); err != nil {
		db.Close()
		return nil, err
	}
	val, closer, err := db.Get(keyStats)
	switch {
	case err == nil:
		if len(val) == 16 {
			s.stats = Stats{Preimages: binary.BigEndian.Uint64(val), Bytes: binary.BigEndian.Uint64(val[8:])}
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		db.Close()
		return nil, fmt.Errorf("read store stats: %w", err)
	}
	return s, nil
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	if err := s.db.Flush(); err != nil {
		s.db.Close()
		return fmt.Errorf("flush preimage store: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close preimage store: %w", err)
	}
	return nil
}

func hashKey(prefix byte, h common.Hash) []byte {
	k := make([]byte, 33)
	k[0] = prefix
	copy(k[1:], h[:])
	return k
}

func numKey(prefix byte, n uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func (s *Store) get(key []byte) ([]byte, error) {
	val, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return slices.Clone(val), nil
}

// Preimage returns the trie node or code whose keccak256 hash is h.
func (s *Store) Preimage(h common.Hash) ([]byte, error) {
	v, err := s.get(hashKey(prefixPreimage, h))
	if err != nil {
		return nil, fmt.Errorf("preimage %s: %w", h, err)
	}
	return v, nil
}

// refs returns preimage h's reference count and value size; zero when not stored.
func (s *Store) refs(h common.Hash) (count, size uint32, err error) {
	v, err := s.get(hashKey(prefixRefs, h))
	if errors.Is(err, ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reference count of %s: %w", h, err)
	}
	if len(v) != 8 {
		return 0, 0, fmt.Errorf("reference count of %s: corrupt value of %d bytes", h, len(v))
	}
	return binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]), nil
}

func refsValue(count, size uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, count), size)
}

// Refs is the reference count of preimage h: how many retained blocks need it.
func (s *Store) Refs(h common.Hash) (uint32, error) {
	n, _, err := s.refs(h)
	return n, err
}

// AddBlock stores a block and takes a reference to each preimage it needs, and applies
// its change to the held set. preimages must hold the value of every needed preimage the
// store does not hold yet; each value is checked against its hash. A block with the same
// number must not be stored.
func (s *Store) AddBlock(b *Block, preimages map[common.Hash][]byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.get(numKey(prefixBlock, b.Number)); err == nil {
		return fmt.Errorf("add block %d: a block with that number is already stored", b.Number)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("add block %d: %w", b.Number, err)
	}
	refs := b.Refs()
	for _, h := range b.HeldDrop {
		if _, found := slices.BinarySearchFunc(refs, h, func(x, y common.Hash) int { return x.Cmp(y) }); !found {
			return fmt.Errorf("add block %d: superseded held node %s is not among the block's references", b.Number, h)
		}
	}
	enc, err := rlp.EncodeToBytes(b)
	if err != nil {
		return fmt.Errorf("encode block %d: %w", b.Number, err)
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	delta := map[common.Hash]int{}
	for _, h := range refs {
		delta[h]++
	}
	if err := s.held(batch, delta, b.HeldAdd, b.HeldDrop); err != nil {
		return fmt.Errorf("add block %d: %w", b.Number, err)
	}
	stats, err := s.apply(batch, delta, preimages)
	if err != nil {
		return fmt.Errorf("add block %d: %w", b.Number, err)
	}
	if err := batch.Set(numKey(prefixBlock, b.Number), enc, nil); err != nil {
		return err
	}
	if err := batch.Set(hashKey(prefixHash, b.Hash), binary.BigEndian.AppendUint64(nil, b.Number), nil); err != nil {
		return err
	}
	if err := batch.Set(numKey(prefixSummary, b.Number), b.Summary().encode(), nil); err != nil {
		return err
	}
	if err := s.commit(batch, stats); err != nil {
		return err
	}
	s.mu.Lock()
	if !s.nonEmpty || b.Number < s.first {
		s.first = b.Number
	}
	if !s.nonEmpty || b.Number > s.last {
		s.last = b.Number
	}
	s.nonEmpty = true
	s.mu.Unlock()
	return nil
}

// held records additions to and removals from the held set in batch and adds the
// reference changes to delta.
func (s *Store) held(batch *pebble.Batch, delta map[common.Hash]int, add, drop []common.Hash) error {
	for _, h := range add {
		delta[h]++
		if err := batch.Set(hashKey(prefixHeld, h), nil, nil); err != nil {
			return err
		}
	}
	for _, h := range drop {
		delta[h]--
		if err := batch.Delete(hashKey(prefixHeld, h), nil); err != nil {
			return err
		}
	}
	return nil
}

// apply changes reference counts by delta in batch, storing supplied values for
// preimages that appear and deleting those whose count reaches zero, and returns the
// resulting stats.
func (s *Store) apply(batch *pebble.Batch, delta map[common.Hash]int, preimages map[common.Hash][]byte) (Stats, error) {
	stats := s.Stats()
	hashes := slices.SortedFunc(maps.Keys(delta), func(x, y common.Hash) int { return x.Cmp(y) })
	for _, h := range hashes {
		d := delta[h]
		if d == 0 {
			continue
		}
		n, size, err := s.refs(h)
		if err != nil {
			return stats, err
		}
		next := int64(n) + int64(d)
		switch {
		case next < 0:
			return stats, fmt.Errorf("preimage %s has %d references, %d to release", h, n, -d)
		case n == 0:
			val, ok := preimages[h]
			if !ok {
				return stats, fmt.Errorf("preimage %s is neither stored nor supplied", h)
			}
			if crypto.Keccak256Hash(val) != h {
				return stats, fmt.Errorf("supplied value for %s hashes to %s", h, crypto.Keccak256Hash(val))
			}
			if err := batch.Set(hashKey(prefixPreimage, h), val, nil); err != nil {
				return stats, err
			}
			stats.Preimages++
			stats.Bytes += uint64(len(val))
			size = uint32(len(val))
		}
		if next == 0 {
			stats.Preimages--
			stats.Bytes -= uint64(size)
			if err := batch.Delete(hashKey(prefixPreimage, h), nil); err != nil {
				return stats, err
			}
			if err := batch.Delete(hashKey(prefixRefs, h), nil); err != nil {
				return stats, err
			}
			continue
		}
		if err := batch.Set(hashKey(prefixRefs, h), refsValue(uint32(next), size), nil); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

// RemoveBlock drops block number n, which left the window, and releases its references,
// deleting every preimage nothing else needs. Its change to the held set stays: the
// blocks after it build on it.
func (s *Store) RemoveBlock(n uint64) error {
	return s.remove(n, false)
}

// RemoveOrphan drops block number n, the last retained block, which is no longer
// canonical: its references are released and its change to the held set undone.
func (s *Store) RemoveOrphan(n uint64) error {
	return s.remove(n, true)
}

func (s *Store) remove(n uint64, orphan bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b, err := s.Block(n)
	if err != nil {
		return fmt.Errorf("remove block: %w", err)
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	delta := map[common.Hash]int{}
	for _, h := range b.Refs() {
		delta[h]--
	}
	if orphan {
		if err := s.held(batch, delta, b.HeldDrop, b.HeldAdd); err != nil {
			return fmt.Errorf("remove block %d: %w", n, err)
		}
	}
	stats, err := s.apply(batch, delta, nil)
	if err != nil {
		return fmt.Errorf("remove block %d: %w", n, err)
	}
	if err := batch.Delete(numKey(prefixBlock, n), nil); err != nil {
		return err
	}
	if err := batch.Delete(hashKey(prefixHash, b.Hash), nil); err != nil {
		return err
	}
	if err := batch.Delete(numKey(prefixSummary, n), nil); err != nil {
		return err
	}
	if err := s.commit(batch, stats); err != nil {
		return err
	}
	return s.loadBounds()
}

// Hold replaces the held set with hold: references kept not by any one block but by the
// state being followed (the collector keeps the L2ToL1MessagePasser's whole storage trie
// this way, so that every retained block can prove any of its slots). Blocks then change
// the set as they are added (HeldAdd, HeldDrop). preimages must hold the value of every
// node of hold the store does not hold yet.
func (s *Store) Hold(hold []common.Hash, preimages map[common.Hash][]byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	old, err := s.Held()
	if err != nil {
		return err
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	delta := map[common.Hash]int{}
	if err := s.held(batch, delta, nil, old); err != nil {
		return err
	}
	if err := s.held(batch, delta, slices.Compact(slices.SortedFunc(slices.Values(hold), func(x, y common.Hash) int { return x.Cmp(y) })), nil); err != nil {
		return err
	}
	stats, err := s.apply(batch, delta, preimages)
	if err != nil {
		return fmt.Errorf("hold %d nodes: %w", len(hold), err)
	}
	return s.commit(batch, stats)
}

// Held lists the held set.
func (s *Store) Held() ([]common.Hash, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixHeld}, UpperBound: []byte{prefixHeld + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []common.Hash
	for it.First(); it.Valid(); it.Next() {
		out = append(out, common.BytesToHash(it.Key()[1:]))
	}
	return out, it.Error()
}

// HeldStats counts the held set: its nodes and their bytes.
func (s *Store) HeldStats() (Stats, error) {
	held, err := s.Held()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Preimages: uint64(len(held))}
	for _, h := range held {
		_, size, err := s.refs(h)
		if err != nil {
			return Stats{}, err
		}
		st.Bytes += uint64(size)
	}
	return st, nil
}

// IsHeld tells whether h is in the held set.
func (s *Store) IsHeld(h common.Hash) (bool, error) {
	_, err := s.get(hashKey(prefixHeld, h))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// loadBounds reads the lowest and highest block numbers from the index. It seeks from
// the cached lowest block, so the tombstones of blocks that left the window are never
// visited; the highest is found by seeking back from the end of the index.
func (s *Store) loadBounds() error {
	s.mu.Lock()
	lower := numKey(prefixBlock, s.first)
	s.mu.Unlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixBlock + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if !it.First() {
		s.mu.Lock()
		s.nonEmpty = false
		s.mu.Unlock()
		return it.Error()
	}
	first := binary.BigEndian.Uint64(it.Key()[1:])
	if !it.Last() {
		return fmt.Errorf("block index changed while reading its bounds: %w", it.Error())
	}
	last := binary.BigEndian.Uint64(it.Key()[1:])
	s.mu.Lock()
	s.first, s.last, s.nonEmpty = first, last, true
	s.mu.Unlock()
	return nil
}

func (s *Store) commit(batch *pebble.Batch, stats Stats) error {
	val := binary.BigEndian.AppendUint64(nil, stats.Preimages)
	val = binary.BigEndian.AppendUint64(val, stats.Bytes)
	if err := batch.Set(keyStats, val, nil); err != nil {
		return err
	}
	// No fsync per block: a crash loses at most the last few blocks, which the follower
	// collects again on restart from the last block that did reach the disk.
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit store batch: %w", err)
	}
	s.mu.Lock()
	s.stats = stats
	s.mu.Unlock()
	return nil
}

// Stats is what the store holds now.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Block returns the retained block with number n.
func (s *Store) Block(n uint64) (*Block, error) {
	v, err := s.get(numKey(prefixBlock, n))
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	var b Block
	if err := rlp.DecodeBytes(v, &b); err != nil {
		return nil, fmt.Errorf("decode stored block %d: %w", n, err)
	}
	return &b, nil
}

// Summary returns the summary of the retained block with number n.
func (s *Store) Summary(n uint64) (*Summary, error) {
	v, err := s.get(numKey(prefixSummary, n))
	if errors.Is(err, ErrNotFound) {
		// A block stored before summaries were kept: its full record has the same.
		b, err := s.Block(n)
		if err != nil {
			return nil, err
		}
		return b.Summary(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", n, err)
	}
	if len(v) != 3*common.HashLength {
		return nil, fmt.Errorf("block %d: corrupt summary of %d bytes", n, len(v))
	}
	return &Summary{Number: n, Hash: common.BytesToHash(v[:32]), ParentHash: common.BytesToHash(v[32:64]), Root: common.BytesToHash(v[64:])}, nil
}

// SummaryByHash returns the summary of the retained block with hash h.
func (s *Store) SummaryByHash(h common.Hash) (*Summary, error) {
	n, err := s.numberOf(h)
	if err != nil {
		return nil, err
	}
	return s.Summary(n)
}

func (s *Store) numberOf(h common.Hash) (uint64, error) {
	v, err := s.get(hashKey(prefixHash, h))
	if err != nil {
		return 0, fmt.Errorf("block %s: %w", h, err)
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("block %s: corrupt index entry", h)
	}
	return binary.BigEndian.Uint64(v), nil
}

// BlockByHash returns the retained block with hash h.
func (s *Store) BlockByHash(h common.Hash) (*Block, error) {
	n, err := s.numberOf(h)
	if err != nil {
		return nil, err
	}
	return s.Block(n)
}

// Bounds returns the lowest and highest retained block numbers; ok is false when the
// store holds no block.
func (s *Store) Bounds() (first, last uint64, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, s.last, s.nonEmpty, nil
}

// AddGap records blocks from..to (inclusive) as not collected.
func (s *Store) AddGap(g Gap) error {
	if err := s.db.Set(numKey(prefixGap, g.From), binary.BigEndian.AppendUint64(nil, g.To), pebble.Sync); err != nil {
		return fmt.Errorf("record gap %d-%d: %w", g.From, g.To, err)
	}
	return nil
}

// Gaps lists every recorded gap, oldest first.
func (s *Store) Gaps() ([]Gap, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGap}, UpperBound: []byte{prefixGap + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Gap
	for it.First(); it.Valid(); it.Next() {
		if len(it.Key()) != 9 || len(it.Value()) != 8 {
			return nil, fmt.Errorf("corrupt gap record %x", it.Key())
		}
		out = append(out, Gap{From: binary.BigEndian.Uint64(it.Key()[1:]), To: binary.BigEndian.Uint64(it.Value())})
	}
	return out, it.Error()
}

// DiskSize is the bytes the store's files take on disk, as du counts them: allocated
// blocks (st_blocks × 512), not file sizes, which on a small store are mostly Pebble's
// preallocated write-ahead logs. A store in memory reports Pebble's own total.
func (s *Store) DiskSize() (uint64, error) {
	if s.dir == "" {
		return s.db.Metrics().DiskSpaceUsage(), nil
	}
	var total uint64
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file Pebble deleted while we walked
			}
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += allocatedBytes(info)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure store %s: %w", s.dir, err)
	}
	return total, nil
}

// PruneGaps forgets gaps, and the parts of gaps, below block keepFrom: they left the
// window with the blocks around them.
func (s *Store) PruneGaps(keepFrom uint64) error {
	gaps, err := s.Gaps()
	if err != nil {
		return err
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	changed := false
	for _, g := range gaps {
		if g.From >= keepFrom {
			break
		}
		changed = true
		if err := batch.Delete(numKey(prefixGap, g.From), nil); err != nil {
			return err
		}
		if g.To >= keepFrom {
			if err := batch.Set(numKey(prefixGap, keepFrom), binary.BigEndian.AppendUint64(nil, g.To), nil); err != nil {
				return err
			}
		}
	}
	if !changed {
		return nil
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("prune gaps below %d: %w", keepFrom, err)
	}
	return nil
}

// Compact compacts the whole key space, so that DiskSize reflects deletions.
func (s *Store) Compact() error {
	return s.db.Compact([]byte{0}, []byte{0xff}, true)
}

// ForEachPreimage calls fn for every stored preimage hash and its reference count, in
// hash order; for audits and tests.
func (s *Store) ForEachPreimage(fn func(h common.Hash, refs uint32) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixPreimage}, UpperBound: []byte{prefixPreimage + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		h := common.BytesToHash(it.Key()[1:])
		n, _, err := s.refs(h)
		if err != nil {
			return err
		}
		if err := fn(h, n); err != nil {
			return err
		}
	}
	return it.Error()
}

// DecodeHeaders decodes a block's witness headers.
func (b *Block) DecodeHeaders() ([]*types.Header, error) {
	out := make([]*types.Header, len(b.Headers))
	for i, enc := range b.Headers {
		var h types.Header
		if err := rlp.DecodeBytes(enc, &h); err != nil {
			return nil, fmt.Errorf("decode witness header %d of block %d: %w", i, b.Number, err)
		}
		out[i] = &h
	}
	return out, nil
}

// noPreallocFS is the disk, except that files are never preallocated. Pebble reserves
// 110% of the memtable size for every write-ahead log up front; with a queue of logs
// (see memTableBytes) that reservation, not data, was most of what the store took on
// disk, and it grew with the queue. Preallocation only saves metadata updates on fsync,
// and the store commits without fsync.
type noPreallocFS struct{ vfs.FS }

func (fs noPreallocFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

func (fs noPreallocFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

type noPreallocFile struct{ vfs.File }

func (noPreallocFile) Preallocate(offset, length int64) error { return nil }

// quietLogger drops Pebble's informational chatter; errors surface through return values.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})  {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
