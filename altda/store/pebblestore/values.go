package pebblestore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/opkit/opkit/altda/store/vlog"
)

// checkpointKey holds the value log position before which every acknowledged record's
// location is durable in the index. Keys starting with 0xff are the store's own.
var checkpointKey = []byte("\xffvalue-log-checkpoint")

func reserved(key []byte) bool { return len(key) > 0 && key[0] == 0xff }

// defaultCheckpointBytes is how many value bytes may be appended between checkpoints,
// which is about what a restart after a crash rescans.
const defaultCheckpointBytes = 64 << 20

// values is a store's value log plus what keeps its index recoverable.
//
// A Put syncs the value, then writes its location to the index without syncing Pebble's
// WAL: one fsync per group of writers instead of two in a row, which is what lets the CPU
// work while writes wait on the disk. A crash can lose those index writes (Pebble may not
// even have handed them to the kernel yet); the checkpoint bounds what a restart rescans
// from the log to write them again. A checkpoint is a synced write, so it also makes every
// index write before it durable, and it never passes a record still between its append
// and its index write.
type values struct {
	log *vlog.Log

	mu       sync.Mutex                 // held across Append so that End and inFlight agree
	inFlight map[vlog.Position]struct{} // appended, not yet indexed
	since    int64                      // bytes appended since the last checkpoint
	every    int64                      // checkpoint after this many bytes

	checkpointMu sync.Mutex // one checkpoint at a time
	// indexMu is held for reading by each index write of a put and for writing while
	// retention deletes the entries of a dropped segment, so that retention never deletes
	// an entry a concurrent put has just pointed somewhere else.
	indexMu     sync.RWMutex
	retentionMu sync.Mutex // one retention pass at a time

	recovered int // records whose locations were written again at open
}

// openValues opens the value log in dir and writes into db the location of every record
// the index may have lost, from the last checkpoint on.
func openValues(dir string, db *pebble.DB, opts vlog.Options, checkpointBytes int64) (*values, error) {
	log, err := vlog.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	v := &values{log: log, inFlight: make(map[vlog.Position]struct{}), every: checkpointBytes}
	if err := v.recover(db); err != nil {
		_ = log.Close()
		return nil, err
	}
	return v, nil
}

func (v *values) recover(db *pebble.DB) error {
	var from vlog.Position // no checkpoint yet: everything
	raw, closer, err := db.Get(checkpointKey)
	switch {
	case err == nil:
		from, err = vlog.ParsePosition(raw)
		_ = closer.Close()
		if err != nil {
			return fmt.Errorf("value log checkpoint: %w", err)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read value log checkpoint: %w", err)
	}
	batch := db.NewBatch()
	end, err := v.log.Recover(from, func(key []byte, loc vlog.Location) error {
		if err := batch.Set(key, loc.Bytes(), nil); err != nil {
			return err
		}
		v.recovered++
		if batch.Len() < 4<<20 {
			return nil
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			return err
		}
		batch = db.NewBatch()
		return nil
	})
	if err == nil {
		err = batch.Set(checkpointKey, end.Bytes(), nil)
	}
	if err == nil {
		err = batch.Commit(pebble.Sync)
	}
	if err != nil {
		_ = batch.Close()
		return fmt.Errorf("recover the index from the value log: %w", err)
	}
	return batch.Close()
}

// put makes value durable in the log and its location in db, then advances the
// checkpoint when enough has been appended since the last one.
func (v *values) put(db *pebble.DB, key, value []byte) error {
	v.mu.Lock()
	loc, err := v.log.Append(key, value)
	if err != nil {
		v.mu.Unlock()
		return err
	}
	v.inFlight[loc.Start()] = struct{}{}
	v.since += int64(len(value))
	due := v.since >= v.every
	if due {
		v.since = 0
	}
	v.mu.Unlock()

	err = v.log.Sync(loc, len(key))
	if err == nil {
		v.indexMu.RLock()
		err = db.Set(key, loc.Bytes(), pebble.NoSync)
		v.indexMu.RUnlock()
	}
	v.mu.Lock()
	delete(v.inFlight, loc.Start())
	v.mu.Unlock()
	if err != nil {
		return err
	}
	if due {
		_, err := v.checkpoint(db)
		return err
	}
	return nil
}

// checkpoint records, synced, the oldest record not yet indexed (or the log's end), and
// returns it.
func (v *values) checkpoint(db *pebble.DB) (vlog.Position, error) {
	v.checkpointMu.Lock()
	defer v.checkpointMu.Unlock()
	v.mu.Lock()
	pos := v.log.End()
	for p := range v.inFlight {
		if p.Before(pos) {
			pos = p
		}
	}
	v.mu.Unlock()
	if err := db.Set(checkpointKey, pos.Bytes(), pebble.Sync); err != nil {
		return vlog.Position{}, fmt.Errorf("value log checkpoint: %w", err)
	}
	return pos, nil
}

// close checkpoints at the end of the log and closes it.
func (v *values) close(db *pebble.DB) error {
	_, err := v.checkpoint(db)
	return errors.Join(err, v.log.Close())
}

// dropBefore drops the value log segments whose every record was appended before cutoff,
// and their index entries, and returns how many entries it deleted.
//
// The order makes every crash safe. The checkpoint moves past the segments first, so a
// restart never rescans them and indexes their records again. The index entries go next,
// in one synced batch: a read that starts after it finds nothing. The files go last; a
// crash before they are gone leaves files nothing points to, which the next pass drops.
func (v *values) dropBefore(db *pebble.DB, cutoff time.Time) (int, error) {
	v.retentionMu.Lock()
	defer v.retentionMu.Unlock()
	ids, err := v.log.Expired(cutoff)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	pos, err := v.checkpoint(db)
	if err != nil {
		return 0, err
	}
	// A record still waiting for its index write keeps its segment (and the newer ones).
	for len(ids) > 0 && ids[len(ids)-1] >= pos.Segment {
		ids = ids[:len(ids)-1]
	}
	if len(ids) == 0 {
		return 0, nil
	}
	v.indexMu.Lock()
	batch := db.NewBatch()
	deleted := 0
	for _, id := range ids {
		err = v.log.Keys(id, func(key []byte, loc vlog.Location) error {
			cur, closer, err := db.Get(key)
			if errors.Is(err, pebble.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			// Only the entry that points here: the same key written again later (after
			// its copy here was found damaged) lives on in its newer segment.
			same := bytes.Equal(cur, loc.Bytes())
			_ = closer.Close()
			if !same {
				return nil
			}
			deleted++
			return batch.Delete(key, nil)
		})
		if err != nil {
			break
		}
	}
	if err == nil {
		err = batch.Commit(pebble.Sync)
	}
	v.indexMu.Unlock()
	err = errors.Join(err, batch.Close())
	if err != nil {
		return 0, fmt.Errorf("retention: delete the index entries of value log segments %v: %w", ids, err)
	}
	if err := v.log.Drop(ids); err != nil {
		return deleted, fmt.Errorf("retention: %w", err)
	}
	return deleted, nil
}
