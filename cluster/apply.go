package cluster

import (
	"fmt"
	"slices"
)

// maxPartitions bounds a topic's partition count, so one command cannot make
// every broker allocate without limit.
const maxPartitions = 100_000

// apply is the FSM's deterministic core: the image after cmd, written at
// Raft index, and what changed. Every broker runs it on the same log with the
// same result, so it reads nothing but img and cmd. On error it returns img
// itself; a command that changes nothing returns img and a nil change.
func (img *Image) apply(index uint64, cmd Command) (*Image, *Change, error) {
	if cmd.Version == 0 || cmd.Version > CommandVersion {
		return img, nil, errorf(ErrUnsupportedVersion, "%s version %d", cmd.Type(), cmd.Version)
	}
	next := img.clone(index)
	ch := &Change{Index: index, Type: cmd.Type(), Prev: img, Image: next}
	var err error
	switch p := cmd.Payload.(type) {
	case InitCluster:
		err = next.initCluster(p, ch)
	case RegisterBroker:
		err = next.registerBroker(index, cmd.Version, p, ch)
	case FenceBroker:
		err = next.fenceBroker(p, ch)
	case CreateTopic:
		err = next.createTopic(p, ch)
	case DeleteTopic:
		err = next.deleteTopic(p, ch)
	case CreatePartitions:
		err = next.createPartitions(p, ch)
	case AlterConfigs:
		err = next.alterConfigs(p, ch)
	case AlterPartition:
		err = next.alterPartition(p, ch)
	case ElectLeader:
		err = next.electLeader(p, ch)
	case ReassignPartition:
		err = next.reassign(p, ch)
	case AlterReassignment:
		err = next.alterReassignment(cmd.Version, p, ch)
	case DecommissionBroker:
		err = next.decommissionBroker(cmd.Version, p, ch)
	case UnregisterBroker:
		err = next.unregisterBroker(cmd.Version, p, ch)
	case AlterBrokerConfigs:
		err = next.alterBrokerConfigs(cmd.Version, p, ch)
	case SetStorageHeld:
		err = next.setStorageHeld(cmd.Version, p, ch)
	default:
		err = errorf(ErrInvalidCommand, "unknown payload %T", cmd.Payload)
	}
	if err != nil {
		return img, nil, err
	}
	// A change that put every target replica of a move in the ISR (or
	// unfenced its last one) completes it in the same step, as Kafka's
	// controller does in the AlterPartition that makes it so.
	next.completeReassignments(ch)
	next.owned = nil
	if !ch.changed {
		return img, nil, nil
	}
	err = next.checkChanged(ch)
	if err == nil {
		err = checkTransitions(img, next, ch, cmd)
	}
	if err != nil {
		// A command that passed validation yet breaks an invariant is a bug
		// in this file; every broker computes the same, so refusing it keeps
		// the brokers identical.
		assertf(false, "apply %s at %d: %v", cmd, index, err)
		return img, nil, errorf(ErrInvalidCommand, "%s would break an invariant: %v", cmd.Type(), err)
	}
	return next, ch, nil
}

// checkTransitions checks each changed partition's step (see
// checkLeaderTransition). An unclean election is allowed by the topic's
// config after the change or by an ElectUnclean command.
func checkTransitions(prev, next *Image, ch *Change, cmd Command) error {
	el, isElect := cmd.Payload.(ElectLeader)
	for _, ref := range ch.Partitions {
		pt, ok1 := prev.topics[ref.Topic]
		nt, ok2 := next.topics[ref.Topic]
		if !ok1 || !ok2 || pt.ID != ref.TopicID || nt.ID != ref.TopicID || int(ref.Partition) >= len(pt.Partitions) {
			continue // created or deleted
		}
		unclean := nt.uncleanAllowed() || (isElect && el.Election == ElectUnclean)
		before := pt.Partitions[ref.Partition]
		if ap, ok := cmd.Payload.(AlterPartition); ok && ap.Topic == ref.Topic && ap.Partition == ref.Partition {
			// A move completed by this ISR change may hand leadership to a
			// member the leader just added: it vouched that it caught up.
			before.ISR = union(before.ISR, ap.ISR)
		}
		if err := checkLeaderTransition(before, nt.Partitions[ref.Partition], unclean); err != nil {
			return fmt.Errorf("%s-%d: %w", ref.Topic, ref.Partition, err)
		}
	}
	return nil
}

