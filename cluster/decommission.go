package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/hashicorp/raft"
)

// Decommissioning a broker: DecommissionBroker marks it; the controller
// then moves its replicas to other brokers a few partitions at a time
// (planDecommission, as AlterReassignment moves), and once no partition
// lists it any more it unregisters it (UnregisterBroker) and takes it out
// of the Raft configuration. The broker may then be stopped. Until then a
// recommission (DecommissionBroker with Cancel) stops the moves: those in
// flight complete, and the broker keeps what it still hosts.

// DecommissionBroker starts (or, with Cancel, stops) the decommissioning of
// a broker. It is refused when fewer live brokers than some topic's
// replication factor would be left. A Cancel for a broker already removed
// lets it register again. Version 3+.
type DecommissionBroker struct {
	ID     int32 `json:"id"`
	Cancel bool  `json:"cancel,omitempty"`
}

// UnregisterBroker removes a decommissioning broker that hosts no replica
// from the image (Kafka's UnregisterBroker); it is not registered again
// until a recommission. Version 3+.
type UnregisterBroker struct {
	ID int32 `json:"id"`
}

func (DecommissionBroker) Type() CommandType { return TypeDecommissionBroker }
func (UnregisterBroker) Type() CommandType   { return TypeUnregisterBroker }

// Retired reports whether broker id was decommissioned and removed.
func (img *Image) Retired(id int32) bool { return img.retired[id] }

// RetiredBrokers returns the ids of the brokers decommissioned and removed.
func (img *Image) RetiredBrokers() []int32 {
	out := make([]int32, 0, len(img.retired))
	for id := range img.retired {
		out = append(out, id)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// HostedBy returns the partitions that list broker id as a replica.
func (img *Image) HostedBy(id int32) []PartitionRef {
	var out []PartitionRef
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, id) {
				out = append(out, PartitionRef{Topic: t.Name, TopicID: t.ID, Partition: p.Index})
			}
		}
	}
	return out
}

// assignableBrokers are the live brokers that may receive new replicas:
// not those being decommissioned.
func (img *Image) assignableBrokers() []Broker {
	return slices.DeleteFunc(img.LiveBrokers(), func(b Broker) bool { return b.Decommissioning })
}

// placementBrokers are the brokers new replicas of a replication factor rf
// go to: of the assignable ones, those whose storage is not held when there
// are rf of them, since a held broker could not fetch its replicas.
func placementBrokers(assignable []Broker, rf int) []Broker {
	unheld := slices.DeleteFunc(slices.Clone(assignable), func(b Broker) bool { return b.StorageHeld })
	if len(unheld) >= rf {
		return unheld
	}
	return assignable
}

func (img *Image) decommissionBroker(version uint16, p DecommissionBroker, ch *Change) error {
	if err := needsVersion(version, 3, "decommission broker"); err != nil {
		return err
	}
	b, ok := img.brokers[p.ID]
	if p.Cancel {
		switch {
		case img.retired[p.ID]:
			delete(img.retired, p.ID)
			ch.changed = true
			return nil
		case !ok:
			return errorf(ErrUnknownBroker, "recommission broker %d", p.ID)
		case !b.Decommissioning:
			return errorf(ErrInvalidCommand, "recommission broker %d: it is not being decommissioned", p.ID)
		}
		b.Decommissioning = false
		img.brokers[p.ID] = b
		ch.addBroker(p.ID)
		return nil
	}
	switch {
	case img.retired[p.ID]:
		return errorf(ErrBrokerRemoved, "decommission broker %d: already decommissioned and removed", p.ID)
	case !ok:
		return errorf(ErrUnknownBroker, "decommission broker %d", p.ID)
	case b.Decommissioning:
		return nil
	}
	left := 0
	for _, o := range img.assignableBrokers() {
		if o.ID != p.ID {
			left++
		}
	}
	for _, t := range img.Topics() {
		if rf := t.ReplicationFactor(); rf > left {
			return errorf(ErrInvalidReplicationFactor, "decommission broker %d would leave %d live broker(s) for topic %q of replication factor %d",
				p.ID, left, t.Name, rf)
		}
	}
	b.Decommissioning = true
	img.brokers[p.ID] = b
	ch.addBroker(p.ID)
	return nil
}

