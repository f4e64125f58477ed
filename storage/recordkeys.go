package storage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// KeylessRecord names a record without a key: the batch it is in (from 0,
// within one append) and its position in that batch (Kafka's batch_index of
// KIP-467 record errors).
type KeylessRecord struct {
	Batch  int
	Record int
}

// maxDecompressedBatch bounds how many bytes one compressed batch may
// decompress to while its keys are checked. The records are read as a
// stream and skipped by length, so this caps work, not memory: a batch that
// claims more is refused rather than walked.
const maxDecompressedBatch = 256 << 20

// FindKeylessRecords checks that every record of the batches in buf has a
// key, which a compacted topic (cleanup.policy=compact) requires: the
// cleaner keeps the last record of each key, so a record without one could
// never be compacted. Kafka refuses such records with INVALID_RECORD; this
// is the check behind that, the one place the broker reads inside a batch
// on the produce path, and only for compacted topics. Compressed batches
// are decompressed as a stream. Control batches carry keys of their own
// and are not checked.
//
// It returns the keyless records, or an error wrapping ErrCorruptBatch or
// ErrInvalidRecord when the batches or their records do not parse (framing
// and CRC are checked first, as ValidateBatches does). buf is not modified.
func FindKeylessRecords(buf []byte) ([]KeylessRecord, error) {
	headers, err := ValidateBatches(buf, 0)
	if err != nil {
		return nil, err
	}
	var keyless []KeylessRecord
	pos := 0
	for i, h := range headers {
		batch := buf[pos : pos+int(h.Length)]
		pos += int(h.Length)
		if h.Control() {
			continue
		}
		err := walkRecordKeys(batch, h, func(record int, hasKey bool) {
			if !hasKey {
				keyless = append(keyless, KeylessRecord{Batch: i, Record: record})
			}
		})
		if err != nil {
			return nil, &BatchError{Index: i, Offset: pos - int(h.Length), Err: err}
		}
	}
	return keyless, nil
}

// walkRecordKeys calls fn for each record of one whole batch with whether
// it has a key (a key length of -1 is none; an empty key is a key).
func walkRecordKeys(batch []byte, h BatchHeader, fn func(record int, hasKey bool)) error {
	records, closeRecords, err := batchRecords(batch[BatchHeaderSize:], h.Compression())
	if err != nil {
		return err
	}
	defer closeRecords()
	r := bufio.NewReader(&limitedReader{r: records, left: maxDecompressedBatch})
	for i := 0; i < int(h.RecordCount); i++ {
		length, err := binary.ReadVarint(r)
		if err != nil || length < 1 {
			return recordError(i, "length", err)
		}
		var header [1]byte // record attributes, unused
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return recordError(i, "attributes", err)
		}
		read := countingByteReader{r: r, n: 1}
		if _, err := binary.ReadVarint(&read); err != nil { // timestamp delta
			return recordError(i, "timestamp delta", err)
		}
		if _, err := binary.ReadVarint(&read); err != nil { // offset delta
			return recordError(i, "offset delta", err)
		}
		keyLength, err := binary.ReadVarint(&read)
		if err != nil || keyLength < -1 {
			return recordError(i, "key length", err)
		}
		if int64(read.n) > length {
			return recordError(i, "header", io.ErrUnexpectedEOF)
		}
		if _, err := io.CopyN(io.Discard, r, length-int64(read.n)); err != nil {
			return recordError(i, "body", err)
		}
		fn(i, keyLength >= 0)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: bytes after the last of %d records", ErrCorruptBatch, h.RecordCount)
	}
	return nil
}

func recordError(record int, field string, err error) error {
	var tooBig *decompressedTooLarge
	if errors.As(err, &tooBig) {
		return fmt.Errorf("%w: record %d: %v", ErrInvalidRecord, record, err)
	}
	if err == nil {
		err = errors.New("out of range")
	}
	return fmt.Errorf("%w: record %d: bad %s: %v", ErrCorruptBatch, record, field, err)
}

// batchRecords returns a reader of a batch's record bytes, decompressing
// them with the batch's codec, and a function that releases the decoder.
func batchRecords(body []byte, codec int) (io.Reader, func(), error) {
	nop := func() {}
	switch codec {
	case 0:
		return bytes.NewReader(body), nop, nil
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, nop, fmt.Errorf("%w: gzip: %v", ErrCorruptBatch, err)
		}
		return zr, func() { zr.Close() }, nil
	case 2:
		return snappyRecords(body), nop, nil
	case 3:
		return lz4.NewReader(bytes.NewReader(body)), nop, nil
	case 4:
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressedBatch))
		if err != nil {
			return nil, nop, fmt.Errorf("%w: zstd: %v", ErrCorruptBatch, err)
		}
		return zr, zr.Close, nil
	default:
		return nil, nop, fmt.Errorf("%w: unknown compression codec %d", ErrCorruptBatch, codec)
	}
}

// xerialHeader starts snappy data in the framing of the xerial snappy-java
// library, which the Java client writes: the header, then chunks of a
// 4-byte big-endian length and one raw snappy block. Other clients write a
// single raw block.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16 // the magic, a version and a compatible version

func snappyRecords(body []byte) io.Reader {
	if !bytes.HasPrefix(body, xerialHeader) {
		return &snappyBlocks{blocks: [][]byte{body}}
	}
	var blocks [][]byte
	rest := body[min(xerialHeaderSize, len(body)):]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return &snappyBlocks{err: fmt.Errorf("%w: snappy: truncated xerial chunk length", ErrCorruptBatch)}
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return &snappyBlocks{err: fmt.Errorf("%w: snappy: xerial chunk of %d bytes, %d left", ErrCorruptBatch, n, len(rest)-4)}
		}
		blocks = append(blocks, rest[4:4+n])
		rest = rest[4+n:]
	}
	return &snappyBlocks{blocks: blocks}
}

// snappyBlocks decodes raw snappy blocks one at a time, each only after its
// declared size has been checked against what is left of the budget.
type snappyBlocks struct {
	blocks [][]byte
	cur    []byte
	budget int64
	used   bool
	err    error
}

func (s *snappyBlocks) Read(p []byte) (int, error) {
	if !s.used {
		s.used, s.budget = true, maxDecompressedBatch
	}
	for len(s.cur) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if len(s.blocks) == 0 {
			return 0, io.EOF
		}
		block := s.blocks[0]
		s.blocks = s.blocks[1:]
		n, err := s2.DecodedLen(block)
		if err != nil {
			return 0, fmt.Errorf("%w: snappy: %v", ErrCorruptBatch, err)
		}
		if int64(n) > s.budget {
			return 0, &decompressedTooLarge{}
		}
		s.budget -= int64(n)
		if s.cur, err = s2.Decode(nil, block); err != nil {
			return 0, fmt.Errorf("%w: snappy: %v", ErrCorruptBatch, err)
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// decompressedTooLarge: a batch decompresses past maxDecompressedBatch.
type decompressedTooLarge struct{}

func (*decompressedTooLarge) Error() string {
	return fmt.Sprintf("batch decompresses to more than %d bytes", maxDecompressedBatch)
}

// limitedReader fails with decompressedTooLarge once more than left bytes
// were read.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, &decompressedTooLarge{}
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// countingByteReader counts the bytes varint reads take, to know how much of
// a record is left to skip.
type countingByteReader struct {
	r io.ByteReader
	n int
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
