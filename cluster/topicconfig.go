package cluster

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Topic config keys whose values the cluster reads itself.
const (
	ConfigUncleanLeaderElection = "unclean.leader.election.enable"
	ConfigMinInsyncReplicas     = "min.insync.replicas"
)

// configRule checks one topic config value; it returns a reason when the
// value is not acceptable.
type configRule func(v string) (reason string, ok bool)

func longAtLeast(min int64) configRule {
	return func(v string) (string, bool) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "not a 64-bit integer", false
		}
		if n < min {
			return "below " + strconv.FormatInt(min, 10), false
		}
		return "", true
	}
}

func intAtLeast(min int64) configRule {
	long := longAtLeast(min)
	return func(v string) (string, bool) {
		if why, ok := long(v); !ok {
			return why, false
		}
		if n, _ := strconv.ParseInt(v, 10, 64); n > math.MaxInt32 {
			return "above 2147483647", false
		}
		return "", true
	}
}

func oneOf(values ...string) configRule {
	return func(v string) (string, bool) {
		if slices.Contains(values, v) {
			return "", true
		}
		return "not one of " + strings.Join(values, ", "), false
	}
}

func ratio(v string) (string, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return "not a number in [0, 1]", false
	}
	return "", true
}

// kafkaVersionPattern matches Kafka's metadata/message format versions:
// 0.10.0.0, 0.10.0-IV1, 2.8, 3.0-IV1.
var kafkaVersionPattern = regexp.MustCompile(`^\d+(\.\d+){1,3}(-IV\d+)?$`)

// kafkaVersion accepts a message.format.version value.
func kafkaVersion(v string) (string, bool) {
	if kafkaVersionPattern.MatchString(v) {
		return "", true
	}
	return "not a Kafka version such as 2.8 or 3.0-IV1", false
}

// cleanupPolicy accepts a non-empty comma-separated list of delete and
// compact, as Kafka's cleanup.policy.
func cleanupPolicy(v string) (string, bool) {
	parts := strings.Split(v, ",")
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
			return "not a list of delete and compact", false
		}
	}
	return "", true
}

// topicConfigRules are the topic configs Barge accepts, with Kafka's ranges.
// Any other key is refused, so a typo never silently does nothing.
var topicConfigRules = map[string]configRule{
	"cleanup.policy":                      cleanupPolicy,
	"compression.type":                    oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
	"delete.retention.ms":                 longAtLeast(0),
	"file.delete.delay.ms":                longAtLeast(0),
	"flush.messages":                      longAtLeast(1),
	"flush.ms":                            longAtLeast(0),
	"index.interval.bytes":                intAtLeast(0),
	"max.compaction.lag.ms":               longAtLeast(1),
	"max.message.bytes":                   intAtLeast(0),
	"message.timestamp.type":              oneOf("CreateTime", "LogAppendTime"),
	"message.format.version":              kafkaVersion,
	"message.downconversion.enable":       oneOf("true", "false"),
	"message.timestamp.difference.max.ms": longAtLeast(0),
	"min.cleanable.dirty.ratio":           ratio,
	"min.compaction.lag.ms":               longAtLeast(0),
	ConfigMinInsyncReplicas:               intAtLeast(1),
	"preallocate":                         oneOf("true", "false"),
	"retention.bytes":                     longAtLeast(-1),
	"retention.ms":                        longAtLeast(-1),
	"segment.bytes":                       intAtLeast(14),
	"segment.index.bytes":                 intAtLeast(4),
	"segment.jitter.ms":                   longAtLeast(0),
	"segment.ms":                          longAtLeast(1),
	ConfigUncleanLeaderElection:           oneOf("true", "false"),
}

// ValidateTopicConfig checks one topic config key and value. The error wraps
// ErrInvalidTopicConfig (INVALID_CONFIG) and names the key.
func ValidateTopicConfig(key, value string) error {
	rule, ok := topicConfigRules[key]
	if !ok {
		return errorf(ErrInvalidTopicConfig, "unknown topic config %q", key)
	}
	if why, ok := rule(value); !ok {
		return errorf(ErrInvalidTopicConfig, "%s=%q: %s", key, value, why)
	}
	return nil
}

// validateTopicConfigs checks every key of a config map, in sorted order so
// the error is deterministic.
func validateTopicConfigs(configs map[string]string) error {
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := ValidateTopicConfig(k, configs[k]); err != nil {
			return err
		}
	}
	return nil
}

// MinInsyncReplicas is the topic's effective min.insync.replicas: its own
// setting, or, unlike Kafka's default of 1, 2 for topics with three or more
// replicas (1 otherwise), so an acks=all write survives the loss of any
// broker out of the box.
func (t Topic) MinInsyncReplicas() int {
	if v, ok := t.Configs[ConfigMinInsyncReplicas]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			return n
		}
	}
	return DefaultMinInsyncReplicas(t.ReplicationFactor())
}

// DefaultMinInsyncReplicas is min.insync.replicas for a topic of rf replicas
// that does not set it.
func DefaultMinInsyncReplicas(rf int) int {
	if rf >= 3 {
		return 2
	}
	return 1
}

// checkMinInsyncReplicas refuses a min.insync.replicas above the replication
// factor: every acks=all write would be refused with NOT_ENOUGH_REPLICAS.
func checkMinInsyncReplicas(topic string, configs map[string]string, rf int) error {
	v, ok := configs[ConfigMinInsyncReplicas]
	if !ok {
		return nil
	}
	if n, err := strconv.Atoi(v); err == nil && n > rf {
		return errorf(ErrInvalidTopicConfig, "topic %q: %s=%d is above its replication factor %d",
			topic, ConfigMinInsyncReplicas, n, rf)
	}
	return nil
}

// uncleanAllowed reports whether a topic allows unclean leader election.
func (t *Topic) uncleanAllowed() bool {
	return t.Configs[ConfigUncleanLeaderElection] == "true"
}

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

// ValidateTopicName checks a topic name as Kafka does: 1..249 characters of
// [a-zA-Z0-9._-], and not "." or "..". The error wraps ErrInvalidTopicName.
func ValidateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > maxTopicNameLen {
		return errorf(ErrInvalidTopicName, "%q", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '-') {
			return errorf(ErrInvalidTopicName, "%q: illegal character %q", name, r)
		}
	}
	return nil
}
