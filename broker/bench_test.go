package broker

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkEndToEnd measures a franz-go producer (1 KiB records, acks=1 and
// acks=all) and a consumer reading the records back through a broker on
// loopback, and in the same run a raw loopback TCP stream as the baseline.
// It reports MB/s of record values and the ratio to the raw stream.
func BenchmarkEndToEnd(b *testing.B) {
	const recordSize = 1024
	const records = 200_000 // ~200 MB per measurement
	raw := rawLoopbackMBps(b, 256<<20)
	b.ReportMetric(raw, "raw-tcp-MB/s")

	br := startTestBroker(b, b.TempDir())
	ctx := context.Background()
	value := make([]byte, recordSize)
	rand.Read(value)

	for _, acks := range []struct {
		name string
		opt  kgo.Opt
	}{
		{"acks=1", kgo.RequiredAcks(kgo.LeaderAck())},
		{"acks=all", kgo.RequiredAcks(kgo.AllISRAcks())},
	} {
		b.Run(acks.name, func(b *testing.B) {
			topic := "bench-" + acks.name[5:]
			admClient, _ := kgo.NewClient(kgo.SeedBrokers(br.KafkaAddr()))
			defer admClient.Close()
			kadm.NewClient(admClient).CreateTopic(ctx, 1, 1, nil, topic)
			opts := []kgo.Opt{kgo.SeedBrokers(br.KafkaAddr()), kgo.DefaultProduceTopic(topic), acks.opt,
				kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1 << 20)}
			if acks.name == "acks=1" {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			producer, err := kgo.NewClient(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer producer.Close()
			b.SetBytes(records * recordSize)
			b.ResetTimer()
			var produceTime, consumeTime, rawConsumeTime time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				for j := 0; j < records; j++ {
					producer.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
						if err != nil {
							b.Error(err)
						}
					})
				}
				if err := producer.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				produceTime += time.Since(start)

				start = time.Now()
				consumer, err := kgo.NewClient(kgo.SeedBrokers(br.KafkaAddr()),
					kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(int64(i) * records)}}),
					kgo.FetchMaxBytes(4<<20), kgo.FetchMaxPartitionBytes(4<<20))
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for got < records {
					fs := consumer.PollFetches(ctx)
					fs.EachError(func(_ string, _ int32, err error) { b.Fatal(err) })
					got += fs.NumRecords()
				}
				consumer.Close()
				consumeTime += time.Since(start)

				// The same records through a consumer that does no work per
				// record: what the broker itself can serve.
				start = time.Now()
				raw, err := newRawFetchConsumer(br.KafkaAddr())
				if err != nil {
					b.Fatal(err)
				}
				for off, end := int64(i)*records, int64(i+1)*records; off < end; {
					next, _, err := raw.fetch(topic, 0, off, 16<<20)
					if err != nil {
						b.Fatal(err)
					}
					off = next
				}
				raw.Close()
				rawConsumeTime += time.Since(start)
			}
			b.StopTimer()
			mb := float64(b.N) * records * recordSize / 1e6
			b.ReportMetric(mb/produceTime.Seconds(), "produce-MB/s")
			b.ReportMetric(mb/consumeTime.Seconds(), "consume-MB/s")
			b.ReportMetric(mb/produceTime.Seconds()/raw, "produce-ratio")
			b.ReportMetric(mb/consumeTime.Seconds()/raw, "consume-ratio")
			b.ReportMetric(mb/rawConsumeTime.Seconds(), "rawfetch-MB/s")
			b.ReportMetric(mb/rawConsumeTime.Seconds()/raw, "rawfetch-ratio")
		})
	}
}

// rawLoopbackMBps streams n bytes over one loopback TCP connection in 1 MiB
// writes and returns the rate.
func rawLoopbackMBps(b *testing.B, n int64) float64 {
	c, done := testutil.DrainingConn(b)
	buf := make([]byte, 1<<20)
	start := time.Now()
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			done()
			b.Fatal(err)
		}
	}
	done()
	return float64(n) / 1e6 / time.Since(start).Seconds()
}
