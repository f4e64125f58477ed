package broker

import (
	"slices"
	"strconv"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics is the broker's Prometheus registry. Each broker has its own (not
// the global one), so tests can run several in one process. Labels stay
// low-cardinality: API names, topic/partition only for the per-log gauges,
// and group/topic for the opt-in consumer-group lag (group_lag_metrics.go).
type metrics struct {
	registry *prometheus.Registry

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	producedBytes prometheus.Counter
	produceErrors prometheus.Counter
	acksAllWait   prometheus.Histogram
	// retentionPass is how long each retention check of every hosted log
	// took: with thousands of partitions it is the cost of the check itself.
	retentionPass prometheus.Histogram
	// fetchWakeups counts parked fetches woken, by whether the wake-up
	// answered them ("answered") or found too little and parked again
	// ("futile"): a herd of futile wake-ups is wasted CPU.
	fetchWakeups                       *prometheus.CounterVec
	fetchWakeAnswered, fetchWakeFutile prometheus.Counter

	// Counted from the metadata changes the broker applies (observeChange).
	leaderElections prometheus.Counter
	isrShrinks      prometheus.Counter
	isrExpands      prometheus.Counter
	// lastImage is the image observeChange saw last, to diff a resync
	// against. Owned by the metadata goroutine (Broker.applyMetadata).
	lastImage *cluster.Image
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
	m.acksAllWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "barge_acks_all_wait_seconds",
		Help:    "Time acks=all produce requests spent parked until the high watermark passed them (or they timed out).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)})
	m.retentionPass = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "barge_retention_check_seconds",
		Help:    "Time each retention check (every log.retention.check.interval.ms) took over all hosted logs, deletions included.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)})
	m.fetchWakeups = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "barge_fetch_wakeups_total",
		Help: "Parked fetches woken by new data, by whether the wake-up answered the fetch or it parked again."}, []string{"result"})
	m.fetchWakeAnswered, m.fetchWakeFutile = m.fetchWakeups.WithLabelValues("answered"), m.fetchWakeups.WithLabelValues("futile")
	m.leaderElections = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_leader_elections_total",
		Help: "Partitions that got a new live leader, seen in the metadata since this broker started (the same on every broker)."})
	m.isrShrinks = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_isr_shrinks_total",
		Help: "ISR shrinks of partitions this broker leads."})
	m.isrExpands = prometheus.NewCounter(prometheus.CounterOpts{Name: "barge_isr_expands_total",
		Help: "ISR expansions of partitions this broker leads."})
	m.registry.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.producedBytes, m.produceErrors, m.acksAllWait, m.retentionPass, m.fetchWakeups,
		m.leaderElections, m.isrShrinks, m.isrExpands,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))

	// Raft gauges are read at scrape time; all zero before the node starts.
	gaugeFunc := func(name, help string, fn func(*cluster.Node) float64) {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if b.node == nil {
				return 0
			}
			return fn(b.node)
		}))
	}
	gaugeFunc("barge_active_controller", "1 while this broker is the controller (the metadata Raft leader); summed over the cluster it is 1.",
		func(n *cluster.Node) float64 {
			if n.IsController() {
				return 1
			}
			return 0
		})
	gaugeFunc("barge_raft_term", "Current term of the metadata Raft log.",
		func(n *cluster.Node) float64 { return float64(n.RaftStatus().Term) })
	gaugeFunc("barge_raft_commit_index", "Commit index of the metadata Raft log on this broker.",
		func(n *cluster.Node) float64 { return float64(n.RaftStatus().CommitIndex) })
	gaugeFunc("barge_raft_applied_index", "Last metadata Raft index applied on this broker.",
		func(n *cluster.Node) float64 { return float64(n.RaftStatus().AppliedIndex) })

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
	counterFunc("barge_connections_send_timeout_total", "Connections closed because the client read nothing of a response for --send-timeout.",
		func() uint64 { return b.server.Stats().ConnectionsSendTimeout })
	counterFunc("barge_connections_over_ip_limit_total", "Connections closed at accept: their address had --max-connections-per-ip open.",
		func() uint64 { return b.server.Stats().ConnectionsOverIPLimit })
	counterFunc("barge_accept_stalls_total", "Times accepting paused at --max-connections.",
		func() uint64 { return b.server.Stats().AcceptStalls })
	counterFunc("barge_request_bytes_stalls_total", "Times a connection waited for room in --queued-max-request-bytes before reading a request.",
		func() uint64 { return b.server.Stats().RequestBytesStalls })
	counterFunc("barge_request_copied_bytes_total", "Request bytes copied in user space while reading: the heads of large requests that found no reusable buffer of their size.",
		func() uint64 { return b.server.Stats().RequestCopiedBytes })
	for _, g := range []struct {
		name, help string
		value      func() float64
	}{
		{"barge_storage_free_bytes", "Free bytes on the data disk at its last read (every second).",
			func() float64 { return float64(b.disk.free.Load()) }},
		{"barge_storage_min_free_bytes", "The free-space reserve (--storage-min-free-bytes); below it produces are refused.",
			func() float64 { return float64(b.disk.reserve.Load()) }},
		{"barge_storage_offline_logs", "Partition logs a write error took offline; above 0 the broker holds its storage until it is restarted.",
			func() float64 { return float64(b.offline.count.Load()) }},
		{"barge_storage_writes_held", "1 while produces are refused and follower fetches paused because the data disk is below its reserve.",
			func() float64 {
				if b.disk.full() {
					return 1
				}
				return 0
			}},
	} {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help}, g.value))
	}
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "barge_queued_request_bytes", Help: "Bytes of requests read and not yet answered, held against --queued-max-request-bytes.",
	}, func() float64 {
		if b.server == nil {
			return 0
		}
		return float64(b.server.Stats().QueuedRequestBytes)
	}))
	counterFunc("barge_replication_sendfile_bytes_total", "Record bytes sent to follower brokers with sendfile (part of barge_fetch_sendfile_bytes_total).",
		func() uint64 { return b.server.Stats().ReplicaSendfileBytes })
	counterFunc("barge_replication_copied_bytes_total", "Record bytes sent to follower brokers through a user-space buffer.",
		func() uint64 { return b.server.Stats().ReplicaCopiedBytes })
	m.registry.MustRegister(&partitionCollector{b: b}, &replicationCollector{b: b})
	if b.cfg.GroupLagMetrics {
		m.registry.MustRegister(&groupLagCollector{b: b})
	}
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

