package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a Node. `barge serve` fills it from its flags
// (--id, --data, --raft, --gossip, --join, --bootstrap-expect, ...); tests
// fill it directly. New validates it and fills defaults into a copy.
type Config struct {
	// ID is the broker id (--id), unique in the cluster, >= 0.
	ID int32
	// DataDir is the broker's data directory (--data); Raft keeps its log,
	// stable store and snapshots under DataDir/raft.
	DataDir string

	// KafkaAddr is the Kafka listener (host:port). The cluster package does
	// not listen on it; it advertises AdvertisedKafkaAddr, or KafkaAddr when
	// that is empty, to clients through the metadata image.
	KafkaAddr           string
	AdvertisedKafkaAddr string
	// Listeners are the broker's advertised named listeners as
	// FormatListeners writes them, registered in the image;
	// AdvertisedKafkaAddr is then the inter-broker one's. Empty for a
	// broker with one unnamed listener.
	Listeners string
	// RaftAddr is where this broker listens for Raft and for commands
	// forwarded to the controller (--raft). Port 0 picks a free port;
	// Node.RaftAddr reports it. AdvertisedRaftAddr, when set, is what peers
	// dial instead (e.g. when RaftAddr binds 0.0.0.0).
	RaftAddr           string
	AdvertisedRaftAddr string
	// GossipAddr is the memberlist address, TCP and UDP on one port
	// (--gossip). Port 0 picks a free port; Node.GossipAddr reports it.
	GossipAddr           string
	AdvertisedGossipAddr string
	// HTTPAddr and Rack are carried in gossip metadata and the image only.
	HTTPAddr string
	Rack     string
	// UncleanShutdown says the broker's previous process did not shut down
	// cleanly, so its logs may have lost their un-fsynced tails; the
	// controller then takes it out of ISRs and ELRs (KIP-966) when it
	// registers. The broker decides it from its clean-shutdown marker.
	UncleanShutdown bool
	// StorageHeld, when set, reports whether the broker's storage refuses
	// writes now (its disk below the free-space reserve); the heartbeats
	// carry it to the controller (see storagehold.go).
	StorageHeld func() bool

	// Join lists gossip addresses of brokers to join (--join). Empty with
	// BootstrapExpect <= 1 means a lone broker that bootstraps itself.
	Join []string
	// BootstrapExpect is the number of brokers that form the first voter set
	// (--bootstrap-expect). 0 with Join set means: join an existing
	// cluster and never bootstrap.
	BootstrapExpect int
	// RecoverQuorum (--recover-quorum) makes this broker the only Raft voter
	// at start, from its own log: for when a majority of voters is lost
	// for good (see Node.recoverQuorum).
	RecoverQuorum bool
	// MaxVoters caps the Raft voters (default 3); later brokers are added
	// as non-voters.
	MaxVoters int

	// DefaultPartitions and DefaultReplicationFactor stand in for -1 in
	// CreateTopic, as Kafka's num.partitions (default 1) and
	// default.replication.factor (default AutoReplicationFactor: min(3, live
	// brokers), where Kafka defaults to 1).
	DefaultPartitions        int32
	DefaultReplicationFactor int16

	// LeaderRebalance configures automatic preferred-leader elections
	// (leaderbalance.go); the zero value disables them.
	LeaderRebalance LeaderRebalance

	// ClusterSecret (--cluster-secret), when set, authenticates the
	// brokers to each other: gossip is encrypted and authenticated with a
	// key derived from it, and every connection to the Raft port (Raft and
	// forwarded commands) must pass a challenge-response handshake first
	// (auth.go). Every broker of a cluster needs the same secret; at least
	// 16 bytes. Empty: no authentication.
	ClusterSecret string

	// Timeouts tunes Raft, gossip and the controller; zero fields take the
	// values of DefaultTimeouts.
	Timeouts Timeouts

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Forwarder carries commands from a broker to the controller; nil uses
	// the built-in TCP forwarder on the controller's Raft address.
	Forwarder Forwarder

	// wrapGossip, set only by this package's tests, wraps memberlist's
	// network transport in a fault-injecting layer.
	wrapGossip func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// Timeouts groups the tunable durations of a Node. Production uses
// DefaultTimeouts; single-machine clusters and tests use LoopbackTimeouts.
type Timeouts struct {
	RaftHeartbeat   time.Duration
	RaftElection    time.Duration
	RaftLeaderLease time.Duration
	RaftCommit      time.Duration
	// SnapshotInterval and SnapshotThreshold are raft's: how often to check,
	// and how many log entries since the last snapshot trigger a new one.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64

	GossipProbeInterval time.Duration
	GossipProbeTimeout  time.Duration
	GossipInterval      time.Duration
	GossipPushPull      time.Duration
	GossipSuspicionMult int
	// GossipDeadReclaim lets a broker that died come back at a new address
	// under its old id after this long.
	GossipDeadReclaim time.Duration

	// Submit bounds Node.Submit when the caller's context has no deadline.
	Submit time.Duration
	// Reconcile is the controller's period between reconciliations (it also
	// runs on every membership change).
	Reconcile time.Duration
	// BootstrapSettle is how long the set of brokers seen must stay the same
	// before the lowest id bootstraps the voter set.
	BootstrapSettle time.Duration
	// DeadVoterReplace is how long a voter must be dead before the
	// controller replaces it with a live non-voter; negative disables.
	DeadVoterReplace time.Duration
	// JoinRetry is the pause between attempts to join the gossip seeds.
	JoinRetry time.Duration

	// BrokerHeartbeat is how often a broker heartbeats to the controller
	// (Kafka's broker.heartbeat.interval.ms). BrokerHeartbeatMiss is how
	// long the controller waits for one before a broker that gossip also
	// lost is fenced; BrokerSession fences a broker that gossip still sees
	// (Kafka's broker.session.timeout.ms). FailoverGrace: a new controller
	// fences nobody this long. UnfenceHold: a fenced broker must heartbeat
	// without a gap this long before it is unfenced (see liveness.go).
	BrokerHeartbeat     time.Duration
	BrokerHeartbeatMiss time.Duration
	BrokerSession       time.Duration
	FailoverGrace       time.Duration
	UnfenceHold         time.Duration
}

// DefaultTimeouts returns timeouts for brokers on a LAN.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		RaftHeartbeat:       1000 * time.Millisecond,
		RaftElection:        1000 * time.Millisecond,
		RaftLeaderLease:     500 * time.Millisecond,
		RaftCommit:          50 * time.Millisecond,
		SnapshotInterval:    2 * time.Minute,
		SnapshotThreshold:   8192,
		GossipProbeInterval: time.Second,
		GossipProbeTimeout:  500 * time.Millisecond,
		GossipInterval:      200 * time.Millisecond,
		GossipPushPull:      30 * time.Second,
		GossipSuspicionMult: 4,
		GossipDeadReclaim:   10 * time.Second,
		Submit:              30 * time.Second,
		Reconcile:           500 * time.Millisecond,
		BootstrapSettle:     2 * time.Second,
		DeadVoterReplace:    5 * time.Minute,
		JoinRetry:           time.Second,
		BrokerHeartbeat:     500 * time.Millisecond,
		BrokerHeartbeatMiss: 2 * time.Second,
		BrokerSession:       9 * time.Second,
		FailoverGrace:       3 * time.Second,
		UnfenceHold:         2 * time.Second,
	}
}

