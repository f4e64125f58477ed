package cluster

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// planBootstrap decides whether broker self should bootstrap the Raft
// cluster now, given the live gossip members: only when --bootstrap-expect
// N > 1 brokers are visible, none of them already belongs to a formed
// cluster, and self has the lowest id among them. The voters are then the N
// lowest ids (N-1 when N is even). Having a single broker write the first configuration means
// two brokers can never bootstrap different voter sets from the same view.
func planBootstrap(self int32, expect int, members []Member) ([]Member, bool) {
	if expect < 2 || len(members) < expect {
		return nil, false
	}
	for _, m := range members {
		if m.Bootstrapped {
			return nil, false
		}
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return int(a.ID - b.ID) })
	if sorted[0].ID != self {
		return nil, false
	}
	// An odd voter set: with --bootstrap-expect 2 (or 4) the highest id
	// joins as a non-voter (planVoters), as two voters would make a quorum
	// that either failure stops.
	voters := expect
	if voters%2 == 0 {
		voters--
	}
	return sorted[:voters], true
}

// bootstrapLoop waits until this broker belongs to a formed Raft cluster,
// bootstrapping it when planBootstrap says so and the set of visible
// brokers has been stable for Timeouts.BootstrapSettle, then marks the
// broker bootstrapped in its gossip metadata and ends.
func (n *Node) bootstrapLoop(changes <-chan struct{}, formed bool) {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Timeouts.Reconcile)
	defer tick.Stop()
	var lastView string
	var stableSince time.Time
	for {
		if formed || n.raft.Leader() != "" {
			n.members.setBootstrapped()
			return
		}
		members := n.members.members()
		view := memberIDs(members)
		if view != lastView {
			lastView, stableSince = view, time.Now()
		}
		if voters, ok := planBootstrap(n.cfg.ID, n.cfg.BootstrapExpect, members); ok &&
			time.Since(stableSince) >= n.cfg.Timeouts.BootstrapSettle {
			var servers []raft.Server
			for _, m := range voters {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
			}
			err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
			switch {
			case err == nil:
				n.log.Info("bootstrapped the voter set", "voters", memberIDs(voters))
				formed = true
				continue
			case errors.Is(err, raft.ErrCantBootstrap):
				formed = true
				continue
			case errors.Is(err, raft.ErrRaftShutdown):
				return
			default:
				n.log.Warn("bootstrap failed", "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

func memberIDs(members []Member) string {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = strconv.Itoa(int(m.ID))
	}
	return strings.Join(ids, ",")
}

// controllerLoop carries out the controller's duties while this broker is
// the Raft leader: after each membership change, each leadership change and
// every Timeouts.Reconcile it reconciles the image and the Raft
// configuration with the live gossip members. On becoming leader it first
// waits (Barrier) until every earlier entry is applied locally, so its
// decisions start from the newest image.
func (n *Node) controllerLoop(changes <-chan struct{}) {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Timeouts.Reconcile)
	defer tick.Stop()
	deadSince := map[raft.ServerID]time.Time{}
	leading := false
	for {
		select {
		case <-n.stop:
			return
		case <-changes:
		case <-n.raft.LeaderCh():
		case <-tick.C:
		}
		if !n.IsController() {
			if leading {
				n.log.Info("no longer the controller")
			}
			leading = false
			// Keep timing dead voters from this broker's own gossip view,
			// so that a controller elected while one is down goes on from
			// how long it has been down instead of starting over: under
			// leadership churn (two voters left on a loaded machine) no
			// reign might otherwise last the replacement delay.
			n.trackDeadVoters(deadSince)
			continue
		}
		if !leading {
			if err := n.raft.Barrier(n.cfg.Timeouts.Submit).Error(); err != nil {
				n.log.Warn("controller barrier failed", "err", err)
				continue
			}
			leading = true
			// Heartbeats seen in an earlier term say nothing now; the grace
			// period starts once this controller's image is current.
			n.sessions.reset(time.Now())
			n.log.Info("this broker is the controller", "term", n.raft.CurrentTerm())
		}
		n.reconcile(deadSince)
	}
}

// reconcile runs one round of the controller's duties: the liveness rules
// (liveness.go) over gossip and heartbeats, then the Raft configuration.
func (n *Node) reconcile(deadSince map[raft.ServerID]time.Time) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeouts.Submit)
	defer cancel()
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return
	}
	servers := cf.Configuration().Servers
	members := n.ownClusterMembers(n.members.members(), servers)
	now := time.Now()
	hb := n.heartbeatCommand()
	n.sessions.heartbeat(hb.member(), hb.ShuttingDown, hb.StorageHeld, hb.AppliedIndex, now)
	// Before a wiped broker is registered anew (which records its new
	// directory id), take it out of the Raft configuration; see
	// removeReplacedVoters. Its new directory id can arrive by heartbeat
	// before gossip has it (gossip takes seconds), so the heartbeating
	// members are looked at too: registration goes by heartbeats.
	sessionMembers := n.sessions.plan(n.Image(), members, now).alive
	kept, ok := n.removeReplacedVoters(ctx, append(slices.Clone(members), sessionMembers...))
	if !ok {
		return
	}
	members = slices.DeleteFunc(members, func(m Member) bool { return kept[m.ID] })
	lp := n.sessions.plan(n.Image(), members, now)
	// Heartbeats reach the controller from any broker that can: register
	// none of another cluster, and fence rather than register the wiped
	// voters kept above, until they can be replaced.
	lp.register = slices.DeleteFunc(n.ownClusterMembers(lp.register, servers), func(m Member) bool { return kept[m.ID] })
	for id := range kept {
		if b, ok := n.Image().Broker(id); ok && !b.Fenced && !slices.Contains(lp.fence, id) {
			lp.fence = append(lp.fence, id)
		}
	}
	for _, cmd := range planMetadata(n.Image(), lp, n.proposedClusterID) {
		if _, err := n.commit(ctx, cmd); err != nil {
			if errors.Is(err, ErrNotController) || errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return
			}
			n.log.Warn("controller command refused", "command", cmd.String(), "err", err)
			continue
		}
		n.log.Info("controller applied", "command", cmd.String())
	}
	// Gossip the cluster id as soon as it is committed: until then peers
	// cannot tell this cluster from another.
	n.adoptClusterID()

	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return
	}
	servers = f.Configuration().Servers
	// A decommissioned broker leaves the Raft configuration once it is
	// unregistered, and is not added back while it still runs.
	members = slices.DeleteFunc(members, func(m Member) bool { return n.Image().Retired(m.ID) })
	lp.alive = slices.DeleteFunc(lp.alive, func(m Member) bool { return n.Image().Retired(m.ID) })
	if !n.removeRetiredServers(ctx, servers, append(slices.Clone(members), lp.alive...)) {
		return
	}
	// A broker that heartbeats is live for the Raft configuration too,
	// whatever this broker's gossip says (unless of another cluster).
	for _, m := range n.ownClusterMembers(slices.Clone(lp.alive), servers) {
		if !slices.ContainsFunc(members, func(g Member) bool { return g.ID == m.ID }) {
			members = append(members, m)
		}
	}
	slices.SortFunc(members, func(a, b Member) int { return int(a.ID - b.ID) })
	live := map[raft.ServerID]bool{}
	for _, m := range members {
		live[raftID(m.ID)] = true
	}
	markDead(deadSince, servers, live, now)
	for _, c := range planVoters(servers, members, n.cfg.MaxVoters, deadSince, now, n.cfg.Timeouts.DeadVoterReplace) {
		var fut raft.IndexFuture
		timeout := n.cfg.Timeouts.Submit
		switch c.op {
		case opAddVoter:
			fut = n.raft.AddVoter(c.id, c.addr, 0, timeout)
		case opAddNonvoter:
			fut = n.raft.AddNonvoter(c.id, c.addr, 0, timeout)
		case opRemove:
			fut = n.raft.RemoveServer(c.id, 0, timeout)
		}
		if err := n.waitFuture(ctx, fut); err != nil {
			n.log.Warn("raft configuration change failed", "server", c.id, "op", c.op, "err", err)
			return
		}
		n.log.Info("raft configuration changed", "server", c.id, "addr", c.addr, "op", c.op.String())
	}
}

