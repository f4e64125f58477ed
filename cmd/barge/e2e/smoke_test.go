package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestartAfterSIGTERMNeedsNoRecovery: records written before a SIGTERM
// are all there after a restart, and the restart opens the logs without a
// recovery scan (the clean-shutdown marker was written).
func TestRestartAfterSIGTERMNeedsNoRecovery(t *testing.T) {
	b := harness.StartBroker(t, harness.Options{})
	ctx := harness.Context(t, 60*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr), kgo.DefaultProduceTopic("smoke"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	cl.Close()
	if err := b.Stop(); err != nil {
		t.Fatalf("SIGTERM exit: %v", err)
	}
	b.Restart()
	if log := b.Log(); strings.Contains(log, "recovered log after unclean shutdown") {
		t.Fatalf("restart after SIGTERM ran a recovery scan:\n%s", log)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr), kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records after restart", got, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != fmt.Sprint(r.Offset) {
				t.Fatalf("offset %d holds %q", r.Offset, r.Value)
			}
			got++
		})
	}
}
