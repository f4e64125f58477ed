package broker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/barge-broker/barge/broker/group"
	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/storage"
)

// Config is everything `barge serve` sets. Zero values take the defaults of
// DefaultConfig; Validate reports what is wrong.
type Config struct {
	ID      int32  // --id: broker id, unique in the cluster
	DataDir string // --data: partition logs and Raft state live here

	KafkaAddr           string // --kafka: Kafka listener, host:port (the one-listener shorthand of Listeners)
	AdvertisedKafkaAddr string // --advertise: address given to clients in Metadata; KafkaAddr when empty

	// Listeners (--listeners NAME=host:port,...) are named Kafka
	// listeners; when given, KafkaAddr is not used. A client is told
	// every broker's address on the listener its request arrived on.
	Listeners []Listener
	// AdvertisedListeners (--advertised-listeners) give the address
	// clients dial for each listener; a listener not named here is
	// advertised at its bound address.
	AdvertisedListeners []Listener
	// InterBrokerListener (--inter-broker-listener) is the listener other
	// brokers' followers fetch from; may be empty with one listener.
	InterBrokerListener string
	RaftAddr            string // --raft: Raft transport and controller forwarding
	GossipAddr          string // --gossip: memberlist, TCP and UDP
	// AdvertisedRaftAddr and AdvertisedGossipAddr (--advertise-raft,
	// --advertise-gossip) are what peers dial when the bound addresses are
	// not routable (0.0.0.0, or behind NAT); empty: the bound addresses.
	AdvertisedRaftAddr   string
	AdvertisedGossipAddr string
	HTTPAddr             string // --http: /metrics, /healthz, /readyz, /v1/cluster, /debug/pprof; empty disables
	Rack                 string // --rack

	Join            []string // --join: gossip addresses of brokers to join
	BootstrapExpect int      // --bootstrap-expect: brokers that form the first Raft voter set
	MaxVoters       int      // --max-voters: Raft voters; later brokers join as non-voters
	// ClusterSecret (--cluster-secret) authenticates the brokers to each
	// other on gossip and the Raft port; empty: no authentication. See
	// cluster.Config.ClusterSecret.
	ClusterSecret string
	RecoverQuorum bool // --recover-quorum: become the only Raft voter at start (a majority lost for good)

	// FastFailureDetection uses second-scale Raft and gossip timeouts, for
	// clusters on one machine (tests, demos).
	FastFailureDetection bool

	AutoCreateTopics         bool  // auto.create.topics.enable
	DefaultPartitions        int32 // num.partitions
	DefaultReplicationFactor int16 // default.replication.factor; -1 (the default): min(3, live brokers)

	// AutoLeaderRebalance (auto.leader.rebalance.enable, default true):
	// while this broker is the controller it hands leadership back to the
	// preferred replicas every LeaderImbalanceCheckInterval
	// (leader.imbalance.check.interval.seconds, default 300 s) for each
	// broker whose share of misplaced leaders exceeds
	// LeaderImbalancePercentage (leader.imbalance.per.broker.percentage,
	// default 10). See cluster.LeaderRebalance.
	AutoLeaderRebalance          bool
	LeaderImbalancePercentage    int
	LeaderImbalanceCheckInterval time.Duration

	// ReplicaLagMax is replica.lag.time.max.ms: a follower that has not
	// caught up for this long leaves the ISR (default 30 s).
	ReplicaLagMax time.Duration
	// ReplicaFetchMaxWait is replica.fetch.wait.max.ms (default 500 ms).
	ReplicaFetchMaxWait time.Duration
	// NumReplicaFetchers is num.replica.fetchers: fetchers (connections)
	// per source broker; more spread many partitions over cores.
	NumReplicaFetchers int
	// MinFreeBytes is the free-space reserve of the data disk
	// (storage_min_free_bytes): below it produces are refused and follower
	// fetches pause, so metadata, deletions and trims keep working.
	// AutoMinFreeBytes (the default): 5% of the disk, at most 1 GiB; 0
	// turns the reserve off.
	MinFreeBytes int64
	// StorageFS takes the partition logs' file writes; nil means the real
	// file system. Tests put a fault-injecting one here.
	StorageFS storage.FileSystem
	// MaxParkedProduces bounds the acks=all produce requests waiting for
	// the high watermark; more block their connection (back-pressure).
	MaxParkedProduces int

	// Log holds the broker-wide defaults of the topic-level log settings
	// (log.segment.bytes, log.retention.ms, ...); topics override them.
	Log storage.Config

	// OffsetsTopicPartitions is offsets.topic.num.partitions: the
	// partitions __consumer_offsets gets when it is created.
	OffsetsTopicPartitions int32
	// Group holds the group coordinator's settings (group.* and
	// offsets.*); zero fields take Kafka's defaults.
	Group group.Config
	// GroupLagMetrics (--group-lag-metrics) exports
	// barge_consumer_group_lag{group,topic}, computed at each scrape for
	// the groups this broker coordinates. Off by default: its series grow
	// with groups × topics.
	GroupLagMetrics bool

	MaxRequestBytes int           // socket.request.max.bytes
	IdleTimeout     time.Duration // connections.max.idle.ms
	// MaxConnections (max.connections) pauses accepting while this many
	// client connections are open; MaxConnectionsPerIP
	// (max.connections.per.ip) closes a connection from an address that
	// has that many. 0: no limit.
	MaxConnections      int
	MaxConnectionsPerIP int
	// QueuedMaxRequestBytes (queued.max.request.bytes) bounds the bytes of
	// requests read and not yet answered, over all connections: a reader
	// waits for room rather than allocating. 0: no limit.
	QueuedMaxRequestBytes int64
	// StreamProduceMinBytes: produce requests of at least this many bytes
	// are appended partition by partition while they arrive
	// (netproto.ProduceStream); 0 reads every request whole first. The
	// default, 4 MiB, streams the tens of MiB franz-go sends to many
	// partitions one request at a time, where streaming saved a quarter of
	// the broker's CPU per GB; smaller requests, often pipelined several at
	// a time, cost less read whole (0.57-0.59 against 0.66-0.74 CPU-s per
	// GB for 2 MB requests, five in flight).
	StreamProduceMinBytes int
	// SendTimeout closes a connection whose client reads nothing of a
	// response for this long; negative disables it.
	SendTimeout            time.Duration
	RetentionCheckInterval time.Duration // log.retention.check.interval.ms
	ShutdownTimeout        time.Duration // how long SIGTERM waits for in-flight requests

	Logger *slog.Logger
}