func (o serverOp) String() string {
	switch o {
	case opAddVoter:
		return "add_voter"
	case opAddNonvoter:
		return "add_nonvoter"
	case opRemove:
		return "remove"
	}
	return "unknown"
}

// trackDeadVoters updates deadSince from the Raft configuration and this
// broker's gossip members, as a broker that is not the controller sees them.
func (n *Node) trackDeadVoters(deadSince map[raft.ServerID]time.Time) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return
	}
	servers := cf.Configuration().Servers
	live := map[raft.ServerID]bool{}
	for _, m := range n.ownClusterMembers(n.members.members(), servers) {
		live[raftID(m.ID)] = true
	}
	// A broker cut off from the others sees them all dead; what it timed
	// then must not make it replace live voters the moment it is elected.
	// Only a view that holds a majority of the voters counts.
	voters, liveVoters := 0, 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
			if live[s.ID] {
				liveVoters++
			}
		}
	}
	if liveVoters <= voters/2 {
		clear(deadSince)
		return
	}
	markDead(deadSince, servers, live, time.Now())
}

// markDead records now as the time of death of each server of the
// configuration not in live that has none yet, and forgets servers that
// are live again or no longer configured.
func markDead(deadSince map[raft.ServerID]time.Time, servers []raft.Server, live map[raft.ServerID]bool, now time.Time) {
	for id := range deadSince {
		if live[id] || !slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == id }) {
			delete(deadSince, id)
		}
	}
	for _, s := range servers {
		if _, ok := deadSince[s.ID]; !ok && !live[s.ID] {
			deadSince[s.ID] = now
		}
	}
}
