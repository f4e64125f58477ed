package cluster

import (
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// prepare turns a command submitted to the controller into the command the
// log receives: it fills in what only the controller decides (topic ids,
// replica assignments, defaults), checks what needs the live broker set
// (replication factor against live brokers), and dry-runs the FSM so a
// request that would be refused never enters the log. It runs on the
// controller, against its latest image; the FSM validates again on apply.
func prepare(img *Image, cmd Command, defPartitions int32, defRF int16) (Command, error) {
	if cmd.Version == 0 || cmd.Version > CommandVersion {
		return cmd, errorf(ErrUnsupportedVersion, "%s version %d", cmd.Type(), cmd.Version)
	}
	switch p := cmd.Payload.(type) {
	case CreateTopic:
		prepared, err := prepareCreateTopic(img, p, defPartitions, defRF)
		if err != nil {
			return cmd, err
		}
		cmd.Payload = prepared
	case CreatePartitions:
		t, ok := img.topics[p.Topic]
		if !ok {
			return cmd, errorf(ErrUnknownTopic, "create partitions of %q", p.Topic)
		}
		have := int32(len(t.Partitions))
		if p.Count <= have || p.Count > maxPartitions {
			return cmd, errorf(ErrInvalidPartitions, "topic %q has %d partitions, asked for %d", p.Topic, have, p.Count)
		}
		if len(p.Assignment) == 0 {
			live := img.assignableBrokers()
			if rf := t.ReplicationFactor(); rf > len(live) {
				return cmd, errorf(ErrInvalidReplicationFactor, "topic %q has replication factor %d, %d live brokers",
					p.Topic, rf, len(live))
			}
			p.Assignment = assignReplicas(img, placementBrokers(live, t.ReplicationFactor()), int(p.Count-have), t.ReplicationFactor())
		}
		cmd.Payload = p
	case nil:
		return cmd, errorf(ErrInvalidCommand, "command without payload")
	}
	if _, _, err := img.apply(img.index+1, cmd); err != nil {
		return cmd, err
	}
	return cmd, nil
}

// AutoReplicationFactor as a default replication factor means min(3, live
// brokers): three copies where the cluster has them.
const AutoReplicationFactor = -1

// defaultReplicationFactor resolves the configured default for a topic
// created without a factor.
func defaultReplicationFactor(defRF int16, live int) int16 {
	if defRF > 0 {
		return defRF
	}
	return int16(max(1, min(3, live)))
}

func prepareCreateTopic(img *Image, p CreateTopic, defPartitions int32, defRF int16) (CreateTopic, error) {
	if err := ValidateTopicName(p.Name); err != nil {
		return p, err
	}
	if _, ok := img.topics[p.Name]; ok {
		return p, errorf(ErrTopicExists, "topic %q", p.Name)
	}
	if len(p.Assignment) > 0 {
		// Kafka: with a manual assignment, count and factor must be unset.
		if p.NumPartitions > 0 && int(p.NumPartitions) != len(p.Assignment) {
			return p, errorf(ErrInvalidPartitions, "topic %q: %d partitions and %d replica lists",
				p.Name, p.NumPartitions, len(p.Assignment))
		}
		if p.ReplicationFactor > 0 && int(p.ReplicationFactor) != len(p.Assignment[0]) {
			return p, errorf(ErrInvalidReplicationFactor, "topic %q: replication factor %d, assignment has %d",
				p.Name, p.ReplicationFactor, len(p.Assignment[0]))
		}
		p.NumPartitions, p.ReplicationFactor = int32(len(p.Assignment)), int16(len(p.Assignment[0]))
	} else {
		if p.NumPartitions == -1 {
			p.NumPartitions = defPartitions
		}
		if p.NumPartitions < 1 || p.NumPartitions > maxPartitions {
			return p, errorf(ErrInvalidPartitions, "topic %q: %d partitions", p.Name, p.NumPartitions)
		}
		live := img.assignableBrokers()
		if p.ReplicationFactor == -1 {
			p.ReplicationFactor = defaultReplicationFactor(defRF, len(live))
		}
		if p.ReplicationFactor < 1 || int(p.ReplicationFactor) > len(live) {
			return p, errorf(ErrInvalidReplicationFactor, "topic %q: replication factor %d with %d live brokers",
				p.Name, p.ReplicationFactor, len(live))
		}
		if err := validateTopicConfigs(p.Configs); err != nil {
			return p, err
		}
		p.Assignment = assignReplicas(img, placementBrokers(live, int(p.ReplicationFactor)), int(p.NumPartitions), int(p.ReplicationFactor))
	}
	for p.ID.IsZero() || img.topicIDs[p.ID] != "" {
		p.ID = newTopicID()
	}
	return p, nil
}

// planMetadata is the controller's membership reconciliation: the commands
// that carry out the liveness plan (see planLiveness) — register the
// processes it lists, fence the brokers it lists — set the cluster id, and
// elect leaders for offline partitions that a live replica can now lead.
// It is pure: the driver passes the image and the plan and applies the
// result.
func planMetadata(img *Image, lp livenessPlan, newClusterID func() string) []Command {
	var cmds []Command
	if img.clusterID == "" {
		cmds = append(cmds, NewCommand(InitCluster{ClusterID: newClusterID()}))
	}
	for _, m := range lp.register {
		if img.retired[m.ID] {
			continue // decommissioned: stays out until a recommission
		}
		cmds = append(cmds, NewCommand(RegisterBroker{ID: m.ID, KafkaAddr: m.KafkaAddr, RaftAddr: m.RaftAddr,
			GossipAddr: m.GossipAddr, HTTPAddr: m.HTTPAddr, Rack: m.Rack, Incarnation: m.Incarnation,
			UncleanShutdown: m.UncleanShutdown, Listeners: m.Listeners, DirectoryID: m.DirectoryID}))
	}
	for _, id := range lp.fence {
		cmds = append(cmds, NewCommand(FenceBroker{ID: id}))
	}
	cmds = append(cmds, planStorageHolds(img, lp)...)
	// Registration and fencing elect leaders themselves; this catches the
	// partitions a live replica can lead for other reasons, e.g. a command
	// that raced with a fence.
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if p.Leader != NoLeader {
				continue
			}
			if _, ok := img.elect(&t, p, false); ok {
				cmds = append(cmds, NewCommand(ElectLeader{Topic: t.Name, Partition: p.Index, Election: ElectClean}))
			} else if _, ok := img.elect(&t, p, true); ok && t.uncleanAllowed() {
				cmds = append(cmds, NewCommand(ElectLeader{Topic: t.Name, Partition: p.Index, Election: ElectUnclean}))
			}
		}
	}
	return append(cmds, planDecommission(img)...)
}

