package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segmentFileName is Kafka's naming: the base offset, 20 digits, zero-padded.
func segmentFileName(dir string, baseOffset int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", baseOffset, suffix))
}

// parseSegmentFileName returns the base offset of a "<20 digits><suffix>" name.
func parseSegmentFileName(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	return n, err == nil && n >= 0
}

// sharedFile is a segment's open file with a reference count, so a segment
// deleted by retention or truncation stays readable by fetches that were
// handed a region of it before: the descriptor is closed by the last release.
type sharedFile struct {
	*os.File
	refs atomic.Int32 // the owning segment holds one reference
}

func newSharedFile(f *os.File) *sharedFile {
	s := &sharedFile{File: f}
	s.refs.Store(1)
	return s
}

// acquire takes a reference unless the file was already closed.
func (s *sharedFile) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *sharedFile) release() {
	if s.refs.Add(-1) == 0 {
		s.File.Close()
	}
}

// segment is one .log file and its indexes. The Log's writer lock guards every
// field not marked otherwise; readers touch only the atomics, the indexes
// (which lock themselves) and the file through positional reads.
type segment struct {
	baseOffset int64
	dir        string
	fs         FileSystem
	file       *sharedFile

	size         atomic.Int64 // committed bytes: readers never look past this
	maxTimestamp atomic.Int64 // largest batch maxTimestamp in the segment, -1 if none

	index     sparseIndex[offsetEntry]
	timeIndex sparseIndex[timeEntry]

	offsetOfMaxTimestamp atomic.Int64 // base offset of a batch carrying maxTimestamp (lock-free readers check the pair)
	bytesSinceIndex      int64
	firstAppendMs        int64 // wall clock of the first append, for segment.ms; -1 while empty
	dirtyIndexes         bool  // in-memory indexes differ from the files
}

func (s *segment) logPath() string   { return segmentFileName(s.dir, s.baseOffset, logSuffix) }
func (s *segment) indexPath() string { return segmentFileName(s.dir, s.baseOffset, indexSuffix) }
func (s *segment) timeIndexPath() string {
	return segmentFileName(s.dir, s.baseOffset, timeIndexSuffix)
}

// createSegment makes a new, empty segment file. An existing file of that
// name is truncated: the caller has decided nothing in it is valid.
func createSegment(fsys FileSystem, dir string, baseOffset int64) (*segment, error) {
	s := &segment{baseOffset: baseOffset, dir: dir, fs: fsys, firstAppendMs: -1}
	f, err := fsys.OpenFile(s.logPath(), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: create segment: %w", err)
	}
	s.file = newSharedFile(f)
	s.maxTimestamp.Store(-1)
	s.offsetOfMaxTimestamp.Store(-1)
	s.dirtyIndexes = true
	return s, nil
}

