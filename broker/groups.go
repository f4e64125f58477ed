package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/barge-broker/barge/broker/group"
	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The group coordinator (broker/group) serves the group APIs for the
// __consumer_offsets partitions this broker leads. The broker creates the
// topic on first use, tells the coordinator when it gains or loses the
// leadership of one of its partitions, and hands it the group requests
// (group_*.go).

// newGroupCoordinator builds the coordinator; it reads the metadata image
// for the size of __consumer_offsets and for the partitions commits name.
func newGroupCoordinator(b *Broker) (*group.Coordinator, error) {
	return group.New(b.cfg.Group, group.Options{
		PartitionCount: func() int32 {
			if b.node == nil {
				return 0
			}
			t, ok := b.node.Image().Topic(group.OffsetsTopic)
			if !ok {
				return 0
			}
			return int32(len(t.Partitions))
		},
		PartitionExists: func(topic string, partition int32) bool {
			_, ok := b.node.Image().Partition(topic, partition)
			return ok
		},
		Logger: b.logger,
	})
}

// groupRoleChanged is the replica manager's roleChanged hook: leading a
// partition of __consumer_offsets loads its groups; losing it unloads them
// (before the log closes: Unload waits for the coordinator's goroutine).
// Called on the metadata apply goroutine.
func (b *Broker) groupRoleChanged(p *partition, leading bool) {
	if p.topic != group.OffsetsTopic {
		return
	}
	if leading {
		epoch := p.leaderEpoch()
		b.groups.Load(group.Partition{Index: p.index, Log: &groupLog{Log: p.log, p: p, b: b, epoch: epoch}, LeaderEpoch: epoch})
		return
	}
	b.groups.Unload(p.index)
}

// groupCommitTimeout bounds how long a group write waits to be replicated,
// as offsets.commit.timeout.ms (Kafka's default, 5 s).
const groupCommitTimeout = 5 * time.Second

// groupLog is a __consumer_offsets partition as the coordinator writes it:
// appends go through the replica (only while this broker still leads at the
// epoch the coordinator loaded) and return once the high watermark passed
// them, like an acks=all produce, so a commit is acknowledged only when
// replicated. Appends run under the shard's lock, so a shard's writes wait
// one after the other; reads go to the log directly.
type groupLog struct {
	*storage.Log
	p     *partition
	b     *Broker
	epoch int32
}

func (l *groupLog) Append(buf []byte, _ int32) (storage.AppendResult, error) {
	res, err := l.p.rep.AppendAtEpoch(buf, l.epoch, true)
	if err != nil {
		return res, err
	}
	l.p.appended()
	if res.Duplicate {
		return res, nil
	}
	ctx, cancel := context.WithTimeout(l.b.ctx, groupCommitTimeout)
	defer cancel()
	done := make(chan int16, 1)
	w, err := l.b.acks.Begin(ctx, 1, func(codes []int16) { done <- codes[0] })
	if err != nil {
		return res, fmt.Errorf("wait for replication of %s-%d: %w", l.p.topic, l.p.index, err)
	}
	w.Park(0, l.p.rep, res.LastOffset+1)
	w.Start(groupCommitTimeout)
	if code := <-done; code != 0 {
		return res, fmt.Errorf("replicate %s-%d up to %d: %w", l.p.topic, l.p.index, res.LastOffset, kerr.ErrorForCode(code))
	}
	return res, nil
}

// offsetsTopicConfigs are the topic configs of __consumer_offsets. The
// coordinator compacts it itself (it rewrites live records and deletes the
// old segments), so time and size retention must never delete from it.
// Group metadata records carry every member's subscription and
// assignment, hence the larger batch limit.
func offsetsTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":    "compact",
		"retention.ms":      "-1",
		"retention.bytes":   "-1",
		"segment.bytes":     strconv.Itoa(100 << 20), // offsets.topic.segment.bytes
		"max.message.bytes": strconv.Itoa(16 << 20),
	}
}

// defaultOffsetsTopicPartitions is Kafka's offsets.topic.num.partitions
// default for Barge (Kafka: 50); broker.Config sets it.
const defaultOffsetsTopicPartitions = 16

// offsetsTopicReplicationFactor is offsets.topic.replication.factor:
// min(3, live brokers), so committed offsets survive a broker's loss.
func (b *Broker) offsetsTopicReplicationFactor() int16 {
	return int16(max(1, min(3, len(b.node.Image().LiveBrokers()))))
}

// ensureOffsetsTopic returns __consumer_offsets, creating it first if the
// cluster does not have it yet (as Kafka does on the first FindCoordinator).
func (b *Broker) ensureOffsetsTopic(ctx context.Context) (cluster.Topic, error) {
	if t, ok := b.node.Image().Topic(group.OffsetsTopic); ok {
		return t, nil
	}
	partitions := b.cfg.OffsetsTopicPartitions
	if partitions == 0 {
		partitions = defaultOffsetsTopicPartitions
	}
	res, err := b.node.Submit(ctx, cluster.NewCommand(cluster.CreateTopic{
		Name:              group.OffsetsTopic,
		NumPartitions:     partitions,
		ReplicationFactor: b.offsetsTopicReplicationFactor(),
		Configs:           offsetsTopicConfigs(),
	}))
	if err != nil && !errors.Is(err, cluster.ErrTopicExists) {
		return cluster.Topic{}, fmt.Errorf("create %s: %w", group.OffsetsTopic, err)
	}
	img := b.node.Image()
	if err == nil {
		img = res.Image
	}
	t, ok := img.Topic(group.OffsetsTopic)
	if !ok {
		return cluster.Topic{}, fmt.Errorf("%s is not in this broker's metadata yet", group.OffsetsTopic)
	}
	if err == nil {
		b.logger.Info("created internal topic", "topic", group.OffsetsTopic, "partitions", len(t.Partitions))
	}
	return t, nil
}

// groupClient describes a request's connection for the coordinator.
func groupClient(req *netproto.Request) group.Client {
	var cl group.Client
	if req.ClientID != nil {
		cl.ID = *req.ClientID
	}
	if req.Conn.RemoteAddr != nil {
		host := req.Conn.RemoteAddr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		cl.Host = "/" + host // Kafka shows InetAddress.toString()
	}
	return cl
}
