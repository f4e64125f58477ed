package broker

import (
	"context"
	"slices"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListPartitionReassignments v0 (KIP-455): the moves in flight, with each
// partition's replicas (the union during a move) and its adding and
// removing replicas; all of them when the request names no topics.
// Partitions named that are not moving, or do not exist, are left out, as
// Kafka does. Answered from this broker's image after a read barrier, so a
// move just started elsewhere is listed.
func init() {
	register(kmsg.ListPartitionReassignments, 0, 0, replying(handleListPartitionReassignments))
}

func handleListPartitionReassignments(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	b.syncMetadata(ctx)
	img := b.node.Image()
	want := map[string][]int32{}
	for _, t := range r.Topics {
		want[t.Topic] = append(want[t.Topic], t.Partitions...)
	}
	for _, ref := range img.Reassignments() {
		if r.Topics != nil {
			ps, ok := want[ref.Topic]
			if !ok || !slices.Contains(ps, ref.Partition) {
				continue
			}
		}
		p, _ := img.Partition(ref.Topic, ref.Partition)
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != ref.Topic {
			st := kmsg.NewListPartitionReassignmentsResponseTopic()
			st.Topic = ref.Topic
			resp.Topics = append(resp.Topics, st)
		}
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition = p.Index
		sp.Replicas = slices.Clone(p.Replicas)
		sp.AddingReplicas = slices.Clone(p.AddingReplicas)
		sp.RemovingReplicas = slices.Clone(p.RemovingReplicas)
		st := &resp.Topics[len(resp.Topics)-1]
		st.Partitions = append(st.Partitions, sp)
	}
	return resp
}