// checkChanged checks the invariants of the topics a change touched (of the
// whole image in race-enabled builds).
func (img *Image) checkChanged(ch *Change) error {
	if raceEnabled {
		return img.checkInvariants()
	}
	for _, name := range ch.Topics {
		t, ok := img.topics[name]
		if !ok {
			continue
		}
		for i, p := range t.Partitions {
			if p.Index != int32(i) {
				return fmt.Errorf("topic %q: partition at %d has index %d", name, i, p.Index)
			}
			if err := checkPartition(img, p); err != nil {
				return fmt.Errorf("topic %q partition %d: %w", name, i, err)
			}
		}
	}
	return nil
}

func (img *Image) initCluster(p InitCluster, ch *Change) error {
	switch {
	case p.ClusterID == "":
		return errorf(ErrInvalidCommand, "empty cluster id")
	case img.clusterID == p.ClusterID:
		return nil
	case img.clusterID != "":
		return errorf(ErrClusterIDMismatch, "have %q, got %q", img.clusterID, p.ClusterID)
	}
	img.clusterID = p.ClusterID
	ch.changed = true
	return nil
}

func (img *Image) registerBroker(index uint64, version uint16, p RegisterBroker, ch *Change) error {
	if p.ID < 0 || p.KafkaAddr == "" || p.RaftAddr == "" {
		return errorf(ErrInvalidCommand, "register broker %d: id and addresses are required", p.ID)
	}
	if p.UncleanShutdown && version < 2 {
		return errorf(ErrInvalidCommand, "register broker %d: unclean_shutdown needs command version 2, got %d", p.ID, version)
	}
	if img.retired[p.ID] {
		return errorf(ErrBrokerRemoved, "register broker %d: it was decommissioned and removed (barge broker recommission %d lets it back)", p.ID, p.ID)
	}
	old, known := img.brokers[p.ID]
	// Only a new process can have lost records: the same incarnation
	// registering again (unfenced after a pause) kept its page cache. An
	// empty incarnation (tests, hand-written commands) counts as new.
	newProcess := !known || p.Incarnation == "" || p.Incarnation != old.Incarnation
	unclean := p.UncleanShutdown && newProcess
	img.brokers[p.ID] = Broker{
		ID: p.ID, KafkaAddr: p.KafkaAddr, RaftAddr: p.RaftAddr, GossipAddr: p.GossipAddr,
		HTTPAddr: p.HTTPAddr, Rack: p.Rack, Incarnation: p.Incarnation, DirectoryID: p.DirectoryID,
		Epoch: int64(index), UncleanRestart: unclean || (!newProcess && old.UncleanRestart),
		Listeners: p.Listeners, Decommissioning: known && old.Decommissioning,
		// A new process reports its storage afresh in its heartbeats.
		StorageHeld: !newProcess && old.StorageHeld,
	}
	ch.addBroker(p.ID)
	if known && directoryReplaced(old.DirectoryID, p.DirectoryID) {
		img.dropReplacedReplica(p.ID, ch)
	}
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for _, part := range t.Partitions {
			if !slices.Contains(part.Replicas, p.ID) {
				continue
			}
			np, changed := part, false
			if unclean {
				np, changed = img.dropUnclean(t, part, p.ID)
			}
			// Offline partitions this broker can lead come back online.
			if np.Leader == NoLeader {
				if elected, ok := img.elect(t, np, t.uncleanAllowed()); ok {
					np, changed = elected, true
				}
			}
			if changed {
				img.setPartitionChanged(t, np, ch)
			}
		}
	}
	return nil
}

