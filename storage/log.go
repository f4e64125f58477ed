// Package storage keeps partition logs: segment files of Kafka RecordBatch v2
// bytes exactly as producers sent them, sparse offset and time indexes,
// recovery after a crash, retention, the leader-epoch cache and idempotent
// producer state. Reads hand back file regions for sendfile.
//
// Each Log has one writer at a time (its methods that change the log take an
// internal lock) and any number of concurrent readers, which never see a
// partial batch: a batch becomes visible only after its single write returned.
package storage

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Log is one partition's log in its own directory.
type Log struct {
	dir    string
	opts   Options
	logger *slog.Logger

	// Readers load these without the lock.
	segments       atomic.Pointer[[]*segment] // immutable, sorted by base offset; the last one is active
	leo            atomic.Int64               // log end offset: the next offset to assign
	logStartOffset atomic.Int64
	// truncations is a sequence count around TruncateTo, odd while files
	// are being cut in place and the new end published, so a lock-free
	// reader whose read failed can tell a stale view from corruption.
	truncations atomic.Uint64

	epochs    *epochCache     // locks itself
	producers *producerStates // guarded by mu

	startMu           sync.Mutex     // serializes DeleteRecordsBefore, which fsyncs outside mu
	maxMessageBytes   atomic.Int64   // cfg.MaxMessageBytes, read by Validate without mu
	mu                sync.Mutex     // the writer lock: every change to the log
	cfg               Config         // guarded by mu
	recoveryPoint     int64          // guarded by mu
	checkpointOnDisk  *logCheckpoint // guarded by mu; what log.checkpoint holds, nil when unknown
	unflushedMessages int64          // guarded by mu
	oldestUnflushedMs int64          // guarded by mu; -1 when everything is flushed
	failed            error          // guarded by mu; set when the files are in an unknown state
	offline           atomic.Bool    // failed != nil, for readers without mu
	closed            bool           // guarded by mu

	stopFlusher chan struct{}
	flusherDone chan struct{}
	rollFlush   chan struct{} // wakes the flusher after a roll; capacity 1

	recovery RecoveryStats // set by Open
}

// AppendResult describes what an append wrote, or, for an idempotent
// duplicate, what the original append wrote.
type AppendResult struct {
	FirstOffset    int64
	LastOffset     int64
	LogAppendTime  int64 // broker timestamp with LogAppendTime, else -1
	LogStartOffset int64
	Duplicate      bool // nothing was written: the batch was already in the log
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// LogStartOffset is the first offset still readable.
func (l *Log) LogStartOffset() int64 { return l.logStartOffset.Load() }

// Size is the number of bytes in all segments.
func (l *Log) Size() int64 { return segmentsSize(*l.segments.Load()) }

// SegmentCount is the number of segment files.
func (l *Log) SegmentCount() int { return len(*l.segments.Load()) }

// Recovery reports what Open had to do.
func (l *Log) Recovery() RecoveryStats { return l.recovery }

// SetConfig replaces the topic settings; they apply from the next append.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	l.maxMessageBytes.Store(int64(cfg.MaxMessageBytes))
	l.producers.expiration = cfg.ProducerIDExpiration
	return nil
}

// Validated is a request's batches checked by Validate (framing, magic,
// CRC-32C, record counts, size), ready for AppendValidated.
type Validated struct {
	buf      []byte
	headers  []BatchHeader
	maxBytes int // the max.message.bytes checked against
}

// Validate checks a producer's batches without taking the writer lock: the
// CRC is the costly part of an append and has no side effects, so appends
// to the same partition (and to the others) do not wait for it.
func (l *Log) Validate(buf []byte) (Validated, error) {
	maxBytes := int(l.maxMessageBytes.Load())
	headers, err := ValidateBatches(buf, maxBytes)
	if err != nil {
		return Validated{}, err
	}
	return Validated{buf: buf, headers: headers, maxBytes: maxBytes}, nil
}

func (l *Log) activeLocked() *segment {
	segs := *l.segments.Load()
	return segs[len(segs)-1]
}

// failLocked takes the log offline with err, the first cause only, and
// tells Options.OnOffline once. It returns err for the caller to pass on.
func (l *Log) failLocked(err error) error {
	if l.failed != nil {
		return err
	}
	l.failed = err
	l.offline.Store(true)
	if l.opts.OnOffline != nil {
		l.opts.OnOffline(err)
	}
	return err
}