// LoopbackTimeouts returns short timeouts for clusters whose brokers share
// one machine (tests, demos): failures are detected within about a second.
func LoopbackTimeouts() Timeouts {
	return Timeouts{
		RaftHeartbeat:       300 * time.Millisecond,
		RaftElection:        300 * time.Millisecond,
		RaftLeaderLease:     150 * time.Millisecond,
		RaftCommit:          10 * time.Millisecond,
		SnapshotInterval:    5 * time.Second,
		SnapshotThreshold:   1024,
		GossipProbeInterval: 200 * time.Millisecond,
		GossipProbeTimeout:  100 * time.Millisecond,
		GossipInterval:      50 * time.Millisecond,
		GossipPushPull:      2 * time.Second,
		GossipSuspicionMult: 2,
		GossipDeadReclaim:   500 * time.Millisecond,
		Submit:              10 * time.Second,
		Reconcile:           100 * time.Millisecond,
		BootstrapSettle:     300 * time.Millisecond,
		DeadVoterReplace:    2 * time.Second,
		JoinRetry:           100 * time.Millisecond,
		BrokerHeartbeat:     100 * time.Millisecond,
		BrokerHeartbeatMiss: 500 * time.Millisecond,
		BrokerSession:       3 * time.Second,
		FailoverGrace:       time.Second,
		UnfenceHold:         time.Second,
	}
}

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&t.RaftHeartbeat, d.RaftHeartbeat)
	setDur(&t.RaftElection, d.RaftElection)
	setDur(&t.RaftLeaderLease, d.RaftLeaderLease)
	setDur(&t.RaftCommit, d.RaftCommit)
	setDur(&t.SnapshotInterval, d.SnapshotInterval)
	if t.SnapshotThreshold == 0 {
		t.SnapshotThreshold = d.SnapshotThreshold
	}
	setDur(&t.GossipProbeInterval, d.GossipProbeInterval)
	setDur(&t.GossipProbeTimeout, d.GossipProbeTimeout)
	setDur(&t.GossipInterval, d.GossipInterval)
	setDur(&t.GossipPushPull, d.GossipPushPull)
	if t.GossipSuspicionMult == 0 {
		t.GossipSuspicionMult = d.GossipSuspicionMult
	}
	setDur(&t.GossipDeadReclaim, d.GossipDeadReclaim)
	setDur(&t.Submit, d.Submit)
	setDur(&t.Reconcile, d.Reconcile)
	setDur(&t.BootstrapSettle, d.BootstrapSettle)
	setDur(&t.DeadVoterReplace, d.DeadVoterReplace)
	setDur(&t.JoinRetry, d.JoinRetry)
	setDur(&t.BrokerHeartbeat, d.BrokerHeartbeat)
	setDur(&t.BrokerHeartbeatMiss, d.BrokerHeartbeatMiss)
	setDur(&t.BrokerSession, d.BrokerSession)
	setDur(&t.FailoverGrace, d.FailoverGrace)
	setDur(&t.UnfenceHold, d.UnfenceHold)
	return t
}

