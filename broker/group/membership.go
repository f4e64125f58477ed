package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup serves SyncGroup v0-v5. respond is called once: at once, or for
// a member of a completing rebalance once the leader's assignment is stored.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	fail := func(code int16) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		respond(resp)
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	s, code := c.lockShard(req.Group)
	if code != 0 {
		fail(code)
		return
	}
	defer s.unlock()
	g := s.groups[req.Group]
	if g == nil {
		s.queue(func() { fail(kerr.UnknownMemberID.Code) })
		return
	}
	g.sync(c.now(), &pendingSync{req: req, respond: respond})
	s.afterLocked(g)
}

// sync handles a SyncGroup for the group (Kafka's doSyncGroup).
func (g *group) sync(now time.Time, ps *pendingSync) {
	req := ps.req
	m := g.members[req.MemberID]
	switch {
	case g.fencedInstance(req.InstanceID, req.MemberID):
		g.replySyncError(ps, kerr.FencedInstanceID.Code)
		return
	case m == nil:
		g.replySyncError(ps, kerr.UnknownMemberID.Code)
		return
	case req.Generation != g.generation:
		g.replySyncError(ps, kerr.IllegalGeneration.Code)
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		g.replySyncError(ps, kerr.InconsistentGroupProtocol.Code)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		g.replySyncError(ps, kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		if m.sync != nil {
			g.replySyncError(m.sync, kerr.RebalanceInProgress.Code)
		}
		m.sync = ps
		m.lastHeartbeat = now
		delete(g.awaitingSync, m.id)
		if m.id == g.leader {
			g.completeSync(now, req)
		}
	case stateStable:
		delete(g.awaitingSync, m.id)
		m.lastHeartbeat = now
		g.replySync(ps, m.assignment)
	default:
		g.replySyncError(ps, kerr.UnknownMemberID.Code)
	}
}

// completeSync stores the leader's assignment and, once it is stored, hands
// every parked member its part and makes the group Stable. Members the
// leader left out get an empty assignment.
func (g *group) completeSync(now time.Time, req *kmsg.SyncGroupRequest) {
	assignments := make(map[string][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		if _, ok := g.members[a.MemberID]; ok {
			assignments[a.MemberID] = bytes.Clone(a.MemberAssignment)
		}
	}
	for id := range g.members {
		if len(assignments[id]) == 0 {
			assignments[id] = g.emptyAssignment()
		}
	}
	generation := g.generation
	g.storeMetadata(now, assignments, func(err error) {
		if g.state != stateCompletingRebalance || g.generation != generation {
			return // the group moved on; its parked requests were answered then
		}
		if err != nil {
			g.resetAndPropagateAssignmentError(storeErrorCode(err, false))
			g.prepareRebalance(now)
			g.tryCompleteJoin(now)
			return
		}
		for id, m := range g.members {
			m.assignment = assignments[id]
			if m.sync != nil {
				g.replySync(m.sync, m.assignment)
				m.sync = nil
			}
		}
		g.transition(stateStable, now)
	})
}

func (g *group) emptyAssignment() []byte {
	if g.protocolType == consumerProtocolType {
		return emptyConsumerAssignment
	}
	return []byte{}
}

func (g *group) replySync(ps *pendingSync, assignment []byte) {
	resp := ps.req.ResponseKind().(*kmsg.SyncGroupResponse)
	protocolType, proto := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &protocolType, &proto
	resp.MemberAssignment = assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = g.emptyAssignment()
	}
	g.s.queue(func() { ps.respond(resp) })
}

// Heartbeat serves Heartbeat v0-v4.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	s, code := c.lockShard(req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer s.unlock()
	g := s.groups[req.Group]
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	resp.ErrorCode = g.heartbeat(c.now(), req)
	s.afterLocked(g)
	return resp
}

func (g *group) heartbeat(now time.Time, req *kmsg.HeartbeatRequest) int16 {
	m := g.members[req.MemberID]
	switch {
	case g.fencedInstance(req.InstanceID, req.MemberID):
		return kerr.FencedInstanceID.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case stateCompletingRebalance, stateStable:
		m.lastHeartbeat = now
		return 0
	case statePreparingRebalance:
		// The member must rejoin; its session still holds meanwhile.
		m.lastHeartbeat = now
		return kerr.RebalanceInProgress.Code
	}
	return kerr.UnknownMemberID.Code
}

// LeaveGroup serves LeaveGroup v0-v5 (v3+ leave several members at once,
// by member id or by group.instance.id).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	s, code := c.lockShard(req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer s.unlock()
	now := c.now()
	g := s.groups[req.Group]
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		if g == nil {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			rm.MemberID, rm.ErrorCode = g.leave(now, lm.MemberID, lm.InstanceID)
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode, resp.Members = resp.Members[0].ErrorCode, nil
	}
	if g != nil {
		s.afterLocked(g)
	}
	return resp
}

// leave removes one member and returns its member id (resolved from the
// instance id when only that was given) and the member's error code.
func (g *group) leave(now time.Time, memberID string, instanceID *string) (string, int16) {
	if _, ok := g.pending[memberID]; ok && memberID != "" {
		delete(g.pending, memberID)
		g.tryCompleteJoin(now)
		return memberID, 0
	}
	if instanceID != nil {
		id, ok := g.static[*instanceID]
		switch {
		case ok && memberID != "" && id != memberID:
			return memberID, kerr.FencedInstanceID.Code
		case !ok:
			return memberID, kerr.UnknownMemberID.Code
		}
		memberID = id
	}
	m := g.members[memberID]
	if m == nil {
		return memberID, kerr.UnknownMemberID.Code
	}
	g.s.logger.Info("member left", "group", g.id, "member", memberID)
	g.removeMemberAndUpdate(now, m)
	return memberID, 0
}