// DefaultConfig is a single-node broker on the architecture's default ports
// with data in ./barge-data.
func DefaultConfig() Config {
	return Config{
		ID:                       0,
		DataDir:                  "./barge-data",
		KafkaAddr:                "127.0.0.1:9092",
		RaftAddr:                 "127.0.0.1:9093",
		GossipAddr:               "127.0.0.1:9094",
		HTTPAddr:                 "127.0.0.1:9644",
		MaxVoters:                3,
		AutoCreateTopics:         true,
		DefaultPartitions:        1,
		DefaultReplicationFactor: cluster.AutoReplicationFactor,
		ReplicaLagMax:            30 * time.Second,
		ReplicaFetchMaxWait:      500 * time.Millisecond,
		NumReplicaFetchers:       1,
		MinFreeBytes:             AutoMinFreeBytes,
		MaxParkedProduces:        10000,
		Log:                      storage.DefaultConfig(),
		OffsetsTopicPartitions:   16,
		Group:                    group.DefaultConfig(),
		MaxRequestBytes:          100 << 20,
		IdleTimeout:              10 * time.Minute,
		MaxConnections:           10000,
		QueuedMaxRequestBytes:    256 << 20,
		StreamProduceMinBytes:    4 << 20,
		SendTimeout:              60 * time.Second,
		RetentionCheckInterval:   5 * time.Minute,
		ShutdownTimeout:          30 * time.Second,

		// Leader balance (cluster.LeaderRebalance), Kafka's defaults.
		AutoLeaderRebalance:          true,
		LeaderImbalancePercentage:    cluster.DefaultLeaderImbalancePercentage,
		LeaderImbalanceCheckInterval: cluster.DefaultLeaderImbalanceCheckInterval,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ID < 0:
		return fmt.Errorf("broker: --id %d must not be negative", c.ID)
	case c.DataDir == "":
		return fmt.Errorf("broker: --data must name a directory")
	case c.ClusterSecret != "" && len(c.ClusterSecret) < 16:
		return fmt.Errorf("broker: --cluster-secret has %d bytes, want at least 16 (or none)", len(c.ClusterSecret))
	case c.DefaultPartitions < 1:
		return fmt.Errorf("broker: num.partitions %d must be at least 1", c.DefaultPartitions)
	case c.DefaultReplicationFactor < 1 && c.DefaultReplicationFactor != cluster.AutoReplicationFactor:
		return fmt.Errorf("broker: default.replication.factor %d must be at least 1 (or -1: min(3, live brokers))", c.DefaultReplicationFactor)
	case c.LeaderImbalancePercentage < 0 || c.LeaderImbalancePercentage > 100:
		return fmt.Errorf("broker: leader.imbalance.per.broker.percentage %d must be between 0 and 100", c.LeaderImbalancePercentage)
	case c.LeaderImbalanceCheckInterval <= 0:
		return fmt.Errorf("broker: leader.imbalance.check.interval.seconds must be at least 1 second, have %v", c.LeaderImbalanceCheckInterval)
	case c.RetentionCheckInterval <= 0:
		return fmt.Errorf("broker: log.retention.check.interval.ms must be at least 1 ms, have %v", c.RetentionCheckInterval)
	case c.ReplicaLagMax < 0 || c.ReplicaFetchMaxWait < 0:
		return fmt.Errorf("broker: replica.lag.time.max.ms and replica.fetch.wait.max.ms must not be negative")
	case c.MinFreeBytes < 0 && c.MinFreeBytes != AutoMinFreeBytes:
		return fmt.Errorf("broker: --storage-min-free-bytes %d must be a byte count, 0 (no reserve) or -1 (5%% of the disk, at most 1 GiB)", c.MinFreeBytes)
	case c.NumReplicaFetchers < 1 || c.NumReplicaFetchers > 64:
		return fmt.Errorf("broker: num.replica.fetchers %d must be between 1 and 64", c.NumReplicaFetchers)
	case c.MaxParkedProduces < 1:
		return fmt.Errorf("broker: the bound on parked acks=all produces must be at least 1, have %d", c.MaxParkedProduces)
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("broker: socket.request.max.bytes %d is too small", c.MaxRequestBytes)
	case c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0:
		return fmt.Errorf("broker: max.connections %d and max.connections.per.ip %d must not be negative (0: no limit)", c.MaxConnections, c.MaxConnectionsPerIP)
	case c.QueuedMaxRequestBytes != 0 && c.QueuedMaxRequestBytes < int64(c.MaxRequestBytes):
		return fmt.Errorf("broker: queued.max.request.bytes %d is below socket.request.max.bytes %d: one largest request must fit (0: no limit)", c.QueuedMaxRequestBytes, c.MaxRequestBytes)
	case c.OffsetsTopicPartitions < 0:
		return fmt.Errorf("broker: offsets.topic.num.partitions %d must be positive", c.OffsetsTopicPartitions)
	}
	if _, err := c.planListeners(); err != nil {
		return err
	}
	if err := c.Group.Validate(); err != nil {
		return err
	}
	return c.Log.Validate()
}