// observeChange counts the leader elections and ISR changes in one metadata
// change. Called from the metadata goroutine after the change is applied.
// A resync (which has no Prev) is diffed against the last image seen.
func (m *metrics) observeChange(self int32, c *cluster.Change) {
	prev, refs := c.Prev, c.Partitions
	if c.Resync {
		prev, refs = m.lastImage, nil
		for _, t := range c.Image.Topics() {
			for _, p := range t.Partitions {
				refs = append(refs, cluster.PartitionRef{Topic: t.Name, TopicID: t.ID, Partition: p.Index})
			}
		}
	}
	m.lastImage = c.Image
	if prev == nil {
		return
	}
	for _, ref := range refs {
		cur, ok1 := partitionByRef(c.Image, ref)
		old, ok2 := partitionByRef(prev, ref)
		if !ok1 || !ok2 {
			continue // created or deleted: no election
		}
		if cur.Leader != cluster.NoLeader && cur.LeaderEpoch != old.LeaderEpoch {
			m.leaderElections.Inc()
		}
		if cur.Leader != self {
			continue
		}
		if slices.ContainsFunc(old.ISR, func(id int32) bool { return !slices.Contains(cur.ISR, id) }) {
			m.isrShrinks.Inc()
		}
		if slices.ContainsFunc(cur.ISR, func(id int32) bool { return !slices.Contains(old.ISR, id) }) {
			m.isrExpands.Inc()
		}
	}
}

func partitionByRef(img *cluster.Image, ref cluster.PartitionRef) (cluster.Partition, bool) {
	t, ok := img.TopicByID(ref.TopicID)
	if !ok || ref.Partition < 0 || int(ref.Partition) >= len(t.Partitions) {
		return cluster.Partition{}, false
	}
	return t.Partitions[ref.Partition], true
}

