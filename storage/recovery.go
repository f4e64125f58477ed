package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// RecoveryStats says what Open did, for logs and tests.
type RecoveryStats struct {
	Clean           bool          // the clean-shutdown marker was found and matched
	SegmentsScanned int           // segments read batch by batch
	BatchesScanned  int           // batches read and CRC-checked
	TruncatedBytes  int64         // bytes cut from a torn or corrupt tail, deleted segments included
	IndexesRebuilt  int           // segments whose index files were missing or damaged
	Duration        time.Duration // wall time of Open
}

// Open opens (or creates) the partition log in dir. After a clean Close it
// trusts the files and reads only the indexes; otherwise it scans every
// segment from the recovery point on, checking each batch's framing, CRC and
// offsets, cuts the log at the first bad batch and rebuilds the indexes it
// scanned. It then restores the leader-epoch cache and the producer state.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create log dir: %w", err)
	}
	l := &Log{
		dir:               dir,
		opts:              opts,
		logger:            opts.Logger.With("component", "storage", "log", filepath.Base(dir)),
		cfg:               cfg,
		oldestUnflushedMs: -1,
		stopFlusher:       make(chan struct{}),
		flusherDone:       make(chan struct{}),
		rollFlush:         make(chan struct{}, 1),
	}
	l.maxMessageBytes.Store(int64(cfg.MaxMessageBytes))
	var err error
	if l.epochs, err = openEpochCache(dir, l.logger); err != nil {
		return nil, err
	}
	l.epochs.fs = opts.FS
	l.producers = newProducerStates(dir, cfg.ProducerIDExpiration, l.logger)
	l.producers.fs = opts.FS
	if err := l.load(); err != nil {
		for _, s := range l.segmentsOrNil() {
			s.close()
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	l.recovery.Duration = time.Since(start)
	if !l.recovery.Clean {
		l.logger.Info("recovered log after unclean shutdown", "leo", l.leo.Load(),
			"segments_scanned", l.recovery.SegmentsScanned, "batches_scanned", l.recovery.BatchesScanned,
			"truncated_bytes", l.recovery.TruncatedBytes, "duration", l.recovery.Duration)
	}
	go l.flusher(cfg.FlushInterval)
	return l, nil
}

func (l *Log) segmentsOrNil() []*segment {
	if p := l.segments.Load(); p != nil {
		return *p
	}
	return nil
}

// load builds the in-memory state from the files. It runs before the Log is
// shared, so it calls *Locked helpers without the lock.
func (l *Log) load() error {
	marker, clean, err := takeCleanShutdown(l.opts.FS, l.dir)
	if err != nil {
		return err
	}
	cp, hasCheckpoint := readLogCheckpoint(l.dir)
	if hasCheckpoint {
		l.checkpointOnDisk = &cp
	}
	startHint, hasStartHint := cp.logStartOffset, hasCheckpoint
	if lso, ok := readLogStart(l.dir); ok {
		startHint, hasStartHint = lso, true
	}
	bases, err := l.listSegmentsAndTidy()
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		seg, err := createSegment(l.opts.FS, l.dir, startHint)
		if err != nil {
			return err
		}
		l.segments.Store(&[]*segment{seg})
		l.leo.Store(startHint)
		l.logStartOffset.Store(startHint)
		l.recovery.Clean = true
		return l.finishLoadLocked(startHint)
	}

	segs := make([]*segment, 0, len(bases))
	sizes := make([]int64, 0, len(bases))
	for _, base := range bases {
		s, size, err := openSegment(l.opts.FS, l.dir, base)
		if err != nil {
			for _, o := range segs {
				o.close()
			}
			return err
		}
		segs, sizes = append(segs, s), append(sizes, size)
	}
	l.segments.Store(&segs)

	last := len(segs) - 1
	clean = clean && marker.activeBase == segs[last].baseOffset && marker.activeSize == sizes[last] && marker.leo >= segs[last].baseOffset
	recoveryPoint := int64(0)
	if hasCheckpoint {
		recoveryPoint = cp.recoveryPoint
	}
	if clean {
		recoveryPoint = marker.leo
	}
	l.recovery.Clean = clean

	// Segments wholly below the recovery point keep their index files; from
	// the segment holding the recovery point on, every batch is read.
	next := segs[0].baseOffset
	for i, s := range segs {
		end := int64(-1) // offset after the segment, when a later segment or the marker says
		if i < last {
			end = segs[i+1].baseOffset
		} else if clean {
			end = marker.leo
		}
		if end >= 0 && end <= recoveryPoint {
			err := s.loadIndexes(sizes[i], end, l.cfg.IndexIntervalBytes)
			if err == nil {
				next = end
				continue
			}
			l.logger.Warn("rebuilding segment indexes", "segment", filepath.Base(s.logPath()), "reason", err)
			l.recovery.IndexesRebuilt++
		}
		l.recovery.SegmentsScanned++
		validEnd, segNext, err := l.scanSegment(s, sizes[i], next)
		if err != nil {
			return err
		}
		next = segNext
		if validEnd < sizes[i] || (i < last && segs[i+1].baseOffset != segNext) {
			// Cut here and drop everything after: later segments cannot be
			// trusted to follow a log with a hole in it.
			if err := l.cutTail(i, validEnd, sizes); err != nil {
				return err
			}
			break
		}
	}
	segs = *l.segments.Load()
	// Rebuilt indexes of sealed segments go back to their files, or every
	// open would rebuild them again; the flusher fsyncs them before the
	// recovery point passes their segment.
	for _, s := range segs[:len(segs)-1] {
		if err := s.persistIndexes(false); err != nil {
			return err
		}
	}
	active := segs[len(segs)-1]
	if active.size.Load() == 0 {
		next = max(next, active.baseOffset)
	}
	l.leo.Store(next)
	l.setActiveRollClock(active)

	logStart := segs[0].baseOffset
	if hasStartHint && startHint > logStart {
		logStart = min(startHint, next)
	}
	l.logStartOffset.Store(logStart)
	return l.finishLoadLocked(min(recoveryPoint, next))
}

