package cluster

import (
	"fmt"
	"slices"
)

// Reassignment, as Kafka's KIP-455: a move of a partition to a target
// replica list copies the data before anything is dropped. While it is in
// flight the partition's Replicas is the union of the target (first, in
// target order) and the original replicas, AddingReplicas are the targets
// not in the original list and RemovingReplicas the originals not in the
// target. The adding replicas start outside the ISR and fetch like any
// follower; their leader adds them to the ISR once caught up
// (AlterPartition). The step that puts the last target replica in the ISR
// also completes the move: Replicas becomes the target, the removed
// replicas leave the ISR (the brokers no longer hosting them delete their
// logs), and if the leader is removed the first live target replica leads.
// A cancel reverts to the original replicas, dropping the added ones.

// AlterReassignment starts a move of a partition to Replicas, replaces the
// target of a move in flight (the original replicas stay the ones before
// the first move; replicas added by the earlier target and not in the new
// one are dropped at once), or, with Cancel, reverts a move in flight to
// the original replicas (refused with ErrNoReassignmentInProgress when
// there is none). New replicas must be registered brokers that are not
// being decommissioned. Version 3+.
type AlterReassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas,omitempty"`
	Cancel    bool    `json:"cancel,omitempty"`
}

func (AlterReassignment) Type() CommandType { return TypeAlterReassignment }

// Reassigning reports whether a move of the partition is in flight.
func (p Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// TargetReplicas returns the replicas the partition will have once a move
// in flight completes: Replicas without the removing ones (Replicas itself
// when none is in flight).
func (p Partition) TargetReplicas() []int32 {
	if len(p.RemovingReplicas) == 0 {
		return p.Replicas
	}
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.RemovingReplicas, r) })
}

// OriginalReplicas returns the replicas before the move in flight:
// Replicas without the adding ones.
func (p Partition) OriginalReplicas() []int32 {
	if len(p.AddingReplicas) == 0 {
		return p.Replicas
	}
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.AddingReplicas, r) })
}

// needsVersion refuses a command type newer than the version it came with.
func needsVersion(version, want uint16, what string) error {
	if version < want {
		return errorf(ErrInvalidCommand, "%s needs command version %d, got %d", what, want, version)
	}
	return nil
}

func (img *Image) alterReassignment(version uint16, p AlterReassignment, ch *Change) error {
	if err := needsVersion(version, 3, "alter reassignment"); err != nil {
		return err
	}
	t, part, err := img.lookupPartition(p.Topic, p.Partition)
	if err != nil {
		return fmt.Errorf("alter reassignment: %w", err)
	}
	where := fmt.Sprintf("reassign %s-%d", p.Topic, p.Partition)
	var target []int32
	if p.Cancel {
		if !part.Reassigning() {
			return errorf(ErrNoReassignmentInProgress, "%s: no move in flight to cancel", where)
		}
		target = part.OriginalReplicas()
	} else {
		if err := img.validateReplicas(p.Replicas); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for _, r := range p.Replicas {
			if !slices.Contains(part.Replicas, r) && img.brokers[r].Decommissioning {
				return errorf(ErrInvalidReplicaAssignment, "%s: broker %d is being decommissioned", where, r)
			}
		}
		target = p.Replicas
	}
	np, changed, err := img.moveTo(t, part, target)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if !changed {
		return nil
	}
	img.setPartitionChanged(t, np, ch)
	// Partition 0's target sets the topic's replication factor, and with it
	// the default min.insync.replicas of every partition.
	img.clearStaleELRs(t.Name, ch)
	return nil
}

// moveTo is the state of partition p moving to target (a move back to the
// original replicas ends the move). It reports false when nothing changes.
func (img *Image) moveTo(t *Topic, p Partition, target []int32) (Partition, bool, error) {
	original := p.OriginalReplicas()
	if !p.Reassigning() && slices.Equal(target, p.Replicas) {
		return p, false, nil
	}
	replicas := slices.Clone(target)
	var adding, removing []int32
	for _, r := range original {
		if !slices.Contains(target, r) {
			replicas = append(replicas, r)
			removing = append(removing, r)
		}
	}
	for _, r := range target {
		if !slices.Contains(original, r) {
			adding = append(adding, r)
		}
	}
	isr := slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool { return !slices.Contains(p.ISR, r) })
	if len(isr) == 0 && len(p.ISR) > 0 {
		return p, false, errorf(ErrInvalidReplicaAssignment, "no member of isr %v would stay among %v", p.ISR, replicas)
	}
	np := p
	np.Replicas, np.AddingReplicas, np.RemovingReplicas = replicas, adding, removing
	if len(isr) > 0 {
		np = withISR(np, isr, effectiveMinISR(t, np), NoLeader)
	} else {
		np.ELR = slices.DeleteFunc(slices.Clone(np.ELR), func(r int32) bool { return !slices.Contains(replicas, r) })
	}
	dropped := slices.ContainsFunc(p.Replicas, func(r int32) bool { return !slices.Contains(replicas, r) })
	switch {
	case p.Leader != NoLeader && !slices.Contains(replicas, p.Leader):
		// The leader was added by an earlier target that this one drops.
		np.Leader = NoLeader
		if elected, ok := img.elect(t, np, false); ok {
			np = elected
		} else {
			np.LeaderEpoch++
		}
	case dropped:
		// Replicas added by a cancelled or replaced target leave now: as
		// at completion, a new leader epoch fences their fetches.
		np.LeaderEpoch++
	}
	return np, true, nil
}

