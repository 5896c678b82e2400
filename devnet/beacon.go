package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/ethereum/go-ethereum/rlp"
)

// The dev L1 has no consensus layer, so it serves the part of the beacon node API that a
// rollup node reads blobs through: node version, genesis, spec and blobs by slot. Slots are
// seconds since the L1 genesis (SECONDS_PER_SLOT 1): the simulated consensus client gives
// every block a timestamp at least one second after its parent's, so each block has a
// slot of its own, and a slot with no block is a missed slot.

// BeaconSecondsPerSlot is the dev L1 beacon API's slot length.
const BeaconSecondsPerSlot = 1

// DefaultBlobRetention is how many blocks' blobs the dev L1 keeps by default.
const DefaultBlobRetention = 4096

// maxPendingSidecars bounds the sidecars held for blob transactions not yet sealed.
const maxPendingSidecars = 256

// blobFileSuffix names a block's blob file in the datadir's blobs directory:
// <number>-<hash>.blobs, holding the RLP of []storedBlob.
const blobFileSuffix = ".blobs"

type storedBlob struct {
	Hash common.Hash // the versioned hash
	Blob kzg4844.Blob
}

// blockBlobs is what the store knows about one sealed block.
type blockBlobs struct {
	number uint64
	hashes []common.Hash
	blobs  []storedBlob // nil when kept on disk only
}

// blobStore keeps the blobs of sealed blocks, by block hash, for the last retention
// blocks; with a datadir on disk (and only the index in memory), else in memory.
type blobStore struct {
	dir       string
	retention uint64
	log       *slog.Logger

	mu      sync.Mutex
	blocks  map[common.Hash]*blockBlobs
	pending map[common.Hash]*types.BlobTxSidecar // by transaction hash
	order   []common.Hash                        // pending, oldest first
}

func newBlobStore(dir string, retention uint64, log *slog.Logger) (*blobStore, error) {
	s := &blobStore{dir: dir, retention: retention, log: log,
		blocks: map[common.Hash]*blockBlobs{}, pending: map[common.Hash]*types.BlobTxSidecar{}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read blob dir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		num, hash, ok := parseBlobFileName(name)
		if !ok {
			continue
		}
		blobs, err := s.readFile(name)
		if err != nil {
			// A torn write from a crash loses that block's blobs, not the chain.
			log.Warn("dev L1 skips an unreadable blob file", "file", name, "err", err)
			continue
		}
		bb := &blockBlobs{number: num}
		for _, b := range blobs {
			bb.hashes = append(bb.hashes, b.Hash)
		}
		s.blocks[hash] = bb
	}
	return s, nil
}

func blobFileName(num uint64, hash common.Hash) string {
	return fmt.Sprintf("%d-%s%s", num, hash.Hex(), blobFileSuffix)
}

func parseBlobFileName(name string) (uint64, common.Hash, bool) {
	base, ok := strings.CutSuffix(name, blobFileSuffix)
	if !ok {
		return 0, common.Hash{}, false
	}
	numStr, hashStr, ok := strings.Cut(base, "-")
	if !ok {
		return 0, common.Hash{}, false
	}
	num, err := strconv.ParseUint(numStr, 10, 64)
	if err != nil || len(hashStr) != 66 {
		return 0, common.Hash{}, false
	}
	return num, common.HexToHash(hashStr), true
}

func (s *blobStore) readFile(name string) ([]storedBlob, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	var blobs []storedBlob
	if err := rlp.DecodeBytes(data, &blobs); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return blobs, nil
}

