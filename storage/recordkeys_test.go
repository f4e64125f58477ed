package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// keyedBatch builds a batch whose records have the given keys (nil: no
// key), with its records compressed by franz-go's own compressor for codec
// (or by compress, when given), so the check reads what real producers send.
func keyedBatch(t *testing.T, keys [][]byte, codec kgo.CompressionCodec, compress func([]byte) []byte) []byte {
	t.Helper()
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: k, Value: bytes.Repeat([]byte("v"), 100)}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	var attrs int16
	switch {
	case compress != nil:
		recs, attrs = compress(recs), 2
	default:
		c, err := kgo.DefaultCompressor(codec)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			var used kgo.CompressionCodecType
			recs, used = c.Compress(new(bytes.Buffer), recs)
			attrs = int16(used)
		}
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs,
		LastOffsetDelta: int32(len(keys) - 1), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(keys)), Records: append([]byte(nil), recs...),
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// xerialSnappy frames data as the Java client's snappy-java does: the
// xerial header, then chunks of length + raw snappy block.
func xerialSnappy(data []byte) []byte {
	out := append([]byte(nil), xerialHeader...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(data) > 0 {
		n := min(len(data), 150) // several chunks, records split across them
		block := snappy.Encode(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		data = data[n:]
	}
	return out
}

func TestFindKeylessRecordsEveryCodec(t *testing.T) {
	keys := [][]byte{[]byte("k0"), nil, {}, []byte("k3"), nil}
	codecs := []struct {
		name     string
		codec    kgo.CompressionCodec
		compress func([]byte) []byte
	}{
		{"none", kgo.NoCompression(), nil},
		{"gzip", kgo.GzipCompression(), nil},
		{"snappy", kgo.SnappyCompression(), nil},
		{"snappy-xerial", kgo.NoCompression(), xerialSnappy},
		{"lz4", kgo.Lz4Compression(), nil},
		{"zstd", kgo.ZstdCompression(), nil},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			buf := append(keyedBatch(t, [][]byte{[]byte("a"), []byte("b")}, c.codec, c.compress),
				keyedBatch(t, keys, c.codec, c.compress)...)
			if h, err := ParseBatchHeader(buf[len(buf)-len(keyedBatch(t, keys, c.codec, c.compress)):]); err != nil || (c.name != "none" && h.Compression() == 0) {
				t.Fatalf("test batch not compressed: %+v %v", h, err)
			}
			got, err := FindKeylessRecords(buf)
			if err != nil {
				t.Fatal(err)
			}
			want := []KeylessRecord{{Batch: 1, Record: 1}, {Batch: 1, Record: 4}}
			if !slices.Equal(got, want) {
				t.Fatalf("keyless records %v, want %v (an empty key is a key)", got, want)
			}
			keyed, err := FindKeylessRecords(keyedBatch(t, [][]byte{[]byte("x"), {}}, c.codec, c.compress))
			if err != nil || len(keyed) != 0 {
				t.Fatalf("all keyed: got %v, %v", keyed, err)
			}
		})
	}
}

func TestFindKeylessRecordsRefusesWhatDoesNotParse(t *testing.T) {
	good := keyedBatch(t, [][]byte{[]byte("k")}, kgo.NoCompression(), nil)
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	cases := map[string]struct {
		buf  []byte
		want error
	}{
		"bad crc": {func() []byte { b := slices.Clone(good); b[len(b)-1]++; return b }(), ErrCorruptBatch},
		"record length short of the record": {func() []byte {
			b := slices.Clone(good)
			b[BatchHeaderSize] = 0x7e // varint 63: the rest looks like trailing bytes
			return recrc(b)
		}(), ErrCorruptBatch},
		"record length past the batch": {func() []byte {
			b := slices.Clone(good)
			b[BatchHeaderSize], b[BatchHeaderSize+1] = 0xfe, 0x03 // varint 255
			return recrc(b)
		}(), ErrCorruptBatch},
		"more records claimed than present": {func() []byte {
			b := slices.Clone(good)
			binary.BigEndian.PutUint32(b[offRecordCount:], 2)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 1)
			return recrc(b)
		}(), ErrCorruptBatch},
		"gzip attribute on plain records": {func() []byte {
			b := slices.Clone(good)
			binary.BigEndian.PutUint16(b[offAttributes:], 1)
			return recrc(b)
		}(), ErrCorruptBatch},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := FindKeylessRecords(c.buf)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
