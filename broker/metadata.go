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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata v0-12. v0 is kept for kafka-python's version probe; v10+ carry
// topic ids. Topics requested by name that do not exist are created when
// auto.create.topics.enable is on and the request allows it (v4+ asks).
func init() { register(kmsg.Metadata, 0, 12, replying(handleMetadata)) }

func handleMetadata(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	// Answer from the metadata this broker's partitions already match: the
	// Raft image can name this broker leader a moment before the partition
	// is open, and a client told so would get NOT_LEADER_OR_FOLLOWER and
	// back off for its metadata refresh interval.
	img := b.metadataImage()

	var names []string
	all := r.Topics == nil || (req.Version == 0 && len(r.Topics) == 0)
	if all {
		names = img.TopicNames()
	} else {
		for _, t := range r.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	allowCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || r.AllowAutoTopicCreation)
	if !all && b.anyUnknown(img, names) {
		img = b.syncMetadata(ctx)
	}
	for _, name := range names {
		t, ok := img.Topic(name)
		if !ok && !all && allowCreate {
			t, ok = b.autoCreateTopic(ctx, name)
		}
		if !ok {
			b.logger.Debug("metadata: topic unknown", "topic", name, "image_index", img.Index(), "auto_create", allowCreate)
		}
		resp.Topics = append(resp.Topics, metadataTopic(img, name, t, ok))
	}
	// The image after any auto-creation lists the brokers and controller.
	img = b.metadataImage()
	listener := b.listenerFor(req.Conn.LocalAddr)
	for _, br := range img.LiveBrokers() {
		host, port, ok := advertisedAddr(br, listener)
		if !ok {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, host, port
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	if id := img.ClusterID(); id != "" {
		resp.ClusterID = &id
	}
	resp.ControllerID = -1
	if id, ok := b.node.Controller(); ok {
		resp.ControllerID = id
	}
	return resp
}

// metadataSyncTimeout bounds the read barrier a broker runs before saying a
// topic does not exist; on a healthy cluster it takes one quorum round trip.
const metadataSyncTimeout = time.Second

// anyUnknown reports whether a valid topic name in names is missing from img.
func (b *Broker) anyUnknown(img *cluster.Image, names []string) bool {
	for _, name := range names {
		if _, ok := img.Topic(name); !ok && cluster.ValidateTopicName(name) == nil {
			return true
		}
	}
	return false
}

// syncMetadata brings this broker's metadata up to what the controller has
// committed (a Raft read barrier) and returns the image then answered from.
// Without it a topic created through one broker would be unknown for a
// moment to a client asking another — `barge topic create` then `describe`
// through the next broker did exactly that. If the controller cannot be
// reached within metadataSyncTimeout, the broker answers from what it has.
func (b *Broker) syncMetadata(ctx context.Context) *cluster.Image {
	b.trySyncMetadata(ctx)
	return b.metadataImage()
}

// trySyncMetadata is syncMetadata's barrier; it reports whether the
// controller answered.
func (b *Broker) trySyncMetadata(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, metadataSyncTimeout)
	defer cancel()
	index, err := b.node.Sync(ctx)
	if err != nil {
		b.logger.Warn("metadata read barrier failed; answering from the local image", "err", err)
		return false
	}
	b.replicas.waitApplied(ctx, index)
	return true
}

// autoCreateTopic creates a topic with the broker defaults, as Kafka does on
// a Metadata request for an unknown topic, and returns it once applied here.
func (b *Broker) autoCreateTopic(ctx context.Context, name string) (cluster.Topic, bool) {
	if cluster.ValidateTopicName(name) != nil {
		return cluster.Topic{}, false
	}
	if name == group.OffsetsTopic { // internal: its own partitions and configs
		t, err := b.ensureOffsetsTopic(ctx)
		return t, err == nil
	}
	res, err := b.node.Submit(ctx, cluster.NewCommand(cluster.CreateTopic{
		Name:              name,
		NumPartitions:     b.cfg.DefaultPartitions,
		ReplicationFactor: -1, // the controller's default: min(3, live brokers) unless set
	}))
	if err != nil && !errors.Is(err, cluster.ErrTopicExists) {
		b.logger.Warn("auto-creating topic failed", "topic", name, "err", err)
		return cluster.Topic{}, false
	}
	img := b.node.Image()
	if err == nil {
		img = res.Image
		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		applied := b.replicas.waitApplied(waitCtx, res.Index)
		cancel()
		if applied {
			img = b.metadataImage()
		}
	}
	t, ok := img.Topic(name)
	if ok && err == nil {
		b.logger.Info("auto-created topic", "topic", name, "partitions", len(t.Partitions))
	}
	return t, ok
}

func metadataTopic(img *cluster.Image, name string, t cluster.Topic, exists bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	topic := name
	mt.Topic = &topic
	if !exists {
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if cluster.ValidateTopicName(name) != nil {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		return mt
	}
	mt.TopicID = t.ID
	mt.IsInternal = isInternalTopic(name)
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		for _, r := range p.Replicas {
			if br, ok := img.Broker(r); !ok || br.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if mp.OfflineReplicas == nil {
			mp.OfflineReplicas = []int32{}
		}
		if p.Leader == cluster.NoLeader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// isInternalTopic reports Kafka's internal topics, which only the broker
// writes and which clients may neither produce to, delete nor grow.
func isInternalTopic(name string) bool { return name == group.OffsetsTopic }

// errInternalTopic refuses a client change to an internal topic
// (INVALID_TOPIC_EXCEPTION, as Kafka answers).
func errInternalTopic(name string) error {
	return fmt.Errorf("%w: %q is internal to the broker", cluster.ErrInvalidTopicName, name)
}

func splitHostPort(addr string) (string, int32) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ := strconv.Atoi(portStr)
	return host, int32(port)
}

// metadataImage is the image Metadata answers from: what reconcile applied,
// or the Raft image before the first reconcile.
func (b *Broker) metadataImage() *cluster.Image {
	if img := b.replicas.appliedImage(); img != nil {
		return img
	}
	return b.node.Image()
}
