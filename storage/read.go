package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Region is a byte range of an open segment file holding whole batches, for
// the protocol layer to send with sendfile at an explicit offset (so many
// fetches can share one descriptor).
type Region struct {
	File     *os.File
	Position int64
	Size     int64
}

// ReadResult is the answer to Read. Its regions stay valid, even if
// retention deletes their segments meanwhile, until Release. If a follower
// truncation cuts a segment under an unreleased region, the file is shorter
// than the region and a sendfile of it comes up short: the sender must treat
// that as a failed response (as Kafka's FileRecords does).
type ReadResult struct {
	Regions        []Region
	FirstOffset    int64 // base offset of the first batch; may be below the offset asked for
	NextOffset     int64 // offset after the last batch returned
	Size           int64 // total bytes of all regions
	LogStartOffset int64
	LogEndOffset   int64
	files          []*sharedFile
}

// Release gives back the file references. It is safe to call twice.
func (r *ReadResult) Release() {
	for _, f := range r.files {
		f.release()
	}
	r.files = nil
}

// prefixScanBuffer is small: a read-path scan walks only a few batch headers
// past an index entry, and must not copy the data it is about to sendfile.
const prefixScanBuffer = 4 << 10

// Read returns file regions covering whole batches from the batch that holds
// offset, stopping before any batch that would pass upTo (the high watermark
// for consumers, the log end for followers) or make the total exceed
// maxBytes. The first batch is always returned whole, even when larger than
// maxBytes. Reading at or past min(upTo, log end) returns no regions; an
// offset below the log start or past the log end is ErrOffsetOutOfRange.
// Safe to call from any goroutine, concurrently with appends; it never
// returns a nil result without an error. After Close it returns ErrClosed.
func (l *Log) Read(offset int64, maxBytes int, upTo int64) (*ReadResult, error) {
	// Lock-free attempts can lose a race with retention or truncation, which
	// remove a segment between our loading the list and taking a reference
	// to its file. After a few lost races, read once under the writer lock:
	// there the list and the files agree, so the answer is final. Appends
	// wait for that one read, which is rare and short.
	for range lockFreeReadAttempts {
		if r, retry, err := l.read(offset, int64(maxBytes), upTo); !retry {
			return r, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("storage: read %s at offset %d: %w", l.dir, offset, ErrClosed)
	}
	r, retry, err := l.read(offset, int64(maxBytes), upTo)
	if retry {
		return nil, invariantBroken("read of %s at offset %d: the segment list names a removed segment under the writer lock", l.dir, offset)
	}
	return r, err
}

// errBatchOffsetMismatch: a batch in the file does not carry the offset that
// follows its predecessor. It never leaves the package.
var errBatchOffsetMismatch = errors.New("storage: batch offsets out of sequence")

// lockFreeReadAttempts bounds the retries of a read racing segment removal
// before it takes the writer lock.
const lockFreeReadAttempts = 3

func (l *Log) read(offset, maxBytes, upTo int64) (*ReadResult, bool, error) {
	truncations := l.truncations.Load()
	logStart := l.logStartOffset.Load()
	leo := l.leo.Load()
	segs := *l.segments.Load()
	r := &ReadResult{FirstOffset: offset, NextOffset: offset, LogStartOffset: logStart, LogEndOffset: leo}
	if offset < logStart || offset > leo {
		return nil, false, fmt.Errorf("%w: offset %d, log covers [%d, %d]", ErrOffsetOutOfRange, offset, logStart, leo)
	}
	limit := min(upTo, leo)
	if offset >= limit {
		return r, false, nil
	}
	i := segmentFor(segs, offset)
	if i < 0 {
		return nil, true, nil
	}
	for ; i < len(segs) && r.NextOffset < limit; i++ {
		s := segs[i]
		if !s.file.acquire() {
			r.Release()
			return nil, true, nil
		}
		r.files = append(r.files, s.file)
		start, end, first, next, err := s.regionFor(r.NextOffset, limit, maxBytes-r.Size, r.Size == 0)
		if err != nil {
			r.Release()
			if truncations%2 == 1 || l.truncations.Load() != truncations {
				// A truncation cut the file under this read (the size we
				// loaded is gone, or new batches took the old positions):
				// not corruption, just a stale view. Look again.
				return nil, true, nil
			}
			if errors.Is(err, errBatchOffsetMismatch) {
				return nil, false, invariantBroken("read %s at offset %d: %v", l.dir, r.NextOffset, err)
			}
			return nil, false, fmt.Errorf("storage: read %s at offset %d: %w", l.dir, r.NextOffset, err)
		}
		if end > start {
			if len(r.Regions) == 0 {
				r.FirstOffset = first
			}
			r.Regions = append(r.Regions, Region{File: s.file.File, Position: start, Size: end - start})
			r.Size += end - start
			r.NextOffset = next
		}
		if r.Size >= maxBytes || next < nextSegmentBase(segs, i, leo) {
			break // out of budget, or stopped inside this segment by a limit
		}
	}
	return r, false, nil
}

// segmentFor returns the index of the segment holding offset, or -1.
func segmentFor(segs []*segment, offset int64) int {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].baseOffset <= offset {
			return i
		}
	}
	return -1
}