// listSegmentsAndTidy returns the base offsets of the .log files, sorted, and
// removes leftovers of interrupted writes (temporary files, indexes without a
// log).
func (l *Log) listSegmentsAndTidy() ([]int64, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("storage: list log dir: %w", err)
	}
	var bases []int64
	logs := map[int64]bool{}
	for _, e := range entries {
		if base, ok := parseSegmentFileName(e.Name(), logSuffix); ok {
			bases = append(bases, base)
			logs[base] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		stray := strings.HasSuffix(name, ".tmp")
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			if base, ok := parseSegmentFileName(name, suffix); ok && !logs[base] {
				stray = true
			}
		}
		if stray {
			if err := l.opts.FS.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, fmt.Errorf("storage: remove leftover %s: %w", name, err)
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// scanSegment reads every batch of s from the start, checking framing, CRC and
// that offsets move forward from next, and rebuilds its indexes. It returns
// the position after the last good batch and the offset that follows it.
func (l *Log) scanSegment(s *segment, size, next int64) (validEnd, nextOffset int64, err error) {
	s.index.reset(nil)
	s.timeIndex.reset(nil)
	s.maxTimestamp.Store(-1)
	s.offsetOfMaxTimestamp.Store(-1)
	s.bytesSinceIndex = 0
	s.dirtyIndexes = true
	nextOffset = max(next, s.baseOffset)
	sc := newScanner(s.file.File, 0, size, nil)
	for {
		pos, _, h, err := sc.nextBatch()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && h.BaseOffset < nextOffset {
			err = fmt.Errorf("%w: batch at position %d has offset %d, expected at least %d", ErrCorruptBatch, pos, h.BaseOffset, nextOffset)
		}
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrUnsupportedMagic) {
				return 0, 0, err // an I/O error, not bad data: do not cut
			}
			l.logger.Warn("cutting log at first bad batch", "segment", filepath.Base(s.logPath()), "position", pos, "err", err)
			s.size.Store(pos)
			return pos, nextOffset, nil
		}
		l.recovery.BatchesScanned++
		s.indexBatchLocked(h, pos, l.cfg.IndexIntervalBytes, 0)
		if err := l.epochs.assignScanned(h.LeaderEpoch, h.BaseOffset); err != nil {
			return 0, 0, err
		}
		nextOffset = h.NextOffset()
	}
	s.firstAppendMs = -1
	s.size.Store(size)
	return size, nextOffset, nil
}

