package cluster

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a cluster API returns wraps exactly one of
// these (test with errors.Is). The Kafka error code of each is chosen in one
// place, ErrorCode in kafkacodes.go; the comment on each sentinel names it.
var (
	// ErrInvalidNodeConfig: a Config that New refuses.
	ErrInvalidNodeConfig = errors.New("cluster: invalid node configuration")
	// ErrClosed: the node was closed (UNKNOWN_SERVER_ERROR).
	ErrClosed = errors.New("cluster: node closed")
	// ErrNotController: this broker is not (or stopped being) the Raft leader
	// while handling a command; retry through Submit (NOT_CONTROLLER, 41).
	ErrNotController = errors.New("cluster: not the controller")
	// ErrNoController: no Raft leader is known, e.g. the voters have no
	// quorum (NOT_CONTROLLER, 41).
	ErrNoController = errors.New("cluster: no controller (no raft quorum)")
	// ErrTimeout: the command was not committed and applied locally in time;
	// it may still be applied later (REQUEST_TIMED_OUT, 7).
	ErrTimeout = errors.New("cluster: timed out waiting for the metadata change")
	// ErrDuplicateBrokerID: another live member of the gossip cluster already
	// uses this broker id (DUPLICATE_BROKER_REGISTRATION, 101).
	ErrDuplicateBrokerID = errors.New("cluster: broker id already in use by another live broker")
	// ErrIdentityMismatch: the data directory's meta.properties names
	// another broker id or cluster id than this broker has (its Raft state
	// or its gossip peers); the broker refuses to start or to merge
	// (INCONSISTENT_CLUSTER_ID, 104).
	ErrIdentityMismatch = errors.New("cluster: data directory or peer belongs to another broker or cluster")
	// ErrUnauthenticated: a peer on the Raft port (Raft or forwarding) did
	// not prove it knows the cluster secret, or this broker could not
	// (SASL_AUTHENTICATION_FAILED, 58).
	ErrUnauthenticated = errors.New("cluster: peer failed cluster-secret authentication")

	// ErrInvalidCommand: a malformed command, e.g. a missing field or an
	// unknown command type (INVALID_REQUEST, 42).
	ErrInvalidCommand = errors.New("cluster: invalid command")
	// ErrUnsupportedVersion: a command written by a newer Barge
	// (UNSUPPORTED_VERSION, 35).
	ErrUnsupportedVersion = errors.New("cluster: unsupported command version")
	// ErrClusterIDMismatch: InitCluster on a cluster that already has another
	// id (INCONSISTENT_CLUSTER_ID, 104).
	ErrClusterIDMismatch = errors.New("cluster: cluster id already set")
	// ErrUnknownTopic: no topic of that name or id
	// (UNKNOWN_TOPIC_OR_PARTITION, 3).
	ErrUnknownTopic = errors.New("cluster: unknown topic")
	// ErrUnknownPartition: the topic exists but not that partition
	// (UNKNOWN_TOPIC_OR_PARTITION, 3).
	ErrUnknownPartition = errors.New("cluster: unknown partition")
	// ErrUnknownBroker: a command names a broker that never registered
	// (BROKER_ID_NOT_REGISTERED, 102). Inside a replica assignment it is
	// wrapped together with ErrInvalidReplicaAssignment, which wins.
	ErrUnknownBroker = errors.New("cluster: unknown broker")
	// ErrTopicExists: CreateTopic with a name in use (TOPIC_ALREADY_EXISTS, 36).
	ErrTopicExists = errors.New("cluster: topic already exists")
	// ErrInvalidTopicName: not a legal Kafka topic name
	// (INVALID_TOPIC_EXCEPTION, 17).
	ErrInvalidTopicName = errors.New("cluster: invalid topic name")
	// ErrInvalidPartitions: a partition count below 1, or CreatePartitions
	// not growing the topic (INVALID_PARTITIONS, 37).
	ErrInvalidPartitions = errors.New("cluster: invalid partition count")
	// ErrInvalidReplicationFactor: below 1, or above the number of live
	// brokers (INVALID_REPLICATION_FACTOR, 38).
	ErrInvalidReplicationFactor = errors.New("cluster: invalid replication factor")
	// ErrInvalidReplicaAssignment: a replica list with duplicates, unknown
	// brokers or the wrong length (INVALID_REPLICA_ASSIGNMENT, 39).
	ErrInvalidReplicaAssignment = errors.New("cluster: invalid replica assignment")
	// ErrInvalidTopicConfig: an unknown topic config key or a value out of
	// range (INVALID_CONFIG, 40).
	ErrInvalidTopicConfig = errors.New("cluster: invalid topic config")
	// ErrNotLeader: AlterPartition from a broker that does not lead the
	// partition (NOT_LEADER_OR_FOLLOWER, 6).
	ErrNotLeader = errors.New("cluster: broker is not the partition leader")
	// ErrStaleLeaderEpoch: a leader epoch older than the image's
	// (FENCED_LEADER_EPOCH, 74).
	ErrStaleLeaderEpoch = errors.New("cluster: stale leader epoch")
	// ErrUnknownLeaderEpoch: a leader epoch newer than the image's
	// (UNKNOWN_LEADER_EPOCH, 75).
	ErrUnknownLeaderEpoch = errors.New("cluster: unknown leader epoch")
	// ErrStalePartitionEpoch: AlterPartition based on an old partition state
	// (INVALID_UPDATE_VERSION, 95).
	ErrStalePartitionEpoch = errors.New("cluster: stale partition epoch")
	// ErrStaleBrokerEpoch: a request from an earlier incarnation of a broker
	// (STALE_BROKER_EPOCH, 77).
	ErrStaleBrokerEpoch = errors.New("cluster: stale broker epoch")
	// ErrIneligibleReplica: a new ISR naming a fenced broker
	// (INELIGIBLE_REPLICA, 107).
	ErrIneligibleReplica = errors.New("cluster: ineligible replica in isr")
	// ErrInvalidISR: a new ISR that is empty, has duplicates, names a
	// non-replica or leaves out the leader (INVALID_REQUEST, 42).
	ErrInvalidISR = errors.New("cluster: invalid isr")
	// ErrElectionNotNeeded: the wanted leader already leads
	// (ELECTION_NOT_NEEDED, 84).
	ErrElectionNotNeeded = errors.New("cluster: leader election not needed")
	// ErrPreferredLeaderNotAvailable: the preferred replica is fenced or out
	// of the ISR (PREFERRED_LEADER_NOT_AVAILABLE, 80).
	ErrPreferredLeaderNotAvailable = errors.New("cluster: preferred leader not available")
	// ErrEligibleLeadersNotAvailable: no live replica may lead
	// (ELIGIBLE_LEADERS_NOT_AVAILABLE, 83).
	ErrEligibleLeadersNotAvailable = errors.New("cluster: no eligible leader available")
	// ErrNoReassignmentInProgress: a cancel of a move that is not in
	// flight (NO_REASSIGNMENT_IN_PROGRESS, 85).
	ErrNoReassignmentInProgress = errors.New("cluster: no reassignment in progress")
	// ErrReassignmentInProgress: a change that a move in flight forbids
	// (REASSIGNMENT_IN_PROGRESS, 60).
	ErrReassignmentInProgress = errors.New("cluster: reassignment in progress")
	// ErrBrokerRemoved: the broker was decommissioned and unregistered
	// (BROKER_ID_NOT_REGISTERED, 102).
	ErrBrokerRemoved = errors.New("cluster: broker decommissioned and removed")
)

