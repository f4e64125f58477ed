package broker

import (
	"strconv"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics is the broker's Prometheus registry. Each broker has its own (not
// the global one), so tests can run several in one process. Labels stay
// low-cardinality: API names, and topic/partition only for the per-log
// gauges.
type metrics struct {
	registry *prometheus.Registry

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	producedBytes prometheus.Counter
	produceErrors prometheus.Counter
}

func newMetrics(b *Broker) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "barge_requests_total", Help: "Kafka requests answered, by API.",
	}, []string{"api"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "barge_request_duration_seconds",
		Help:    "Time from reading a request to writing its response, by API (fetches include their wait).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"api"})
	m.bytesIn = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_request_bytes_total", Help: "Bytes of Kafka requests read."})
	m.bytesOut = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_response_bytes_total", Help: "Bytes of Kafka responses written, record bytes included."})
	m.producedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_produce_bytes_total", Help: "Record batch bytes appended by producers."})
	m.produceErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_produce_errors_total", Help: "Partition produces refused or failed."})
	m.registry.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.producedBytes, m.produceErrors,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	counterFunc := func(name, help string, fn func() uint64) {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			if b.server == nil {
				return 0
			}
			return float64(fn())
		}))
	}
	counterFunc("barge_fetch_sendfile_bytes_total", "Record bytes sent to fetchers with sendfile (zero copy).",
		func() uint64 { return b.server.Stats().SendfileBytes })
	counterFunc("barge_fetch_copied_bytes_total", "Record bytes sent to fetchers through a user-space buffer.",
		func() uint64 { return b.server.Stats().CopiedBytes })
	m.registry.MustRegister(&partitionCollector{b: b})
	return m
}

// ObserveRequest implements netproto.Observer.
func (m *metrics) ObserveRequest(key, _ int16, latency time.Duration, requestBytes, responseBytes int) {
	name := kmsg.NameForKey(key)
	m.requests.WithLabelValues(name).Inc()
	m.latency.WithLabelValues(name).Observe(latency.Seconds())
	m.bytesIn.Add(float64(requestBytes))
	m.bytesOut.Add(float64(responseBytes))
}

func (m *metrics) produced(_ string, n int, err error) {
	if err != nil {
		m.produceErrors.Inc()
		return
	}
	m.producedBytes.Add(float64(n))
}

// partitionCollector reports partition gauges at scrape time from the
// replica manager and the metadata image, so nothing is kept in sync.
type partitionCollector struct{ b *Broker }

var (
	descLed = prometheus.NewDesc("barge_partitions_led", "Partitions this broker leads.", nil, nil)
	descURP = prometheus.NewDesc("barge_under_replicated_partitions",
		"Partitions led by this broker whose ISR is smaller than their replica set.", nil, nil)
	descOffline = prometheus.NewDesc("barge_offline_partitions",
		"Partitions in the cluster without a leader (the same on every broker: it is read from the metadata).", nil, nil)
	descLEO  = prometheus.NewDesc("barge_log_end_offset", "Log end offset of each hosted partition.", []string{"topic", "partition"}, nil)
	descSize = prometheus.NewDesc("barge_log_size_bytes", "Bytes on disk of each hosted partition.", []string{"topic", "partition"}, nil)
)

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLed, descURP, descOffline, descLEO, descSize} {
		ch <- d
	}
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	var led, urp, offline float64
	if c.b.node != nil {
		img := c.b.node.Image()
		for _, t := range img.Topics() {
			for _, p := range t.Partitions {
				switch {
				case p.Leader == cluster.NoLeader:
					offline++
				case p.Leader == c.b.cfg.ID:
					led++
					if len(p.ISR) < len(p.Replicas) {
						urp++
					}
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descLed, prometheus.GaugeValue, led)
	ch <- prometheus.MustNewConstMetric(descURP, prometheus.GaugeValue, urp)
	ch <- prometheus.MustNewConstMetric(descOffline, prometheus.GaugeValue, offline)
	for _, p := range c.b.replicas.all() {
		part := strconv.Itoa(int(p.index))
		ch <- prometheus.MustNewConstMetric(descLEO, prometheus.GaugeValue, float64(p.log.LogEndOffset()), p.topic, part)
		ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(p.log.Size()), p.topic, part)
	}
}
