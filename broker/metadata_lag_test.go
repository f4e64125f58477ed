package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A client that learnt of a new topic from one broker may ask its leader
// before the leader has applied the topic's creation. The leader must catch
// up rather than call the partition unknown (librdkafka's 0114 test failed
// on exactly that in a three-broker cluster).
func TestLeaderLaggingBehindTopicCreationCatchesUp(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	clients := map[int32]*kgo.Client{}
	for _, b := range brokers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		clients[b.cfg.ID] = cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	asked := 0
	for round := 0; round < 20; round++ {
		topic := fmt.Sprintf("lag-%d", round)
		creator := brokers[round%len(brokers)]
		res, err := creator.node.Submit(ctx, cluster.NewCommand(cluster.CreateTopic{Name: topic, NumPartitions: 3, ReplicationFactor: 1}))
		if err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		created, _ := res.Image.Topic(topic)
		for i := range created.Partitions {
			leader := created.Partitions[i].Leader
			if leader == creator.cfg.ID {
				continue // the creator has applied it already
			}
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = int32(i), -1, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := clients[leader].SeedBrokers()[0].Request(ctx, req)
			if err != nil {
				t.Fatalf("ListOffsets to broker %d: %v", leader, err)
			}
			asked++
			code := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
			if code != 0 {
				lb := brokers[leader]
				rp := lb.replicas.get(topic, int32(i))
				_, known := lb.node.Image().Partition(topic, int32(i))
				t.Fatalf("%s-%d: leader %d answered %v right after the creation (created at index %d; there: hosted %v, leading %v, known %v, image %d, reconciled %d), want the offsets",
					topic, i, leader, kerr.ErrorForCode(code), res.Index, rp != nil, rp != nil && rp.leads(), known, lb.node.Image().Index(), lb.replicas.applied.Load().Index())
			}
		}
	}
	if asked == 0 {
		t.Fatal("no partition was led by a broker other than its creator; the test checked nothing")
	}
}