// sentinels lists every sentinel once; the forwarding protocol sends an
// error as the text of its sentinel and rebuilds it on the other side.
var sentinels = []error{
	ErrInvalidNodeConfig, ErrClosed, ErrNotController, ErrNoController,
	ErrTimeout, ErrDuplicateBrokerID, ErrIdentityMismatch, ErrUnauthenticated, ErrInvalidCommand, ErrUnsupportedVersion,
	ErrClusterIDMismatch, ErrUnknownTopic, ErrUnknownPartition, ErrUnknownBroker,
	ErrTopicExists, ErrInvalidTopicName, ErrInvalidPartitions,
	ErrInvalidReplicationFactor, ErrInvalidReplicaAssignment,
	ErrInvalidTopicConfig, ErrNotLeader, ErrStaleLeaderEpoch,
	ErrUnknownLeaderEpoch, ErrStalePartitionEpoch, ErrStaleBrokerEpoch,
	ErrIneligibleReplica, ErrInvalidISR, ErrElectionNotNeeded,
	ErrPreferredLeaderNotAvailable, ErrEligibleLeadersNotAvailable,
	ErrNoReassignmentInProgress, ErrReassignmentInProgress, ErrBrokerRemoved,
}

// sentinelOf returns the first sentinel err wraps, in the order of sentinels,
// or nil.
func sentinelOf(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}

// remoteError is an error received from the controller over the forwarding
// channel: its text as the controller wrote it, and the sentinel it wrapped
// there, so errors.Is works on this side too.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// errorf wraps sentinel with a message naming the operation and identifiers.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// notSentError marks an error after which the command certainly was not
// applied (no controller reachable, or the broker reached was not the
// controller), so Submit may retry it elsewhere. errors.Is sees through it.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

func notSent(err error) error { return &notSentError{err: err} }
