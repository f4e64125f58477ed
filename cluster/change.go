package cluster

import "slices"

// PartitionRef names one partition. TopicID tells a deleted topic from a
// new topic of the same name.
type PartitionRef struct {
	Topic     string
	TopicID   TopicID
	Partition int32
}

// Change is one metadata change delivered to subscribers, in log order.
type Change struct {
	// Index is the Raft index of the command (of the image, for a resync).
	Index uint64
	// Type is the command's type; empty for a resync.
	Type CommandType
	// Resync is set when the subscriber must rebuild its state from Image
	// alone: it missed changes (it was too slow), or a Raft snapshot was
	// installed. Prev and the lists below are then empty.
	Resync bool
	// Image is the image after the change; Prev the one before.
	Image *Image
	Prev  *Image
	// Brokers registered, re-registered or fenced by the change.
	Brokers []int32
	// Topics created, deleted or altered, and partitions whose state
	// changed (created, deleted, or a new leader, ISR or replicas).
	Topics     []string
	Partitions []PartitionRef

	changed bool
	parts   map[PartitionRef]bool
}

func (c *Change) addBroker(id int32) {
	c.changed = true
	if !slices.Contains(c.Brokers, id) {
		c.Brokers = append(c.Brokers, id)
	}
}

func (c *Change) addTopic(name string) {
	c.changed = true
	if !slices.Contains(c.Topics, name) {
		c.Topics = append(c.Topics, name)
	}
}

func (c *Change) addPartition(t *Topic, index int32) {
	c.changed = true
	ref := PartitionRef{Topic: t.Name, TopicID: t.ID, Partition: index}
	if c.parts == nil {
		c.parts = map[PartitionRef]bool{}
	}
	if !c.parts[ref] {
		c.parts[ref] = true
		c.Partitions = append(c.Partitions, ref)
	}
}

// ActionKind is what a broker must do with its local replica of a partition.
type ActionKind int8

const (
	// BecomeLeader: this broker leads the partition (new leadership, or a
	// new ISR or partition epoch while leading).
	BecomeLeader ActionKind = iota + 1
	// BecomeFollower: this broker is a replica and another broker (or no
	// broker, while offline) leads; truncate per the leader epoch and fetch.
	BecomeFollower
	// StopReplica: the partition is no longer on this broker (topic deleted
	// or replica reassigned away); stop and delete the local replica.
	StopReplica
)

// ReplicaAction is one thing a broker must do to its local replicas.
type ReplicaAction struct {
	Kind ActionKind
	PartitionRef
	// State is the partition's new state (zero for StopReplica).
	State Partition
}

// ReplicaActions turns a change into the actions broker must take, in the
// order of Partitions. The replication layer calls it from its subscriber
// goroutine. For a resync it lists BecomeLeader or BecomeFollower for every
// partition the broker hosts in Image; the caller must itself stop local
// replicas the list does not name.
func (c *Change) ReplicaActions(broker int32) []ReplicaAction {
	var out []ReplicaAction
	if c.Resync {
		for _, t := range c.Image.Topics() {
			for _, p := range t.Partitions {
				if slices.Contains(p.Replicas, broker) {
					out = append(out, roleAction(broker, PartitionRef{t.Name, t.ID, p.Index}, p))
				}
			}
		}
		return out
	}
	for _, ref := range c.Partitions {
		newP, inNew := lookupRef(c.Image, ref)
		oldP, inOld := lookupRef(c.Prev, ref)
		switch {
		case inNew && slices.Contains(newP.Replicas, broker):
			out = append(out, roleAction(broker, ref, newP))
		case inOld && slices.Contains(oldP.Replicas, broker):
			out = append(out, ReplicaAction{Kind: StopReplica, PartitionRef: ref})
		}
	}
	return out
}

func roleAction(broker int32, ref PartitionRef, p Partition) ReplicaAction {
	kind := BecomeFollower
	if p.Leader == broker {
		kind = BecomeLeader
	}
	return ReplicaAction{Kind: kind, PartitionRef: ref, State: p}
}

func lookupRef(img *Image, ref PartitionRef) (Partition, bool) {
	if img == nil {
		return Partition{}, false
	}
	t, ok := img.TopicByID(ref.TopicID)
	if !ok || int(ref.Partition) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[ref.Partition], true
}
