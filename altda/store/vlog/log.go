package vlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSegmentSize is where a segment is sealed and the next one started: large enough
// that a terabyte of preimages is about a thousand open files, small enough to copy or
// inspect one by hand.
const DefaultSegmentSize = 1 << 30

const segmentExt = ".vlog"

// Options tune a Log. The zero value is the default.
type Options struct {
	// SegmentSize is the size past which no new record starts in a segment.
	SegmentSize int64
	// FS is the file system (default: the operating system's).
	FS FS
	// Now is the clock that dates appends for Expired (default time.Now).
	Now func() time.Time
}

// Log is an append-only value log in one directory. It is safe for concurrent use.
type Log struct {
	dir         string
	segmentSize int64
	fs          FS
	now         func() time.Time

	// Lock order: appendMu, syncMu, filesMu. closed is set with all three held, so any
	// one of them is enough to read it.
	//
	// appendMu serialises appends and segment rolls and guards active.
	appendMu sync.Mutex
	active   *segment
	// syncMu admits one fsync at a time; writers that queue behind it usually find their
	// record already covered when they get in.
	syncMu sync.Mutex
	// filesMu guards segments; it is held for reading across every use of a file, so that
	// Close cannot close a file under a read or a sync.
	filesMu  sync.RWMutex
	segments map[uint32]*segment
	closed   bool
	// oldest is the lowest segment id the log still has: a location in a lower one was
	// dropped by Drop. Guarded by filesMu.
	oldest uint32
	// failed holds the first sync error. After a failed fsync the kernel may have
	// dropped the dirty pages, so nothing later can be trusted to be durable: every later
	// append and sync fails until the log is reopened. A failed write (a full disk) is
	// not fatal: the log's end does not move, and the next append overwrites whatever
	// part of the record reached the file.
	failed atomic.Pointer[error]
}

type segment struct {
	id   uint32
	f    File
	size int64 // bytes appended; guarded by Log.appendMu
	// last dates the newest record (unix nanoseconds): when it was appended, or for a
	// segment found at Open, the file's modification time, which is no earlier. Guarded
	// by Log.appendMu.
	last int64
	// written is size as seen by syncers: every byte below it has been handed to the
	// kernel. synced is the prefix known to be durable.
	written atomic.Int64
	synced  atomic.Int64
}

// Open opens the log in dir, creating the directory and a first segment if needed. New
// records go after the end of the newest segment.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("value log: %w", err)
	}
	ids, err := segmentIDs(opts.FS, dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, segmentSize: opts.SegmentSize, fs: opts.FS, now: opts.Now, segments: make(map[uint32]*segment), oldest: 1}
	if len(ids) > 0 {
		l.oldest = ids[0]
	}
	for _, id := range ids {
		seg, err := l.openSegment(id, false)
		if err != nil {
			_ = l.closeFiles()
			return nil, err
		}
		l.segments[id] = seg
		l.active = seg
	}
	if l.active == nil {
		if err := l.startSegment(1); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func segmentIDs(fs FS, dir string) ([]uint32, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("value log: %w", err)
	}
	var ids []uint32
	for _, file := range names {
		name, ok := strings.CutSuffix(file, segmentExt)
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(name, 10, 32)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("value log: unexpected file %s in %s", file, dir)
		}
		ids = append(ids, uint32(id))
	}
	slices.Sort(ids)
	return ids, nil
}

func segmentPath(dir string, id uint32) string {
	return filepath.Join(dir, fmt.Sprintf("%08d%s", id, segmentExt))
}

func (l *Log) openSegment(id uint32, create bool) (*segment, error) {
	f, err := l.fs.OpenFile(segmentPath(l.dir, id), create)
	if err != nil {
		return nil, fmt.Errorf("value log: %w", err)
	}
	size, mtime, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("value log: segment %d: %w", id, err)
	}
	seg := &segment{id: id, f: f, size: size, last: mtime.UnixNano()}
	seg.written.Store(seg.size)
	// What was on disk at open is durable as far as this process can tell.
	seg.synced.Store(seg.size)
	return seg, nil
}

