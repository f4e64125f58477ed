package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic administration: CreateTopics v0-7, DeleteTopics v0-5 (v6 deletes by
// id), CreatePartitions v0-3. Any broker takes them; cluster.Node.Submit
// forwards each change to the controller and returns once it is applied
// here, so the answer reflects the new metadata.
func init() {
	register(kmsg.CreateTopics, 0, 7, replying(handleCreateTopics))
	register(kmsg.DeleteTopics, 0, 5, replying(handleDeleteTopics))
	register(kmsg.CreatePartitions, 0, 3, replying(handleCreatePartitions))
}

// adminContext bounds an admin change by the request's timeout.
func adminContext(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc) {
	if timeoutMillis <= 0 {
		timeoutMillis = 30_000
	}
	return context.WithTimeout(ctx, time.Duration(timeoutMillis)*time.Millisecond)
}

func handleCreateTopics(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	seen := map[string]int{}
	for _, t := range r.Topics {
		seen[t.Topic]++
	}
	for _, t := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = t.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		var err error
		if seen[t.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q appears %d times in the request", cluster.ErrInvalidCommand, t.Topic, seen[t.Topic])
		} else {
			err = b.createTopic(ctx, t, r.ValidateOnly, &st)
		}
		if err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
			b.logger.Warn("create topic refused", "topic", t.Topic, "err", err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createTopic(ctx context.Context, t kmsg.CreateTopicsRequestTopic, validateOnly bool, st *kmsg.CreateTopicsResponseTopic) error {
	if err := cluster.ValidateTopicName(t.Topic); err != nil {
		return err
	}
	cmd := &cluster.CreateTopic{Name: t.Topic, NumPartitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor, Configs: map[string]string{}}
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return fmt.Errorf("%w: give either a replica assignment or partition count and replication factor", cluster.ErrInvalidCommand)
		}
		for _, a := range t.ReplicaAssignment {
			cmd.Assignment = append(cmd.Assignment, a.Replicas)
		}
		cmd.NumPartitions, cmd.ReplicationFactor = int32(len(cmd.Assignment)), int16(len(cmd.Assignment[0]))
	}
	if cmd.NumPartitions == -1 {
		cmd.NumPartitions = b.cfg.DefaultPartitions
	}
	if cmd.NumPartitions <= 0 {
		return fmt.Errorf("%w: %d partitions", cluster.ErrInvalidPartitions, cmd.NumPartitions)
	}
	if cmd.ReplicationFactor == -1 {
		// The controller resolves -1 the same way when it commits.
		cmd.ReplicationFactor = b.defaultReplicationFactor()
	}
	for _, c := range t.Configs {
		if c.Value == nil {
			continue
		}
		if err := cluster.ValidateTopicConfig(c.Name, *c.Value); err != nil {
			return err
		}
		cmd.Configs[c.Name] = *c.Value
	}
	if _, exists := b.node.Image().Topic(t.Topic); exists {
		return fmt.Errorf("%w: %q", cluster.ErrTopicExists, t.Topic)
	}
	if !validateOnly {
		res, err := b.node.Submit(ctx, cluster.NewCommand(*cmd))
		if err != nil {
			return err
		}
		b.replicas.waitApplied(ctx, res.Index)
		if created, ok := res.Image.Topic(t.Topic); ok {
			st.TopicID = created.ID
			cmd.ReplicationFactor = int16(created.ReplicationFactor())
		}
		b.logger.Info("created topic", "topic", t.Topic, "partitions", cmd.NumPartitions, "replication_factor", cmd.ReplicationFactor)
	}
	st.NumPartitions, st.ReplicationFactor = cmd.NumPartitions, cmd.ReplicationFactor
	for _, name := range sortedTopicConfigNames() {
		value, source := b.topicConfigValue(cmd.Configs, name, int(cmd.ReplicationFactor))
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source = name, &value, source
		st.Configs = append(st.Configs, c)
	}
	return nil
}

func handleDeleteTopics(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	names := r.TopicNames
	for _, t := range r.Topics { // v6+ shape, kept for completeness
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	for _, name := range names {
		st := kmsg.NewDeleteTopicsResponseTopic()
		topic := name
		st.Topic = &topic
		var err error
		if t, ok := b.node.Image().Topic(name); !ok {
			err = fmt.Errorf("%w: %q", cluster.ErrUnknownTopic, name)
		} else if isInternalTopic(name) {
			err = errInternalTopic(name)
		} else {
			st.TopicID = t.ID
			var res cluster.Result
			if res, err = b.node.Submit(ctx, cluster.NewCommand(cluster.DeleteTopic{Name: name})); err == nil {
				b.replicas.waitApplied(ctx, res.Index)
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		} else {
			b.logger.Info("deleted topic", "topic", name)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func handleCreatePartitions(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	for _, t := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = t.Topic
		cmd := &cluster.CreatePartitions{Topic: t.Topic, Count: t.Count}
		for _, a := range t.Assignment {
			cmd.Assignment = append(cmd.Assignment, a.Replicas)
		}
		var err error
		topic, ok := b.node.Image().Topic(t.Topic)
		switch {
		case !ok:
			err = fmt.Errorf("%w: %q", cluster.ErrUnknownTopic, t.Topic)
		case isInternalTopic(t.Topic):
			// The coordinator of a group is found by hashing over the
			// partition count; growing it would orphan committed offsets.
			err = errInternalTopic(t.Topic)
		case t.Count <= int32(len(topic.Partitions)):
			err = fmt.Errorf("%w: topic %q has %d partitions, asked for %d", cluster.ErrInvalidPartitions, t.Topic, len(topic.Partitions), t.Count)
		case !r.ValidateOnly:
			var res cluster.Result
			if res, err = b.node.Submit(ctx, cluster.NewCommand(*cmd)); err == nil {
				b.replicas.waitApplied(ctx, res.Index)
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
