package cluster

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The Kafka error codes of this package's errors come from kerr, the one
// table of Kafka's codes; this file is the single place the two meet.

// errorCodes maps each sentinel to its Kafka error code. Order matters where
// one error wraps two sentinels: the first match wins, so the more specific
// sentinels come first (an unknown broker inside an assignment is
// INVALID_REPLICA_ASSIGNMENT, not BROKER_ID_NOT_REGISTERED).
var errorCodes = []struct {
	err  error
	code int16
}{
	{ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment.Code},
	{ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor.Code},
	{ErrInvalidPartitions, kerr.InvalidPartitions.Code},
	{ErrInvalidTopicConfig, kerr.InvalidConfig.Code},
	{ErrTopicExists, kerr.TopicAlreadyExists.Code},
	{ErrInvalidTopicName, kerr.InvalidTopicException.Code},
	{ErrUnknownTopic, kerr.UnknownTopicOrPartition.Code},
	{ErrUnknownPartition, kerr.UnknownTopicOrPartition.Code},
	{ErrUnknownBroker, kerr.BrokerIDNotRegistered.Code},
	{ErrNotController, kerr.NotController.Code},
	{ErrNoController, kerr.NotController.Code},
	{ErrTimeout, kerr.RequestTimedOut.Code},
	{ErrDuplicateBrokerID, kerr.DuplicateBrokerRegistration.Code},
	{ErrInvalidCommand, kerr.InvalidRequest.Code},
	{ErrInvalidISR, kerr.InvalidRequest.Code},
	{ErrUnsupportedVersion, kerr.UnsupportedVersion.Code},
	{ErrClusterIDMismatch, kerr.InconsistentClusterID.Code},
	{ErrIdentityMismatch, kerr.InconsistentClusterID.Code},
	{ErrUnauthenticated, kerr.SaslAuthenticationFailed.Code},
	{ErrNotLeader, kerr.NotLeaderForPartition.Code},
	{ErrStaleLeaderEpoch, kerr.FencedLeaderEpoch.Code},
	{ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch.Code},
	{ErrStalePartitionEpoch, kerr.InvalidUpdateVersion.Code},
	{ErrStaleBrokerEpoch, kerr.StaleBrokerEpoch.Code},
	{ErrIneligibleReplica, kerr.IneligibleReplica.Code},
	{ErrElectionNotNeeded, kerr.ElectionNotNeeded.Code},
	{ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable.Code},
	{ErrEligibleLeadersNotAvailable, kerr.EligibleLeadersNotAvailable.Code},
	{ErrNoReassignmentInProgress, kerr.NoReassignmentInProgress.Code},
	{ErrReassignmentInProgress, kerr.ReassignmentInProgress.Code},
	{ErrBrokerRemoved, kerr.BrokerIDNotRegistered.Code},
}

// ErrorCode returns the Kafka error code for an error returned by this
// package: 0 for nil, UNKNOWN_SERVER_ERROR (-1) for anything it does not
// recognise (including ErrClosed and ErrInvalidNodeConfig, which no client
// should see). Safe for concurrent use.
func ErrorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return kerr.UnknownServerError.Code
}
