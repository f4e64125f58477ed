package cluster

import (
	"maps"
	"slices"
	"strconv"
)

// Dynamic broker configs: the ones every broker applies from the metadata
// image, as Kafka's cluster-wide default broker configs (AlterConfigs on
// the BROKER resource with an empty name). Only the replication throttle
// rates exist.
const (
	// ConfigLeaderThrottledRate bounds, in bytes/s per broker, what a
	// leader sends to replicas being added by a move.
	ConfigLeaderThrottledRate = "leader.replication.throttled.rate"
	// ConfigFollowerThrottledRate bounds, in bytes/s per broker, what a
	// replica being added by a move fetches.
	ConfigFollowerThrottledRate = "follower.replication.throttled.rate"
)

// DynamicBrokerConfigs lists the dynamic broker config names, sorted.
func DynamicBrokerConfigs() []string {
	return []string{ConfigFollowerThrottledRate, ConfigLeaderThrottledRate}
}

// AlterBrokerConfigs sets (Set, then Delete) dynamic broker configs for the
// whole cluster. Version 3+.
type AlterBrokerConfigs struct {
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

func (AlterBrokerConfigs) Type() CommandType { return TypeAlterBrokerConfigs }

// ValidateBrokerConfig checks one dynamic broker config: a known name and,
// for the rates, a whole number of bytes/s of at least 1.
func ValidateBrokerConfig(name, value string) error {
	if !slices.Contains(DynamicBrokerConfigs(), name) {
		return errorf(ErrInvalidTopicConfig, "%q is not a dynamic broker config (known: %v)", name, DynamicBrokerConfigs())
	}
	if n, err := strconv.ParseInt(value, 10, 64); err != nil || n < 1 {
		return errorf(ErrInvalidTopicConfig, "%s=%q: want bytes per second, at least 1", name, value)
	}
	return nil
}

// BrokerConfigs returns the dynamic broker configs set (a copy).
func (img *Image) BrokerConfigs() map[string]string { return maps.Clone(img.brokerConfigs) }

// ThrottleRate returns a throttle rate config in bytes/s, 0 when unset
// (unthrottled).
func (img *Image) ThrottleRate(name string) int64 {
	n, err := strconv.ParseInt(img.brokerConfigs[name], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (img *Image) alterBrokerConfigs(version uint16, p AlterBrokerConfigs, ch *Change) error {
	if err := needsVersion(version, 3, "alter broker configs"); err != nil {
		return err
	}
	next := maps.Clone(img.brokerConfigs)
	if next == nil {
		next = map[string]string{}
	}
	for k, v := range p.Set {
		if err := ValidateBrokerConfig(k, v); err != nil {
			return err
		}
		next[k] = v
	}
	for _, k := range p.Delete {
		if !slices.Contains(DynamicBrokerConfigs(), k) {
			return errorf(ErrInvalidTopicConfig, "delete: %q is not a dynamic broker config", k)
		}
		delete(next, k)
	}
	if len(next) == 0 {
		next = nil
	}
	if maps.Equal(next, img.brokerConfigs) {
		return nil
	}
	img.brokerConfigs = next
	ch.changed = true
	return nil
}