// dropUnclean takes broker id, restarted after an unclean shutdown, out of a
// partition's ISR and ELR (KIP-966): its log may lack records it once
// acknowledged, so it must not lead or count as in sync before it has
// caught up and its leader has added it back. If it led, the next eligible
// replica leads, or none and the partition is offline. Where it is the only
// ISR or ELR member it stays: no other replica can be known to hold more of
// the committed records, and dropping it would keep the partition offline
// for good. It reports whether p changed.
func (img *Image) dropUnclean(t *Topic, p Partition, id int32) (Partition, bool) {
	if !slices.Contains(p.ISR, id) && !slices.Contains(p.ELR, id) {
		return p, false
	}
	if len(p.ISR)+len(p.ELR) == 1 {
		return p, false
	}
	np := withISR(p, without(p.ISR, id), effectiveMinISR(t, p), id)
	if p.Leader == id {
		np.Leader = NoLeader
		if elected, ok := img.elect(t, np, t.uncleanAllowed()); ok {
			np = elected
		} else {
			np.LeaderEpoch++
		}
	}
	return np, true
}

// withISR returns p with isr as its ISR and its ELR kept as KIP-966 says:
// empty while isr has min.insync.replicas members (the high watermark moves
// again, so former members fall behind what is committed); otherwise every
// replica that was in the ISR or the ELR and is not in isr, except drop (a
// broker that restarted uncleanly, or NoLeader). The ELR is in replica
// order.
func withISR(p Partition, isr []int32, minISR int, drop int32) Partition {
	var elr []int32
	if len(isr) < minISR {
		for _, r := range p.Replicas {
			if r != drop && !slices.Contains(isr, r) && (slices.Contains(p.ISR, r) || slices.Contains(p.ELR, r)) {
				elr = append(elr, r)
			}
		}
	}
	p.ISR, p.ELR = isr, elr
	return p
}

// effectiveMinISR is the ISR size below which the leader's high watermark
// stands still, as the replicas compute it (replication.State.MinISR).
func effectiveMinISR(t *Topic, p Partition) int {
	return max(1, min(t.MinInsyncReplicas(), len(p.Replicas)))
}

func (img *Image) fenceBroker(p FenceBroker, ch *Change) error {
	b, ok := img.brokers[p.ID]
	if !ok {
		return errorf(ErrUnknownBroker, "fence broker %d", p.ID)
	}
	if b.Fenced {
		return nil
	}
	b.Fenced = true
	img.brokers[p.ID] = b
	ch.addBroker(p.ID)
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for _, part := range t.Partitions {
			inISR := slices.Contains(part.ISR, p.ID)
			if !inISR && part.Leader != p.ID {
				continue
			}
			np := part
			// Fenced brokers leave the ISR, into the ELR when it falls
			// below the minimum, but the ISR is never emptied: the last
			// member stays, as the one replica known to hold every
			// committed record.
			if inISR && len(part.ISR) > 1 {
				np = withISR(part, without(part.ISR, p.ID), effectiveMinISR(t, part), NoLeader)
			}
			if part.Leader == p.ID {
				np.Leader = NoLeader
				if elected, ok := img.elect(t, np, t.uncleanAllowed()); ok {
					np = elected
				} else {
					np.LeaderEpoch++
				}
			}
			img.setPartitionChanged(t, np, ch)
		}
	}
	return nil
}

