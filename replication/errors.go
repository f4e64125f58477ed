package replication

import "errors"

var (
	// ErrNotLeader: the replica does not lead its partition (any more).
	ErrNotLeader = errors.New("replication: not the leader of the partition")
	// ErrNotEnoughReplicas: an acks=all produce refused before its append
	// because the ISR is smaller than min.insync.replicas.
	ErrNotEnoughReplicas = errors.New("replication: in-sync replicas below min.insync.replicas")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("replication: closed")
)
