package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A replication factor above the live brokers, and a min.insync.replicas
// above the replication factor, are refused with Kafka's codes; the default
// factor on one broker is 1, with min.insync.replicas 1.
func TestReplicationFactorLimits(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)

	if _, err := admin.CreateTopic(ctx, 1, 2, nil, "two"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 2 on one broker: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	mis := "2"
	if _, err := admin.CreateTopic(ctx, 1, 1, map[string]*string{"min.insync.replicas": &mis}, "mis"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("min.insync.replicas 2 with rf 1: %v, want INVALID_CONFIG", err)
	}
	res, err := admin.CreateTopic(ctx, 1, -1, nil, "dflt")
	if err != nil {
		t.Fatal(err)
	}
	if res.ReplicationFactor != 1 {
		t.Fatalf("default replication factor on one broker: %d, want 1", res.ReplicationFactor)
	}
	alter, err := admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: &mis}}, "dflt")
	if err != nil {
		t.Fatal(err)
	}
	if len(alter) != 1 || !errors.Is(alter[0].Err, kerr.InvalidConfig) {
		t.Fatalf("alter min.insync.replicas above rf: %+v, want INVALID_CONFIG", alter)
	}
	rcs, err := admin.DescribeTopicConfigs(ctx, "dflt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == "min.insync.replicas" && c.MaybeValue() != "1" {
			t.Fatalf("min.insync.replicas of an rf 1 topic: %q, want 1", c.MaybeValue())
		}
	}
}