// Offline reports whether a write error left the log's files in a state
// only recovery on the next Open can vouch for: every write is refused
// with ErrLogFailed until then.
func (l *Log) Offline() bool { return l.offline.Load() }

func (l *Log) usableLocked() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %v", ErrLogFailed, l.failed)
	}
	return nil
}

// Append is the leader's write path. buf holds one or more RecordBatch v2
// batches as a producer sent them; Append validates all of them, assigns
// offsets from the log end by rewriting baseOffset in place, stamps
// leaderEpoch (and LogAppendTime when configured), checks idempotent
// sequences, and writes the whole buffer with one write. Either every batch
// is written or none is. Append modifies buf in place, even when it fails.
//
// A single batch that duplicates one of its producer's last five is not
// written; the result carries the original offsets and Duplicate=true.
func (l *Log) Append(buf []byte, leaderEpoch int32) (AppendResult, error) {
	v, err := l.Validate(buf)
	if err != nil {
		return AppendResult{}, err
	}
	return l.AppendValidated(v, leaderEpoch)
}

// AppendValidated is Append for batches Validate checked.
func (l *Log) AppendValidated(v Validated, leaderEpoch int32) (AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return AppendResult{}, err
	}
	buf, headers := v.buf, v.headers
	if v.maxBytes != l.cfg.MaxMessageBytes {
		// max.message.bytes changed since Validate: check again.
		var err error
		if headers, err = ValidateBatches(buf, l.cfg.MaxMessageBytes); err != nil {
			return AppendResult{}, err
		}
	}
	if len(headers) == 0 {
		return AppendResult{}, invariantBroken("append of a validated request without batches")
	}
	now := l.opts.Now()
	nowMs := now.UnixMilli()
	logAppendTime := int64(-1)
	if l.cfg.TimestampType == LogAppendTime {
		logAppendTime = nowMs
	}

	pending := l.producers.begin()
	next, pos := l.leo.Load(), 0
	for i := range headers {
		h := &headers[i]
		dup, err := pending.check(h.producerBatch())
		if err != nil {
			return AppendResult{}, &BatchError{Index: i, Offset: pos, Err: err}
		}
		if dup != nil {
			if len(headers) == 1 {
				if logAppendTime >= 0 {
					logAppendTime = dup.maxTimestamp // the time the original append got
				}
				return AppendResult{FirstOffset: dup.firstOffset, LastOffset: dup.lastOffset,
					LogAppendTime: logAppendTime, LogStartOffset: l.logStartOffset.Load(), Duplicate: true}, nil
			}
			return AppendResult{}, &BatchError{Index: i, Offset: pos,
				Err: fmt.Errorf("%w: duplicate batch inside a multi-batch append", ErrOutOfOrderSequence)}
		}
		batch := buf[pos : pos+int(h.Length)]
		stampBatch(batch, next, leaderEpoch)
		h.BaseOffset, h.LeaderEpoch = next, leaderEpoch
		if logAppendTime >= 0 {
			stampLogAppendTime(batch, nowMs)
			h.MaxTimestamp = nowMs
		}
		pending.stage(h.producerBatch(), now)
		next = h.NextOffset()
		pos += int(h.Length)
	}
	flushErr, err := l.writeLocked(buf, headers, now)
	if err != nil {
		return AppendResult{}, err
	}
	pending.commit()
	if err := l.epochs.assign(leaderEpoch, headers[0].BaseOffset); err != nil {
		l.logger.Warn("leader epoch checkpoint not written", "epoch", leaderEpoch, "err", err)
	}
	// With flushErr the batches are in the log (and deduplicate a retry)
	// but were not made durable as flush.messages/flush.ms asked.
	return AppendResult{FirstOffset: headers[0].BaseOffset, LastOffset: next - 1,
		LogAppendTime: logAppendTime, LogStartOffset: l.logStartOffset.Load()}, flushErr
}

