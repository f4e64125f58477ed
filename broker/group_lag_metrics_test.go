package broker

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupLagMetric: with --group-lag-metrics the coordinator exports each
// group's lag per topic, summed over partitions, from its committed offsets
// and the high watermarks; without it the series does not exist.
func TestGroupLagMetric(t *testing.T) {
	b := startTestBrokerWith(t, t.TempDir(), func(cfg *Config) { cfg.GroupLagMetrics = true })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "lagged"); err != nil {
		t.Fatal(err)
	}
	for p, n := range []int{10, 4} {
		for range n {
			r := &kgo.Record{Topic: "lagged", Partition: int32(p), Value: []byte("v")}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var commits kadm.Offsets
	commits.Add(kadm.Offset{Topic: "lagged", Partition: 0, At: 3, LeaderEpoch: -1})
	commits.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "lag-g", commits); err != nil {
		t.Fatal(err)
	}
	want := float64(10 - 3 + 4 - 1)
	page := scrapeMetrics(t, b)
	series := `barge_consumer_group_lag{group="lag-g",topic="lagged"}`
	if got, ok := metricValue(page, series); !ok || got != want {
		t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
	}
	if !strings.Contains(page, "# HELP barge_consumer_group_lag ") {
		t.Error("no help text for barge_consumer_group_lag")
	}
	// A commit past the high watermark counts as no lag, not negative.
	var past kadm.Offsets
	past.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 50, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "lag-g", past); err != nil {
		t.Fatal(err)
	}
	if got, ok := metricValue(scrapeMetrics(t, b), series); !ok || got != 7 {
		t.Errorf("%s after a commit past the end = %v (present %v), want 7", series, got, ok)
	}

	off := startTestBroker(t, t.TempDir())
	if page := scrapeMetrics(t, off); strings.Contains(page, "barge_consumer_group_lag") {
		t.Error("barge_consumer_group_lag exported without --group-lag-metrics")
	}
}

func scrapeMetrics(t *testing.T, b *Broker) string {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
