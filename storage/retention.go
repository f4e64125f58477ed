package storage

import (
	"errors"
	"fmt"
	"io"
)

// TruncateTo removes every batch at or after offset, as a follower does after
// a leader change (KIP-101/279) before it fetches again. A batch that holds
// offset without starting at it is removed whole, so the log end becomes that
// batch's base offset. An offset at or past the log end keeps every batch
// but still drops the leader epochs starting at or after it (Kafka's
// truncateTo does too): an epoch led without writes sits at the log end, and
// a follower that kept it would report it as its last fetched epoch again
// and again. One at or below the log start empties the log and restarts it
// at offset.
func (l *Log) TruncateTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if offset >= l.leo.Load() {
		return l.epochs.truncateFromEnd(offset)
	}
	// Odd while the cut is in progress: see Log.truncations.
	l.truncations.Add(1)
	defer l.truncations.Add(1)
	if offset <= l.logStartOffset.Load() {
		return l.resetLocked(offset)
	}
	segs := *l.segments.Load()
	i := segmentFor(segs, offset)
	// Drop whole segments from the one after i, then cut segment i.
	for _, s := range segs[i+1:] {
		if err := s.remove(); err != nil {
			return l.failLocked(err)
		}
	}
	kept := segs[: i+1 : i+1]
	l.segments.Store(&kept)
	s := kept[i]
	pos, newLEO, err := s.positionOfBatchHolding(offset)
	if err != nil {
		return l.failLocked(err)
	}
	if err := s.truncateTo(pos); err != nil {
		return l.failLocked(err)
	}
	if err := l.rebuildTimestampsLocked(s); err != nil {
		return l.failLocked(err)
	}
	l.leo.Store(newLEO)
	return l.afterTruncateLocked()
}

// positionOfBatchHolding returns the position of the batch that holds offset
// (or of the first batch past it) and that batch's base offset.
func (s *segment) positionOfBatchHolding(offset int64) (int64, int64, error) {
	pos := int64(0)
	if e, ok := s.index.floor(func(e offsetEntry) bool { return s.baseOffset+int64(e.relOffset) <= offset }); ok {
		pos = int64(e.position)
	}
	sc := newScanner(s.file.File, pos, s.size.Load(), make([]byte, prefixScanBuffer))
	for {
		p, base, _, delta, err := sc.nextPrefix()
		if errors.Is(err, io.EOF) {
			return s.size.Load(), offset, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("storage: find truncation point in %s: %w", s.logPath(), err)
		}
		if base+int64(delta) >= offset {
			return p, min(base, offset), nil
		}
	}
}

// rebuildTimestampsLocked recomputes a cut segment's largest timestamp and
// its time index from its remaining batches.
func (l *Log) rebuildTimestampsLocked(s *segment) error {
	s.maxTimestamp.Store(-1)
	s.offsetOfMaxTimestamp.Store(-1)
	var entries []timeEntry
	idx := s.index.snapshot()
	sc := newScanner(s.file.File, 0, s.size.Load(), nil)
	for {
		_, _, h, err := sc.nextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("storage: rebuild time index of %s: %w", s.logPath(), err)
		}
		if h.MaxTimestamp > s.maxTimestamp.Load() {
			s.maxTimestamp.Store(h.MaxTimestamp)
			s.offsetOfMaxTimestamp.Store(h.BaseOffset)
		}
		// Keep time entries where the offset index has entries, as appends do.
		rel := uint32(h.BaseOffset - s.baseOffset)
		for len(idx) > 0 && idx[0].relOffset <= rel {
			if idx[0].relOffset == rel && (len(entries) == 0 || entries[len(entries)-1].timestamp < s.maxTimestamp.Load()) {
				entries = append(entries, timeEntry{timestamp: s.maxTimestamp.Load(), relOffset: uint32(s.offsetOfMaxTimestamp.Load() - s.baseOffset)})
			}
			idx = idx[1:]
		}
	}
	s.timeIndex.reset(entries)
	s.resetIndexIntervalLocked()
	if s.size.Load() == 0 {
		s.firstAppendMs = -1
	}
	return nil
}

// resetLocked empties the log and starts it again at offset.
func (l *Log) resetLocked(offset int64) error {
	// The log start may move down here, below a durable DeleteRecords
	// value, so the file must follow before the segments change.
	if err := writeLogStart(l.opts.FS, l.dir, offset); err != nil {
		return err
	}
	if err := l.replaceAllSegmentsLocked(offset); err != nil {
		return err
	}
	l.logStartOffset.Store(offset)
	l.leo.Store(offset)
	if err := l.epochs.clear(); err != nil {
		return err
	}
	return l.afterTruncateLocked()
}

// replaceAllSegmentsLocked deletes every segment and creates an empty one at
// offset. The new segment is published before the old files go, so readers
// always find a segment list.
func (l *Log) replaceAllSegmentsLocked(offset int64) error {
	old := *l.segments.Load()
	for _, s := range old {
		if s.baseOffset == offset {
			// The new segment reuses this file name: unlink the old one first.
			if err := s.remove(); err != nil {
				return l.failLocked(err)
			}
		}
	}
	seg, err := createSegment(l.opts.FS, l.dir, offset)
	if err != nil {
		return l.failLocked(err)
	}
	l.segments.Store(&[]*segment{seg})
	for _, s := range old {
		if s.baseOffset != offset {
			if err := s.remove(); err != nil {
				return l.failLocked(err)
			}
		}
	}
	return nil
}

