package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errCorruptSnapshot marks a producer snapshot file that fails to decode
// (short, bad CRC, unknown version, impossible values). It never leaves the
// package: loadLatestSnapshot deletes such a file and falls back to an older one.
var errCorruptSnapshot = errors.New("storage: corrupt producer state snapshot")

// maxRetainedBatches is how many recent batches per producer are kept for
// duplicate detection: Kafka's NUM_BATCHES_TO_RETAIN, matching the at most
// 5 in-flight requests an idempotent client allows.
const maxRetainedBatches = 5

// producerBatch is what producer state needs to know of one batch (read from
// the RecordBatch v2 header).
type producerBatch struct {
	producerID      int64 // -1: not idempotent, state ignores it
	producerEpoch   int16
	baseSequence    int32
	lastOffsetDelta int32 // records - 1
	baseOffset      int64 // offset assigned by the log (valid in stage/replay, not in check)
	maxTimestamp    int64
}

// lastSequence is the sequence of the batch's last record. Sequences wrap from
// MaxInt32 to 0 (Kafka's DefaultRecordBatch.incrementSequence).
func (b producerBatch) lastSequence() int32 { return addSequence(b.baseSequence, b.lastOffsetDelta) }

func addSequence(seq, delta int32) int32 {
	return int32((int64(seq) + int64(delta)) % (math.MaxInt32 + 1))
}

// duplicateBatch describes the original append of a batch that was sent again;
// the produce response reports these instead of writing the batch twice.
type duplicateBatch struct{ firstOffset, lastOffset, maxTimestamp int64 }

// batchMetadata is one retained batch of a producer.
type batchMetadata struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	maxTimestamp            int64
}

// producerEntry is the state of one producer id. It is a value type (fixed
// array, no pointers) so that staging a copy costs no allocation.
type producerEntry struct {
	epoch    int16
	n        int // batches[:n] are retained, oldest first; n >= 1 for every stored entry
	batches  [maxRetainedBatches]batchMetadata
	lastSeen int64 // unix ms of the last append, for expiry
}

func (e *producerEntry) last() batchMetadata { return e.batches[e.n-1] }

// apply records b as the newest batch. A different epoch starts a new window:
// sequences restart at 0 with every epoch, so older batches can no longer match.
func (e *producerEntry) apply(b producerBatch, now time.Time) {
	if b.producerEpoch != e.epoch {
		e.epoch, e.n = b.producerEpoch, 0
	}
	if e.n == maxRetainedBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = batchMetadata{
		firstSeq:     b.baseSequence,
		lastSeq:      b.lastSequence(),
		firstOffset:  b.baseOffset,
		lastOffset:   b.baseOffset + int64(b.lastOffsetDelta),
		maxTimestamp: b.maxTimestamp,
	}
	e.n++
	e.lastSeen = now.UnixMilli()
}

// producerStates is the idempotent-producer state of one partition: per
// producer id its epoch and last few batches, plus the snapshot files in the
// partition directory that let a restart skip replaying the whole log.
//
// It is not safe for concurrent use: the Log calls every method with its
// single-writer append lock held.
type producerStates struct {
	dir        string
	fs         FileSystem
	expiration time.Duration // producer.id.expiration.ms; <= 0 never expires
	logger     *slog.Logger
	producers  map[int64]producerEntry
}

// newProducerStates returns empty state for the partition directory dir.
// It touches no files; call loadLatestSnapshot to recover.
func newProducerStates(dir string, expiration time.Duration, logger *slog.Logger) *producerStates {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &producerStates{dir: dir, fs: osFS{}, expiration: expiration, logger: logger, producers: make(map[int64]producerEntry)}
}

// producerAppend is the staging view of one append request: batches are
// checked and staged one by one, and reach the committed state only through
// commit, so a request that fails half-way leaves no trace.
type producerAppend struct {
	p      *producerStates
	staged []stagedProducer // a linear list: a request rarely carries more than one producer
}

type stagedProducer struct {
	pid   int64
	entry producerEntry
}

// begin starts the staging view of one append.
func (p *producerStates) begin() *producerAppend { return &producerAppend{p: p} }

// lookup returns pid's state as this append sees it: staged, else committed.
func (a *producerAppend) lookup(pid int64) (producerEntry, bool) {
	if i := a.stagedIndex(pid); i >= 0 {
		return a.staged[i].entry, true
	}
	e, ok := a.p.producers[pid]
	return e, ok
}

func (a *producerAppend) stagedIndex(pid int64) int {
	return slices.IndexFunc(a.staged, func(s stagedProducer) bool { return s.pid == pid })
}