// startSegment creates segment id, makes its directory entry durable and makes it the
// active segment. appendMu must be held (or l not yet shared).
func (l *Log) startSegment(id uint32) error {
	seg, err := l.openSegment(id, true)
	if err != nil {
		return err
	}
	if err := l.syncDir(); err != nil {
		// The new file's directory entry may or may not survive: as with a failed fsync
		// of data, nothing after this can be promised durable.
		_ = seg.f.Close()
		return l.fail(err)
	}
	l.filesMu.Lock()
	l.segments[id] = seg
	l.filesMu.Unlock()
	l.active = seg
	return nil
}

func (l *Log) syncDir() error {
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("value log: sync %s: %w", l.dir, err)
	}
	return nil
}

// Size is the number of bytes in the log's segments.
func (l *Log) Size() int64 {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	var n int64
	for _, seg := range l.segments {
		n += seg.written.Load()
	}
	return n
}

// ErrClosed is returned by calls on a closed log.
var ErrClosed = errors.New("value log is closed")

// Err reports the error that stopped the log from accepting writes, or nil.
func (l *Log) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) fail(err error) error {
	l.failed.CompareAndSwap(nil, &err)
	return err
}

// Append writes a record for key and value to the active segment and returns its
// location. The record is not yet durable: call Sync.
func (l *Log) Append(key, value []byte) (Location, error) {
	if len(key) > MaxKeySize || len(value) > MaxValueSize {
		return Location{}, fmt.Errorf("value log: key of %d bytes or value of %d bytes is over the limit", len(key), len(value))
	}
	h := header(key, value)
	n := recordSize(len(key), len(value))
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return Location{}, ErrClosed
	}
	if err := l.Err(); err != nil {
		return Location{}, err
	}
	if l.active.size > 0 && l.active.size+n > l.segmentSize {
		if err := l.roll(); err != nil {
			return Location{}, err
		}
	}
	seg := l.active
	if err := pwriteAll(seg.f, [][]byte{h[:], key, value}, seg.size); err != nil {
		return Location{}, fmt.Errorf("value log: write segment %d: %w", seg.id, err)
	}
	loc := Location{Segment: seg.id, Offset: seg.size, ValueLen: uint32(len(value))}
	seg.size += n
	seg.written.Store(seg.size)
	seg.last = l.now().UnixNano()
	return loc, nil
}

// roll seals the active segment, synced in full, and starts the next. appendMu is held.
//
// The segment is first cut to its logical end: a failed append (a short write, then a
// full disk) may have left part of a record past it, which the next append would have
// overwritten. Sealed with those bytes, the segment would end in a torn record, which
// Recover rightly refuses in a sealed segment.
func (l *Log) roll() error {
	old := l.active
	if err := cutToEnd(old); err != nil {
		return fmt.Errorf("value log: cut segment %d to %d bytes before sealing it: %w", old.id, old.size, err)
	}
	l.syncMu.Lock()
	err := old.f.Datasync()
	if err == nil {
		old.synced.Store(old.written.Load())
	}
	l.syncMu.Unlock()
	if err != nil {
		return l.fail(fmt.Errorf("value log: sync segment %d: %w", old.id, err))
	}
	return l.startSegment(old.id + 1)
}

// cutToEnd truncates seg's file to the appended records when a failed append left bytes
// past them. It leaves a clean file alone, so that its modification time still dates its
// newest record (Open takes it for that).
func cutToEnd(seg *segment) error {
	size, _, err := seg.f.Stat()
	if err != nil {
		return err
	}
	if size == seg.size {
		return nil
	}
	return seg.f.Truncate(seg.size)
}