// afterTruncateLocked brings the epoch cache, producer state, recovery point
// and flush accounting in line with a log that lost its tail.
func (l *Log) afterTruncateLocked() error {
	leo := l.leo.Load()
	if err := l.epochs.truncateFromEnd(leo); err != nil {
		return err
	}
	if err := l.reloadProducerStateLocked(); err != nil {
		return err
	}
	return l.setRecoveryPointLocked(min(l.recoveryPoint, leo))
}

// DeleteRecordsBefore moves the log start offset up to offset (DeleteRecords;
// the caller keeps it at or below the high watermark) and deletes the
// segments that now lie wholly below it. It returns the new log start.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	// One log-start change at a time, so the file follows their order; the
	// writer lock is not held while the file is fsynced, so appends go on.
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	err := l.usableLocked()
	leo, start := l.leo.Load(), l.logStartOffset.Load()
	l.mu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case offset > leo:
		return 0, fmt.Errorf("%w: delete before %d, log end is %d", ErrOffsetOutOfRange, offset, leo)
	case offset <= start:
		return start, nil
	}
	// Durable before anything changes: the client is told its records are
	// gone, and a crash must not bring them back. Not on the produce path.
	if err := writeLogStart(l.opts.FS, l.dir, offset); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, err
	}
	if cur := l.logStartOffset.Load(); offset <= cur || offset > l.leo.Load() {
		// Retention, a truncation or a restart of the log moved it while
		// the file was written: put the file back to what the log is.
		if err := writeLogStart(l.opts.FS, l.dir, cur); err != nil {
			return 0, err
		}
		if offset <= cur {
			return cur, nil
		}
		return 0, fmt.Errorf("%w: delete before %d, log end is now %d", ErrOffsetOutOfRange, offset, l.leo.Load())
	}
	if err := l.advanceLogStartLocked(offset); err != nil {
		return 0, err
	}
	return offset, nil
}

// advanceLogStartLocked sets the log start and deletes the segments wholly
// below it; when that includes the active segment, the log rolls first.
func (l *Log) advanceLogStartLocked(offset int64) error {
	l.logStartOffset.Store(offset)
	segs := *l.segments.Load()
	n := 0 // segments to delete
	for n < len(segs)-1 && segs[n+1].baseOffset <= offset {
		n++
	}
	if n == len(segs)-1 && offset == l.leo.Load() && segs[n].size.Load() > 0 {
		if err := l.rollLocked(); err != nil {
			return err
		}
		segs = *l.segments.Load()
		n = len(segs) - 1
	}
	if err := l.deleteOldestLocked(n); err != nil {
		return err
	}
	if err := l.epochs.truncateFromStart(offset); err != nil {
		return err
	}
	return l.setRecoveryPointLocked(l.recoveryPoint)
}

// deleteOldestLocked removes the first n segments (never the active one).
func (l *Log) deleteOldestLocked(n int) error {
	if n == 0 {
		return nil
	}
	segs := *l.segments.Load()
	kept := append([]*segment(nil), segs[n:]...)
	l.segments.Store(&kept)
	for _, s := range segs[:n] {
		if err := s.remove(); err != nil {
			return err
		}
		l.logger.Debug("deleted segment", "base_offset", s.baseOffset)
	}
	if err := l.producers.deleteSnapshotsBefore(kept[0].baseOffset); err != nil {
		return err
	}
	return nil
}

// EnforceRetention deletes whole segments by retention.ms (their newest
// record is older than that) and retention.bytes (the log is larger than
// that without them), oldest first, never past upTo (the high watermark: data
// not yet replicated is not retention's to delete). When every segment has
// expired, the log rolls so the expired active segment can go too. It returns
// the number of segments deleted. The broker calls it periodically, so it
// also drops the indexes of sealed segments unused since the previous call.
func (l *Log) EnforceRetention(upTo int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, err
	}
	defer l.evictIndexesLocked(false)
	nowMs := l.opts.Now().UnixMilli()
	segs := *l.segments.Load()
	total := segmentsSize(segs)
	n := 0
	for ; n < len(segs); n++ {
		s := segs[n]
		end := nextSegmentBase(segs, n, l.leo.Load())
		if s.size.Load() == 0 || end > upTo {
			break
		}
		byTime := l.cfg.RetentionMs >= 0 && s.maxTimestamp.Load() >= 0 && nowMs-s.maxTimestamp.Load() > l.cfg.RetentionMs.Milliseconds()
		bySize := l.cfg.RetentionBytes >= 0 && total-s.size.Load() >= l.cfg.RetentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size.Load()
	}
	if n == 0 {
		return 0, nil
	}
	if n == len(segs) {
		if err := l.rollLocked(); err != nil {
			return 0, err
		}
	}
	newStart := (*l.segments.Load())[n].baseOffset
	if err := l.advanceLogStartLocked(max(newStart, l.logStartOffset.Load())); err != nil {
		return 0, err
	}
	return n, nil
}

// evictIndexesLocked drops the in-memory indexes of the sealed segments
// not used since the previous call (all of them with force), to be read
// back from their files when needed; it reports the bytes freed.
func (l *Log) evictIndexesLocked(force bool) int {
	segs := *l.segments.Load()
	freed := 0
	for i, s := range segs[:len(segs)-1] {
		freed += s.evictIndexes(segs[i+1].baseOffset, force)
	}
	return freed
}

func segmentsSize(segs []*segment) int64 {
	var n int64
	for _, s := range segs {
		n += s.size.Load()
	}
	return n
}