func nextSegmentBase(segs []*segment, i int, leo int64) int64 {
	if i+1 < len(segs) {
		return segs[i+1].baseOffset
	}
	return leo
}

// regionFor finds, in this segment, the byte range of whole batches starting
// with the one that holds offset and ending before limit (an offset) and
// within budget bytes (unless first, when the first batch always fits).
func (s *segment) regionFor(offset, limit, budget int64, first bool) (start, end, firstOffset, next int64, err error) {
	size := s.size.Load()
	pos := int64(0)
	if e, ok := s.index.floor(func(e offsetEntry) bool { return s.baseOffset+int64(e.relOffset) <= offset }); ok {
		pos = int64(e.position)
	}
	sc := newScanner(s.file.File, pos, size, make([]byte, prefixScanBuffer))
	// Find the batch that holds offset.
	for {
		p, base, length, delta, err := sc.nextPrefix()
		if errors.Is(err, io.EOF) {
			return 0, 0, 0, offset, nil // offset lies past this segment's data
		}
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if base+int64(delta) >= offset {
			if base+int64(delta) >= limit {
				return 0, 0, 0, offset, nil // the batch holding offset is not below limit yet
			}
			start, end, firstOffset, next = p, p+int64(length), base, base+int64(delta)+1
			break
		}
	}
	if end-start > budget && !first {
		return 0, 0, 0, offset, nil
	}
	// Jump ahead with the index: an entry at (offset o, position q) means
	// every batch between end and q lies below o and ends at or before q.
	if e, ok := s.index.floor(func(e offsetEntry) bool {
		return int64(e.position) <= start+budget && s.baseOffset+int64(e.relOffset) <= limit
	}); ok && int64(e.position) > end {
		end, next = int64(e.position), s.baseOffset+int64(e.relOffset)
		sc = newScanner(s.file.File, end, size, sc.buf)
	}
	// Walk the few batches left, up to the budget and the limit.
	for {
		p, base, length, delta, err := sc.nextPrefix()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if base != next {
			// The caller decides: a bug, unless a truncation raced the read.
			return 0, 0, 0, 0, fmt.Errorf("%w: batch at position %d of %s has offset %d, expected %d", errBatchOffsetMismatch, p, s.logPath(), base, next)
		}
		if base+int64(delta) >= limit || p+int64(length)-start > budget {
			break
		}
		end, next = p+int64(length), base+int64(delta)+1
	}
	return start, end, firstOffset, next, nil
}

// ReadBatches is Read into memory, for internal readers such as the group
// coordinator: the bytes of whole batches from the one holding offset.
func (l *Log) ReadBatches(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	r, err := l.Read(offset, maxBytes, upTo)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	buf := make([]byte, r.Size)
	n := 0
	for _, reg := range r.Regions {
		m, err := reg.File.ReadAt(buf[n:n+int(reg.Size)], reg.Position)
		if err != nil {
			return nil, fmt.Errorf("storage: read batches of %s: %w", l.dir, err)
		}
		n += m
	}
	return buf, nil
}

// OffsetForTimestamp answers ListOffsets by timestamp: the first offset at or
// above the log start and below upTo whose record timestamp is at or after ts,
// and that record's timestamp. ok is false when there is none.
func (l *Log) OffsetForTimestamp(ts, upTo int64) (offset, timestamp int64, ok bool, err error) {
	logStart := l.logStartOffset.Load()
	segs := *l.segments.Load()
	for _, s := range segs {
		if s.maxTimestamp.Load() < ts {
			continue
		}
		if !s.file.acquire() {
			continue
		}
		offset, timestamp, ok, err = s.findTimestamp(ts, logStart, upTo)
		s.file.release()
		if err != nil || ok {
			return offset, timestamp, ok, err
		}
	}
	return 0, 0, false, nil
}

func (s *segment) findTimestamp(ts, logStart, upTo int64) (int64, int64, bool, error) {
	// Batches up to a time entry with a timestamp below ts hold no record at
	// or after ts, so start at the batch that entry points at.
	pos := int64(0)
	if te, ok := s.timeIndex.floor(func(e timeEntry) bool { return e.timestamp < ts }); ok {
		if e, ok := s.index.floor(func(e offsetEntry) bool { return e.relOffset <= te.relOffset }); ok {
			pos = int64(e.position)
		}
	}
	sc := newScanner(s.file.File, pos, s.size.Load(), nil)
	for {
		_, batch, h, err := sc.nextBatch()
		if errors.Is(err, io.EOF) {
			return 0, 0, false, nil
		}
		if err != nil {
			return 0, 0, false, fmt.Errorf("storage: find timestamp in %s: %w", s.logPath(), err)
		}
		if h.BaseOffset >= upTo {
			return 0, 0, false, nil
		}
		if h.LastOffset() < logStart {
			continue
		}
		if off, t, ok := recordAtOrAfterTimestamp(batch, h, ts, logStart); ok {
			return off, t, true, nil
		}
	}
}
