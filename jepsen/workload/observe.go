package workload

import (
	"context"
	"time"

	"github.com/barge-broker/barge/jepsen/history"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ObserverProcess is the process of the white-box samples.
const ObserverProcess = 400

// Observe samples every broker, every interval until ctx ends, from
// outside as an operator's tool would: each broker's own Metadata for
// the topic (leader and leader epoch per partition), and, from each
// broker that names itself leader, its end offset (ListOffsets latest,
// with the epoch it claims, so a broker that knows it was deposed says
// so instead of answering). A broker that does not answer within a
// short timeout (paused, cut off) is left out of that round.
func Observe(ctx context.Context, cfg Config, brokers []int32, interval time.Duration) error {
	cl, err := kgo.NewClient(clientOpts(cfg)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	t := time.NewTicker(interval)
	defer t.Stop()
	topic := cfg.Topic
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cfg.Rec.Add(history.Op{Process: ObserverProcess, Type: history.Invoke, F: history.FObserve})
		var obs []history.Observation
		for _, b := range brokers {
			obs = append(obs, observeBroker(ctx, cl, b, topic)...)
		}
		cfg.Rec.Add(history.Op{Process: ObserverProcess, Type: history.OK, F: history.FObserve, Observations: obs})
	}
}

func observeBroker(ctx context.Context, cl *kgo.Client, b int32, topic string) []history.Observation {
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	br := cl.Broker(int(b))
	mreq := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, rt)
	mresp, err := mreq.RequestWith(ctx, br)
	if err != nil {
		return nil
	}
	var out []history.Observation
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, t := range mresp.Topics {
		if t.Topic == nil || *t.Topic != topic || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				continue
			}
			out = append(out, history.Observation{Broker: b, Partition: p.Partition, Leader: p.Leader, Epoch: p.LeaderEpoch, HW: -1})
			if p.Leader == b {
				lp := kmsg.NewListOffsetsRequestTopicPartition()
				lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = p.Partition, -1, p.LeaderEpoch
				lt.Partitions = append(lt.Partitions, lp)
			}
		}
	}
	if len(lt.Partitions) == 0 {
		return out
	}
	lreq.Topics = append(lreq.Topics, lt)
	lresp, err := lreq.RequestWith(ctx, br)
	if err != nil {
		return out
	}
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				continue
			}
			for i := range out {
				if out[i].Partition == p.Partition && out[i].Leader == b {
					out[i].HW = p.Offset
				}
			}
		}
	}
	return out
}
