package group

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups serves ListGroups v0-v4: the groups of every partition this
// broker coordinates, optionally only those in the states asked for (v4).
// While a partition is loading, the answer carries
// COORDINATOR_LOAD_IN_PROGRESS with the groups already known.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	shards, loading := c.loadedShards()
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	var states map[string]bool
	if len(req.StatesFilter) > 0 {
		states = map[string]bool{}
		for _, st := range req.StatesFilter {
			states[st] = true
		}
	}
	for _, s := range shards {
		s.mu.Lock()
		for _, g := range s.groups {
			if states != nil && !states[g.state.String()] {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState = g.id, g.protocolType, g.state.String()
			resp.Groups = append(resp.Groups, lg)
		}
		s.unlock()
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int {
		switch {
		case a.Group < b.Group:
			return -1
		case a.Group > b.Group:
			return 1
		}
		return 0
	})
	return resp
}

// allGroupOperations is the authorized-operations bitfield of a group
// without ACLs: READ (3), DELETE (6) and DESCRIBE (8).
const allGroupOperations = 1<<3 | 1<<6 | 1<<8

// DescribeGroups serves DescribeGroups v0-v5. A group this coordinator does
// not know is described as Dead, as Kafka does. Member metadata and
// assignments are given only for Stable groups.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = allGroupOperations
		}
		s, code := c.lockShard(id)
		if code != 0 {
			dg.ErrorCode = code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		g := s.groups[id]
		if g == nil {
			dg.State = stateDead.String()
		} else {
			g.describe(&dg)
		}
		s.unlock()
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (g *group) describe(dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == stateStable
	if stable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if stable {
			dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}

// DeleteGroups serves DeleteGroups v0-v2: each empty group is deleted with
// its committed offsets (tombstones for all of them); a group with members
// is refused with NON_EMPTY_GROUP. respond is called once the tombstones
// are stored.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest, respond func(*kmsg.DeleteGroupsResponse)) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		dg.ErrorCode = c.deleteGroup(id)
		resp.Groups = append(resp.Groups, dg)
	}
	respond(resp)
}

func (c *Coordinator) deleteGroup(id string) int16 {
	s, code := c.lockShard(id)
	if code != 0 {
		return code
	}
	defer s.unlock()
	g := s.groups[id]
	switch {
	case g == nil:
		return kerr.GroupIDNotFound.Code
	case g.state != stateEmpty || len(g.pending) > 0:
		return kerr.NonEmptyGroup.Code
	}
	recs := make([]record, 0, len(g.offsets)+1)
	keys := make([]offsetKey, 0, len(g.offsets))
	for k := range g.offsets {
		recs = append(recs, offsetTombstone(id, k))
		keys = append(keys, k)
	}
	var result int16
	g.deleteOffsets(c.now(), recs, keys, func(err error) { result = storeErrorCode(err, false) })
	return result
}