func (img *Image) unregisterBroker(version uint16, p UnregisterBroker, ch *Change) error {
	if err := needsVersion(version, 3, "unregister broker"); err != nil {
		return err
	}
	b, ok := img.brokers[p.ID]
	switch {
	case !ok:
		return errorf(ErrUnknownBroker, "unregister broker %d", p.ID)
	case !b.Decommissioning:
		return errorf(ErrInvalidCommand, "unregister broker %d: decommission it first", p.ID)
	}
	if hosted := img.HostedBy(p.ID); len(hosted) > 0 {
		return errorf(ErrInvalidCommand, "unregister broker %d: it still hosts %d replica(s), e.g. %s-%d",
			p.ID, len(hosted), hosted[0].Topic, hosted[0].Partition)
	}
	delete(img.brokers, p.ID)
	if img.retired == nil {
		img.retired = map[int32]bool{}
	}
	img.retired[p.ID] = true
	ch.addBroker(p.ID)
	return nil
}

// maxDecommissionMoves bounds the moves in flight off one decommissioning
// broker, so draining it does not copy every partition at once.
const maxDecommissionMoves = 8

// planDecommission is the controller's part of decommissioning: for each
// decommissioning broker, moves of its partitions (up to
// maxDecommissionMoves in flight; a partition already moving waits), or,
// once it hosts nothing, its UnregisterBroker. Pure.
func planDecommission(img *Image) []Command {
	var cmds []Command
	load := replicaLoad(img)
	for _, b := range img.Brokers() {
		if !b.Decommissioning {
			continue
		}
		hosting, inFlight := false, 0
		type todo struct {
			t *Topic
			p Partition
		}
		var moves []todo
		for _, name := range img.TopicNames() {
			t := img.topics[name]
			for _, p := range t.Partitions {
				if !slices.Contains(p.Replicas, b.ID) {
					continue
				}
				hosting = true
				if p.Reassigning() {
					inFlight++
				} else {
					moves = append(moves, todo{t, p})
				}
			}
		}
		if !hosting {
			cmds = append(cmds, NewCommand(UnregisterBroker{ID: b.ID}))
			continue
		}
		for _, m := range moves {
			if inFlight >= maxDecommissionMoves {
				break
			}
			to, ok := replacementFor(img, m.p.Replicas, b, load)
			if !ok {
				continue
			}
			target := slices.Clone(m.p.Replicas)
			target[slices.Index(target, b.ID)] = to
			load[to]++
			inFlight++
			cmds = append(cmds, NewCommand(AlterReassignment{Topic: m.t.Name, Partition: m.p.Index, Replicas: target}))
		}
	}
	return cmds
}

// replacementFor picks the broker to take over from broker from in a
// replica list: a live broker that is not being decommissioned and not
// already a replica; of those, one whose storage is not held, then one
// whose rack the other replicas use least (brokers without a rack are racks
// of their own), then one in from's rack, then the one holding the fewest
// replicas, then the lowest id.
func replacementFor(img *Image, replicas []int32, from Broker, load map[int32]int) (int32, bool) {
	racks := map[string]int{}
	for _, r := range replicas {
		if r != from.ID {
			racks[rackKey(img.brokers[r])]++
		}
	}
	best, found := Broker{}, false
	better := func(a, b Broker) bool {
		if a.StorageHeld != b.StorageHeld {
			return b.StorageHeld // a full disk takes no new replica while another can
		}
		if ra, rb := racks[rackKey(a)], racks[rackKey(b)]; ra != rb {
			return ra < rb
		}
		if sa, sb := a.Rack != "" && a.Rack == from.Rack, b.Rack != "" && b.Rack == from.Rack; sa != sb {
			return sa
		}
		if load[a.ID] != load[b.ID] {
			return load[a.ID] < load[b.ID]
		}
		return a.ID < b.ID
	}
	for _, c := range img.assignableBrokers() {
		if slices.Contains(replicas, c.ID) {
			continue
		}
		if !found || better(c, best) {
			best, found = c, true
		}
	}
	return best.ID, found
}