// pwriteAll writes bufs back to back at off with as few system calls as the kernel allows.
func pwriteAll(f File, bufs [][]byte, off int64) error {
	for len(bufs) > 0 {
		n, err := f.Pwritev(bufs, off)
		if err != nil {
			return err
		}
		if n <= 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][n:]
				n = 0
			}
		}
	}
	return nil
}

// Sync returns once the record at loc is durable. Concurrent callers share fsyncs: one
// fsync covers every record appended before it began.
func (l *Log) Sync(loc Location, keyLen int) error {
	end := loc.Offset + recordSize(keyLen, int(loc.ValueLen))
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	seg := l.segments[loc.Segment]
	switch {
	case seg == nil:
		return fmt.Errorf("%w: no segment %d for %s", ErrCorrupt, loc.Segment, loc)
	case seg.synced.Load() >= end:
		return nil
	}
	if err := l.Err(); err != nil {
		return err
	}
	target := seg.written.Load()
	if err := seg.f.Datasync(); err != nil {
		return l.fail(fmt.Errorf("value log: sync segment %d: %w", seg.id, err))
	}
	seg.synced.Store(target)
	return nil
}

// Read returns the value of the record at loc, checking that it is intact and holds key.
// The returned slice is the caller's.
func (l *Log) Read(loc Location, key []byte) ([]byte, error) {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	seg := l.segments[loc.Segment]
	if seg == nil {
		if loc.Segment < l.oldest {
			return nil, fmt.Errorf("%w: %s", ErrExpired, loc)
		}
		return nil, fmt.Errorf("%w: no segment %d for %s", ErrCorrupt, loc.Segment, loc)
	}
	rec := make([]byte, recordSize(len(key), int(loc.ValueLen)))
	if _, err := seg.f.ReadAt(rec, loc.Offset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s is past the end of the segment", ErrCorrupt, loc)
		}
		return nil, fmt.Errorf("value log: read %s: %w", loc, err)
	}
	value, err := decodeRecord(rec, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return value, nil
}

// Close syncs the active segment and closes every file. Calls after Close return ErrClosed.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.Err() == nil {
		// Cut what a failed append left past the end, as roll does: a later Open would
		// otherwise take those bytes for a record torn by a crash.
		if terr := cutToEnd(l.active); terr != nil {
			err = fmt.Errorf("value log: cut segment %d: %w", l.active.id, terr)
		} else if serr := l.active.f.Datasync(); serr != nil {
			err = fmt.Errorf("value log: sync segment %d: %w", l.active.id, serr)
		}
	}
	return errors.Join(err, l.closeFiles())
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, seg := range l.segments {
		if err := seg.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("value log: close segment %d: %w", seg.id, err))
		}
	}
	return errors.Join(errs...)
}

// Position is a place in the log, in log order: a segment and an offset in it.
type Position struct {
	Segment uint32
	Offset  int64
}

// PositionSize is the length of an encoded Position.
const PositionSize = 4 + 8

// Bytes encodes the position in PositionSize bytes.
func (p Position) Bytes() []byte {
	b := make([]byte, PositionSize)
	binary.BigEndian.PutUint32(b[0:4], p.Segment)
	binary.BigEndian.PutUint64(b[4:12], uint64(p.Offset))
	return b
}

// ParsePosition decodes what Bytes encoded.
func ParsePosition(b []byte) (Position, error) {
	if len(b) != PositionSize {
		return Position{}, fmt.Errorf("value log position: %d bytes, want %d", len(b), PositionSize)
	}
	p := Position{Segment: binary.BigEndian.Uint32(b[0:4]), Offset: int64(binary.BigEndian.Uint64(b[4:12]))}
	if p.Offset < 0 {
		return Position{}, fmt.Errorf("value log position: offset %d out of range", p.Offset)
	}
	return p, nil
}

// Before reports whether p comes before q in the log.
func (p Position) Before(q Position) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Start is the position of the record at l.
func (l Location) Start() Position { return Position{Segment: l.Segment, Offset: l.Offset} }

