package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A compacted topic refuses records without a key, as Kafka does:
// INVALID_RECORD, with a record error (KIP-467) naming each keyless record,
// and nothing of the refused batch is written. Keyed records, compressed or
// not, are accepted, and a topic switched to compact later refuses too.
func TestCompactedTopicRefusesRecordsWithoutKey(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	compact := "compact"
	if _, err := admin.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, "compacted"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "later"); err != nil {
		t.Fatal(err)
	}

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "compacted", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("keyed record: %v", err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "compacted", Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record: %v, want INVALID_RECORD", err)
	}

	// The raw answer names the keyless records of a batch.
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "compacted"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = encodeBatch([][]byte{[]byte("a"), nil, []byte("c"), nil})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.InvalidRecord.Code || len(sp.ErrorRecords) != 2 ||
		sp.ErrorRecords[0].RelativeOffset != 1 || sp.ErrorRecords[1].RelativeOffset != 3 || sp.ErrorMessage == nil {
		t.Fatalf("produce answer %+v, want INVALID_RECORD with record errors at 1 and 3", sp)
	}
	offsets, err := admin.ListEndOffsets(ctx, "compacted")
	if err != nil {
		t.Fatal(err)
	}
	if end, _ := offsets.Lookup("compacted", 0); end.Offset != 1 {
		t.Fatalf("log end %d after refused batches, want 1 (only the keyed record)", end.Offset)
	}

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "later", Value: []byte("fine")}).FirstErr(); err != nil {
		t.Fatalf("keyless record on a delete-policy topic: %v", err)
	}
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: &compact}}
	if res, err := admin.AlterTopicConfigs(ctx, alter, "later"); err != nil || res[0].Err != nil {
		t.Fatalf("alter cleanup.policy: %v %v", err, res)
	}
	waitFor(t, 10*time.Second, "cleanup.policy=compact applied", func() bool {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "later", Value: []byte("now refused")}).FirstErr()
		return errors.Is(err, kerr.InvalidRecord)
	})
}

// message.format.version is deprecated but valid in Kafka 3.x (ignored from
// inter.broker.protocol.version 3.0 on): tools that set it must not fail,
// and records stay readable. librdkafka's 0092_mixed_msgver does this.
func TestMessageFormatVersionIsAccepted(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "mfv"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0.10.0.0", "0.10.0-IV1", "3.0-IV1", "2.8"} {
		v := v
		res, err := admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.format.version", Value: &v}}, "mfv")
		if err != nil || res[0].Err != nil {
			t.Fatalf("message.format.version=%s: %v %v", v, err, res)
		}
	}
	bad := "banana"
	res, err := admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.format.version", Value: &bad}}, "mfv")
	if err != nil || !errors.Is(res[0].Err, kerr.InvalidConfig) {
		t.Fatalf("message.format.version=banana: %v %v, want INVALID_CONFIG", err, res)
	}
}

// encodeBatch builds an uncompressed RecordBatch v2 with one record per key
// (nil: no key), with kmsg's encoders and a correct CRC.
func encodeBatch(keys [][]byte) []byte {
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: k, Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(keys) - 1),
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(keys)), Records: recs,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
