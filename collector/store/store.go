package store

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	db *pebble.DB

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
	return open(dir, &pebble.Options{})
}

// OpenInMemory opens a store that lives in memory only, for tests.
func OpenInMemory() (*Store, error) {
	return open("", &pebble.Options{FS: vfs.NewMem()})
}

// cacheBytes is Pebble's block cache. Most lookups while adding a block are for nodes
// the store does not hold yet; bloom filters answer those without reading a table.
const cacheBytes = 128 << 20

func open(dir string, opts *pebble.Options) (*Store, error) {
	opts.Logger = quietLogger{}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()
	opts.Cache = cache
	opts.MemTableSize = 64 << 20
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open preimage store %q: %w", dir, err)
	}
	s := &Store{db: db}
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

// AddBlock stores a block and takes a reference to each preimage it needs. preimages
// must hold the value of every needed preimage the store does not hold yet; each value
// is checked against its hash. A block with the same number must not be stored.
func (s *Store) AddBlock(b *Block, preimages map[common.Hash][]byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.get(numKey(prefixBlock, b.Number)); err == nil {
		return fmt.Errorf("add block %d: a block with that number is already stored", b.Number)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("add block %d: %w", b.Number, err)
	}
	enc, err := rlp.EncodeToBytes(b)
	if err != nil {
		return fmt.Errorf("encode block %d: %w", b.Number, err)
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	stats := s.Stats()
	for _, h := range b.Refs() {
		n, size, err := s.refs(h)
		if err != nil {
			return fmt.Errorf("add block %d: %w", b.Number, err)
		}
		if n == 0 {
			val, ok := preimages[h]
			if !ok {
				return fmt.Errorf("add block %d: preimage %s is neither stored nor supplied", b.Number, h)
			}
			if crypto.Keccak256Hash(val) != h {
				return fmt.Errorf("add block %d: supplied value for %s hashes to %s", b.Number, h, crypto.Keccak256Hash(val))
			}
			if err := batch.Set(hashKey(prefixPreimage, h), val, nil); err != nil {
				return err
			}
			stats.Preimages++
			stats.Bytes += uint64(len(val))
			size = uint32(len(val))
		}
		if err := batch.Set(hashKey(prefixRefs, h), refsValue(n+1, size), nil); err != nil {
			return err
		}
	}
	if err := batch.Set(numKey(prefixBlock, b.Number), enc, nil); err != nil {
		return err
	}
	if err := batch.Set(hashKey(prefixHash, b.Hash), binary.BigEndian.AppendUint64(nil, b.Number), nil); err != nil {
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

// RemoveBlock drops block number n and releases its references, deleting every
// preimage no other retained block needs.
func (s *Store) RemoveBlock(n uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b, err := s.Block(n)
	if err != nil {
		return fmt.Errorf("remove block: %w", err)
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	stats := s.Stats()
	for _, h := range b.Refs() {
		c, size, err := s.refs(h)
		if err != nil {
			return fmt.Errorf("remove block %d: %w", n, err)
		}
		switch c {
		case 0:
			return fmt.Errorf("remove block %d: preimage %s has no references left to release", n, h)
		case 1:
			stats.Preimages--
			stats.Bytes -= uint64(size)
			if err := batch.Delete(hashKey(prefixPreimage, h), nil); err != nil {
				return err
			}
			if err := batch.Delete(hashKey(prefixRefs, h), nil); err != nil {
				return err
			}
		default:
			if err := batch.Set(hashKey(prefixRefs, h), refsValue(c-1, size), nil); err != nil {
				return err
			}
		}
	}
	if err := batch.Delete(numKey(prefixBlock, n), nil); err != nil {
		return err
	}
	if err := batch.Delete(hashKey(prefixHash, b.Hash), nil); err != nil {
		return err
	}
	if err := s.commit(batch, stats); err != nil {
		return err
	}
	return s.loadBounds()
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

// BlockByHash returns the retained block with hash h.
func (s *Store) BlockByHash(h common.Hash) (*Block, error) {
	v, err := s.get(hashKey(prefixHash, h))
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", h, err)
	}
	if len(v) != 8 {
		return nil, fmt.Errorf("block %s: corrupt index entry", h)
	}
	return s.Block(binary.BigEndian.Uint64(v))
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

// DiskSize is the bytes the store's files take on disk (or in memory).
func (s *Store) DiskSize() uint64 { return s.db.Metrics().DiskSpaceUsage() }

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

// quietLogger drops Pebble's informational chatter; errors surface through return values.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})  {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
