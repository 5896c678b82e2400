package supervisor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
	"github.com/ethereum/go-ethereum/common"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/interop"
)

// chainState is the supervisor's view of one chain. Every head is a block the supervisor
// has indexed; local-safe and cross-safe carry the L1 block they were derived from.
type chainState struct {
	Anchor      eth.DerivedBlockRefPair `json:"anchor"`
	LocalUnsafe eth.BlockRef            `json:"localUnsafe"`
	CrossUnsafe eth.BlockRef            `json:"crossUnsafe"`
	LocalSafe   eth.DerivedBlockRefPair `json:"localSafe"`
	CrossSafe   eth.DerivedBlockRefPair `json:"crossSafe"`
	Finalized   eth.BlockRef            `json:"finalized"`
}

// logEntry is what cross-safety needs of a log: who emitted it and the payload hash an
// executing message must commit to.
type logEntry struct {
	Address common.Address `json:"a"`
	Hash    common.Hash    `json:"p"`
	// Exec is set when the log is an executing message.
	Exec *interop.ExecutingMessage `json:"x,omitempty"`
}

// blockEntry is an indexed block.
type blockEntry struct {
	Ref  eth.BlockRef `json:"ref"`
	Logs []logEntry   `json:"logs,omitempty"`
	// Source is the L1 block the block was derived from, once it is local-safe.
	Source *eth.BlockRef `json:"source,omitempty"`
	// CrossSource is the L1 block it is cross-safe from, once it is: its own source or a
	// later one, when a message it executes was initiated in a block derived from later L1.
	CrossSource *eth.BlockRef `json:"crossSource,omitempty"`
}

// Key layout: 's' ‖ chain → chainState; 'b' ‖ chain ‖ number → blockEntry; 'f' → the
// finalized L1 block; 'e' ‖ node endpoint → the L1 block the node exhausted. Numbers are big-endian so that blocks sort by height.
func stateKey(c interop.ChainID) []byte {
	return binary.BigEndian.AppendUint64([]byte{'s'}, uint64(c))
}

func blockKey(c interop.ChainID, n uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{'b'}, uint64(c))
	return binary.BigEndian.AppendUint64(k, n)
}

var finalizedL1Key = []byte{'f'}

// exhaustedKey holds the L1 block a node (by endpoint) last said it used up, until the
// next one is given to it: 'e' ‖ endpoint → BlockRef.
func exhaustedKey(endpoint string) []byte { return append([]byte{'e'}, endpoint...) }

// exhausted returns what exhaustedKey holds for endpoint, or nil.
func (s *store) exhausted(endpoint string) (*eth.BlockRef, error) {
	var r eth.BlockRef
	ok, err := s.getJSON(exhaustedKey(endpoint), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

// store is the durable state. Writes go through batches committed with fsync, so a crash
// loses nothing that a node was told.
type store struct {
	db *pebble.DB
}

func openStore(dir string) (*store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebbleLogger{}})
	if err != nil {
		return nil, fmt.Errorf("open supervisor database %s: %w", dir, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error {
	flushErr := s.db.Flush()
	return errors.Join(flushErr, s.db.Close())
}

func (s *store) getJSON(key []byte, v any) (bool, error) {
	data, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %x: %w", key, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %x: %w", key, err)
	}
	return true, nil
}

func (s *store) chainState(c interop.ChainID) (*chainState, error) {
	var st chainState
	ok, err := s.getJSON(stateKey(c), &st)
	if err != nil || !ok {
		return nil, err
	}
	return &st, nil
}

func (s *store) block(c interop.ChainID, n uint64) (*blockEntry, error) {
	var b blockEntry
	ok, err := s.getJSON(blockKey(c, n), &b)
	if err != nil || !ok {
		return nil, err
	}
	return &b, nil
}

func (s *store) finalizedL1() (eth.BlockRef, error) {
	var r eth.BlockRef
	_, err := s.getJSON(finalizedL1Key, &r)
	return r, err
}

// writeBatch collects changes to commit at once.
type writeBatch struct {
	b   *pebble.Batch
	err error
}

func (s *store) batch() *writeBatch { return &writeBatch{b: s.db.NewBatch()} }

func (w *writeBatch) putJSON(key []byte, v any) {
	if w.err != nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		w.err = fmt.Errorf("encode %x: %w", key, err)
		return
	}
	w.err = w.b.Set(key, data, nil)
}

// delete removes key.
func (w *writeBatch) delete(key []byte) {
	if w.err == nil {
		w.err = w.b.Delete(key, nil)
	}
}

// deleteBlocksFrom drops the blocks of chain c from number n up.
func (w *writeBatch) deleteBlocksFrom(c interop.ChainID, n uint64) {
	if w.err != nil {
		return
	}
	if c == ^interop.ChainID(0) {
		w.err = errors.New("chain ID out of range")
		return
	}
	w.err = w.b.DeleteRange(blockKey(c, n), binary.BigEndian.AppendUint64([]byte{'b'}, uint64(c+1)), nil)
}

// commit writes the batch with fsync: local-safe records, replacements and finality, which
// nodes do not tell again.
func (w *writeBatch) commit() error { return w.write(pebble.Sync) }

// commitRecoverable writes without waiting for fsync. It is for what a restart can learn
// again: unsafe blocks (a reconnect re-reads them from the node) and cross heads (they
// follow from the indexed blocks). Close flushes it.
func (w *writeBatch) commitRecoverable() error { return w.write(pebble.NoSync) }

// syncWAL waits until everything committed before it is on disk. Concurrent calls share
// one fsync (pebble groups them).
func (s *store) syncWAL() error {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync supervisor database: %w", err)
	}
	return nil
}

func (w *writeBatch) write(opts *pebble.WriteOptions) error {
	defer w.b.Close()
	if w.err != nil {
		return w.err
	}
	if err := w.b.Commit(opts); err != nil {
		return fmt.Errorf("commit supervisor database: %w", err)
	}
	return nil
}

type quietPebbleLogger struct{}

func (quietPebbleLogger) Infof(string, ...any)  {}
func (quietPebbleLogger) Errorf(string, ...any) {}
func (quietPebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
