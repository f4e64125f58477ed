package broker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// groupLagCollector exports consumer-group lag, opt-in
// (Config.GroupLagMetrics): for each group this broker coordinates and
// each topic the group committed to, the sum over the topic's partitions
// hosted here of high watermark minus committed offset. It is computed at
// scrape time from the coordinator's committed offsets and the hosted
// logs, so nothing is kept in sync. Partitions hosted on other brokers are
// left out rather than asked for over the network: a scrape stays local
// and cheap, and a group whose partitions are all elsewhere has no series
// here (`barge group describe` gives the whole picture).
type groupLagCollector struct{ b *Broker }

var descGroupLag = prometheus.NewDesc("barge_consumer_group_lag",
	"Records behind: for each group this broker coordinates and each topic it committed offsets for, the sum of high watermark minus committed offset "+
		"over the topic's partitions hosted on this broker (partitions hosted elsewhere are not counted). Opt-in: --group-lag-metrics.",
	[]string{"group", "topic"}, nil)

func (c *groupLagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descGroupLag }

func (c *groupLagCollector) Collect(ch chan<- prometheus.Metric) {
	if c.b.groups == nil || c.b.replicas == nil {
		return
	}
	type groupTopic struct{ group, topic string }
	lag := map[groupTopic]int64{}
	for _, o := range c.b.groups.CommittedOffsets() {
		p := c.b.replicas.get(o.Topic, o.Partition)
		if p == nil || o.Offset < 0 {
			continue // not hosted here (or its topic is gone); or no real offset
		}
		// A commit past the high watermark (a seek beyond the end, or a
		// log cut back) is no lag, not negative lag.
		lag[groupTopic{o.Group, o.Topic}] += max(p.highWatermark()-o.Offset, 0)
	}
	for k, v := range lag {
		ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(v), k.group, k.topic)
	}
}