// AppendReplicated is the follower's write path: buf holds batches fetched
// from the leader, already stamped. They are checked (framing, CRC) and must
// continue the log exactly (the first base offset equals the log end offset);
// they are written verbatim with one write, and the leader-epoch cache and
// producer state follow them without sequence validation.
func (l *Log) AppendReplicated(buf []byte) (AppendResult, error) {
	// Framing and CRCs are checked before the writer lock (no side effects).
	headers, err := ValidateBatches(buf, 0)
	if err != nil {
		return AppendResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return AppendResult{}, err
	}
	next, pos := l.leo.Load(), 0
	latestEpoch := int32(-1)
	if latest, ok := l.epochs.latest(); ok {
		latestEpoch = latest.epoch
	}
	for i, h := range headers {
		if h.BaseOffset != next {
			return AppendResult{}, &BatchError{Index: i, Offset: pos,
				Err: fmt.Errorf("%w: batch starts at %d, log end is %d", ErrNonMonotonicOffset, h.BaseOffset, next)}
		}
		// A batch of an older epoch after a newer one means the logs
		// diverged: appending it would make the epoch cache lie.
		if h.LeaderEpoch < latestEpoch {
			return AppendResult{}, &BatchError{Index: i, Offset: pos,
				Err: fmt.Errorf("%w: batch at %d has epoch %d, log has %d", ErrEpochBackwards, h.BaseOffset, h.LeaderEpoch, latestEpoch)}
		}
		latestEpoch = h.LeaderEpoch
		next = h.NextOffset()
		pos += int(h.Length)
	}
	now := l.opts.Now()
	// The leader rolls its segment before a produce's batch that does not
	// fit (clients send one batch per partition per request), but a fetch
	// brings many batches at once: written in one piece they would roll
	// before the whole chunk, and the follower's segments would start at
	// other offsets than the leader's. So the chunk is written in runs cut
	// where the leader's rule rolls, each run with one write. A run that
	// fails leaves the runs before it in the log; the fetcher goes on from
	// the log end.
	for start, at := 0, 0; start < len(headers); {
		end, n := l.replicatedRunLocked(headers[start:])
		end += start
		run := headers[start:end]
		flushErr, err := l.writeLocked(buf[at:at+n], run, now)
		if err != nil {
			return AppendResult{}, err
		}
		if flushErr != nil {
			// The log is offline now; the fetcher's next append says so.
			l.logger.Warn("replicated batches appended but not fsynced", "err", flushErr)
		}
		for _, h := range run {
			l.producers.replay(h.producerBatch(), now)
			if latest, ok := l.epochs.latest(); !ok || h.LeaderEpoch > latest.epoch {
				if err := l.epochs.assign(h.LeaderEpoch, h.BaseOffset); err != nil {
					l.logger.Warn("leader epoch checkpoint not written", "epoch", h.LeaderEpoch, "err", err)
				}
			}
		}
		start, at = end, at+n
	}
	return AppendResult{FirstOffset: headers[0].BaseOffset, LastOffset: next - 1,
		LogAppendTime: -1, LogStartOffset: l.logStartOffset.Load()}, nil
}

// replicatedRunLocked returns how many of headers (at least one) go into the
// active segment in one write, and their bytes: the first batch (before
// which writeLocked rolls as for any append), then each next batch that the
// size and offset limits let into the same segment, as the leader appending
// them one by one would have.
func (l *Log) replicatedRunLocked(headers []BatchHeader) (count, n int) {
	seg := l.activeLocked()
	size := seg.size.Load()
	first := headers[0]
	if l.wouldRollLocked(seg, size, int64(first.Length), first.NextOffset()) {
		size = 0 // writeLocked rolls before the first batch
	}
	base := seg.baseOffset
	if size == 0 {
		base = first.BaseOffset
	}
	size += int64(first.Length)
	count, n = 1, int(first.Length)
	for _, h := range headers[1:] {
		if size+int64(h.Length) > l.cfg.SegmentBytes || size+int64(h.Length) > math.MaxUint32 ||
			h.NextOffset()-base > math.MaxUint32 {
			break
		}
		size += int64(h.Length)
		count, n = count+1, n+int(h.Length)
	}
	return count, n
}

// wouldRollLocked reports whether writing n bytes ending before nextOffset
// to seg, holding size bytes, breaks a size, index or offset limit.
func (l *Log) wouldRollLocked(seg *segment, size, n, nextOffset int64) bool {
	return size > 0 && (size+n > l.cfg.SegmentBytes ||
		(seg.index.len()+1)*offsetEntrySize > l.cfg.SegmentIndexBytes ||
		nextOffset-seg.baseOffset > math.MaxUint32 ||
		size+n > math.MaxUint32)
}

