package storage

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// TimestampType is message.timestamp.type.
type TimestampType int8

const (
	CreateTime    TimestampType = 0 // keep the producer's timestamps
	LogAppendTime TimestampType = 1 // stamp the broker's clock on append
)

// Config holds the topic-level settings a partition log obeys, with Kafka's
// names in the comments. The zero value of a field means "Kafka's default";
// use DefaultConfig and override.
type Config struct {
	SegmentBytes       int64         // segment.bytes: roll when the active segment would pass this size
	SegmentMs          time.Duration // segment.ms: roll a segment this old at the next append
	RetentionMs        time.Duration // retention.ms: delete segments whose newest record is older; <0 keeps forever
	RetentionBytes     int64         // retention.bytes: delete oldest segments while the log is larger; <0 no limit
	MaxMessageBytes    int           // max.message.bytes: largest batch accepted from a producer
	IndexIntervalBytes int           // index.interval.bytes: bytes between offset-index entries
	SegmentIndexBytes  int           // segment.index.bytes: largest offset index; the segment rolls when full
	TimestampType      TimestampType // message.timestamp.type
	FlushMessages      int64         // flush.messages: fsync after this many records; 0 never
	FlushInterval      time.Duration // flush.ms: fsync when the oldest unflushed append is this old; 0 never
	// ProducerIDExpiration is producer.id.expiration.ms: idle idempotent
	// producers are forgotten after this long.
	ProducerIDExpiration time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:         1 << 30,
		SegmentMs:            7 * 24 * time.Hour,
		RetentionMs:          7 * 24 * time.Hour,
		RetentionBytes:       -1,
		MaxMessageBytes:      1048588,
		IndexIntervalBytes:   4096,
		SegmentIndexBytes:    10 << 20,
		TimestampType:        CreateTime,
		ProducerIDExpiration: 24 * time.Hour,
	}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("storage: segment.bytes %d outside [14, %d]", c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs <= 0:
		return fmt.Errorf("storage: segment.ms %v must be positive", c.SegmentMs)
	case c.MaxMessageBytes <= 0:
		return fmt.Errorf("storage: max.message.bytes %d must be positive", c.MaxMessageBytes)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("storage: index.interval.bytes %d is negative", c.IndexIntervalBytes)
	case c.SegmentIndexBytes < 4*offsetEntrySize:
		return fmt.Errorf("storage: segment.index.bytes %d too small", c.SegmentIndexBytes)
	case c.TimestampType != CreateTime && c.TimestampType != LogAppendTime:
		return fmt.Errorf("storage: unknown message.timestamp.type %d", c.TimestampType)
	case c.FlushMessages < 0 || c.FlushInterval < 0:
		return fmt.Errorf("storage: flush.messages and flush.ms must not be negative")
	case c.ProducerIDExpiration <= 0:
		return fmt.Errorf("storage: producer.id.expiration.ms %v must be positive", c.ProducerIDExpiration)
	}
	return nil
}

// Options are the non-topic inputs of a log: where it logs and what clock it
// reads. Tests inject the clock.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time

	// With AssignLeaderEpoch, Open starts LeaderEpoch at the log end, as
	// AssignEpoch would right after it (a broker that opens the log of a
	// partition it is to lead). Done while Open brings the epoch cache in
	// line with the recovered log, it costs no checkpoint write of its own,
	// and none at all when the cache ends up as the file already has it
	// (a restart in the same epoch): with thousands of partitions those
	// fsynced writes were most of a restart.
	AssignLeaderEpoch bool
	LeaderEpoch       int32
	// AssignOnlyIfEmpty limits AssignLeaderEpoch to a log that opens
	// empty at offset 0. A follower of a partition still in its first
	// leader epoch uses it: that epoch began at offset 0, so the first
	// replicated batch would record the same entry — with an fsynced write
	// on the fetcher's path, one per partition.
	AssignOnlyIfEmpty bool

	// OnOffline, if set, is called once when a write error takes the log
	// offline (Log.Offline), with that error. It runs under the log's
	// writer lock: it must not block nor call back into the log.
	OnOffline func(err error)

	// FS is where the write path's file operations go; nil means the real
	// file system. Tests inject faults here.
	FS FileSystem
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = OSFileSystem()
	}
	return o
}