// serverOp is a change to the Raft configuration.
type serverOp int8

const (
	opAddVoter serverOp = iota + 1
	opAddNonvoter
	opRemove
)

type serverChange struct {
	op   serverOp
	id   raft.ServerID
	addr raft.ServerAddress
}

// raftID is a broker's Raft server id: its broker id in decimal.
func raftID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// planVoters is the controller's Raft membership reconciliation. Live
// brokers missing from the configuration (or at a new address) are added,
// as voters while there are fewer than the voter target, else as
// non-voters. The target is maxVoters, or fewer while fewer brokers are
// live, and always odd: a second broker joins as a non-voter, since two
// voters make a quorum that either failure stops, and the third makes both
// voters. A voter dead for replaceAfter or longer (per deadSince) is
// replaced by the live non-voter with the lowest id, so the cluster keeps
// its live voters; a non-voter dead that long is removed. replaceAfter < 0
// disables both. Pure: the driver keeps deadSince.
func planVoters(servers []raft.Server, members []Member, maxVoters int,
	deadSince map[raft.ServerID]time.Time, now time.Time, replaceAfter time.Duration) []serverChange {
	var out []serverChange
	live := map[raft.ServerID]Member{}
	for _, m := range members {
		live[raftID(m.ID)] = m
	}
	target := min(maxVoters, len(members))
	if target%2 == 0 {
		target--
	}
	target = max(target, 1)
	voters := 0
	known := map[raft.ServerID]raft.Server{}
	for _, s := range servers {
		known[s.ID] = s
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	for _, m := range members {
		id, addr := raftID(m.ID), raft.ServerAddress(m.RaftAddr)
		s, ok := known[id]
		switch {
		case !ok && voters < target:
			voters++
			out = append(out, serverChange{opAddVoter, id, addr})
		case !ok:
			out = append(out, serverChange{opAddNonvoter, id, addr})
		case s.Address != addr && s.Suffrage == raft.Voter:
			out = append(out, serverChange{opAddVoter, id, addr})
		case s.Address != addr:
			out = append(out, serverChange{opAddNonvoter, id, addr})
		}
	}
	var liveNonvoters []raft.ServerID
	for _, s := range servers {
		if _, ok := live[s.ID]; ok && s.Suffrage != raft.Voter {
			liveNonvoters = append(liveNonvoters, s.ID)
		}
	}
	slices.SortFunc(liveNonvoters, func(a, b raft.ServerID) int { return compareIDs(a, b) })
	promote := func() {
		id := liveNonvoters[0]
		liveNonvoters = liveNonvoters[1:]
		voters++
		out = append(out, serverChange{opAddVoter, id, raft.ServerAddress(live[id].RaftAddr)})
	}
	for voters < target && len(liveNonvoters) > 0 {
		promote()
	}
	if replaceAfter < 0 {
		return out
	}
	dead := make([]raft.ServerID, 0)
	var deadNonvoters []raft.ServerID
	for _, s := range servers {
		if _, ok := live[s.ID]; ok {
			continue
		}
		if since, ok := deadSince[s.ID]; ok && now.Sub(since) >= replaceAfter {
			if s.Suffrage == raft.Voter {
				dead = append(dead, s.ID)
			} else {
				deadNonvoters = append(deadNonvoters, s.ID)
			}
		}
	}
	// A dead non-voter only costs the leader its replication attempts.
	slices.SortFunc(deadNonvoters, compareIDs)
	for _, id := range deadNonvoters {
		out = append(out, serverChange{op: opRemove, id: id})
	}
	slices.SortFunc(dead, compareIDs)
	for _, id := range dead {
		if len(liveNonvoters) == 0 {
			break
		}
		voters--
		out = append(out, serverChange{op: opRemove, id: id})
		promote()
	}
	return out
}

// compareIDs orders Raft server ids numerically (they are broker ids).
func compareIDs(a, b raft.ServerID) int {
	x, _ := strconv.Atoi(string(a))
	y, _ := strconv.Atoi(string(b))
	return x - y
}
