package broker

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/barge-broker/barge/storage"
)

// topicConfigDefault describes one topic-level config: its value when the
// topic does not set it (derived from the broker-wide log defaults) and how
// a value applies to a storage.Config. apply is nil for configs Barge
// accepts and reports but does not act on (yet).
type topicConfigDefault struct {
	value func(storage.Config) string
	apply func(*storage.Config, string)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64) // values were validated by the cluster package
	return n
}

func millis(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return itoa(d.Milliseconds())
}

func durationMs(s string) time.Duration {
	n := parseInt(s)
	if n < 0 {
		return -1
	}
	return time.Duration(n) * time.Millisecond
}

func constant(v string) func(storage.Config) string { return func(storage.Config) string { return v } }

// topicConfigs lists every topic config Barge accepts (the cluster package
// validates the values) with its default.
var topicConfigs = map[string]topicConfigDefault{
	"segment.bytes": {
		func(c storage.Config) string { return itoa(c.SegmentBytes) },
		func(c *storage.Config, v string) { c.SegmentBytes = parseInt(v) }},
	"segment.ms": {
		func(c storage.Config) string { return millis(c.SegmentMs) },
		func(c *storage.Config, v string) { c.SegmentMs = durationMs(v) }},
	"retention.ms": {
		func(c storage.Config) string { return millis(c.RetentionMs) },
		func(c *storage.Config, v string) { c.RetentionMs = durationMs(v) }},
	"retention.bytes": {
		func(c storage.Config) string { return itoa(c.RetentionBytes) },
		func(c *storage.Config, v string) { c.RetentionBytes = parseInt(v) }},
	"max.message.bytes": {
		func(c storage.Config) string { return itoa(int64(c.MaxMessageBytes)) },
		func(c *storage.Config, v string) { c.MaxMessageBytes = int(parseInt(v)) }},
	"index.interval.bytes": {
		func(c storage.Config) string { return itoa(int64(c.IndexIntervalBytes)) },
		func(c *storage.Config, v string) { c.IndexIntervalBytes = int(parseInt(v)) }},
	"segment.index.bytes": {
		func(c storage.Config) string { return itoa(int64(c.SegmentIndexBytes)) },
		func(c *storage.Config, v string) { c.SegmentIndexBytes = int(parseInt(v)) }},
	"message.timestamp.type": {
		func(c storage.Config) string {
			if c.TimestampType == storage.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
		func(c *storage.Config, v string) {
			c.TimestampType = storage.CreateTime
			if v == "LogAppendTime" {
				c.TimestampType = storage.LogAppendTime
			}
		}},
	"flush.messages": {
		func(c storage.Config) string {
			if c.FlushMessages <= 0 {
				return "9223372036854775807" // Kafka's "never"
			}
			return itoa(c.FlushMessages)
		},
		func(c *storage.Config, v string) { c.FlushMessages = parseInt(v) }},
	"flush.ms": {
		func(c storage.Config) string {
			if c.FlushInterval <= 0 {
				return "9223372036854775807"
			}
			return millis(c.FlushInterval)
		},
		func(c *storage.Config, v string) {
			if n := parseInt(v); n > 0 && n < 1<<40 {
				c.FlushInterval = time.Duration(n) * time.Millisecond
			} else {
				c.FlushInterval = 0
			}
		}},
	"cleanup.policy":                      {value: constant("delete")},
	"compression.type":                    {value: constant("producer")},
	"min.insync.replicas":                 {value: constant("1")},
	"unclean.leader.election.enable":      {value: constant("false")},
	"delete.retention.ms":                 {value: constant("86400000")},
	"file.delete.delay.ms":                {value: constant("60000")},
	"max.compaction.lag.ms":               {value: constant("9223372036854775807")},
	"min.compaction.lag.ms":               {value: constant("0")},
	"min.cleanable.dirty.ratio":           {value: constant("0.5")},
	"message.timestamp.difference.max.ms": {value: constant("9223372036854775807")},
	// Accepted for Kafka 3.x clients and tools that still set them; like a
	// Kafka broker on inter.broker.protocol.version 3.0 or later, Barge
	// always writes RecordBatch v2 and never down-converts.
	"message.format.version":        {value: constant("3.0-IV1")},
	"message.downconversion.enable": {value: constant("true")},
	"preallocate":                   {value: constant("false")},
	"segment.jitter.ms":             {value: constant("0")},
}

// compactedTopic reports whether a topic's cleanup.policy includes compact.
func compactedTopic(configs map[string]string) bool {
	for _, p := range strings.Split(configs["cleanup.policy"], ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}

// logConfigFor is the storage config of a topic: the broker defaults with
// the topic's overrides applied.
func logConfigFor(defaults storage.Config, overrides map[string]string) storage.Config {
	cfg := defaults
	for k, v := range overrides {
		if d, ok := topicConfigs[k]; ok && d.apply != nil {
			d.apply(&cfg, v)
		}
	}
	return cfg
}

// sortedTopicConfigNames returns the known config names, sorted, for
// deterministic DescribeConfigs answers.
func sortedTopicConfigNames() []string {
	names := make([]string, 0, len(topicConfigs))
	for k := range topicConfigs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