func (img *Image) createTopic(p CreateTopic, ch *Change) error {
	if err := ValidateTopicName(p.Name); err != nil {
		return err
	}
	if _, ok := img.topics[p.Name]; ok {
		return errorf(ErrTopicExists, "topic %q", p.Name)
	}
	if p.ID.IsZero() {
		return errorf(ErrInvalidCommand, "create topic %q: no topic id (commands go through the controller)", p.Name)
	}
	if _, ok := img.topicIDs[p.ID]; ok {
		return errorf(ErrInvalidCommand, "create topic %q: topic id %s in use", p.Name, p.ID)
	}
	if len(p.Assignment) == 0 || len(p.Assignment) > maxPartitions ||
		(p.NumPartitions > 0 && int(p.NumPartitions) != len(p.Assignment)) {
		return errorf(ErrInvalidPartitions, "create topic %q: %d partitions, %d replica lists",
			p.Name, p.NumPartitions, len(p.Assignment))
	}
	rf := len(p.Assignment[0])
	if p.ReplicationFactor > 0 && int(p.ReplicationFactor) != rf {
		return errorf(ErrInvalidReplicaAssignment, "create topic %q: replication factor %d, assignment has %d",
			p.Name, p.ReplicationFactor, rf)
	}
	if err := img.validateAssignment(p.Assignment, rf); err != nil {
		return fmt.Errorf("create topic %q: %w", p.Name, err)
	}
	if err := validateTopicConfigs(p.Configs); err != nil {
		return err
	}
	if err := checkMinInsyncReplicas(p.Name, p.Configs, rf); err != nil {
		return err
	}
	t := &Topic{Name: p.Name, ID: p.ID, Partitions: make([]Partition, len(p.Assignment))}
	if len(p.Configs) > 0 {
		t.Configs = cloneMap(p.Configs)
	}
	img.topics[p.Name] = t
	img.topicIDs[p.ID] = p.Name
	ch.addTopic(p.Name)
	for i, replicas := range p.Assignment {
		t.Partitions[i] = img.newPartition(int32(i), replicas)
		ch.addPartition(t, int32(i))
	}
	return nil
}

// newPartition is the first state of a partition: the live replicas form the
// ISR (all replicas when none is live, so the first to register may lead an
// empty log) and the first of them leads.
func (img *Image) newPartition(index int32, replicas []int32) Partition {
	replicas = slices.Clone(replicas)
	isr := slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool { return !img.isLive(r) })
	leader := NoLeader
	if len(isr) > 0 {
		leader = isr[0]
	} else {
		isr = slices.Clone(replicas)
	}
	return Partition{Index: index, Replicas: replicas, ISR: isr, Leader: leader}
}

// validateAssignment checks replica lists: each of length rf >= 1, without
// duplicates, naming registered brokers.
func (img *Image) validateAssignment(assignment [][]int32, rf int) error {
	if rf < 1 {
		return errorf(ErrInvalidReplicationFactor, "replication factor %d", rf)
	}
	for i, replicas := range assignment {
		if len(replicas) != rf {
			return errorf(ErrInvalidReplicaAssignment, "partition %d has %d replicas, want %d", i, len(replicas), rf)
		}
		if err := img.validateReplicas(replicas); err != nil {
			return fmt.Errorf("partition %d: %w", i, err)
		}
		for _, r := range replicas {
			if img.brokers[r].Decommissioning {
				return errorf(ErrInvalidReplicaAssignment, "partition %d: broker %d is being decommissioned", i, r)
			}
		}
	}
	return nil
}

func (img *Image) validateReplicas(replicas []int32) error {
	if len(replicas) == 0 {
		return errorf(ErrInvalidReplicaAssignment, "no replicas")
	}
	if hasDuplicates(replicas) {
		return errorf(ErrInvalidReplicaAssignment, "duplicate replicas in %v", replicas)
	}
	for _, r := range replicas {
		if _, ok := img.brokers[r]; !ok {
			return fmt.Errorf("%w: %w: broker %d", ErrInvalidReplicaAssignment, ErrUnknownBroker, r)
		}
	}
	return nil
}

func (img *Image) deleteTopic(p DeleteTopic, ch *Change) error {
	t, ok := img.topics[p.Name]
	if !ok {
		return errorf(ErrUnknownTopic, "delete topic %q", p.Name)
	}
	ch.addTopic(p.Name)
	for _, part := range t.Partitions {
		ch.addPartition(t, part.Index)
	}
	delete(img.topics, p.Name)
	delete(img.topicIDs, t.ID)
	return nil
}