// addPending keeps the sidecar of a blob transaction that entered the pool, so its blobs
// are at hand when a block includes it (the pool forgets included transactions).
func (s *blobStore) addPending(txHash common.Hash, sc *types.BlobTxSidecar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[txHash]; ok {
		return
	}
	s.pending[txHash] = sc
	s.order = append(s.order, txHash)
	for len(s.order) > maxPendingSidecars {
		delete(s.pending, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *blobStore) takePending(txHash common.Hash) *types.BlobTxSidecar {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.pending[txHash]
	if sc != nil {
		delete(s.pending, txHash)
		for i, h := range s.order {
			if h == txHash {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
	return sc
}

// sealed records the blobs of a sealed block, then drops blocks older than retention.
func (s *blobStore) sealed(block *types.Block, lookup func(common.Hash) *types.BlobTxSidecar) error {
	var blobs []storedBlob
	for _, tx := range block.Transactions() {
		if tx.Type() != types.BlobTxType {
			continue
		}
		sc := lookup(tx.Hash())
		if sc == nil {
			// Nothing to serve: a rollup node will find the blobs missing, as it would
			// with a beacon node that pruned them.
			s.log.Warn("dev L1 sealed a blob transaction without its sidecar", "tx", tx.Hash(), "block", block.NumberU64())
			continue
		}
		for i, h := range tx.BlobHashes() {
			if i < len(sc.Blobs) {
				blobs = append(blobs, storedBlob{Hash: h, Blob: sc.Blobs[i]})
			}
		}
	}
	num := block.NumberU64()
	var errs []error
	if len(blobs) > 0 {
		bb := &blockBlobs{number: num}
		for _, b := range blobs {
			bb.hashes = append(bb.hashes, b.Hash)
		}
		if s.dir == "" {
			bb.blobs = blobs
		} else if err := s.writeFile(blobFileName(num, block.Hash()), blobs); err != nil {
			errs = append(errs, err)
		}
		s.mu.Lock()
		s.blocks[block.Hash()] = bb
		s.mu.Unlock()
	}
	if num > s.retention {
		errs = append(errs, s.prune(num-s.retention))
	}
	return errors.Join(errs...)
}

// writeFile writes atomically (temp file, rename) so a crash leaves a whole file or none.
func (s *blobStore) writeFile(name string, blobs []storedBlob) error {
	data, err := rlp.EncodeToBytes(blobs)
	if err != nil {
		return fmt.Errorf("encode blobs: %w", err)
	}
	tmp := filepath.Join(s.dir, name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write blobs: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("write blobs: %w", err)
	}
	return nil
}

// prune drops the blobs of blocks below number.
func (s *blobStore) prune(below uint64) error {
	s.mu.Lock()
	var drop []common.Hash
	var nums []uint64
	for h, bb := range s.blocks {
		if bb.number < below {
			drop = append(drop, h)
			nums = append(nums, bb.number)
		}
	}
	for _, h := range drop {
		delete(s.blocks, h)
	}
	s.mu.Unlock()
	if s.dir == "" {
		return nil
	}
	var errs []error
	for i, h := range drop {
		if err := os.Remove(filepath.Join(s.dir, blobFileName(nums[i], h))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune blobs: %w", err))
		}
	}
	return errors.Join(errs...)
}

// blobsOf returns the blobs of a block, in block order, and whether the store has any.
func (s *blobStore) blobsOf(hash common.Hash) ([]storedBlob, bool, error) {
	s.mu.Lock()
	bb, ok := s.blocks[hash]
	s.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	if bb.blobs != nil {
		return bb.blobs, true, nil
	}
	blobs, err := s.readFile(blobFileName(bb.number, hash))
	if err != nil {
		return nil, true, err
	}
	return blobs, true, nil
}

// watchPool copies the sidecar of every blob transaction entering the pool. The pool
// announces a transaction while it adds it, before the RPC call that sent it returns, and
// while it holds its lock (also when a reorg puts transactions back): so the announcement
// is only queued here, and fetchSidecars reads the pool once the lock is released.
// It returns when stop closes.
func (l *L1) watchPool(stop <-chan struct{}) {
	defer l.wg.Done()
	pool := l.client.backend.TxPool()
	ch := make(chan core.NewTxsEvent, 16)
	sub := pool.SubscribeTransactions(ch, true)
	defer sub.Unsubscribe()
	for {
		select {
		case <-stop:
			return
		case <-sub.Err():
			return
		case ev := <-ch:
			for _, tx := range ev.Txs {
				if tx.Type() != types.BlobTxType {
					continue
				}
				l.fetchPending.Add(1)
				select {
				case l.fetchQueue <- tx.Hash():
				default:
					// Never block the pool: a dropped announcement leaves the sidecar to the
					// lookup at seal time.
					l.fetchPending.Add(-1)
					l.cfg.Logger.Warn("dev L1 blob sidecar queue full", "tx", tx.Hash())
				}
			}
		}
	}
}

// fetchSidecars reads the sidecars of announced blob transactions from the pool.
func (l *L1) fetchSidecars(stop <-chan struct{}) {
	defer l.wg.Done()
	pool := l.client.backend.TxPool()
	for {
		select {
		case <-stop:
			return
		case h := <-l.fetchQueue:
			if full := pool.Get(h); full != nil && full.BlobTxSidecar() != nil {
				l.blobs.addPending(h, full.BlobTxSidecar())
			}
			l.fetchPending.Add(-1)
		}
	}
}

// awaitSidecars waits (briefly) until every announced sidecar has been read, so a block
// sealed next finds the sidecars of all transactions sent before it.
func (l *L1) awaitSidecars() {
	deadline := time.Now().Add(2 * time.Second)
	for l.fetchPending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// recordBlobs stores the blobs of the block just sealed.
func (l *L1) recordBlobs(head *types.Header) {
	block := l.client.backend.BlockChain().GetBlock(head.Hash(), head.Number.Uint64())
	if block == nil {
		return
	}
	pool := l.client.backend.TxPool()
	lookup := func(txHash common.Hash) *types.BlobTxSidecar {
		if sc := l.blobs.takePending(txHash); sc != nil {
			return sc
		}
		if tx := pool.Get(txHash); tx != nil {
			return tx.BlobTxSidecar()
		}
		return nil
	}
	if err := l.blobs.sealed(block, lookup); err != nil {
		l.cfg.Logger.Warn("dev L1 could not store blobs", "block", head.Number, "err", err)
	}
}

// startBeacon serves the beacon API on its own loopback listener.
func (l *L1) startBeacon() error {
	ln, err := net.Listen("tcp", net.JoinHostPort(l.cfg.Host, strconv.Itoa(l.cfg.BeaconPort)))
	if err != nil {
		return fmt.Errorf("beacon API listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /eth/v1/node/version", l.serveVersion)
	mux.HandleFunc("GET /eth/v1/beacon/genesis", l.serveGenesis)
	mux.HandleFunc("GET /eth/v1/config/spec", l.serveSpec)
	mux.HandleFunc("GET /eth/v1/beacon/blobs/{slot}", l.serveBlobs)
	l.beaconSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	l.beaconURL = "http://" + ln.Addr().String()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := l.beaconSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.cfg.Logger.Warn("dev L1 beacon API stopped", "err", err)
		}
	}()
	return nil
}

func (l *L1) stopBeacon() error {
	if l.beaconSrv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.beaconSrv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop beacon API: %w", err)
	}
	return nil
}

// BeaconURL is the base URL of the beacon API (op-node's --l1.beacon).
func (l *L1) BeaconURL() string { return l.beaconURL }

// BeaconGenesisTime is the beacon API's genesis_time: the L1 genesis timestamp.
func (l *L1) BeaconGenesisTime() uint64 { return l.genesis.Timestamp }

// SlotOf is the beacon slot of an L1 block timestamp.
func (l *L1) SlotOf(timestamp uint64) uint64 {
	return (timestamp - l.genesis.Timestamp) / BeaconSecondsPerSlot
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // a failed write is the client's hang-up
}

// beaconError answers as beacon nodes do: {"code": n, "message": "..."}.
func beaconError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

func (l *L1) serveVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"data": map[string]string{"version": "opkit-devnet-l1/v1"}})
}

func (l *L1) serveGenesis(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"data": map[string]string{
		"genesis_time":            strconv.FormatUint(l.BeaconGenesisTime(), 10),
		"genesis_validators_root": common.Hash{}.Hex(),
		"genesis_fork_version":    "0x00000000",
	}})
}