// partitionCollector reports partition gauges at scrape time from the
// replica manager and the metadata image, so nothing is kept in sync.
type partitionCollector struct{ b *Broker }

var (
	descLed = prometheus.NewDesc("barge_partitions_led", "Partitions this broker leads.", nil, nil)
	// descLeading differs from descLed while logs open (at start, after
	// creating many partitions): it counts what serves produces now.
	descLeading = prometheus.NewDesc("barge_partitions_leading",
		"Partitions hosted here whose log is open and whose replica leads (the metadata may say more are led).", nil, nil)
	descURP = prometheus.NewDesc("barge_under_replicated_partitions",
		"Partitions led by this broker whose ISR is smaller than their replica set.", nil, nil)
	descUnderMinISR = prometheus.NewDesc("barge_under_min_isr_partitions",
		"Partitions led by this broker whose ISR is smaller than their min.insync.replicas.", nil, nil)
	descOffline = prometheus.NewDesc("barge_offline_partitions",
		"Partitions in the cluster without a leader (the same on every broker: it is read from the metadata).", nil, nil)
	descLEO  = prometheus.NewDesc("barge_log_end_offset", "Log end offset of each hosted partition.", []string{"topic", "partition"}, nil)
	descSize = prometheus.NewDesc("barge_log_size_bytes", "Bytes on disk of each hosted partition.", []string{"topic", "partition"}, nil)
)

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLed, descLeading, descURP, descUnderMinISR, descOffline, descLEO, descSize} {
		ch <- d
	}
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	var led, urp, underMinISR, offline float64
	if c.b.node != nil {
		img := c.b.node.Image()
		for _, t := range img.Topics() {
			minISR := t.MinInsyncReplicas()
			for _, p := range t.Partitions {
				switch {
				case p.Leader == cluster.NoLeader:
					offline++
				case p.Leader == c.b.cfg.ID:
					led++
					if len(p.ISR) < len(p.TargetReplicas()) {
						urp++
					}
					if len(p.ISR) < minISR {
						underMinISR++
					}
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descLed, prometheus.GaugeValue, led)
	ch <- prometheus.MustNewConstMetric(descURP, prometheus.GaugeValue, urp)
	ch <- prometheus.MustNewConstMetric(descUnderMinISR, prometheus.GaugeValue, underMinISR)
	ch <- prometheus.MustNewConstMetric(descOffline, prometheus.GaugeValue, offline)
	var leading float64
	for _, p := range c.b.replicas.all() {
		if p.leads() {
			leading++
		}
		part := strconv.Itoa(int(p.index))
		ch <- prometheus.MustNewConstMetric(descLEO, prometheus.GaugeValue, float64(p.log.LogEndOffset()), p.topic, part)
		ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(p.log.Size()), p.topic, part)
	}
	ch <- prometheus.MustNewConstMetric(descLeading, prometheus.GaugeValue, leading)
}

// replicationCollector reports the follower side (bytes appended from each
// source broker) and the leader side (records each follower is behind, over
// the partitions this broker leads) at scrape time. Labelled by broker id
// only, so the series grow with the cluster, not with partitions.
type replicationCollector struct{ b *Broker }

var (
	descFetched = prometheus.NewDesc("barge_replica_fetch_bytes_total",
		"Record bytes this broker's followers fetched and appended, by the broker they fetched from.", []string{"source_broker"}, nil)
	descFollowerLag = prometheus.NewDesc("barge_replica_follower_lag_records",
		"Records each follower is behind this broker's log ends, summed over the partitions this broker leads.", []string{"follower"}, nil)
)

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFetched
	ch <- descFollowerLag
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	for id, n := range c.b.repl.Metrics().FetchedBytes() {
		ch <- prometheus.MustNewConstMetric(descFetched, prometheus.CounterValue, float64(n), strconv.Itoa(int(id)))
	}
	lags := map[int32]int64{}
	for _, r := range c.b.repl.Replicas() {
		r.FollowerLags(lags)
	}
	for id, n := range lags {
		ch <- prometheus.MustNewConstMetric(descFollowerLag, prometheus.GaugeValue, float64(n), strconv.Itoa(int(id)))
	}
}
