package broker

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs v0-4 (KIP-113, KIP-827): what this broker stores, so
// kafka-log-dirs, kadm and the consoles show Barge's disks. A broker has one
// log directory, its --data directory, reported by its absolute path; v4
// adds the volume's total and usable bytes (statfs: blocks and blocks
// available to unprivileged users, as Java's getTotalSpace and
// getUsableSpace). A null topic list asks for every hosted partition;
// partitions not hosted here are left out, as Kafka does.
//
// Size is Kafka's log size: the bytes of the partition's segment files
// (the .log files, committed records only), not counting the offset and
// time indexes, the epoch checkpoint or partition.metadata. OffsetLag is
// Kafka's for a current (not future) replica, max(HW - LEO, 0) of the local
// log, which is 0 on leaders and followers alike; Barge has no future
// replicas (AlterReplicaLogDirs moves between directories of one broker,
// and a broker has one), so IsFuture is always false.
func init() { register(kmsg.DescribeLogDirs, 0, 4, replying(handleDescribeLogDirs)) }

func handleDescribeLogDirs(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.cfg.DataDir
	if abs, err := filepath.Abs(b.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	if free, total, err := b.disk.statfs(b.cfg.DataDir); err == nil {
		dir.TotalBytes, dir.UsableBytes = total, free
	} else {
		// The directory cannot be read: Kafka answers a failed log dir
		// with KAFKA_STORAGE_ERROR and no partitions.
		b.logger.Warn("describe log dirs: statfs failed", "dir", b.cfg.DataDir, "err", err)
		dir.ErrorCode = kerr.KafkaStorageError.Code
		resp.Dirs = append(resp.Dirs, dir)
		return resp
	}
	var wanted map[topicPartition]bool
	if r.Topics != nil {
		wanted = map[topicPartition]bool{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				wanted[topicPartition{t.Topic, p}] = true
			}
		}
	}
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	for _, p := range b.replicas.all() {
		if wanted != nil && !wanted[topicPartition{p.topic, p.index}] {
			continue
		}
		if b.replicas.get(p.topic, p.index) != p {
			continue // of a deleted topic, about to go
		}
		sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		sp.Partition = p.index
		sp.Size = p.log.Size()
		sp.OffsetLag = max(p.highWatermark()-p.log.LogEndOffset(), 0)
		byTopic[p.topic] = append(byTopic[p.topic], sp)
	}
	for topic, parts := range byTopic {
		slices.SortFunc(parts, func(a, b kmsg.DescribeLogDirsResponseDirTopicPartition) int {
			return cmp.Compare(a.Partition, b.Partition)
		})
		st := kmsg.NewDescribeLogDirsResponseDirTopic()
		st.Topic, st.Partitions = topic, parts
		dir.Topics = append(dir.Topics, st)
	}
	slices.SortFunc(dir.Topics, func(a, b kmsg.DescribeLogDirsResponseDirTopic) int { return cmp.Compare(a.Topic, b.Topic) })
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