// cutTail truncates segment i at pos and deletes every later segment.
func (l *Log) cutTail(i int, pos int64, sizes []int64) error {
	segs := *l.segments.Load()
	l.recovery.TruncatedBytes += sizes[i] - pos
	if err := segs[i].truncateTo(pos); err != nil {
		return err
	}
	for j := i + 1; j < len(segs); j++ {
		l.recovery.TruncatedBytes += sizes[j]
		if err := segs[j].remove(); err != nil {
			return err
		}
	}
	kept := segs[: i+1 : i+1]
	l.segments.Store(&kept)
	return nil
}

// setActiveRollClock starts the segment.ms clock of a reopened active segment
// at its first batch's timestamp (as Kafka does), never in the future.
func (l *Log) setActiveRollClock(active *segment) {
	if active.size.Load() == 0 {
		active.firstAppendMs = -1
		return
	}
	nowMs := l.opts.Now().UnixMilli()
	active.firstAppendMs = nowMs
	buf := make([]byte, BatchHeaderSize)
	if _, err := active.file.ReadAt(buf, 0); err == nil {
		if h, err := ParseBatchHeader(buf); err == nil && h.MaxTimestamp >= 0 {
			active.firstAppendMs = min(h.MaxTimestamp, nowMs)
		}
	}
}

// finishLoadLocked brings the epoch cache and producer state in line with the
// recovered log and writes the checkpoint.
func (l *Log) finishLoadLocked(recoveryPoint int64) error {
	leo, logStart := l.leo.Load(), l.logStartOffset.Load()
	assign := int32(-1)
	if l.opts.AssignLeaderEpoch && (!l.opts.AssignOnlyIfEmpty || (leo == 0 && logStart == 0)) {
		assign = l.opts.LeaderEpoch
	}
	if err := l.epochs.recover(leo, logStart, assign); err != nil {
		return err
	}
	if err := l.reloadProducerStateLocked(); err != nil {
		return err
	}
	if err := l.setRecoveryPointLocked(recoveryPoint); err != nil {
		return err
	}
	// Recovery is done with the sealed segments' indexes: they come back
	// from their files when a read needs them.
	l.evictIndexesLocked(true)
	return nil
}

// reloadProducerStateLocked rebuilds idempotent-producer state as of the log
// end: the newest snapshot at or below it, then the batches after it.
func (l *Log) reloadProducerStateLocked() error {
	leo := l.leo.Load()
	if err := l.producers.deleteSnapshotsAfter(leo); err != nil {
		return err
	}
	now := l.opts.Now()
	from, ok, err := l.producers.loadLatestSnapshot(leo, now)
	if err != nil {
		return err
	}
	if !ok || from < l.logStartOffset.Load() {
		l.producers.clear()
		from = l.logStartOffset.Load()
	}
	return l.walkHeadersLocked(from, leo, func(h BatchHeader) {
		l.producers.replay(h.producerBatch(), now)
	})
}

// walkHeadersLocked calls fn with the header of every batch holding offsets
// in [from, to).
func (l *Log) walkHeadersLocked(from, to int64, fn func(BatchHeader)) error {
	if from >= to {
		return nil
	}
	segs := *l.segments.Load()
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].baseOffset <= from {
			continue
		}
		if s.baseOffset >= to {
			break
		}
		pos := int64(0)
		if e, ok := s.index.floor(func(e offsetEntry) bool { return s.baseOffset+int64(e.relOffset) <= from }); ok {
			pos = int64(e.position)
		}
		sc := newScanner(s.file.File, pos, s.size.Load(), nil)
		for {
			_, _, h, err := sc.nextBatch()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("storage: walk %s: %w", filepath.Base(s.logPath()), err)
			}
			if h.BaseOffset >= to {
				break
			}
			if h.LastOffset() >= from {
				fn(h)
			}
		}
	}
	return nil
}