// End is where the next record appended goes. The caller orders it against its own
// appends.
func (l *Log) End() Position {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return Position{Segment: l.active.id, Offset: l.active.size}
}

// Recover calls fn for every intact record from position from to the end of the log, in
// log order, and cuts the newest segment at its first record that is not intact: an append
// a crash interrupted, which was never synced and so never acknowledged. It returns the
// end of the log. Call it before the first Append. A damaged record in an older segment is
// an error, because a segment is synced in full before the next one starts.
func (l *Log) Recover(from Position, fn func(key []byte, loc Location) error) (Position, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.filesMu.RLock()
	ids := make([]uint32, 0, len(l.segments))
	for id := range l.segments {
		ids = append(ids, id)
	}
	l.filesMu.RUnlock()
	slices.Sort(ids)
	if _, ok := l.segments[from.Segment]; !ok && from != (Position{}) {
		return Position{}, fmt.Errorf("%w: recovery starts in segment %d, which is missing", ErrCorrupt, from.Segment)
	}
	var buf []byte
	for _, id := range ids {
		if id < from.Segment {
			continue
		}
		seg := l.segments[id]
		off := int64(0)
		if id == from.Segment {
			off = from.Offset
		}
		if off > seg.size {
			return Position{}, fmt.Errorf("%w: recovery starts at offset %d of segment %d, which holds only %d bytes", ErrCorrupt, off, id, seg.size)
		}
		for off < seg.size {
			var key []byte
			var valueLen uint32
			var err error
			buf, key, valueLen, err = readRecord(seg.f, off, seg.size, buf)
			if errors.Is(err, ErrCorrupt) {
				if seg != l.active {
					return Position{}, fmt.Errorf("segment %d, sealed, is damaged at offset %d: %w", id, off, err)
				}
				if err := l.cut(seg, off); err != nil {
					return Position{}, err
				}
				break
			}
			if err != nil {
				return Position{}, err
			}
			if err := fn(key, Location{Segment: id, Offset: off, ValueLen: valueLen}); err != nil {
				return Position{}, err
			}
			off += recordSize(len(key), int(valueLen))
		}
	}
	return Position{Segment: l.active.id, Offset: l.active.size}, nil
}

// readRecord reads and checks the record at off in a segment of the given size, using buf
// as scratch space. ErrCorrupt means no intact record starts there.
func readRecord(f File, off, size int64, buf []byte) (_ []byte, key []byte, valueLen uint32, err error) {
	if size-off < headerSize {
		return buf, nil, 0, fmt.Errorf("%w: %d bytes at the end are shorter than a header", ErrCorrupt, size-off)
	}
	var h [headerSize]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return buf, nil, 0, fmt.Errorf("value log: read header at %d: %w", off, err)
	}
	keyLen, valueLen := lengths(h[:])
	n := recordSize(keyLen, int(valueLen))
	if valueLen > MaxValueSize || n > size-off {
		return buf, nil, 0, fmt.Errorf("%w: record of %d bytes at %d runs past the end (%d)", ErrCorrupt, n, off, size)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	rec := buf[:n]
	if _, err := f.ReadAt(rec, off); err != nil {
		return buf, nil, 0, fmt.Errorf("value log: read record at %d: %w", off, err)
	}
	key, _, err = parseRecord(rec)
	if err != nil {
		return buf, nil, 0, fmt.Errorf("at %d: %w", off, err)
	}
	return buf, bytes.Clone(key), valueLen, nil
}

// cut truncates seg at off, durably.
func (l *Log) cut(seg *segment, off int64) error {
	if err := seg.f.Truncate(off); err != nil {
		return fmt.Errorf("value log: cut segment %d at %d: %w", seg.id, off, err)
	}
	if err := seg.f.Datasync(); err != nil {
		return fmt.Errorf("value log: sync segment %d: %w", seg.id, err)
	}
	seg.size = off
	seg.written.Store(off)
	seg.synced.Store(off)
	return nil
}

