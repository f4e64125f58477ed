package broker

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The retention loop runs every log.retention.check.interval.ms over the
// hosted logs: a topic with small segments and retention.bytes loses its
// oldest segments (its log start moves up) without a restart or a request,
// and each check is timed in barge_retention_check_seconds.
func TestRetentionLoopTrimsAndIsTimed(t *testing.T) {
	b := startTestBrokerWith(t, t.TempDir(), func(c *Config) { c.RetentionCheckInterval = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("trimmed"), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // franz-go would snappy the zeros away
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	segment, retained := "16384", "32768"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": &segment, "retention.bytes": &retained}, "trimmed"); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1000)
	for i := 0; i < 200; i++ { // about 200 KB: a dozen segments, most beyond retention.bytes
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the log start to move up", func() bool {
		starts, err := adm.ListStartOffsets(ctx, "trimmed")
		if err != nil {
			return false
		}
		o, ok := starts.Lookup("trimmed", 0)
		return ok && o.Err == nil && o.Offset > 0
	})
	checks := histogramCount(t, b.metrics.retentionPass)
	if checks == 0 {
		t.Fatal("barge_retention_check_seconds counted no check")
	}
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
