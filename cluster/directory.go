package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// A broker whose data directory was wiped (a new disk, an operator's rm -rf,
// a container without its volume) comes back with its old broker id and a
// new directory id (meta.properties). It has lost its partition logs and its
// Raft term and vote. Two things must then not happen: that it is elected
// leader of a partition from an ISR it was in before, which would lose every
// record it held; and that it votes in a Raft term in which it already
// voted, which could elect two leaders in one term. So the controller drops
// it from every ISR when it registers it with its new directory id (FSM,
// dropReplacedReplica), and takes it out of the Raft configuration before
// that, to add it back as a new server (removeReplacedVoters). What is
// left unguarded is the moment between the wiped broker's start and its
// removal: Raft runs on it from the start so that it can receive the log,
// and a candidate could ask it for a vote then. The controller acts at the
// first reconciliation after gossip shows the new directory id.

// directoryReplaced reports whether a broker registered with directory id
// old now comes with directory id cur. An empty old id is a registration
// from before directory ids, or from a broker that has none: unknown, not
// replaced.
func directoryReplaced(old, cur string) bool { return old != "" && old != cur }

// dropReplacedReplica removes broker id, whose data directory was replaced,
// from every ISR and ELR, even as the last member of one (the partition
// then has no replica known to hold its records, and stays offline until an
// unclean election where the topic allows it); the partitions it led elect
// another leader as on fencing. It runs in the FSM, in RegisterBroker,
// before the registration's own elections.
func (img *Image) dropReplacedReplica(id int32, ch *Change) {
	for _, name := range img.TopicNames() {
		t := img.topics[name]
		for _, part := range t.Partitions {
			if !slices.Contains(part.ISR, id) && !slices.Contains(part.ELR, id) && part.Leader != id {
				continue
			}
			np := withISR(part, without(part.ISR, id), effectiveMinISR(t, part), id)
			if part.Leader == id {
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
}

// removeReplacedVoters runs on the controller before it registers the live
// members: each member whose directory id differs from the image's and that
// is in the Raft configuration is removed from it, so that planVoters adds
// it back as a new server (as a voter while there are fewer than
// MaxVoters) and Raft never counts the vote of the state it lost.
//
// It keeps a voter whose removal would leave the other voters without a
// live majority, and says so: the cluster would stop instead. Live means
// alive in gossip and answering on its Raft port now, because gossip takes
// seconds to see a broker die. It returns the kept brokers, which the
// controller then treats as not live: not registered with their new
// directory (so fenced, leading nothing), until a later round can replace
// them. Their image entry keeps the old directory id, so a controller that
// takes over finds them again. ok is false when the round should stop (a
// failed configuration change). Only the controllerLoop goroutine calls it.
func (n *Node) removeReplacedVoters(ctx context.Context, members []Member) (kept map[int32]bool, ok bool) {
	img := n.Image()
	var replaced []Member
	for _, m := range members {
		if b, ok := img.brokers[m.ID]; ok && m.ID != n.cfg.ID && directoryReplaced(b.DirectoryID, m.DirectoryID) {
			replaced = append(replaced, m)
		}
	}
	if len(replaced) == 0 {
		return nil, true
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, false
	}
	servers := f.Configuration().Servers
	live := map[raft.ServerID]bool{}
	for _, m := range members {
		live[raftID(m.ID)] = true
	}
	for _, m := range replaced {
		id := raftID(m.ID)
		i := slices.IndexFunc(servers, func(s raft.Server) bool { return s.ID == id })
		if i < 0 {
			continue
		}
		oldDir := img.brokers[m.ID].DirectoryID
		if servers[i].Suffrage == raft.Voter {
			voters, liveVoters := 0, 0
			for _, s := range servers {
				if s.Suffrage == raft.Voter && s.ID != id {
					voters++
					if live[s.ID] && n.raftReachable(s.Address) {
						liveVoters++
					}
				}
			}
			if liveVoters < voters/2+1 {
				if kept == nil {
					kept = map[int32]bool{}
				}
				kept[m.ID] = true
				if !n.keptLogged[m.ID] {
					n.keptLogged[m.ID] = true
					n.log.Warn("a voter's data directory was replaced but removing it would cost the raft quorum; keeping it, unregistered, until more voters are live",
						"server", id, "old_directory_id", oldDir, "directory_id", m.DirectoryID,
						"other_voters", voters, "live_other_voters", liveVoters)
				}
				continue
			}
		}
		delete(n.keptLogged, m.ID)
		n.log.Info("removing a broker with a replaced data directory from the raft configuration, to add it back without the raft state it lost",
			"server", id, "old_directory_id", oldDir, "directory_id", m.DirectoryID)
		if err := n.waitFuture(ctx, n.raft.RemoveServer(id, 0, n.cfg.Timeouts.Submit)); err != nil {
			n.log.Warn("raft configuration change failed", "server", id, "op", opRemove.String(), "err", err)
			return nil, false
		}
		servers = slices.Delete(slices.Clone(servers), i, i+1)
	}
	return kept, true
}

// raftReachable reports whether a Raft peer accepts a connection (and the
// cluster-secret handshake) on its Raft port now. The connection is closed
// before any message, which the peer's transport takes quietly.
func (n *Node) raftReachable(addr raft.ServerAddress) bool {
	conn, err := dialMux(string(addr), muxRaft, 500*time.Millisecond, muxKey(n.cfg.ClusterSecret))
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
