package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A producer writing to many partitions sends large requests, which the
// broker appends partition by partition while they arrive. With
// acks=1 and acks=all (idempotent), every record comes back from a
// consumer exactly once and in order, as sent.
func TestStreamedProduceRoundTrip(t *testing.T) {
	// Below the default, so that franz-go's requests of this test (a few
	// MiB at most) are streamed.
	b := startTestBrokerWith(t, t.TempDir(), func(c *Config) { c.StreamProduceMinBytes = 256 << 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const partitions = 64
	createTestTopic(t, ctx, b, "wide", partitions)

	value := func(i int) []byte {
		v := bytes.Repeat([]byte{byte(i)}, 1000)
		return fmt.Appendf(v[:0], "record-%06d-", i)[:1000:1000]
	}
	const perRun = 6000
	sent := 0
	for _, acksAll := range []bool{false, true} {
		opts := []kgo.Opt{kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("wide"),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(50 * time.Millisecond),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}
		if !acksAll {
			opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
		}
		producer, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		before := b.server.Stats().StreamedRequests
		for i := sent; i < sent+perRun; i++ {
			// Round-robin spreads them, so each request carries many
			// partitions.
			producer.Produce(ctx, &kgo.Record{Value: value(i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := producer.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		producer.Close()
		if after := b.server.Stats().StreamedRequests; after == before {
			t.Fatalf("acks=all %v: no produce request was streamed", acksAll)
		}
		sent += perRun
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("wide"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := make(map[int]bool, sent)
	last := map[int32]int{}
	for len(seen) < sent {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), sent, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			var i int
			if _, err := fmt.Sscanf(string(r.Value), "record-%06d-", &i); err != nil || !bytes.Equal(r.Value, value(i)) {
				t.Fatalf("partition %d offset %d: a record that was not sent", r.Partition, r.Offset)
			}
			if seen[i] {
				t.Fatalf("record %d twice", i)
			}
			if prev, ok := last[r.Partition]; ok && i <= prev {
				t.Fatalf("partition %d: record %d after %d", r.Partition, i, prev)
			}
			seen[i], last[r.Partition] = true, i
		})
	}
}

// A streamed produce request that breaks off (a malformed tail, or the
// producer gone in the middle) closes its connection only; the partitions
// appended before the break hold whole, valid batches, and the broker goes
// on serving.
func TestStreamedProduceBrokenOff(t *testing.T) {
	b := startTestBrokerWith(t, t.TempDir(), func(c *Config) { c.StreamProduceMinBytes = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := createTestTopic(t, ctx, b, "cut", 2)
	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 9, 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "cut"
	for p := int32(0); p < 2; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, encodeBatch([][]byte{[]byte("a"), []byte("b")})
		rt.Partitions = append(rt.Partitions, rp)
	}
	produce.Topics = append(produce.Topics, rt)
	whole := produceFrame(produce)
	secondStarts := len(whole) - len(rt.Partitions[1].Records) - 1 - 4 - 1 - 1 - 1 // records, their length, index, tags

	for _, brk := range []string{"malformed", "gone"} {
		before := b.server.Stats().ConnectionsOpen
		conn, err := net.DialTimeout("tcp", b.KafkaAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		frame := bytes.Clone(whole[:secondStarts+20]) // inside the second partition's records
		if brk == "malformed" {
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		}
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		if brk == "malformed" {
			if n, err := io.ReadFull(conn, make([]byte, 4)); err == nil {
				t.Fatalf("%s: read %d bytes of an answer to a broken request", brk, n)
			}
		}
		conn.Close()
		waitFor(t, 10*time.Second, "the connection closed", func() bool { return b.server.Stats().ConnectionsOpen <= before })
	}

	// Partition 0 got its batch once per attempt, partition 1 none; a whole
	// request then appends to both, and everything reads back.
	conn, err := net.DialTimeout("tcp", b.KafkaAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(whole); err != nil {
		t.Fatal(err)
	}
	readCorrelation(t, conn, 1)
	offsets, err := admin.ListEndOffsets(ctx, "cut")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 6, 1: 2} {
		if o, _ := offsets.Lookup("cut", p); o.Offset != want {
			t.Fatalf("partition %d ends at %d, want %d", p, o.Offset, want)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("cut"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for got := 0; got < 8; {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 8: %v", got, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got += fetches.NumRecords()
	}
}

// produceFrame is a produce request's frame with correlation id 1.
func produceFrame(req *kmsg.ProduceRequest) []byte {
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Version))
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	return frame
}
