package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Many partitions open concurrently (openMissingLogs) at creation and
// again at a restart, and close concurrently at shutdown: every one comes
// back hosted and leading, with its records, and with the leader epoch of
// the metadata starting where its replica became leader.
func TestManyPartitionsOpenAndCloseConcurrently(t *testing.T) {
	const parts = 3 * logIOConcurrency
	dir := t.TempDir()
	b := startTestBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, parts, 1, nil, "many"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	checkEpochs := func(b *Broker, wantLEO int64) {
		t.Helper()
		img := b.replicas.appliedImage()
		tp, ok := img.Topic("many")
		if !ok {
			t.Fatal("topic missing from the applied image")
		}
		for _, mp := range tp.Partitions {
			p := b.replicas.get("many", mp.Index)
			if p == nil || !p.leads() {
				t.Fatalf("partition %d not hosted and leading", mp.Index)
			}
			epoch, start, ok := p.log.LatestEpoch()
			if !ok || epoch != mp.LeaderEpoch || start > wantLEO {
				t.Fatalf("partition %d: latest epoch %d at %d (ok %v), metadata leader epoch %d", mp.Index, epoch, start, ok, mp.LeaderEpoch)
			}
			if leo := p.log.LogEndOffset(); leo != wantLEO {
				t.Fatalf("partition %d: log end %d, want %d", mp.Index, leo, wantLEO)
			}
		}
	}
	checkEpochs(b, 0)

	producer, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("many"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range parts {
		producer.Produce(ctx, &kgo.Record{Partition: int32(i), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce to %d: %v", i, err)
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	producer.Close()
	adm.Close()
	checkEpochs(b, 1)

	cfg := b.cfg
	cfg.KafkaAddr, cfg.RaftAddr, cfg.GossipAddr, cfg.HTTPAddr = b.KafkaAddr(), b.Node().RaftAddr(), b.Node().GossipAddr(), b.HTTPAddr()
	shutCtx, cancelShut := context.WithTimeout(ctx, 20*time.Second)
	if err := b.Shutdown(shutCtx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	cancelShut()
	restarted := launchTestBroker(t, cfg)
	waitFor(t, 20*time.Second, "restarted broker ready", restarted.Ready)
	checkEpochs(restarted, 1)
	for i := range int32(parts) {
		if rec := restarted.replicas.get("many", i).log.Recovery(); !rec.Clean {
			t.Fatalf("partition %d reopened as unclean after a clean shutdown: %+v", i, rec)
		}
	}
}
