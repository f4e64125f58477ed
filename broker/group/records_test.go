package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJavaStringHashCode(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int32
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"Hello World", -862545276},
		{"polygenelubricants", math.MinInt32},
		{"\U0001F600", 0xD83D*31 + 0xDE00}, // a surrogate pair in UTF-16
		{"é", 0xE9},
	} {
		if got := javaStringHashCode(tc.s); got != tc.want {
			t.Errorf("hashCode(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
	// Kafka's Utils.abs maps Integer.MIN_VALUE to 0.
	if p := PartitionFor("polygenelubricants", 16); p != 0 {
		t.Errorf("PartitionFor(MIN_VALUE hash) = %d", p)
	}
	if p := PartitionFor("Hello World", 50); p != 862545276%50 {
		t.Errorf("PartitionFor(negative hash) = %d", p)
	}
}

func sampleRecords() []record {
	inst := "instance-1"
	gm := kmsg.NewGroupMetadataValue()
	gm.Version = groupMetadataValueVersion
	gm.ProtocolType, gm.Generation = "consumer", 7
	p, l := "range", "m1"
	gm.Protocol, gm.Leader = &p, &l
	gm.CurrentStateTimestamp = 1_700_000_000_123
	gm.Members = []kmsg.GroupMetadataValueMember{{MemberID: "m1", InstanceID: &inst, ClientID: "c", ClientHost: "/1.2.3.4",
		RebalanceTimeoutMillis: 30000, SessionTimeoutMillis: 10000, Subscription: []byte{1, 2}, Assignment: []byte{3}}}
	return []record{
		offsetCommitRecord("g", offsetKey{"orders", 3}, offsetCommit{offset: 42, leaderEpoch: 5, metadata: "meta", commitTimestamp: 1000, expireTimestamp: -1}),
		offsetCommitRecord("g", offsetKey{"orders", 4}, offsetCommit{offset: 43, leaderEpoch: -1, commitTimestamp: 1001, expireTimestamp: 9999}),
		offsetTombstone("g", offsetKey{"orders", 3}),
		groupMetadataRecord("g", &gm),
		groupTombstone("g2"),
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	recs := sampleRecords()
	for _, maxBytes := range []int{1 << 20, 1} { // one batch; one batch per record
		buf := appendBatches(nil, recs, 1_700_000_000_000, maxBytes)
		// Stamp offsets as the log would, batch after batch.
		next := int64(100)
		for b := buf; len(b) > 0; {
			n := 12 + int(binary.BigEndian.Uint32(b[8:]))
			binary.BigEndian.PutUint64(b, uint64(next))
			next += int64(binary.BigEndian.Uint32(b[23:])) + 1
			b = b[n:]
		}
		var got []record
		var offsets []int64
		end, skipped, err := walkBatches(buf, 0, func(off int64, k, v []byte) {
			got = append(got, record{key: bytes.Clone(k), value: bytes.Clone(v)})
			offsets = append(offsets, off)
		})
		if err != nil || skipped != 0 || end != 105 {
			t.Fatalf("maxBytes %d: walk: end %d, skipped %d, err %v", maxBytes, end, skipped, err)
		}
		if !reflect.DeepEqual(got, recs) || !reflect.DeepEqual(offsets, []int64{100, 101, 102, 103, 104}) {
			t.Fatalf("maxBytes %d: records differ:\n%v\n%v", maxBytes, got, recs)
		}
	}
	// Decoding gives back what was encoded.
	k, err := decodeKey(recs[0].key)
	if err != nil || k.kind != kindOffset || k.group != "g" || k.offset != (offsetKey{"orders", 3}) {
		t.Fatalf("offset key: %+v %v", k, err)
	}
	oc, err := decodeOffsetCommit(recs[0].value)
	if err != nil || oc != (offsetCommit{offset: 42, leaderEpoch: 5, metadata: "meta", commitTimestamp: 1000, expireTimestamp: -1}) {
		t.Fatalf("offset value v3: %+v %v", oc, err)
	}
	oc, err = decodeOffsetCommit(recs[1].value)
	if err != nil || oc.expireTimestamp != 9999 || oc.leaderEpoch != -1 {
		t.Fatalf("offset value v1: %+v %v", oc, err)
	}
	if recs[2].value != nil || recs[4].value != nil {
		t.Fatal("tombstones carry values")
	}
	k, err = decodeKey(recs[3].key)
	if err != nil || k.kind != kindGroup || k.group != "g" {
		t.Fatalf("group key: %+v %v", k, err)
	}
	gm, err := decodeGroupMetadata(recs[3].value)
	if err != nil || gm.Generation != 7 || *gm.Leader != "m1" || *gm.Members[0].InstanceID != "instance-1" || gm.CurrentStateTimestamp != 1_700_000_000_123 {
		t.Fatalf("group value: %+v %v", gm, err)
	}
	if k, err := decodeKey([]byte{0, 3, 0, 0}); err != nil || k.kind != kindOther {
		t.Fatalf("newer key schema: %+v %v", k, err)
	}
}

func TestWalkBatchesRejectsDamage(t *testing.T) {
	valid := appendBatches(nil, sampleRecords(), 1, 1<<20)
	flip := func(i int) []byte {
		b := bytes.Clone(valid)
		b[i] ^= 0x40
		return b
	}
	setLen := func(n uint32) []byte {
		b := bytes.Clone(valid)
		binary.BigEndian.PutUint32(b[8:], n)
		return b
	}
	for _, tc := range []struct {
		name string
		buf  []byte
	}{
		{"truncated header", valid[:40]},
		{"truncated records", valid[:len(valid)-3]},
		{"bit flip in a record", flip(len(valid) - 5)},
		{"bit flip in the attributes", flip(22)},
		{"length past the buffer", setLen(uint32(len(valid)))},
		{"length below a header", setLen(20)},
		{"trailing bytes", append(bytes.Clone(valid), 0, 0, 0)},
	} {
		_, _, err := walkBatches(tc.buf, 0, func(int64, []byte, []byte) {})
		if !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("%s: err %v, want ErrCorruptBatch", tc.name, err)
		}
	}
}

func TestWalkBatchesSkipsForeignBatches(t *testing.T) {
	buf := appendBatches(nil, sampleRecords()[:1], 1, 1<<20)
	control := bytes.Clone(buf)
	binary.BigEndian.PutUint16(control[21:], 0x20) // control batch
	fixCRC(control)
	n := 0
	_, skipped, err := walkBatches(append(control, buf...), 0, func(int64, []byte, []byte) { n++ })
	if err != nil || skipped != 1 || n != 1 {
		t.Fatalf("skipped %d, records %d, err %v", skipped, n, err)
	}
}

// fixCRC sets only the CRC (not batchLength, which the fuzzer may have
// chosen): CRC-32C from the attributes on.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}

// FuzzWalkBatches: no input panics the loader's decoder.
func FuzzWalkBatches(f *testing.F) {
	valid := appendBatches(nil, sampleRecords(), 1, 1<<20)
	f.Add(valid)
	f.Add(valid[:40])
	f.Add(appendBatches(nil, sampleRecords(), 1, 1))
	f.Fuzz(func(t *testing.T, buf []byte) {
		if len(buf) > 21 {
			fixCRC(buf) // get past the CRC to the record parsing
		}
		walkBatches(buf, 0, func(_ int64, k, v []byte) {
			if dk, err := decodeKey(k); err == nil && v != nil {
				switch dk.kind {
				case kindOffset:
					decodeOffsetCommit(v)
				case kindGroup:
					decodeGroupMetadata(v)
				}
			}
		})
	})
}