func (img *Image) createPartitions(p CreatePartitions, ch *Change) error {
	old, ok := img.topics[p.Topic]
	if !ok {
		return errorf(ErrUnknownTopic, "create partitions of %q", p.Topic)
	}
	have := int32(len(old.Partitions))
	if p.Count <= have || p.Count > maxPartitions {
		return errorf(ErrInvalidPartitions, "topic %q has %d partitions, asked for %d", p.Topic, have, p.Count)
	}
	if int32(len(p.Assignment)) != p.Count-have {
		return errorf(ErrInvalidReplicaAssignment, "topic %q: %d replica lists for %d new partitions",
			p.Topic, len(p.Assignment), p.Count-have)
	}
	if err := img.validateAssignment(p.Assignment, old.ReplicationFactor()); err != nil {
		return fmt.Errorf("create partitions of %q: %w", p.Topic, err)
	}
	t := *old
	t.Partitions = slices.Grow(slices.Clone(old.Partitions), len(p.Assignment))
	for i, replicas := range p.Assignment {
		idx := have + int32(i)
		t.Partitions = append(t.Partitions, img.newPartition(idx, replicas))
		ch.addPartition(&t, idx)
	}
	img.topics[p.Topic] = &t
	ch.addTopic(p.Topic)
	return nil
}

func (img *Image) alterConfigs(p AlterConfigs, ch *Change) error {
	old, ok := img.topics[p.Topic]
	if !ok {
		return errorf(ErrUnknownTopic, "alter configs of %q", p.Topic)
	}
	if err := validateTopicConfigs(p.Set); err != nil {
		return err
	}
	configs := map[string]string{}
	if !p.Replace {
		configs = cloneMap(old.Configs)
	}
	for k, v := range p.Set {
		configs[k] = v
	}
	for _, k := range p.Delete {
		if _, known := topicConfigRules[k]; !known {
			return errorf(ErrInvalidTopicConfig, "delete unknown topic config %q", k)
		}
		delete(configs, k)
	}
	if len(configs) == 0 {
		configs = nil
	}
	if mapsEqual(configs, old.Configs) {
		return nil
	}
	if err := checkMinInsyncReplicas(p.Topic, configs, old.ReplicationFactor()); err != nil {
		return err
	}
	t := *old
	t.Configs = configs
	img.topics[p.Topic] = &t
	ch.addTopic(p.Topic)
	img.clearStaleELRs(p.Topic, ch)
	if t.uncleanAllowed() {
		for _, part := range img.topics[p.Topic].Partitions {
			if part.Leader != NoLeader {
				continue
			}
			if np, ok := img.elect(&t, part, true); ok {
				img.setPartitionChanged(&t, np, ch)
			}
		}
	}
	return nil
}