// completion is the state of p once its move completes, and false while it
// cannot: some target replica is outside the ISR, or the leader must move
// and no live target replica can take over.
func (img *Image) completion(t *Topic, p Partition) (Partition, bool) {
	if !p.Reassigning() {
		return p, false
	}
	target := p.TargetReplicas()
	for _, r := range target {
		if !slices.Contains(p.ISR, r) {
			return p, false
		}
	}
	np := p
	np.Replicas, np.AddingReplicas, np.RemovingReplicas = slices.Clone(target), nil, nil
	np = withISR(np, slices.Clone(target), effectiveMinISR(t, np), NoLeader)
	switch {
	case p.Leader == NoLeader || !slices.Contains(target, p.Leader):
		np.Leader = NoLeader
		elected, ok := img.elect(t, np, false)
		if !ok {
			return p, false
		}
		np = elected
	case len(p.RemovingReplicas) > 0:
		// Kafka bumps the leader epoch when replicas are removed, so a
		// removed replica's fetches at the old epoch are fenced.
		np.LeaderEpoch++
	}
	return np, true
}

// completeReassignments completes the moves of the partitions a change
// touched that it made completable.
// A broker registering again can make a move completable without touching
// the partition (its last target replica can now lead), so a change of
// brokers looks at every move in flight.
func (img *Image) completeReassignments(ch *Change) {
	refs := slices.Clone(ch.Partitions)
	if len(ch.Brokers) > 0 {
		refs = append(refs, img.Reassignments()...)
	}
	for _, ref := range refs {
		t, ok := img.topics[ref.Topic]
		if !ok || t.ID != ref.TopicID || int(ref.Partition) >= len(t.Partitions) {
			continue
		}
		if np, ok := img.completion(t, t.Partitions[ref.Partition]); ok {
			img.setPartitionChanged(t, np, ch)
			img.clearStaleELRs(t.Name, ch)
		}
	}
}

// Reassignments returns every partition with a move in flight, by topic
// and partition.
func (img *Image) Reassignments() []PartitionRef {
	var out []PartitionRef
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if p.Reassigning() {
				out = append(out, PartitionRef{Topic: t.Name, TopicID: t.ID, Partition: p.Index})
			}
		}
	}
	return out
}

// checkReassignment checks the static invariants of a move: adding and
// removing replicas are distinct replicas, disjoint, the target is not
// empty, and Replicas is the target followed by the removing replicas.
func checkReassignment(p Partition) error {
	if !p.Reassigning() {
		return nil
	}
	if hasDuplicates(p.AddingReplicas) || hasDuplicates(p.RemovingReplicas) {
		return fmt.Errorf("adding %v or removing %v with duplicates", p.AddingReplicas, p.RemovingReplicas)
	}
	for _, r := range p.AddingReplicas {
		if !slices.Contains(p.Replicas, r) || slices.Contains(p.RemovingReplicas, r) {
			return fmt.Errorf("adding %v not replicas %v disjoint from removing %v", p.AddingReplicas, p.Replicas, p.RemovingReplicas)
		}
	}
	for _, r := range p.RemovingReplicas {
		if !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("removing %v not a subset of replicas %v", p.RemovingReplicas, p.Replicas)
		}
	}
	target := p.TargetReplicas()
	if len(target) == 0 {
		return fmt.Errorf("move of replicas %v to nothing", p.Replicas)
	}
	if !slices.Equal(p.Replicas[len(target):], p.RemovingReplicas) {
		return fmt.Errorf("replicas %v are not target %v then removing %v", p.Replicas, target, p.RemovingReplicas)
	}
	return nil
}

func union(a, b []int32) []int32 {
	out := slices.Clone(a)
	for _, r := range b {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
