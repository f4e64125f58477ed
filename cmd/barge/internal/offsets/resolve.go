package offsets

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Partition is one partition with its offset range resolved.
type Partition struct {
	Topic     string
	Partition int32
	Bounds    Bounds
	// From is the first offset to read.
	From int64
	// Until is the offset to stop before, or -1 for no stop.
	Until int64
}

// Done reports whether nothing is left to read in [From, Until).
func (p Partition) Done() bool { return p.Until >= 0 && p.From >= p.Until }

// ResolveRange lists the offsets of topic's partitions (all of them when
// partitions is empty) and resolves r for each, in partition order. It
// fails when the topic or a partition does not exist or a partition cannot
// be listed (no leader, ...).
func ResolveRange(ctx context.Context, adm *kadm.Client, topic string, partitions []int32, r Range) ([]Partition, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	var times kadm.ListedOffsets
	if r.From.Kind == Time {
		if times, err = adm.ListOffsetsAfterMilli(ctx, r.From.Millis, topic); err != nil {
			return nil, fmt.Errorf("list offsets of %q after %d ms: %w", topic, r.From.Millis, err)
		}
	}
	byPartition := ends[topic]
	if len(byPartition) == 0 {
		return nil, fmt.Errorf("topic %q does not exist", topic)
	}
	if len(partitions) == 0 {
		for p := range byPartition {
			partitions = append(partitions, p)
		}
		slices.Sort(partitions)
	}
	out := make([]Partition, 0, len(partitions))
	for _, p := range partitions {
		end, ok := byPartition[p]
		if !ok {
			return nil, fmt.Errorf("topic %q has no partition %d (it has %d)", topic, p, len(byPartition))
		}
		start, _ := starts.Lookup(topic, p)
		for _, l := range []kadm.ListedOffset{start, end} {
			if l.Err != nil {
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, p, l.Err)
			}
		}
		b := Bounds{Start: start.Offset, End: end.Offset}
		atTime := int64(-1)
		if r.From.Kind == Time {
			t, _ := times.Lookup(topic, p)
			if t.Err != nil {
				return nil, fmt.Errorf("list offsets of %s/%d by time: %w", topic, p, t.Err)
			}
			atTime = t.Offset
		}
		rp := Partition{Topic: topic, Partition: p, Bounds: b, From: r.From.Resolve(b, atTime), Until: -1}
		if r.Until != nil {
			if r.Until.Kind == End {
				rp.Until = b.End
			} else {
				rp.Until = r.Until.N
			}
		}
		out = append(out, rp)
	}
	return out, nil
}
