package group

import (
	"fmt"
	"log/slog"
	"time"
)

// OffsetsTopic is the internal topic that holds group metadata and committed
// offsets.
const OffsetsTopic = "__consumer_offsets"

// Config holds the coordinator's settings, with Kafka's names in the
// comments. A zero field takes the value of DefaultConfig, except
// InitialRebalanceDelay, where zero means no delay (as in Kafka).
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long the
	// first rebalance of an empty group waits for more members to join.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms and group.max.session.timeout.ms: the
	// session timeouts a member may ask for.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxGroupSize is group.max.size: members (joined and awaiting their
	// member id) per group.
	MaxGroupSize int
	// MaxMemberMetadataBytes bounds the protocol metadata one member sends
	// in JoinGroup (all its protocols together). Kafka has no such setting;
	// a larger join is answered INVALID_REQUEST.
	MaxMemberMetadataBytes int
	// MaxOffsetMetadataBytes is offset.metadata.max.bytes: the metadata
	// string a commit may carry per partition.
	MaxOffsetMetadataBytes int
	// OffsetsRetention is offsets.retention.minutes: committed offsets of a
	// group that has been empty this long are deleted.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// LoadBufferBytes is offsets.load.buffer.size: the chunk read from
	// __consumer_offsets at a time while loading.
	LoadBufferBytes int
	// MaxBatchBytes bounds each record batch the coordinator writes; larger
	// writes are split into several batches of one append.
	MaxBatchBytes int
	// CompactMinBytes and CompactRatio decide when a partition of
	// __consumer_offsets is rewritten: when its log is larger than both
	// CompactMinBytes and CompactRatio times the bytes of its live records.
	CompactMinBytes int64
	CompactRatio    int64
}

// DefaultConfig returns Kafka's defaults where Kafka has the setting.
func DefaultConfig() Config {
	return Config{
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		MaxGroupSize:                  1000,
		MaxMemberMetadataBytes:        1 << 20,
		MaxOffsetMetadataBytes:        4096,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		LoadBufferBytes:               5 << 20,
		MaxBatchBytes:                 1 << 20,
		CompactMinBytes:               64 << 20,
		CompactRatio:                  4,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.MinSessionTimeout, d.MinSessionTimeout)
	fill(&c.MaxSessionTimeout, d.MaxSessionTimeout)
	fill(&c.OffsetsRetention, d.OffsetsRetention)
	fill(&c.OffsetsRetentionCheckInterval, d.OffsetsRetentionCheckInterval)
	fillInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fillInt(&c.MaxGroupSize, d.MaxGroupSize)
	fillInt(&c.MaxMemberMetadataBytes, d.MaxMemberMetadataBytes)
	fillInt(&c.MaxOffsetMetadataBytes, d.MaxOffsetMetadataBytes)
	fillInt(&c.LoadBufferBytes, d.LoadBufferBytes)
	fillInt(&c.MaxBatchBytes, d.MaxBatchBytes)
	if c.CompactMinBytes == 0 {
		c.CompactMinBytes = d.CompactMinBytes
	}
	if c.CompactRatio == 0 {
		c.CompactRatio = d.CompactRatio
	}
	return c
}

// Validate reports the first setting that cannot work, after zero fields
// took their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("group: group.initial.rebalance.delay.ms %v is negative", c.InitialRebalanceDelay)
	case c.MinSessionTimeout < 0 || c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("group: group.min.session.timeout.ms %v and group.max.session.timeout.ms %v do not make a range", c.MinSessionTimeout, c.MaxSessionTimeout)
	case c.MaxGroupSize < 1:
		return fmt.Errorf("group: group.max.size %d must be at least 1", c.MaxGroupSize)
	case c.MaxMemberMetadataBytes < 1 || c.MaxOffsetMetadataBytes < 0:
		return fmt.Errorf("group: metadata limits must be positive")
	case c.OffsetsRetention < 0 || c.OffsetsRetentionCheckInterval < 0:
		return fmt.Errorf("group: offsets.retention.minutes and offsets.retention.check.interval.ms must be positive")
	case c.LoadBufferBytes < 1024 || c.MaxBatchBytes < 1024:
		return fmt.Errorf("group: offsets.load.buffer.size %d and the batch limit %d must be at least 1 KiB", c.LoadBufferBytes, c.MaxBatchBytes)
	case c.CompactMinBytes < 0 || c.CompactRatio < 2:
		return fmt.Errorf("group: compaction needs a minimum size >= 0 and a ratio >= 2")
	}
	return nil
}

// Options are the coordinator's inputs from the broker around it.
type Options struct {
	// PartitionCount returns the number of partitions of __consumer_offsets,
	// or 0 while the topic does not exist. Called on request goroutines.
	PartitionCount func() int32
	// PartitionExists reports whether a topic partition exists, for commits
	// (UNKNOWN_TOPIC_OR_PARTITION). Called on request goroutines.
	PartitionExists func(topic string, partition int32) bool
	// Now is the clock; time.Now when nil. Tests inject a fake.
	Now    func() time.Time
	Logger *slog.Logger
}