// writeLocked rolls if needed, writes buf at the end of the active segment,
// indexes its batches and publishes the new end: size first, then the log
// end offset, so a reader that sees an offset also sees its bytes. An error
// means nothing was published; once the end is published the batches are in
// the log, and a failure of the flush that may follow is not the append's
// (see afterWriteLocked).
func (l *Log) writeLocked(buf []byte, headers []BatchHeader, now time.Time) (flushErr, err error) {
	last := headers[len(headers)-1]
	if headers[0].BaseOffset != l.leo.Load() || last.NextOffset() <= l.leo.Load() {
		return nil, l.failLocked(invariantBroken("write of offsets [%d, %d) at log end %d", headers[0].BaseOffset, last.NextOffset(), l.leo.Load()))
	}
	if err := l.maybeRollLocked(len(buf), last.NextOffset(), now); err != nil {
		return nil, err
	}
	seg := l.activeLocked()
	cleaned, err := seg.writeAt(buf)
	if err != nil {
		if !cleaned {
			l.failLocked(err)
		}
		return nil, err
	}
	pos := seg.size.Load()
	nowMs := now.UnixMilli()
	for _, h := range headers {
		seg.indexBatchLocked(h, pos, l.cfg.IndexIntervalBytes, nowMs)
		pos += int64(h.Length)
	}
	seg.size.Store(pos)
	l.leo.Store(last.NextOffset())

	var records int64
	for _, h := range headers {
		records += int64(h.LastOffsetDelta) + 1
	}
	return l.afterWriteLocked(records, nowMs), nil
}

// maybeRollLocked starts a new active segment when the next write of n bytes
// ending before nextOffset would break one of the segment limits.
func (l *Log) maybeRollLocked(n int, nextOffset int64, now time.Time) error {
	seg := l.activeLocked()
	size := seg.size.Load()
	if size == 0 {
		return nil
	}
	full := l.wouldRollLocked(seg, size, int64(n), nextOffset)
	old := seg.firstAppendMs >= 0 && now.UnixMilli()-seg.firstAppendMs >= l.cfg.SegmentMs.Milliseconds()
	if !full && !old {
		return nil
	}
	return l.rollLocked()
}

// rollLocked seals the active segment (its indexes go to their files and the
// producer state is snapshotted at the new base) and opens a new one at the
// log end. The old segment's data is fsynced in the background by the
// flusher, which then advances the recovery point.
func (l *Log) rollLocked() error {
	old := l.activeLocked()
	leo := l.leo.Load()
	if err := old.persistIndexes(false); err != nil {
		return err
	}
	// Idle producers leave before the snapshot, so it does not carry every
	// producer ever seen.
	l.producers.expire(l.opts.Now())
	// Not fsynced: an fsync here would make ext4 commit its journal and
	// write back the whole dirty segment while producers wait (Kafka moved
	// this flush off the roll path for the same reason). A snapshot torn by
	// a machine crash fails its CRC and an older one is used.
	if err := l.producers.takeSnapshot(leo, false); err != nil {
		return err
	}
	seg, err := createSegment(l.opts.FS, l.dir, leo)
	if err != nil {
		return err
	}
	segs := append(append([]*segment(nil), *l.segments.Load()...), seg)
	l.segments.Store(&segs)
	l.logger.Debug("rolled segment", "base_offset", leo, "previous_size", old.size.Load())
	select {
	case l.rollFlush <- struct{}{}:
	default:
	}
	return nil
}

// Roll forces a new segment even if the active one has room (an empty active
// segment is kept as it is).
func (l *Log) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	if l.activeLocked().size.Load() == 0 {
		return nil
	}
	return l.rollLocked()
}

// afterWriteLocked applies flush.messages and flush.ms after a write whose
// batches are already published. The batches are in the log whatever the
// flush does: the caller commits them to producer state, so a retry is a
// duplicate, never a second copy. A failed fsync takes the log offline
// (flushLocked) and is returned, so the append that asked for durability is
// answered KAFKA_STORAGE_ERROR rather than acknowledged, as Kafka does (it
// too commits producer state before its flush and takes the log directory
// offline). A failed checkpoint write after a good fsync only leaves the
// recovery point behind (the next Open re-checks more); it is logged.
func (l *Log) afterWriteLocked(records, nowMs int64) error {
	l.unflushedMessages += records
	if l.oldestUnflushedMs < 0 {
		l.oldestUnflushedMs = nowMs
	}
	if (l.cfg.FlushMessages > 0 && l.unflushedMessages >= l.cfg.FlushMessages) ||
		(l.cfg.FlushInterval > 0 && nowMs-l.oldestUnflushedMs >= l.cfg.FlushInterval.Milliseconds()) {
		if err := l.flushLocked(); err != nil {
			l.logger.Error("flush after append failed", "leo", l.leo.Load(), "offline", l.failed != nil, "err", err)
			if l.failed != nil {
				return fmt.Errorf("%w: appended at %d, but its fsync failed: %v", ErrLogFailed, l.leo.Load(), err)
			}
		}
	}
	return nil
}

