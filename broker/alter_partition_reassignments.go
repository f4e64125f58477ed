package broker

import (
	"context"
	"fmt"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments v0-1 (KIP-455): start, replace or cancel
// (null replicas) the move of each partition named. Each becomes one
// cluster.AlterReassignment that the controller validates and commits; the
// data is copied by the new replicas' follower fetches, and the controller
// completes the move once they are in the ISR. A partition's error says
// why its move was refused and nothing changed for it.
func init() {
	register(kmsg.AlterPartitionAssignments, 0, 1, replying(handleAlterPartitionReassignments))
}

func handleAlterPartitionReassignments(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	seen := map[string]map[int32]int{}
	for _, t := range r.Topics {
		if seen[t.Topic] == nil {
			seen[t.Topic] = map[int32]int{}
		}
		for _, p := range t.Partitions {
			seen[t.Topic][p.Partition]++
		}
	}
	for _, t := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = p.Partition
			var err error
			if seen[t.Topic][p.Partition] > 1 {
				err = fmt.Errorf("%w: partition %s-%d appears %d times in the request", cluster.ErrInvalidCommand, t.Topic, p.Partition, seen[t.Topic][p.Partition])
			} else {
				err = b.alterReassignment(ctx, t.Topic, p.Partition, p.Replicas, r.Version < 1 || r.AllowReplicationFactorChange)
			}
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
				b.logger.Warn("reassignment refused", "topic", t.Topic, "partition", p.Partition, "replicas", fmt.Sprint(p.Replicas), "err", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// alterReassignment submits one partition's move (replicas nil: cancel).
func (b *Broker) alterReassignment(ctx context.Context, topic string, partition int32, replicas []int32, allowRFChange bool) error {
	cmd := cluster.AlterReassignment{Topic: topic, Partition: partition, Replicas: replicas, Cancel: replicas == nil}
	t, ok := b.node.Image().Topic(topic)
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", cluster.ErrUnknownTopic, topic)
	case partition < 0 || int(partition) >= len(t.Partitions):
		return fmt.Errorf("%w: %s-%d", cluster.ErrUnknownPartition, topic, partition)
	case replicas != nil && len(replicas) == 0:
		return fmt.Errorf("%w: an empty replica list (send null replicas to cancel a move)", cluster.ErrInvalidReplicaAssignment)
	case replicas != nil && !allowRFChange && len(replicas) != len(t.Partitions[partition].TargetReplicas()):
		return fmt.Errorf("%w: %s-%d has %d replicas, the move names %d, and the request forbids changing the replication factor",
			cluster.ErrInvalidReplicationFactor, topic, partition, len(t.Partitions[partition].TargetReplicas()), len(replicas))
	}
	res, err := b.node.Submit(ctx, cluster.NewCommand(cmd))
	if err != nil {
		return err
	}
	b.replicas.waitApplied(ctx, res.Index)
	if cmd.Cancel {
		b.logger.Info("reassignment cancelled", "topic", topic, "partition", partition)
	} else {
		b.logger.Info("reassignment started", "topic", topic, "partition", partition, "replicas", fmt.Sprint(replicas))
	}
	return nil
}