// rackKey is a broker's rack, or a rack of its own without one.
func rackKey(b Broker) string {
	if b.Rack == "" {
		return "\x00" + strconv.Itoa(int(b.ID))
	}
	return b.Rack
}

// replicaLoad counts the replicas (targets of moves included) per broker.
func replicaLoad(img *Image) map[int32]int {
	load := map[int32]int{}
	for _, t := range img.topics {
		for _, p := range t.Partitions {
			for _, r := range p.TargetReplicas() {
				load[r]++
			}
		}
	}
	return load
}

// DecommissionStatus says how far the decommissioning of a broker is.
type DecommissionStatus struct {
	ID int32 `json:"id"`
	// State is "decommissioning", "removed" (unregistered: safe to stop
	// once it is out of the Raft configuration too), "active" or
	// "unknown".
	State string `json:"state"`
	// Replicas is the number of partitions still listing the broker, and
	// Moving those of them with a move in flight.
	Replicas int `json:"replicas"`
	Moving   int `json:"moving"`
}

// Decommission returns the decommissioning state of broker id in img.
func (img *Image) Decommission(id int32) DecommissionStatus {
	st := DecommissionStatus{ID: id}
	b, ok := img.brokers[id]
	switch {
	case img.retired[id]:
		st.State = "removed"
		return st
	case !ok:
		st.State = "unknown"
		return st
	case b.Decommissioning:
		st.State = "decommissioning"
	default:
		st.State = "active"
	}
	for _, ref := range img.HostedBy(id) {
		st.Replicas++
		if p, _ := img.Partition(ref.Topic, ref.Partition); p.Reassigning() {
			st.Moving++
		}
	}
	return st
}

func (s DecommissionStatus) String() string {
	return fmt.Sprintf("broker %d %s (%d replicas, %d moving)", s.ID, s.State, s.Replicas, s.Moving)
}

// removeRetiredServers takes the decommissioned brokers out of the Raft
// configuration. A voter is first replaced by a live non-voter, if there is
// one, so the voter count never dips. It reports false when a change
// failed.
func (n *Node) removeRetiredServers(ctx context.Context, servers []raft.Server, live []Member) bool {
	img := n.Image()
	promoted := map[raft.ServerID]bool{}
	for _, s := range servers {
		id, err := strconv.Atoi(string(s.ID))
		if err != nil || !img.Retired(int32(id)) {
			continue
		}
		if s.Suffrage == raft.Voter {
			for _, o := range servers {
				oid, _ := strconv.Atoi(string(o.ID))
				if o.Suffrage == raft.Voter || promoted[o.ID] || img.Retired(int32(oid)) ||
					!slices.ContainsFunc(live, func(m Member) bool { return raftID(m.ID) == o.ID }) {
					continue
				}
				if err := n.waitFuture(ctx, n.raft.AddVoter(o.ID, o.Address, 0, n.cfg.Timeouts.Submit)); err != nil {
					n.log.Warn("promoting a non-voter before removing a decommissioned voter failed", "server", o.ID, "err", err)
					return false
				}
				promoted[o.ID] = true
				n.log.Info("raft configuration changed", "server", o.ID, "addr", o.Address, "op", "add_voter")
				break
			}
		}
		if err := n.waitFuture(ctx, n.raft.RemoveServer(s.ID, 0, n.cfg.Timeouts.Submit)); err != nil {
			n.log.Warn("removing a decommissioned broker from the raft configuration failed", "server", s.ID, "err", err)
			return false
		}
		n.log.Info("raft configuration changed", "server", s.ID, "op", "remove_decommissioned")
	}
	return true
}
