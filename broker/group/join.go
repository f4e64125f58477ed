package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup serves JoinGroup v0-v9. respond is called once: at once for an
// error or MEMBER_ID_REQUIRED (v4+ dynamic members first get an id and must
// join again with it), else when the rebalance the join takes part in
// completes, which may be up to the group's rebalance timeout later.
func (c *Coordinator) JoinGroup(cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	fail := func(code int16) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.MemberID, resp.Generation = code, req.MemberID, -1
		respond(resp)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	switch {
	case req.Group == "":
		fail(kerr.InvalidGroupID.Code)
		return
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		fail(kerr.InvalidSessionTimeout.Code)
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	case protocolBytes(req.Protocols) > c.cfg.MaxMemberMetadataBytes:
		// Kafka bounds this only by the request size. Member metadata
		// ends up in the group's record, so it is capped per member.
		fail(kerr.InvalidRequest.Code)
		return
	}
	s, code := c.lockShard(req.Group)
	if code != 0 {
		fail(code)
		return
	}
	defer s.unlock()
	now := c.now()
	pj := &pendingJoin{req: req, respond: respond}
	g := s.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			s.queue(func() { fail(kerr.UnknownMemberID.Code) })
			return
		}
		g = newGroup(s, req.Group, now)
		s.groups[req.Group] = g
	}
	g.join(now, cl, pj)
	s.afterLocked(g)
}

func protocolBytes(ps []kmsg.JoinGroupRequestProtocol) int {
	n := 0
	for _, p := range ps {
		n += len(p.Name) + len(p.Metadata)
	}
	return n
}

// join handles a JoinGroup for the group (Kafka's doJoinGroup).
func (g *group) join(now time.Time, cl Client, pj *pendingJoin) {
	req := pj.req
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		g.replyJoinError(pj, kerr.InconsistentGroupProtocol.Code, req.MemberID)
		return
	}
	if req.MemberID == "" {
		g.joinNew(now, cl, pj)
		return
	}
	g.joinKnown(now, cl, pj)
}

// joinNew handles a join without a member id: a new member, or a static
// member coming back under a new member id.
func (g *group) joinNew(now time.Time, cl Client, pj *pendingJoin) {
	req := pj.req
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok {
			if old := g.members[oldID]; old != nil {
				g.replaceStaticMember(now, cl, old, pj)
				return
			}
			delete(g.static, *req.InstanceID)
		}
	}
	if len(g.members)+len(g.pending) >= g.s.c.cfg.MaxGroupSize {
		g.replyJoinError(pj, kerr.GroupMaxSizeReached.Code, "")
		return
	}
	prefix := cl.ID
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	id := newMemberID(prefix)
	if req.Version >= 4 && req.InstanceID == nil {
		// KIP-394: a dynamic member gets its id first and joins with it,
		// so a client that retries a join never leaves a ghost member.
		session, _ := joinTimeouts(req)
		g.pending[id] = now.Add(session)
		g.replyJoinError(pj, kerr.MemberIDRequired.Code, id)
		return
	}
	g.addMemberAndRebalance(now, newMember(id, cl, req), pj)
}

// joinKnown handles a join with a member id (Kafka's
// doCurrentMemberJoinGroup).
func (g *group) joinKnown(now time.Time, cl Client, pj *pendingJoin) {
	req := pj.req
	id := req.MemberID
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		g.addMemberAndRebalance(now, newMember(id, cl, req), pj)
		return
	}
	if g.fencedInstance(req.InstanceID, id) {
		g.replyJoinError(pj, kerr.FencedInstanceID.Code, id)
		return
	}
	m := g.members[id]
	if m == nil || (req.InstanceID != nil && g.static[*req.InstanceID] != id) {
		g.replyJoinError(pj, kerr.UnknownMemberID.Code, id)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		g.updateMemberAndRebalance(now, m, pj)
	case stateCompletingRebalance, stateStable:
		// A member that already has this generation's answer gets it
		// again; a leader rejoining in Stable, or any member with new
		// metadata, starts a rebalance.
		if m.sameProtocols(req.Protocols) && (g.state == stateCompletingRebalance || m.id != g.leader) {
			m.lastHeartbeat = now
			resp := g.joinResponse(req, m)
			g.s.queue(func() { pj.respond(resp) })
			return
		}
		g.updateMemberAndRebalance(now, m, pj)
	default:
		g.replyJoinError(pj, kerr.UnknownMemberID.Code, id)
	}
}

func newMember(id string, cl Client, req *kmsg.JoinGroupRequest) *member {
	m := &member{id: id, clientID: cl.ID, clientHost: cl.Host, protocols: protocolsOf(req.Protocols)}
	if req.InstanceID != nil {
		inst := *req.InstanceID
		m.instanceID = &inst
	}
	m.sessionTimeout, m.rebalanceTimeout = joinTimeouts(req)
	return m
}

// replaceStaticMember gives a static member that joined again without its
// member id (a restarted instance) a new member id in place of the old one,
// whose parked requests are fenced (KIP-345). In a stable group whose
// protocol choice the join does not change, there is no rebalance: the new
// member id takes over the old assignment once the group is stored.
func (g *group) replaceStaticMember(now time.Time, cl Client, m *member, pj *pendingJoin) {
	req := pj.req
	oldID := m.id
	if m.join != nil {
		g.replyJoinError(m.join, kerr.FencedInstanceID.Code, oldID)
		m.join = nil
	}
	if m.sync != nil {
		g.replySyncError(m.sync, kerr.FencedInstanceID.Code)
		m.sync = nil
	}
	g.renameMember(m, newMemberID(*req.InstanceID))
	m.clientID, m.clientHost = cl.ID, cl.Host
	if g.state != stateStable {
		g.updateMemberAndRebalance(now, m, pj)
		return
	}
	oldProtocols, oldSession, oldRebalance := m.protocols, m.sessionTimeout, m.rebalanceTimeout
	g.updateMember(m, req)
	if p, ok := g.selectProtocol(); !ok || p != g.protocol {
		g.updateMemberAndRebalance(now, m, pj)
		return
	}
	g.storeMetadata(now, nil, func(err error) {
		if err != nil {
			g.renameMember(m, oldID)
			m.protocols, m.sessionTimeout, m.rebalanceTimeout = oldProtocols, oldSession, oldRebalance
			g.replyJoinError(pj, storeErrorCode(err, false), "")
			return
		}
		m.lastHeartbeat = now
		resp := g.joinResponse(req, m)
		// KIP-814: a static leader coming back keeps the current
		// assignment instead of computing one (v9+ understands this).
		resp.SkipAssignment = m.id == g.leader
		g.s.queue(func() { pj.respond(resp) })
	})
}

// renameMember moves a member to a new id everywhere the group names it.
func (g *group) renameMember(m *member, newID string) {
	oldID := m.id
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = newID
	}
	if g.leader == oldID {
		g.leader = newID
	}
	if g.awaitingSync[oldID] {
		delete(g.awaitingSync, oldID)
		g.awaitingSync[newID] = true
	}
}