// check validates b against the committed state plus the batches already
// staged in this append, in Kafka's order: duplicate, epoch, sequence.
//
// It returns (dup, nil) for an exact duplicate of a retained batch (same
// epoch, same first and last sequence); the caller writes nothing for it and
// answers with dup's offsets. It returns an error wrapping
// ErrInvalidProducerEpoch for an epoch older than the current one, and one
// wrapping ErrOutOfOrderSequence for a new epoch not starting at sequence 0 or
// a same-epoch sequence that does not follow the last one. An unknown
// producer id (new, expired or removed by retention) is accepted at any
// sequence, as current Kafka does; producerID < 0 is always accepted.
func (a *producerAppend) check(b producerBatch) (*duplicateBatch, error) {
	if b.producerID < 0 {
		return nil, nil
	}
	e, ok := a.lookup(b.producerID)
	if !ok {
		return nil, nil
	}
	if b.producerEpoch == e.epoch {
		lastSeq := b.lastSequence()
		for _, m := range e.batches[:e.n] {
			if m.firstSeq == b.baseSequence && m.lastSeq == lastSeq {
				return &duplicateBatch{firstOffset: m.firstOffset, lastOffset: m.lastOffset, maxTimestamp: m.maxTimestamp}, nil
			}
		}
	}
	switch {
	case b.producerEpoch < e.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than current epoch %d",
			ErrInvalidProducerEpoch, b.producerID, b.producerEpoch, e.epoch)
	case b.producerEpoch > e.epoch:
		if b.baseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, got %d",
				ErrOutOfOrderSequence, b.producerID, b.producerEpoch, b.baseSequence)
		}
	default:
		if want := addSequence(e.last().lastSeq, 1); b.baseSequence != want {
			return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d",
				ErrOutOfOrderSequence, b.producerID, b.producerEpoch, b.baseSequence, want)
		}
	}
	return nil, nil
}

// stage records b, with its baseOffset assigned, so later batches of the same
// append are checked against it. Call it only for batches check accepted and
// did not report as duplicates.
func (a *producerAppend) stage(b producerBatch, now time.Time) {
	if b.producerID < 0 {
		return
	}
	i := a.stagedIndex(b.producerID)
	if i < 0 {
		// Copy on first touch; a missing producer starts from the zero entry,
		// which apply resets to b's epoch.
		a.staged = append(a.staged, stagedProducer{pid: b.producerID, entry: a.p.producers[b.producerID]})
		i = len(a.staged) - 1
	}
	a.staged[i].entry.apply(b, now)
}

// commit folds the staged batches into the committed state. The Log calls it
// only after the write succeeded; committing twice is harmless.
func (a *producerAppend) commit() {
	for _, s := range a.staged {
		a.p.producers[s.pid] = s.entry
	}
	a.staged = nil
}

// replay applies a batch read from the log during recovery or after a
// truncation reload, without validation: recovery and followers trust the
// log. An epoch change resets the producer's window. now becomes the
// producer's last-seen time for expiry.
func (p *producerStates) replay(b producerBatch, now time.Time) {
	if b.producerID < 0 {
		return
	}
	e := p.producers[b.producerID]
	e.apply(b, now)
	p.producers[b.producerID] = e
}

// producer reports the committed epoch and last sequence of pid.
func (p *producerStates) producer(pid int64) (epoch int16, lastSeq int32, ok bool) {
	e, ok := p.producers[pid]
	if !ok {
		return 0, 0, false
	}
	return e.epoch, e.last().lastSeq, true
}

// len is the number of producers with state.
func (p *producerStates) len() int { return len(p.producers) }

// clear drops all producer state (not the snapshot files). An open
// producerAppend must not be committed afterwards.
func (p *producerStates) clear() { clear(p.producers) }

// expire drops producers idle for longer than the expiration, as Kafka does
// with producer.id.expiration.ms. Their next batch is then accepted at any
// sequence.
func (p *producerStates) expire(now time.Time) {
	if p.expiration <= 0 {
		return
	}
	cutoff := now.Add(-p.expiration).UnixMilli()
	for pid, e := range p.producers {
		if e.lastSeen < cutoff {
			delete(p.producers, pid)
		}
	}
}

// Snapshot files are named <20-digit zero-padded offset>.snapshot, like
// Kafka's, but the content is our own format (big-endian):
//
//	version      int16  = 1
//	crc          uint32 CRC-32C (Castagnoli) of every byte after this field
//	count        int32  number of producers
//	count × {
//	    producerID   int64
//	    epoch        int16
//	    lastSeen     int64  unix ms
//	    n            int8   retained batches, 1..5, oldest first
//	    n × { firstSeq int32, lastSeq int32, firstOffset int64, lastOffset int64, maxTimestamp int64 }
//	}
//
// Unlike Kafka, all retained batches are stored, not only the last one, so
// that a retry of any of the last 5 batches is still recognized as a
// duplicate after a restart.
const (
	snapshotVersion     = 1
	snapshotSuffix      = ".snapshot"
	snapshotHeaderSize  = 2 + 4 + 4
	snapshotEntrySize   = 8 + 2 + 8 + 1
	snapshotBatchSize   = 4 + 4 + 8 + 8 + 8
	snapshotOffsetWidth = 20
)