func (l *L1) serveSpec(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"data": map[string]string{
		"SECONDS_PER_SLOT": strconv.Itoa(BeaconSecondsPerSlot),
	}})
}

// canonicalAt finds the canonical block with the given timestamp, if any.
func (l *L1) canonicalAt(timestamp uint64) *types.Header {
	chain := l.client.backend.BlockChain()
	head := chain.CurrentBlock()
	if head == nil || timestamp > head.Time {
		return nil
	}
	n := sort.Search(int(head.Number.Uint64())+1, func(i int) bool {
		h := chain.GetHeaderByNumber(uint64(i))
		return h == nil || h.Time >= timestamp
	})
	h := chain.GetHeaderByNumber(uint64(n))
	if h == nil || h.Time != timestamp {
		return nil
	}
	return h
}

// serveBlobs answers GET /eth/v1/beacon/blobs/{slot}?versioned_hashes=...: the blobs of
// the canonical block of that slot, all of them or those asked for, in block order.
func (l *L1) serveBlobs(w http.ResponseWriter, r *http.Request) {
	slot, err := strconv.ParseUint(r.PathValue("slot"), 10, 64)
	if err != nil {
		beaconError(w, http.StatusBadRequest, "invalid slot: "+r.PathValue("slot"))
		return
	}
	if slot > (1<<63-l.BeaconGenesisTime())/BeaconSecondsPerSlot {
		beaconError(w, http.StatusBadRequest, "slot out of range")
		return
	}
	want := map[common.Hash]bool{}
	for _, v := range r.URL.Query()["versioned_hashes"] {
		for _, part := range strings.Split(v, ",") {
			b, err := hexutil.Decode(part)
			if err != nil || len(b) != 32 {
				beaconError(w, http.StatusBadRequest, "invalid versioned hash: "+part)
				return
			}
			want[common.BytesToHash(b)] = true
		}
	}
	header := l.canonicalAt(l.BeaconGenesisTime() + slot*BeaconSecondsPerSlot)
	if header == nil {
		beaconError(w, http.StatusNotFound, fmt.Sprintf("no block at slot %d", slot))
		return
	}
	blobs, _, err := l.blobs.blobsOf(header.Hash())
	if err != nil {
		beaconError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []hexutil.Bytes{}
	found := map[common.Hash]bool{}
	for i := range blobs {
		if len(want) > 0 && !want[blobs[i].Hash] {
			continue
		}
		found[blobs[i].Hash] = true
		out = append(out, blobs[i].Blob[:])
	}
	for h := range want {
		if !found[h] {
			beaconError(w, http.StatusNotFound, fmt.Sprintf("blob %s not found at slot %d", h, slot))
			return
		}
	}
	writeJSON(w, map[string]any{"data": out})
}