// openSegment opens an existing segment file without reading it.
func openSegment(fsys FileSystem, dir string, baseOffset int64) (*segment, int64, error) {
	s := &segment{baseOffset: baseOffset, dir: dir, fs: fsys, firstAppendMs: -1}
	f, err := fsys.OpenFile(s.logPath(), os.O_RDWR, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("storage: open segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("storage: stat segment: %w", err)
	}
	s.file = newSharedFile(f)
	s.maxTimestamp.Store(-1)
	s.offsetOfMaxTimestamp.Store(-1)
	return s, fi.Size(), nil
}

// writeAt writes buf at the committed end with one positional write. On
// failure (a full disk, say) it cuts the file back so no partial batch stays
// behind; the returned bool says whether that cleanup worked.
func (s *segment) writeAt(buf []byte) (cleaned bool, err error) {
	pos := s.size.Load()
	n, err := s.fs.WriteAt(s.file.File, buf, pos)
	if err == nil {
		return true, nil
	}
	err = fmt.Errorf("storage: write %d bytes at %s:%d (wrote %d): %w", len(buf), filepath.Base(s.logPath()), pos, n, err)
	if terr := s.fs.Truncate(s.file.File, pos); terr != nil {
		return false, errors.Join(err, fmt.Errorf("storage: cut back after failed write: %w", terr))
	}
	return true, err
}

// indexBatchLocked records a batch about to be committed at position pos in
// the in-memory indexes, every indexInterval bytes as Kafka does.
func (s *segment) indexBatchLocked(h BatchHeader, pos int64, indexInterval int, nowMs int64) {
	if s.firstAppendMs < 0 {
		s.firstAppendMs = nowMs
	}
	if h.MaxTimestamp > s.maxTimestamp.Load() {
		s.maxTimestamp.Store(h.MaxTimestamp)
		s.offsetOfMaxTimestamp.Store(h.BaseOffset)
	}
	if s.bytesSinceIndex > int64(indexInterval) {
		s.index.append(offsetEntry{relOffset: uint32(h.BaseOffset - s.baseOffset), position: uint32(pos)})
		s.appendTimeEntryLocked()
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += int64(h.Length)
	s.dirtyIndexes = true
}

// appendTimeEntryLocked adds a time-index entry when the segment's largest
// timestamp has grown since the last one.
func (s *segment) appendTimeEntryLocked() {
	ts := s.maxTimestamp.Load()
	if ts < 0 {
		return
	}
	if last, ok := s.timeIndex.last(); ok && last.timestamp >= ts {
		return
	}
	s.timeIndex.append(timeEntry{timestamp: ts, relOffset: uint32(s.offsetOfMaxTimestamp.Load() - s.baseOffset)})
}

// persistIndexes writes both indexes to their files (write to a temporary
// name, rename), after adding a final time entry so the segment's largest
// timestamp survives a reopen. Called on roll, where it must not fsync (the
// roll happens inside an append), and on clean close, durably. Indexes
// written at roll are fsynced by syncIndexFiles before the recovery point
// moves past their segment.
func (s *segment) persistIndexes(durable bool) error {
	if !s.dirtyIndexes {
		return nil
	}
	s.appendTimeEntryLocked()
	if err := writeFileAtomic(s.fs, s.indexPath(), marshalOffsetIndex(s.index.snapshot()), durable); err != nil {
		return err
	}
	if err := writeFileAtomic(s.fs, s.timeIndexPath(), marshalTimeIndex(s.timeIndex.snapshot()), durable); err != nil {
		return err
	}
	s.dirtyIndexes = false
	return nil
}

// syncIndexFiles fsyncs the index files persistIndexes wrote at roll, before
// a recovery point or a clean-shutdown marker vouches for them: otherwise a
// crash can leave the renamed files empty. The caller fsyncs the directory
// afterwards. A file that is gone (the segment was deleted meanwhile) needs
// nothing. Safe without the writer lock: it touches only immutable fields.
func (s *segment) syncIndexFiles() error {
	for _, p := range []string{s.indexPath(), s.timeIndexPath()} {
		f, err := s.fs.OpenFile(p, os.O_RDONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("storage: open %s for fsync: %w", filepath.Base(p), err)
		}
		err = s.fs.Sync(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("storage: fsync %s: %w", filepath.Base(p), err)
		}
	}
	return nil
}

// loadIndexes reads the index files of a segment that was closed cleanly or
// rolled, given its size and the offset after its last batch, and checks
// them against the segment (checkIndexes). An error means they are missing,
// damaged or in doubt, and the caller rebuilds them from the log.
func (s *segment) loadIndexes(size, nextOffset int64, indexInterval int) error {
	nextRel := uint32(nextOffset - s.baseOffset)
	idx, err := loadOffsetIndex(s.indexPath(), size, nextRel)
	if err != nil {
		return err
	}
	tidx, err := loadTimeIndex(s.timeIndexPath(), nextRel)
	if err != nil {
		return err
	}
	if err := s.checkIndexes(idx, tidx, size, nextOffset, indexInterval); err != nil {
		return err
	}
	s.index.reset(idx)
	s.timeIndex.reset(tidx)
	if last, ok := s.timeIndex.last(); ok {
		s.maxTimestamp.Store(last.timestamp)
		s.offsetOfMaxTimestamp.Store(s.baseOffset + int64(last.relOffset))
	}
	s.size.Store(size)
	s.resetIndexIntervalLocked()
	return nil
}

// resetIndexIntervalLocked sets the bytes counted since the last offset-index
// entry from the entries and the size, as appends would have left it, so the
// next entry comes where an uninterrupted run of appends would put it (which
// checkIndexes relies on).
func (s *segment) resetIndexIntervalLocked() {
	s.bytesSinceIndex = s.size.Load()
	if last, ok := s.index.last(); ok {
		s.bytesSinceIndex -= int64(last.position)
	}
}

// truncateTo cuts the segment at byte position pos and drops index entries at
// or past it. The caller recomputes maxTimestamp if it needs it.
func (s *segment) truncateTo(pos int64) error {
	if err := s.fs.Truncate(s.file.File, pos); err != nil {
		return fmt.Errorf("storage: truncate %s to %d: %w", filepath.Base(s.logPath()), pos, err)
	}
	s.size.Store(pos)
	s.index.truncate(func(e offsetEntry) bool { return int64(e.position) < pos })
	s.dirtyIndexes = true
	return nil
}

// remove unlinks the segment's files and drops the segment's reference to the
// descriptor; fetches still holding regions of it keep reading until done.
func (s *segment) remove() error {
	var errs []error
	for _, p := range []string{s.logPath(), s.indexPath(), s.timeIndexPath()} {
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.file.release()
	return errors.Join(errs...)
}

// close drops the segment's reference to its file.
func (s *segment) close() { s.file.release() }

// scanner walks the batches of a segment between two byte positions with
// large positional reads, so walking many small batches costs few syscalls.
// It never reads past end, which the caller takes from the committed size.
type scanner struct {
	f        *os.File
	pos, end int64
	buf      []byte
	bufStart int64 // file position of buf[0]
	bufLen   int
}

const scanBufferSize = 64 << 10

func newScanner(f *os.File, pos, end int64, buf []byte) *scanner {
	if buf == nil {
		buf = make([]byte, scanBufferSize)
	}
	return &scanner{f: f, pos: pos, end: end, buf: buf, bufStart: pos}
}

// fill makes sure buf holds at least n bytes from pos (n ≤ len(buf)), or
// returns io.ErrUnexpectedEOF when the committed region ends first.
func (sc *scanner) fill(n int) error {
	if sc.pos >= sc.bufStart && sc.pos+int64(n) <= sc.bufStart+int64(sc.bufLen) {
		return nil
	}
	if sc.pos+int64(n) > sc.end {
		return io.ErrUnexpectedEOF
	}
	want := int64(len(sc.buf))
	if rest := sc.end - sc.pos; rest < want {
		want = rest
	}
	m, err := sc.f.ReadAt(sc.buf[:want], sc.pos)
	sc.bufStart, sc.bufLen = sc.pos, m
	if m < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// nextPrefix returns the position, base offset, length and lastOffsetDelta of
// the batch at the current position and moves past it. io.EOF means the
// walk reached end exactly; a batch that runs past end or does not parse is
// an ErrCorruptBatch.
func (sc *scanner) nextPrefix() (pos, baseOffset int64, length int32, lastOffsetDelta int32, err error) {
	if sc.pos >= sc.end {
		return 0, 0, 0, 0, io.EOF
	}
	if err := sc.fill(batchPrefixSize); err != nil {
		return sc.pos, 0, 0, 0, fmt.Errorf("%w: torn batch header at position %d: %v", ErrCorruptBatch, sc.pos, err)
	}
	i := int(sc.pos - sc.bufStart)
	baseOffset, length, lastOffsetDelta, err = parseBatchPrefix(sc.buf[i : i+batchPrefixSize])
	if err != nil {
		return sc.pos, 0, 0, 0, fmt.Errorf("at position %d: %w", sc.pos, err)
	}
	if sc.pos+int64(length) > sc.end {
		return sc.pos, 0, 0, 0, fmt.Errorf("%w: batch at position %d runs %d bytes past the end", ErrCorruptBatch, sc.pos, sc.pos+int64(length)-sc.end)
	}
	pos = sc.pos
	sc.pos += int64(length)
	return pos, baseOffset, length, lastOffsetDelta, nil
}

// nextBatch returns the whole batch at the current position and its parsed
// header, checked for framing and CRC, and moves past it. The slice is valid
// until the next call.
func (sc *scanner) nextBatch() (pos int64, batch []byte, h BatchHeader, err error) {
	if sc.pos >= sc.end {
		return 0, nil, h, io.EOF
	}
	pos = sc.pos
	if err := sc.fill(BatchHeaderSize); err != nil {
		return pos, nil, h, fmt.Errorf("%w: torn batch header at position %d: %v", ErrCorruptBatch, pos, err)
	}
	i := int(pos - sc.bufStart)
	h, err = ParseBatchHeader(sc.buf[i:sc.bufLen])
	if err != nil {
		return pos, nil, h, fmt.Errorf("at position %d: %w", pos, err)
	}
	if pos+int64(h.Length) > sc.end {
		return pos, nil, h, fmt.Errorf("%w: batch at position %d runs %d bytes past the end", ErrCorruptBatch, pos, pos+int64(h.Length)-sc.end)
	}
	if int(h.Length) > len(sc.buf) {
		sc.buf = make([]byte, h.Length) // rare: a batch larger than the scan buffer
		sc.bufLen = 0
	}
	if err := sc.fill(int(h.Length)); err != nil {
		return pos, nil, h, fmt.Errorf("%w: torn batch at position %d: %v", ErrCorruptBatch, pos, err)
	}
	i = int(pos - sc.bufStart)
	batch = sc.buf[i : i+int(h.Length)]
	if err := validateBatch(batch, h); err != nil {
		return pos, nil, h, fmt.Errorf("batch at position %d: %w", pos, err)
	}
	sc.pos += int64(h.Length)
	return pos, batch, h, nil
}

// tempFileSuffix marks a file being written by writeFileAtomic; a crash can
// leave one behind (Open removes it), never a half-written target.
const tempFileSuffix = ".tmp"

// writeFileAtomic replaces path with data through a temporary file and a
// rename, so a crash leaves the old or the new content, never a mix. With
// durable it also fsyncs the file and the directory.
func writeFileAtomic(fsys FileSystem, path string, data []byte, durable bool) error {
	tmp := path + tempFileSuffix
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("storage: write %s: %w", filepath.Base(path), err)
	}
	_, err = fsys.WriteAt(f, data, 0)
	if err == nil && durable {
		err = fsys.Sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("storage: write %s: %w", filepath.Base(path), err)
	}
	if durable {
		return fsys.SyncDir(filepath.Dir(path))
	}
	return nil
}

// evictIndexes drops the in-memory indexes of a sealed segment unless they
// were used since the previous call (or force), so they are read back from their files
// when next needed (sparseIndex.evict); next is the offset after the
// segment, which the read-back checks entries against. A segment whose
// index files are not up to date keeps its indexes. It reports the bytes
// freed. The caller holds the writer lock and passes only sealed segments.
func (s *segment) evictIndexes(next int64, force bool) int {
	if s.dirtyIndexes {
		return 0
	}
	nextRel := uint32(next - s.baseOffset)
	size := s.size.Load()
	freed := s.index.evict(func() ([]offsetEntry, error) { return loadOffsetIndex(s.indexPath(), size, nextRel) }, force)
	return freed + s.timeIndex.evict(func() ([]timeEntry, error) { return loadTimeIndex(s.timeIndexPath(), nextRel) }, force)
}
