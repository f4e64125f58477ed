package cluster

import "errors"

// Kafka error codes used by ErrorCode. The numbers are Kafka's (see
// org.apache.kafka.common.protocol.Errors); this file is the single place the
// cluster package's errors meet them, so the protocol layer may move it.
const (
	codeNone                        int16 = 0
	codeUnknownServerError          int16 = -1
	codeUnknownTopicOrPartition     int16 = 3
	codeNotLeaderOrFollower         int16 = 6
	codeRequestTimedOut             int16 = 7
	codeInvalidTopicException       int16 = 17
	codeUnsupportedVersion          int16 = 35
	codeTopicAlreadyExists          int16 = 36
	codeInvalidPartitions           int16 = 37
	codeInvalidReplicationFactor    int16 = 38
	codeInvalidReplicaAssignment    int16 = 39
	codeInvalidConfig               int16 = 40
	codeNotController               int16 = 41
	codeInvalidRequest              int16 = 42
	codeFencedLeaderEpoch           int16 = 74
	codeUnknownLeaderEpoch          int16 = 75
	codeStaleBrokerEpoch            int16 = 77
	codePreferredLeaderNotAvailable int16 = 80
	codeEligibleLeadersNotAvailable int16 = 83
	codeElectionNotNeeded           int16 = 84
	codeInvalidUpdateVersion        int16 = 95
	codeDuplicateBrokerRegistration int16 = 101
	codeBrokerIDNotRegistered       int16 = 102
	codeInconsistentClusterID       int16 = 104
	codeIneligibleReplica           int16 = 107
)

// errorCodes maps each sentinel to its Kafka error code. Order matters where
// one error wraps two sentinels: the first match wins, so the more specific
// sentinels come first (an unknown broker inside an assignment is
// INVALID_REPLICA_ASSIGNMENT, not BROKER_ID_NOT_REGISTERED).
var errorCodes = []struct {
	err  error
	code int16
}{
	{ErrInvalidReplicaAssignment, codeInvalidReplicaAssignment},
	{ErrInvalidReplicationFactor, codeInvalidReplicationFactor},
	{ErrInvalidPartitions, codeInvalidPartitions},
	{ErrInvalidTopicConfig, codeInvalidConfig},
	{ErrTopicExists, codeTopicAlreadyExists},
	{ErrInvalidTopicName, codeInvalidTopicException},
	{ErrUnknownTopic, codeUnknownTopicOrPartition},
	{ErrUnknownPartition, codeUnknownTopicOrPartition},
	{ErrUnknownBroker, codeBrokerIDNotRegistered},
	{ErrNotController, codeNotController},
	{ErrNoController, codeNotController},
	{ErrTimeout, codeRequestTimedOut},
	{ErrDuplicateBrokerID, codeDuplicateBrokerRegistration},
	{ErrInvalidCommand, codeInvalidRequest},
	{ErrInvalidISR, codeInvalidRequest},
	{ErrUnsupportedVersion, codeUnsupportedVersion},
	{ErrClusterIDMismatch, codeInconsistentClusterID},
	{ErrNotLeader, codeNotLeaderOrFollower},
	{ErrStaleLeaderEpoch, codeFencedLeaderEpoch},
	{ErrUnknownLeaderEpoch, codeUnknownLeaderEpoch},
	{ErrStalePartitionEpoch, codeInvalidUpdateVersion},
	{ErrStaleBrokerEpoch, codeStaleBrokerEpoch},
	{ErrIneligibleReplica, codeIneligibleReplica},
	{ErrElectionNotNeeded, codeElectionNotNeeded},
	{ErrPreferredLeaderNotAvailable, codePreferredLeaderNotAvailable},
	{ErrEligibleLeadersNotAvailable, codeEligibleLeadersNotAvailable},
}

// ErrorCode returns the Kafka error code for an error returned by this
// package: 0 for nil, UNKNOWN_SERVER_ERROR (-1) for anything it does not
// recognise (including ErrClosed and ErrInvalidNodeConfig, which no client
// should see). Safe for concurrent use.
func ErrorCode(err error) int16 {
	if err == nil {
		return codeNone
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return codeUnknownServerError
}