// Flush fsyncs every segment up to the log end and advances the recovery
// point.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	return l.flushLocked()
}

// flushLocked fsyncs up to the log end and moves the recovery point there. A
// failed fsync takes the log offline: the kernel may have dropped the dirty
// pages it could not write and marked them clean, so a later fsync would
// succeed over lost data (PostgreSQL's "fsyncgate") and must never be allowed
// to advance the recovery point past them. A failed checkpoint write after a
// good fsync is only returned: the data is durable, and a stale checkpoint on
// disk makes the next Open scan more, never less.
func (l *Log) flushLocked() error {
	leo := l.leo.Load()
	if err := l.syncSegmentsLocked(l.recoveryPoint, leo); err != nil {
		return l.failLocked(err)
	}
	l.unflushedMessages, l.oldestUnflushedMs = 0, -1
	return l.setRecoveryPointLocked(leo)
}

// syncSegmentsLocked fsyncs the segments that hold offsets in [from, to),
// and the index files of the sealed ones among them, so a recovery point at
// to can vouch for both.
func (l *Log) syncSegmentsLocked(from, to int64) error {
	segs := *l.segments.Load()
	sealed := false
	for i, s := range segs {
		end := l.leo.Load()
		if i+1 < len(segs) {
			end = segs[i+1].baseOffset
		}
		if end <= from || s.baseOffset >= to {
			continue
		}
		if err := l.opts.FS.Sync(s.file.File); err != nil {
			return fmt.Errorf("storage: fsync segment: %w", err)
		}
		if i+1 < len(segs) {
			if err := s.syncIndexFiles(); err != nil {
				return err
			}
			sealed = true
		}
	}
	if sealed {
		return l.opts.FS.SyncDir(l.dir)
	}
	return nil
}

// setRecoveryPointLocked moves the recovery point and writes log.checkpoint,
// unless the file already says exactly that (a reopen after an unclean stop
// keeps the recovery point it read: with thousands of partitions, rewriting
// each one's unchanged checkpoint was a good part of the restart).
func (l *Log) setRecoveryPointLocked(rp int64) error {
	l.recoveryPoint = rp
	c := logCheckpoint{logStartOffset: l.logStartOffset.Load(), recoveryPoint: rp}
	if l.checkpointOnDisk != nil && *l.checkpointOnDisk == c {
		return nil
	}
	l.checkpointOnDisk = nil
	if err := writeLogCheckpoint(l.opts.FS, l.dir, c); err != nil {
		return err
	}
	l.checkpointOnDisk = &c
	return nil
}

// producerExpiryCheckInterval is how often idle idempotent producers are
// looked for: Kafka's producer.id.expiration.check.interval.ms default.
const producerExpiryCheckInterval = 10 * time.Minute

// flusher is the Log's one background goroutine: after a roll it fsyncs the
// sealed segments and moves the recovery point to the active segment's base
// (what Kafka schedules as "flush-log" on roll), with flush.ms it flushes
// data that waited that long even when no new append arrives, and every
// producerExpiryCheckInterval it forgets producers idle for longer than
// producer.id.expiration.ms.
func (l *Log) flusher(interval time.Duration) {
	defer close(l.flusherDone)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	expiry := time.NewTicker(producerExpiryCheckInterval)
	defer expiry.Stop()
	for {
		select {
		case <-l.stopFlusher:
			return
		case <-l.rollFlush:
			l.flushSealed()
		case <-tick:
			l.flushIfDue()
		case <-expiry.C:
			l.expireProducers()
		}
	}
}

// expireProducers drops idempotent producers idle for longer than
// producer.id.expiration.ms, so their state does not grow with every
// producer ever seen. Their next batch is accepted at any sequence, as in
// Kafka.
func (l *Log) expireProducers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.producers.expire(l.opts.Now())
	}
}