// withDefaults returns a validated copy of c with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, errorf(ErrInvalidNodeConfig, format, args...)
	}
	if c.ID < 0 {
		return bad("broker id %d is negative", c.ID)
	}
	if c.DataDir == "" {
		return bad("data directory is empty")
	}
	if c.AdvertisedKafkaAddr == "" {
		c.AdvertisedKafkaAddr = c.KafkaAddr
	}
	if c.AdvertisedKafkaAddr == "" {
		return bad("kafka address is empty")
	}
	for name, addr := range map[string]string{"raft": c.RaftAddr, "gossip": c.GossipAddr} {
		if _, _, err := splitHostPort(addr); err != nil {
			return bad("%s address %q: %v", name, addr, err)
		}
	}
	if c.AdvertisedGossipAddr != "" {
		if _, _, err := splitHostPort(c.AdvertisedGossipAddr); err != nil {
			return bad("advertised gossip address %q: %v", c.AdvertisedGossipAddr, err)
		}
	}
	if c.ClusterSecret != "" && len(c.ClusterSecret) < minSecretLen {
		return bad("cluster secret has %d bytes, want at least %d", len(c.ClusterSecret), minSecretLen)
	}
	if c.BootstrapExpect < 0 {
		return bad("bootstrap-expect %d is negative", c.BootstrapExpect)
	}
	if c.MaxVoters == 0 {
		c.MaxVoters = 3
	}
	if c.MaxVoters < 1 || c.MaxVoters%2 == 0 {
		return bad("max voters %d must be odd (1, 3, 5, ...): an even voter count tolerates no more failures than the odd one below it", c.MaxVoters)
	}
	if c.BootstrapExpect > c.MaxVoters {
		return bad("bootstrap-expect %d exceeds max voters %d", c.BootstrapExpect, c.MaxVoters)
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = AutoReplicationFactor
	}
	if c.DefaultPartitions < 1 || (c.DefaultReplicationFactor < 1 && c.DefaultReplicationFactor != AutoReplicationFactor) {
		return bad("default partitions %d / replication factor %d below 1",
			c.DefaultPartitions, c.DefaultReplicationFactor)
	}
	if c.LeaderRebalance.CheckInterval == 0 {
		c.LeaderRebalance.CheckInterval = DefaultLeaderImbalanceCheckInterval
	}
	if lr := c.LeaderRebalance; lr.CheckInterval < 0 || lr.ImbalancePercentage < 0 || lr.ImbalancePercentage > 100 {
		return bad("leader rebalance check interval %v must be positive and imbalance percentage %d in 0..100",
			lr.CheckInterval, lr.ImbalancePercentage)
	}
	c.Timeouts = c.Timeouts.withDefaults()
	t := c.Timeouts
	if t.RaftLeaderLease > t.RaftHeartbeat || t.RaftElection < t.RaftHeartbeat {
		return bad("raft timeouts need lease <= heartbeat <= election, have %v, %v, %v",
			t.RaftLeaderLease, t.RaftHeartbeat, t.RaftElection)
	}
	if t.BrokerHeartbeatMiss <= t.BrokerHeartbeat || t.BrokerSession < t.BrokerHeartbeatMiss {
		return bad("broker heartbeat timeouts need interval < miss <= session, have %v, %v, %v",
			t.BrokerHeartbeat, t.BrokerHeartbeatMiss, t.BrokerSession)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Join = append([]string(nil), c.Join...)
	return c, nil
}

// splitHostPort parses host:port with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}