// ErrExpired is returned by Read for a location in a segment that Drop removed.
var ErrExpired = errors.New("value log record was dropped by retention")

// Expired returns, oldest first, the sealed segments whose every record was appended
// before cutoff: the longest such run from the oldest segment on, so that what Drop
// removes is always a prefix of the log. When the active segment holds records and its
// newest is older than cutoff too, it is sealed (and a new one started) so that it can go
// as well: a log nobody writes to any more still gives its space back.
func (l *Log) Expired(cutoff time.Time) ([]uint32, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.active.size > 0 && l.active.last < cutoff.UnixNano() {
		if err := l.Err(); err != nil {
			return nil, err
		}
		if err := l.roll(); err != nil {
			return nil, err
		}
	}
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	var ids []uint32
	for id := range l.segments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []uint32
	for _, id := range ids {
		seg := l.segments[id]
		if seg == l.active || seg.last >= cutoff.UnixNano() {
			break
		}
		out = append(out, id)
	}
	return out, nil
}

// Keys calls fn with the key and location of every record in sealed segment id, in
// order. It reads record headers and keys only and checks no checksums: it is for
// finding the index entries that point into a segment about to be dropped.
func (l *Log) Keys(id uint32, fn func(key []byte, loc Location) error) error {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	seg := l.segments[id]
	if seg == nil {
		return fmt.Errorf("%w: no segment %d", ErrCorrupt, id)
	}
	size := seg.written.Load()
	var h [headerSize]byte
	var key []byte
	for off := int64(0); off < size; {
		if size-off < headerSize {
			return fmt.Errorf("%w: segment %d ends in %d bytes shorter than a header", ErrCorrupt, id, size-off)
		}
		if _, err := seg.f.ReadAt(h[:], off); err != nil {
			return fmt.Errorf("value log: segment %d: read header at %d: %w", id, off, err)
		}
		keyLen, valueLen := lengths(h[:])
		n := recordSize(keyLen, int(valueLen))
		if valueLen > MaxValueSize || n > size-off {
			return fmt.Errorf("%w: segment %d: record of %d bytes at %d runs past the end (%d)", ErrCorrupt, id, n, off, size)
		}
		key = slices.Grow(key[:0], keyLen)[:keyLen]
		if _, err := seg.f.ReadAt(key, off+headerSize); err != nil {
			return fmt.Errorf("value log: segment %d: read key at %d: %w", id, off, err)
		}
		if err := fn(key, Location{Segment: id, Offset: off, ValueLen: valueLen}); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// Drop deletes sealed segments ids, which must be the oldest ones (as Expired lists
// them). Reads of locations in them then fail with ErrExpired. The owner removes its
// index entries for them first: a crash between the two leaves files nothing points
// to, which the next Expired and Drop remove.
func (l *Log) Drop(ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.filesMu.Lock()
	if l.closed {
		l.filesMu.Unlock()
		return ErrClosed
	}
	live := make([]uint32, 0, len(l.segments))
	for id := range l.segments {
		live = append(live, id)
	}
	slices.Sort(live)
	var files []*segment
	for i, id := range ids {
		seg := l.segments[id]
		if seg == nil || seg == l.active || live[i] != id {
			l.filesMu.Unlock()
			return fmt.Errorf("value log: cannot drop segment %d: not one of the oldest sealed segments", id)
		}
		files = append(files, seg)
	}
	for _, seg := range files {
		delete(l.segments, seg.id)
		l.oldest = max(l.oldest, seg.id+1)
	}
	l.filesMu.Unlock()
	var errs []error
	for _, seg := range files {
		errs = append(errs, seg.f.Close())
		if err := l.fs.Remove(segmentPath(l.dir, seg.id)); err != nil {
			errs = append(errs, fmt.Errorf("value log: remove segment %d: %w", seg.id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Not fatal if it fails: a segment that comes back after a crash holds only
	// records that no index entry points to any more.
	return l.syncDir()
}