// flushSealed fsyncs the segments before the active one. The fsync itself
// runs without the writer lock, on file references, so appends continue.
func (l *Log) flushSealed() {
	l.mu.Lock()
	if l.closed || l.failed != nil {
		l.mu.Unlock()
		return
	}
	segs := *l.segments.Load()
	target := segs[len(segs)-1].baseOffset
	from := l.recoveryPoint
	var sealed []*segment
	for i, s := range segs[:len(segs)-1] {
		if segs[i+1].baseOffset > from && s.file.acquire() {
			sealed = append(sealed, s)
		}
	}
	l.mu.Unlock()

	var err error
	for _, s := range sealed {
		if err == nil {
			if serr := l.opts.FS.Sync(s.file.File); serr != nil {
				err = fmt.Errorf("storage: fsync segment: %w", serr)
			}
		}
		if err == nil {
			err = s.syncIndexFiles()
		}
		s.file.release()
	}
	if err == nil && len(sealed) > 0 {
		err = l.opts.FS.SyncDir(l.dir)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		// As in flushLocked: a later fsync of these files could succeed over
		// pages the kernel dropped, so the log goes offline.
		if !l.closed {
			l.failLocked(err)
		}
		l.logger.Error("background flush of rolled segments failed; log offline", "err", err)
		return
	}
	if !l.closed && l.recoveryPoint < target && l.recoveryPoint == from {
		if err := l.setRecoveryPointLocked(target); err != nil {
			l.logger.Warn("log checkpoint not written", "err", err)
		}
	}
}

func (l *Log) flushIfDue() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failed != nil || l.oldestUnflushedMs < 0 || l.cfg.FlushInterval <= 0 {
		return
	}
	if l.opts.Now().UnixMilli()-l.oldestUnflushedMs >= l.cfg.FlushInterval.Milliseconds() {
		if err := l.flushLocked(); err != nil {
			l.logger.Warn("timed flush failed", "err", err)
		}
	}
}

// Close flushes the log, writes the indexes, producer snapshot and the
// clean-shutdown marker, and closes the files. Regions handed out earlier
// stay readable until released. Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stopFlusher)
	<-l.flusherDone

	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.failed == nil {
		err = l.shutdownCleanLocked()
	}
	for _, s := range *l.segments.Load() {
		s.close()
	}
	return err
}

func (l *Log) shutdownCleanLocked() error {
	leo := l.leo.Load()
	active := l.activeLocked()
	steps := []func() error{
		func() error { return l.syncSegmentsLocked(l.recoveryPoint, leo) },
		func() error { return active.persistIndexes(true) },
		func() error { return l.producers.takeSnapshot(leo, true) },
		func() error { return l.setRecoveryPointLocked(leo) },
		func() error {
			return writeCleanShutdown(l.opts.FS, l.dir, cleanShutdown{leo: leo, activeBase: active.baseOffset, activeSize: active.size.Load()})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("storage: clean shutdown of %s: %w", l.dir, err)
		}
	}
	return nil
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.Close()
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("storage: delete log %s: %w", l.dir, err)
	}
	return nil
}

// LatestEpoch is the newest leader epoch in the log's epoch cache.
func (l *Log) LatestEpoch() (epoch int32, startOffset int64, ok bool) {
	e, ok := l.epochs.latest()
	return e.epoch, e.startOffset, ok
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch ≤ the one
// asked for and the offset where it ended (the log end for the newest epoch),
// or (-1, -1) when the epoch is unknown.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return l.epochs.endOffsetFor(epoch, l.leo.Load())
}

// EpochForOffset is the leader epoch of the record at offset as the epoch
// cache knows it (-1 when unknown), which ListOffsets returns with an offset
// so that a consumer can detect truncation (KIP-320).
func (l *Log) EpochForOffset(offset int64) int32 { return l.epochs.epochFor(offset) }

// RestartAt empties the log and starts it again at offset, as a follower
// does when the leader's log start has moved past its log end (retention or
// DeleteRecords on the leader). The epoch cache and producer state start
// over.
func (l *Log) RestartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	return l.resetLocked(offset)
}

// AssignEpoch records that leaderEpoch starts at the current log end, as a
// new leader does when it takes over (before its first append).
func (l *Log) AssignEpoch(leaderEpoch int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epochs.assign(leaderEpoch, l.leo.Load())
}
