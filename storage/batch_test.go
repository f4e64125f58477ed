package storage

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestValidateBatches(t *testing.T) {
	valid := plainBatch(3, 20, 1000).build()
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), valid...))
	}
	cases := []struct {
		name    string
		buf     []byte
		maxSize int
		want    error
	}{
		{"valid", valid, 0, nil},
		{"two valid batches", append(append([]byte(nil), valid...), valid...), 0, nil},
		{"empty buffer", nil, 0, ErrCorruptBatch},
		{"truncated header", valid[:30], 0, ErrCorruptBatch},
		{"truncated records", valid[:len(valid)-1], 0, ErrCorruptBatch},
		{"trailing garbage", append(append([]byte(nil), valid...), 1, 2, 3), 0, ErrCorruptBatch},
		{"flipped record byte", mutate(func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }), 0, ErrCorruptBatch},
		{"flipped attribute bit", mutate(func(b []byte) []byte { b[offAttributes+1] ^= 0x01; return b }), 0, ErrCorruptBatch},
		{"batchLength too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offBatchLength:], 10); return b }), 0, ErrCorruptBatch},
		{"batchLength past the buffer", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offBatchLength:], 1<<30); return b }), 0, ErrCorruptBatch},
		{"batchLength overflowing int32", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offBatchLength:], 0x7fffffff); return b }), 0, ErrCorruptBatch},
		{"magic 0", mutate(func(b []byte) []byte { b[offMagic] = 0; return b }), 0, ErrUnsupportedMagic},
		{"magic 1", mutate(func(b []byte) []byte { b[offMagic] = 1; return b }), 0, ErrUnsupportedMagic},
		{"magic 3", mutate(func(b []byte) []byte { b[offMagic] = 3; return b }), 0, ErrCorruptBatch},
		{"oversized", valid, len(valid) - 1, ErrBatchTooLarge},
		{"exactly max size", valid, len(valid), nil},
		{"count disagrees with lastOffsetDelta", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 7)
			binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
			return b
		}), 0, ErrInvalidRecord},
		{"zero records", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
			return b
		}), 0, ErrInvalidRecord},
		{"unknown codec", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[offAttributes:], 6)
			binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
			return b
		}), 0, ErrCorruptBatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers, err := ValidateBatches(tc.buf, tc.maxSize)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if len(headers) == 0 || headers[0].RecordCount != 3 {
					t.Fatalf("headers = %+v", headers)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			var be *BatchError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *BatchError", err)
			}
		})
	}
}

// The second batch of an append is named in the error, and nothing is written.
func TestAppendRejectsWholeRequest(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer l.Close()
	good := plainBatch(2, 10, 5).build()
	bad := plainBatch(2, 10, 5).build()
	bad[len(bad)-1] ^= 1
	_, err := l.Append(append(good, bad...), 0)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("error = %v, want a corrupt-batch error for batch 1", err)
	}
	if l.LogEndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("log end %d, size %d after a rejected append", l.LogEndOffset(), l.Size())
	}
	big := plainBatch(1, 2<<20, 5).build()
	if _, err := l.Append(big, 0); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("2 MiB batch: error = %v, want ErrBatchTooLarge", err)
	}
}

func TestStampKeepsCRCAndLogAppendTimeRecomputesIt(t *testing.T) {
	b := plainBatch(4, 8, 100).build()
	stampBatch(b, 12345, 7)
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 12345 || h.LeaderEpoch != 7 || batchCRC(b) != h.CRC {
		t.Fatalf("after stamp: %+v, crc ok=%v", h, batchCRC(b) == h.CRC)
	}
	stampLogAppendTime(b, 999_999)
	h, _ = ParseBatchHeader(b)
	if !h.LogAppendTime() || h.MaxTimestamp != 999_999 || batchCRC(b) != h.CRC || h.BaseTimestamp != 100 {
		t.Fatalf("after LogAppendTime: %+v, crc ok=%v", h, batchCRC(b) == h.CRC)
	}
	decodeBatches(t, b) // kmsg agrees on the framing
}

// FuzzValidateBatch feeds arbitrary bytes to the validator: it must never
// panic, and whatever it accepts must be a whole sequence of batches that
// survives stamping with a valid CRC.
func FuzzValidateBatch(f *testing.F) {
	valid := plainBatch(3, 20, 1000).build()
	f.Add(valid)
	f.Add(append(append([]byte(nil), valid...), plainBatch(1, 0, 5).build()...))
	f.Add(valid[:40])
	f.Add(valid[:len(valid)-1])
	flipped := append([]byte(nil), valid...)
	flipped[50] ^= 0xff
	f.Add(flipped)
	legacy := append([]byte(nil), valid...)
	legacy[offMagic] = 1
	f.Add(legacy)
	f.Add(idempotentBatch(7, 1, 100, 5).build())
	f.Fuzz(func(t *testing.T, buf []byte) {
		headers, err := ValidateBatches(buf, 1<<20)
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *BatchError", err)
			}
			return
		}
		total := 0
		for i, h := range headers {
			batch := buf[total : total+int(h.Length)]
			stampBatch(batch, int64(i)*1000, 3)
			if batchCRC(batch) != h.CRC {
				t.Fatalf("stamping broke the CRC of batch %d", i)
			}
			if _, _, _, err := parseBatchPrefix(batch); err != nil {
				t.Fatalf("accepted batch %d fails the scan prefix parse: %v", i, err)
			}
			total += int(h.Length)
		}
		if total != len(buf) {
			t.Fatalf("accepted %d of %d bytes", total, len(buf))
		}
	})
}