func (img *Image) alterPartition(p AlterPartition, ch *Change) error {
	t, part, err := img.lookupPartition(p.Topic, p.Partition)
	if err != nil {
		return fmt.Errorf("alter partition: %w", err)
	}
	where := fmt.Sprintf("alter partition %s-%d", p.Topic, p.Partition)
	switch {
	case p.LeaderEpoch < part.LeaderEpoch:
		return errorf(ErrStaleLeaderEpoch, "%s: leader epoch %d, current %d", where, p.LeaderEpoch, part.LeaderEpoch)
	case p.LeaderEpoch > part.LeaderEpoch:
		return errorf(ErrUnknownLeaderEpoch, "%s: leader epoch %d, current %d", where, p.LeaderEpoch, part.LeaderEpoch)
	case p.Leader != part.Leader || part.Leader == NoLeader:
		return errorf(ErrNotLeader, "%s: broker %d, leader is %d", where, p.Leader, part.Leader)
	}
	if b := img.brokers[p.Leader]; p.BrokerEpoch != 0 && p.BrokerEpoch != b.Epoch {
		return errorf(ErrStaleBrokerEpoch, "%s: broker %d epoch %d, current %d", where, p.Leader, p.BrokerEpoch, b.Epoch)
	}
	if p.PartitionEpoch != part.PartitionEpoch {
		return errorf(ErrStalePartitionEpoch, "%s: partition epoch %d, current %d", where, p.PartitionEpoch, part.PartitionEpoch)
	}
	if len(p.ISR) == 0 || hasDuplicates(p.ISR) || !slices.Contains(p.ISR, p.Leader) {
		return errorf(ErrInvalidISR, "%s: isr %v must be distinct and hold leader %d", where, p.ISR, p.Leader)
	}
	for _, r := range p.ISR {
		if !slices.Contains(part.Replicas, r) {
			return errorf(ErrInvalidISR, "%s: isr member %d is not a replica of %v", where, r, part.Replicas)
		}
		if !img.isLive(r) {
			return errorf(ErrIneligibleReplica, "%s: isr member %d is fenced", where, r)
		}
		if r != p.Leader && img.brokers[r].StorageHeld && !slices.Contains(part.ISR, r) {
			return errorf(ErrIneligibleReplica, "%s: isr member %d has its storage held (disk below the free-space reserve or a log offline)", where, r)
		}
	}
	// Keep the ISR in replica order, so equal sets compare equal.
	isr := slices.DeleteFunc(slices.Clone(part.Replicas), func(r int32) bool { return !slices.Contains(p.ISR, r) })
	if slices.Equal(isr, part.ISR) {
		return nil
	}
	img.setPartitionChanged(t, withISR(part, isr, effectiveMinISR(t, part), NoLeader), ch)
	return nil
}

func (img *Image) electLeader(p ElectLeader, ch *Change) error {
	t, part, err := img.lookupPartition(p.Topic, p.Partition)
	if err != nil {
		return fmt.Errorf("elect leader: %w", err)
	}
	where := fmt.Sprintf("elect leader of %s-%d", p.Topic, p.Partition)
	np := part
	switch p.Election {
	case ElectPreferred:
		pref := part.Replicas[0]
		if part.Leader == pref {
			return errorf(ErrElectionNotNeeded, "%s: preferred replica %d leads", where, pref)
		}
		if !img.isLive(pref) || !slices.Contains(part.ISR, pref) {
			return errorf(ErrPreferredLeaderNotAvailable, "%s: replica %d fenced or not in isr %v", where, pref, part.ISR)
		}
		np.Leader = pref
		np.LeaderEpoch++
	case ElectClean, ElectUnclean:
		if part.Leader != NoLeader {
			return errorf(ErrElectionNotNeeded, "%s: broker %d leads", where, part.Leader)
		}
		var ok bool
		if np, ok = img.elect(t, part, p.Election == ElectUnclean); !ok {
			return errorf(ErrEligibleLeadersNotAvailable, "%s: replicas %v isr %v elr %v", where, part.Replicas, part.ISR, part.ELR)
		}
	default:
		return errorf(ErrInvalidCommand, "%s: unknown election type %d", where, p.Election)
	}
	img.setPartitionChanged(t, np, ch)
	return nil
}

