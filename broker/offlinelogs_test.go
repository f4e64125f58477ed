package broker

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/storage"
)

// syncFailingFS is the real file system, except that once armed every
// fsync of a file whose path contains match fails with EIO, as a disk
// going bad does.
type syncFailingFS struct {
	storage.FileSystem
	match string
	armed atomic.Bool
}

func (f *syncFailingFS) Sync(file *os.File) error {
	if f.armed.Load() && strings.Contains(file.Name(), f.match) {
		return fmt.Errorf("sync %s: %w", file.Name(), syscall.EIO)
	}
	return f.FileSystem.Sync(file)
}

// TestOfflineLogHandsLeadershipOver: when fsync starts failing under the
// leader of a flush.messages=1 partition, its log goes offline and the
// broker holds its storage, so the controller moves the leadership to an
// in-sync follower and acks=all produces go on there, none lost or
// doubled. Before the hold the leader kept the partition and every
// produce failed with KAFKA_STORAGE_ERROR until the broker was restarted.
func TestOfflineLogHandsLeadershipOver(t *testing.T) {
	const topic = "fsyncfail"
	fss := map[int32]*syncFailingFS{}
	brokers := startTestCluster(t, 3, func(c *Config) {
		fs := &syncFailingFS{FileSystem: storage.OSFileSystem(), match: string(os.PathSeparator) + topic + "-0" + string(os.PathSeparator)}
		fss[c.ID] = fs
		c.StorageFS = fs
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	flush, minISR := "1", "2"
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"flush.messages": &flush, "min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	produce(0, 5)
	partition := func() cluster.Partition {
		p, _ := brokers[0].node.Image().Partition(topic, 0)
		return p
	}
	old := partition()
	waitFor(t, 10*time.Second, "all three replicas in sync", func() bool { return len(partition().ISR) == 3 })
	failing := brokers[old.Leader]
	fss[old.Leader].armed.Store(true)

	// Watch for the log going offline and the leadership moving, to say
	// how much of the wait is the cluster's and how much the client's.
	start := time.Now()
	var offlineAfter, handedAfter atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil && handedAfter.Load() == 0 {
			if offlineAfter.Load() == 0 && failing.offline.held() {
				offlineAfter.Store(int64(time.Since(start)))
			}
			if p := partition(); p.Leader != old.Leader && p.Leader != cluster.NoLeader {
				handedAfter.Store(int64(time.Since(start)))
			}
			time.Sleep(time.Millisecond)
		}
	}()
	produce(5, 10)
	took := time.Since(start)
	<-watched
	now := partition()
	if now.Leader == old.Leader || slices.Contains(now.ISR, old.Leader) {
		t.Fatalf("partition %+v after broker %d's log went offline", now, old.Leader)
	}
	if !failing.replicas.get(topic, 0).log.Offline() || failing.offline.count.Load() != 1 {
		t.Fatalf("broker %d: log offline %v, offline count %d", old.Leader,
			failing.replicas.get(topic, 0).log.Offline(), failing.offline.count.Load())
	}
	b, _ := failing.node.Image().Broker(old.Leader)
	if !b.StorageHeld {
		t.Errorf("broker %d not held in the image", old.Leader)
	}
	t.Logf("broker %d's log offline after %v, leadership with broker %d after %v, 5 acks=all records produced after %v",
		old.Leader, time.Duration(offlineAfter.Load()), now.Leader, time.Duration(handedAfter.Load()), took)
	produce(10, 15)

	consumer, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var got []string
	for len(got) < 15 && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != fmt.Sprint(i) {
			t.Fatalf("consumed %q, want 0..14 once each in order", got)
		}
	}
	if len(got) != 15 {
		t.Fatalf("consumed %d of 15 records: %q", len(got), got)
	}
}