var snapshotCRCTable = crc32.MakeTable(crc32.Castagnoli)

func (p *producerStates) snapshotPath(offset int64) string {
	return filepath.Join(p.dir, fmt.Sprintf("%020d%s", offset, snapshotSuffix))
}

// takeSnapshot durably writes the state of all producers as of log offset
// offset (the log end offset at that moment). It is a no-op if a snapshot for
// that offset exists: the state at one offset of one log is always the same.
func (p *producerStates) takeSnapshot(offset int64, durable bool) error {
	path := p.snapshotPath(offset)
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: producer snapshot %s: %w", path, err)
	}
	if err := writeFileAtomic(p.fs, path, encodeSnapshot(p.producers), durable); err != nil {
		return fmt.Errorf("storage: write producer snapshot at offset %d: %w", offset, err)
	}
	return nil
}

// loadLatestSnapshot replaces the state with the newest valid snapshot whose
// offset is <= maxOffset, then expires idle producers against now.
//
// Contract: it returns (offset, true, nil) after loading the snapshot taken at
// offset, from where the Log must replay batches to its end; (-1, false, nil)
// when there is no usable snapshot, leaving the state empty, so the Log
// replays from its start offset. Snapshots above maxOffset are left in place
// (deleteSnapshotsAfter removes them). A corrupt snapshot is deleted with a
// warning and the next older one tried; err is only for I/O failures.
// Leftover temp files of an interrupted takeSnapshot are removed.
func (p *producerStates) loadLatestSnapshot(maxOffset int64, now time.Time) (int64, bool, error) {
	p.clear()
	offsets, err := p.snapshotOffsets(true)
	if err != nil {
		return -1, false, err
	}
	for _, off := range slices.Backward(offsets) {
		if off > maxOffset {
			continue
		}
		path := p.snapshotPath(off)
		data, err := os.ReadFile(path)
		if err != nil {
			return -1, false, fmt.Errorf("storage: read producer snapshot: %w", err)
		}
		producers, err := decodeSnapshot(data)
		if err != nil {
			p.logger.Warn("deleting corrupt producer snapshot", "path", path, "err", err)
			if err := p.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return -1, false, fmt.Errorf("storage: delete corrupt producer snapshot: %w", err)
			}
			continue
		}
		p.producers = producers
		p.expire(now)
		return off, true, nil
	}
	return -1, false, nil
}

// latestSnapshotOffset is the offset of the newest snapshot file, valid or
// not. A directory that cannot be listed counts as none (and is logged): the
// next snapshot write or load reports the error.
func (p *producerStates) latestSnapshotOffset() (int64, bool) {
	offsets, err := p.snapshotOffsets(false)
	if err != nil {
		p.logger.Warn("listing producer snapshots", "dir", p.dir, "err", err)
		return -1, false
	}
	if len(offsets) == 0 {
		return -1, false
	}
	return offsets[len(offsets)-1], true
}

// deleteSnapshotsAfter removes snapshots above offset: after TruncateTo they
// describe records that no longer exist.
func (p *producerStates) deleteSnapshotsAfter(offset int64) error {
	return p.deleteSnapshots(func(off, _ int64) bool { return off > offset })
}

// deleteSnapshotsBefore removes snapshots below offset (the new log start or
// the oldest kept segment), always keeping the newest snapshot so a restart
// need not replay the whole log.
func (p *producerStates) deleteSnapshotsBefore(offset int64) error {
	return p.deleteSnapshots(func(off, newest int64) bool { return off < offset && off != newest })
}

func (p *producerStates) deleteSnapshots(drop func(off, newest int64) bool) error {
	offsets, err := p.snapshotOffsets(false)
	if err != nil || len(offsets) == 0 {
		return err
	}
	removed := false
	for _, off := range offsets {
		if !drop(off, offsets[len(offsets)-1]) {
			continue
		}
		if err := p.fs.Remove(p.snapshotPath(off)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: delete producer snapshot: %w", err)
		}
		removed = true
	}
	if removed {
		// A deleted snapshot above a truncation point must not come back
		// after a crash and be loaded once the log has grown past it again.
		return p.fs.SyncDir(p.dir)
	}
	return nil
}