func (img *Image) reassign(p ReassignPartition, ch *Change) error {
	t, part, err := img.lookupPartition(p.Topic, p.Partition)
	if err != nil {
		return fmt.Errorf("reassign: %w", err)
	}
	where := fmt.Sprintf("reassign %s-%d", p.Topic, p.Partition)
	if part.Reassigning() {
		return errorf(ErrReassignmentInProgress, "%s: a move to %v is in flight", where, part.TargetReplicas())
	}
	if err := img.validateReplicas(p.Replicas); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if slices.Equal(p.Replicas, part.Replicas) {
		return nil
	}
	for _, r := range p.Replicas {
		if !slices.Contains(part.Replicas, r) && img.brokers[r].Decommissioning {
			return errorf(ErrInvalidReplicaAssignment, "%s: broker %d is being decommissioned", where, r)
		}
	}
	isr := slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return !slices.Contains(part.ISR, r) })
	if len(isr) == 0 {
		return errorf(ErrInvalidReplicaAssignment, "%s: no member of isr %v among %v", where, part.ISR, p.Replicas)
	}
	np := part
	np.Replicas = slices.Clone(p.Replicas)
	np = withISR(np, isr, effectiveMinISR(t, np), NoLeader)
	if part.Leader == NoLeader || !slices.Contains(p.Replicas, part.Leader) {
		np.Leader = NoLeader
		if elected, ok := img.elect(t, np, false); ok {
			np = elected
		} else if part.Leader != NoLeader {
			np.LeaderEpoch++
		}
	}
	img.setPartitionChanged(t, np, ch)
	// Partition 0's replica count is the topic's replication factor, which
	// sets the default min.insync.replicas of every partition.
	img.clearStaleELRs(t.Name, ch)
	return nil
}

// clearStaleELRs empties the ELR of each partition of a topic whose ISR has
// (now) min.insync.replicas members: after a config change or a
// reassignment lowered the minimum, the high watermark moves with the ISR
// as it is, past what the ELR members hold.
func (img *Image) clearStaleELRs(topic string, ch *Change) {
	t := img.topics[topic]
	for _, part := range t.Partitions {
		if len(part.ELR) > 0 && len(part.ISR) >= effectiveMinISR(t, part) {
			part.ELR = nil
			img.setPartitionChanged(img.topics[topic], part, ch)
		}
	}
}

// elect picks a leader for a partition that has none (or whose leader is
// being removed), in KIP-966's order, each in replica order: the first live
// ISR replica; failing that, the first live ELR replica, which forms the ISR
// alone while the other former members stay eligible; with unclean, failing
// both, the first live replica, which forms the ISR alone with the ELR
// cleared (its log is the partition's history from now on). It bumps the
// leader epoch; setPartitionChanged bumps the partition epoch. t is the
// partition's topic, for min.insync.replicas.
func (img *Image) elect(t *Topic, p Partition, unclean bool) (Partition, bool) {
	for _, r := range p.Replicas {
		if img.isLive(r) && slices.Contains(p.ISR, r) {
			p.Leader = r
			p.LeaderEpoch++
			return p, true
		}
	}
	for _, r := range p.Replicas {
		if img.isLive(r) && slices.Contains(p.ELR, r) {
			p = withISR(p, []int32{r}, effectiveMinISR(t, p), NoLeader)
			p.Leader = r
			p.LeaderEpoch++
			return p, true
		}
	}
	if !unclean {
		return p, false
	}
	for _, r := range p.Replicas {
		if img.isLive(r) {
			p.Leader, p.ISR, p.ELR = r, []int32{r}, nil
			p.LeaderEpoch++
			return p, true
		}
	}
	return p, false
}

// setPartitionChanged stores a changed partition with its partition epoch
// bumped, and records the change. t is the topic as it is in img now.
func (img *Image) setPartitionChanged(t *Topic, p Partition, ch *Change) {
	p.PartitionEpoch++
	img.setPartition(t.Name, p)
	ch.addTopic(t.Name)
	ch.addPartition(t, p.Index)
}

func (img *Image) lookupPartition(topic string, partition int32) (*Topic, Partition, error) {
	t, ok := img.topics[topic]
	if !ok {
		return nil, Partition{}, errorf(ErrUnknownTopic, "%q", topic)
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, Partition{}, errorf(ErrUnknownPartition, "%s-%d", topic, partition)
	}
	return t, t.Partitions[partition], nil
}

func without(ids []int32, id int32) []int32 {
	return slices.DeleteFunc(slices.Clone(ids), func(r int32) bool { return r == id })
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