// snapshotOffsets lists the snapshot files of the directory in ascending
// offset order; with removeTemp it also deletes leftover temp files.
func (p *producerStates) snapshotOffsets(removeTemp bool) ([]int64, error) {
	dirEntries, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("storage: list producer snapshots: %w", err)
	}
	var offsets []int64
	for _, de := range dirEntries {
		name := de.Name()
		if removeTemp && strings.HasSuffix(name, snapshotSuffix+tempFileSuffix) {
			if _, ok := parseSnapshotName(strings.TrimSuffix(name, tempFileSuffix)); ok {
				if err := p.fs.Remove(filepath.Join(p.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("storage: delete temp producer snapshot: %w", err)
				}
			}
			continue
		}
		if off, ok := parseSnapshotName(name); ok {
			offsets = append(offsets, off)
		}
	}
	slices.Sort(offsets)
	return offsets, nil
}

// parseSnapshotName accepts exactly <20 digits>.snapshot; the partition
// directory also holds segments, indexes and checkpoints.
func parseSnapshotName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, snapshotSuffix)
	if !ok || len(digits) != snapshotOffsetWidth || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	off, err := strconv.ParseInt(digits, 10, 64)
	return off, err == nil
}

// encodeSnapshot serializes producers in ascending pid order, so equal state
// gives equal bytes.
func encodeSnapshot(producers map[int64]producerEntry) []byte {
	pids := slices.Sorted(maps.Keys(producers))
	size := snapshotHeaderSize
	for _, pid := range pids {
		size += snapshotEntrySize + producers[pid].n*snapshotBatchSize
	}
	be := binary.BigEndian
	buf := make([]byte, snapshotHeaderSize, size)
	be.PutUint16(buf[0:], snapshotVersion)
	be.PutUint32(buf[6:], uint32(len(pids)))
	for _, pid := range pids {
		e := producers[pid]
		buf = be.AppendUint64(buf, uint64(pid))
		buf = be.AppendUint16(buf, uint16(e.epoch))
		buf = be.AppendUint64(buf, uint64(e.lastSeen))
		buf = append(buf, byte(e.n))
		for _, m := range e.batches[:e.n] {
			buf = be.AppendUint32(buf, uint32(m.firstSeq))
			buf = be.AppendUint32(buf, uint32(m.lastSeq))
			buf = be.AppendUint64(buf, uint64(m.firstOffset))
			buf = be.AppendUint64(buf, uint64(m.lastOffset))
			buf = be.AppendUint64(buf, uint64(m.maxTimestamp))
		}
	}
	be.PutUint32(buf[2:], crc32.Checksum(buf[6:], snapshotCRCTable))
	return buf
}

// decodeSnapshot parses a snapshot file; every failure wraps errCorruptSnapshot.
func decodeSnapshot(data []byte) (map[int64]producerEntry, error) {
	be := binary.BigEndian
	if len(data) < snapshotHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", errCorruptSnapshot, len(data))
	}
	if v := int16(be.Uint16(data)); v != snapshotVersion {
		return nil, fmt.Errorf("%w: unknown version %d", errCorruptSnapshot, v)
	}
	if want, got := be.Uint32(data[2:]), crc32.Checksum(data[6:], snapshotCRCTable); want != got {
		return nil, fmt.Errorf("%w: crc %#08x, computed %#08x", errCorruptSnapshot, want, got)
	}
	count := int32(be.Uint32(data[6:]))
	rest := data[snapshotHeaderSize:]
	// Bound the count by the bytes present before allocating for it.
	if count < 0 || int64(count)*(snapshotEntrySize+snapshotBatchSize) > int64(len(rest)) {
		return nil, fmt.Errorf("%w: %d producers do not fit in %d bytes", errCorruptSnapshot, count, len(rest))
	}
	producers := make(map[int64]producerEntry, count)
	for range count {
		if len(rest) < snapshotEntrySize {
			return nil, fmt.Errorf("%w: truncated producer entry", errCorruptSnapshot)
		}
		pid := int64(be.Uint64(rest))
		e := producerEntry{epoch: int16(be.Uint16(rest[8:])), lastSeen: int64(be.Uint64(rest[10:])), n: int(int8(rest[18]))}
		rest = rest[snapshotEntrySize:]
		if pid < 0 || e.n < 1 || e.n > maxRetainedBatches || len(rest) < e.n*snapshotBatchSize {
			return nil, fmt.Errorf("%w: producer %d with %d batches in %d bytes", errCorruptSnapshot, pid, e.n, len(rest))
		}
		if _, dup := producers[pid]; dup {
			return nil, fmt.Errorf("%w: producer %d twice", errCorruptSnapshot, pid)
		}
		for i := range e.n {
			e.batches[i] = batchMetadata{
				firstSeq:     int32(be.Uint32(rest)),
				lastSeq:      int32(be.Uint32(rest[4:])),
				firstOffset:  int64(be.Uint64(rest[8:])),
				lastOffset:   int64(be.Uint64(rest[16:])),
				maxTimestamp: int64(be.Uint64(rest[24:])),
			}
			rest = rest[snapshotBatchSize:]
		}
		producers[pid] = e
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorruptSnapshot, len(rest))
	}
	return producers, nil
}
