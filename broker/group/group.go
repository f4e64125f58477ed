package group

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state, named as Kafka names them in
// ListGroups and DescribeGroups.
type groupState int8

const (
	stateEmpty               groupState = iota // no members; may hold offsets
	statePreparingRebalance                    // waiting for members to (re)join
	stateCompletingRebalance                   // joined; waiting for the leader's SyncGroup
	stateStable                                // assignments handed out
	stateDead                                  // deleted; never kept in a shard's map
)

func (st groupState) String() string {
	switch st {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// consumerProtocolType is the protocol type of Kafka consumers, whose
// assignments the coordinator may synthesise (an empty one) and whose
// subscriptions OffsetDelete looks into.
const consumerProtocolType = "consumer"

// emptyConsumerAssignment is an encoded ConsumerMemberAssignment with no
// partitions, handed to members of a consumer group the leader assigned
// nothing: some clients cannot decode zero bytes.
var emptyConsumerAssignment = func() []byte {
	var a kmsg.ConsumerMemberAssignment
	return a.AppendTo(nil)
}()

type protocol struct {
	name     string
	metadata []byte
}

// pendingJoin is a JoinGroup parked until the rebalance completes.
type pendingJoin struct {
	req     *kmsg.JoinGroupRequest
	respond func(*kmsg.JoinGroupResponse)
}

// pendingSync is a SyncGroup parked until the leader's assignment is stored.
type pendingSync struct {
	req     *kmsg.SyncGroupRequest
	respond func(*kmsg.SyncGroupResponse)
}

// member is one joined member of a group.
type member struct {
	id               string
	instanceID       *string // group.instance.id of a static member
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocol // in the member's order of preference
	assignment       []byte
	lastHeartbeat    time.Time
	seq              uint64 // join order: picks leaders and orders member lists deterministically

	join *pendingJoin // parked JoinGroup, or nil
	sync *pendingSync // parked SyncGroup, or nil
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// sameProtocols reports whether a join carries exactly the member's
// protocols and metadata, in order.
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].name || !bytes.Equal(p.Metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

// alive reports whether the member's session holds at now. A member parked
// in JoinGroup or SyncGroup is alive: the rebalance and sync deadlines
// bound those waits.
func (m *member) alive(now time.Time) bool {
	return m.join != nil || m.sync != nil || now.Before(m.lastHeartbeat.Add(m.sessionTimeout))
}

// group is one classic consumer group. It is owned by its shard: every
// field is guarded by the shard's mu, and every method is called with it
// held. Responses are never sent directly: they are queued on the shard
// and sent once the lock is released.
type group struct {
	s            *shard
	id           string
	state        groupState
	stateSince   time.Time // when the group entered state (Kafka's currentStateTimestamp)
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	pending      map[string]time.Time // members given an id by MEMBER_ID_REQUIRED → when they expire
	static       map[string]string    // group.instance.id → member id
	offsets      map[offsetKey]offsetCommit
	nextSeq      uint64

	// storedMetadata is the value of the group's latest group metadata
	// record, or nil when none is live; compaction rewrites it as is.
	storedMetadata []byte

	rebalanceDeadline time.Time     // PreparingRebalance: complete the join by then
	initialDelay      bool          // the rebalance is the delayed first one of an empty group
	initialRemaining  time.Duration // rebalance timeout left for extending the initial delay
	newMemberAdded    bool          // a member joined during the current initial delay
	awaitingSync      map[string]bool
	syncDeadline      time.Time // members still in awaitingSync by then are removed

	scheduled time.Time // deadline of this group's live entry in the shard's timer heap; zero if none
}

func newGroup(s *shard, id string, now time.Time) *group {
	return &group{
		s: s, id: id, state: stateEmpty, stateSince: now,
		members: map[string]*member{},
		pending: map[string]time.Time{},
		static:  map[string]string{},
		offsets: map[offsetKey]offsetCommit{},
	}
}

func (g *group) transition(st groupState, now time.Time) {
	g.state, g.stateSince = st, now
}

// unused reports whether the group holds nothing worth keeping: no members,
// no offsets, and nothing stored.
func (g *group) unused() bool {
	return g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 &&
		len(g.offsets) == 0 && g.storedMetadata == nil
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return ms
}

// fencedInstance reports a static member whose instance id now belongs to
// another member id (FENCED_INSTANCE_ID).
func (g *group) fencedInstance(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	id, ok := g.static[*instanceID]
	return ok && id != memberID
}

// supportsProtocols is Kafka's check of a join against the group: a
// protocol type and at least one protocol, and, once the group has
// members, the same protocol type and a protocol every member supports.
func (g *group) supportsProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType == "" || len(ps) == 0 {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supportedByAll(p.Name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !m.hasProtocol(name) {
			return false
		}
	}
	return true
}

func (m *member) hasProtocol(name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

// selectProtocol is Kafka's vote: among the protocols every member
// supports, each member votes for the one it prefers most; the most votes
// win, ties going to the earliest member's preference.
func (g *group) selectProtocol() (string, bool) {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return "", false
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if g.supportedByAll(p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, p := range ms[0].protocols {
		if v := votes[p.name]; v > bestVotes {
			best, bestVotes = p.name, v
		}
	}
	return best, bestVotes > 0
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// newMemberID is Kafka's: the client id (or the instance id of a static
// member), a dash and a random UUID.
func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// addMember adds a joined member, parked in JoinGroup, and rebalances.
func (g *group) addMemberAndRebalance(now time.Time, m *member, pj *pendingJoin) {
	if len(g.members) == 0 {
		g.protocolType = pj.req.ProtocolType
	}
	m.seq = g.nextSeq
	g.nextSeq++
	m.join = pj
	m.lastHeartbeat = now
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.maybePrepareRebalance(now)
	g.tryCompleteJoin(now)
}

// updateMemberAndRebalance takes a known member's new join and rebalances.
func (g *group) updateMemberAndRebalance(now time.Time, m *member, pj *pendingJoin) {
	g.updateMember(m, pj.req)
	if m.join != nil {
		// A second JoinGroup while the first is parked (a client that
		// timed out and retried): the first gets an error to rejoin on.
		g.replyJoinError(m.join, kerr.RebalanceInProgress.Code, m.id)
	}
	m.join = pj
	m.lastHeartbeat = now
	g.maybePrepareRebalance(now)
	g.tryCompleteJoin(now)
}

func (g *group) updateMember(m *member, req *kmsg.JoinGroupRequest) {
	m.protocols = protocolsOf(req.Protocols)
	m.sessionTimeout, m.rebalanceTimeout = joinTimeouts(req)
}

func protocolsOf(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		// Copied: request bytes may alias a pooled frame.
		out[i] = protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)}
		if out[i].metadata == nil {
			out[i].metadata = []byte{}
		}
	}
	return out
}

// joinTimeouts returns a join's session and rebalance timeouts; JoinGroup
// v0 has no rebalance timeout and uses the session timeout for both.
func joinTimeouts(req *kmsg.JoinGroupRequest) (session, rebalance time.Duration) {
	session = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		rebalance = session
	}
	return session, rebalance
}

// removeMember takes a member out of the group without rebalancing. Its
// parked requests are answered with code.
func (g *group) removeMember(m *member, code int16) {
	if m.join != nil {
		g.replyJoinError(m.join, code, m.id)
		m.join = nil
	}
	if m.sync != nil {
		g.replySyncError(m.sync, code)
		m.sync = nil
	}
	delete(g.members, m.id)
	delete(g.awaitingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMemberAndUpdate removes a member that left or expired and moves
// the group on: a stable group rebalances, a rebalancing one may now be
// complete.
func (g *group) removeMemberAndUpdate(now time.Time, m *member) {
	g.removeMember(m, kerr.UnknownMemberID.Code)
	if g.state == stateStable || g.state == stateCompletingRebalance {
		g.prepareRebalance(now)
	}
	g.tryCompleteJoin(now)
}

func (g *group) maybePrepareRebalance(now time.Time) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		g.prepareRebalance(now)
	}
}

// prepareRebalance starts a rebalance: members must rejoin within the
// largest rebalance timeout; callers then call tryCompleteJoin, since the
// members may all be there already. The first rebalance of an empty group waits
// group.initial.rebalance.delay.ms for more members, extended while new
// ones keep coming, up to the rebalance timeout (Kafka's
// InitialDelayedJoin).
func (g *group) prepareRebalance(now time.Time) {
	if g.state == stateCompletingRebalance {
		g.resetAndPropagateAssignmentError(kerr.RebalanceInProgress.Code)
	}
	g.awaitingSync, g.syncDeadline = nil, time.Time{}
	delay := g.s.c.cfg.InitialRebalanceDelay
	if g.state == stateEmpty && delay > 0 {
		g.initialDelay, g.newMemberAdded = true, false
		g.rebalanceDeadline = now.Add(delay)
		g.initialRemaining = max(g.maxRebalanceTimeout()-delay, 0)
	} else {
		g.initialDelay = false
		g.rebalanceDeadline = now.Add(g.maxRebalanceTimeout())
	}
	g.transition(statePreparingRebalance, now)
}

// resetAndPropagateAssignmentError drops the assignments of a rebalance that
// did not complete and answers the parked SyncGroups with code.
func (g *group) resetAndPropagateAssignmentError(code int16) {
	for _, m := range g.members {
		m.assignment = nil
		if m.sync != nil {
			g.replySyncError(m.sync, code)
			m.sync = nil
		}
	}
}

// allJoined: every member is parked in JoinGroup and no member is still
// due back with the id MEMBER_ID_REQUIRED gave it.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

func (g *group) tryCompleteJoin(now time.Time) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin(now)
	}
}

// onRebalanceDeadline runs when a rebalance's wait is over.
func (g *group) onRebalanceDeadline(now time.Time) {
	if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
		d := min(g.s.c.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining -= d
		g.newMemberAdded = false
		g.rebalanceDeadline = now.Add(d)
		return
	}
	g.completeJoin(now)
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation moves on, a protocol is chosen and every member
// gets its JoinGroup answer (the leader with everyone's metadata). A group
// left without members becomes Empty and is stored so.
func (g *group) completeJoin(now time.Time) {
	g.initialDelay, g.rebalanceDeadline = false, time.Time{}
	for _, m := range g.sortedMembers() {
		if m.join == nil {
			g.s.logger.Info("member removed: did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.generation++
	if g.generation < 0 {
		g.generation = 1
	}
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.transition(stateEmpty, now)
		g.storeMetadata(now, nil, func(err error) {
			if err != nil {
				g.s.logger.Warn("storing empty group failed", "group", g.id, "generation", g.generation, "err", err)
			}
		})
		return
	}
	proto, ok := g.selectProtocol()
	if !ok {
		// Unreachable while joins are checked with supportsProtocols.
		g.s.logger.Error("no protocol common to all members", "group", g.id)
		for _, m := range g.sortedMembers() {
			g.removeMember(m, kerr.InconsistentGroupProtocol.Code)
		}
		g.completeJoin(now)
		return
	}
	g.protocol = proto
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.sortedMembers()[0].id
	}
	g.transition(stateCompletingRebalance, now)
	g.awaitingSync = map[string]bool{}
	g.syncDeadline = now.Add(g.maxRebalanceTimeout())
	for _, m := range g.sortedMembers() {
		g.awaitingSync[m.id] = true
		pj := m.join
		m.join = nil
		m.lastHeartbeat = now
		resp := g.joinResponse(pj.req, m)
		g.s.queue(func() { pj.respond(resp) })
	}
	g.s.logger.Info("group rebalanced", "group", g.id, "generation", g.generation,
		"protocol", g.protocol, "leader", g.leader, "members", len(g.members))
}

// joinResponse is the JoinGroup answer for m in the current generation.
func (g *group) joinResponse(req *kmsg.JoinGroupRequest, m *member) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	protocolType, proto := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &protocolType, &proto
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = o.id, o.instanceID, o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func (g *group) replyJoinError(pj *pendingJoin, code int16, memberID string) {
	resp := pj.req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode, resp.MemberID, resp.Generation = code, memberID, -1
	g.s.queue(func() { pj.respond(resp) })
}

func (g *group) replySyncError(ps *pendingSync, code int16) {
	resp := ps.req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	g.s.queue(func() { ps.respond(resp) })
}

// metadataValue is the group metadata record of the current generation with
// the given assignments (the members' current ones when nil).
func (g *group) metadataValue(now time.Time, assignments map[string][]byte) *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		if assignments != nil {
			vm.Assignment = assignments[m.id]
		}
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return &v
}

// storeMetadata writes the group's metadata record and calls done with the
// outcome; on success the record becomes the group's live one.
func (g *group) storeMetadata(now time.Time, assignments map[string][]byte, done func(error)) {
	rec := groupMetadataRecord(g.id, g.metadataValue(now, assignments))
	g.s.store(now, []record{rec}, func(err error) {
		if err == nil {
			g.storedMetadata = rec.value
		}
		done(err)
	})
}

// nextDeadline is the earliest time at which tick has work, or zero.
func (g *group) nextDeadline() time.Time {
	var at time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if g.state == statePreparingRebalance {
		consider(g.rebalanceDeadline)
	}
	if len(g.awaitingSync) > 0 {
		consider(g.syncDeadline)
	}
	for _, m := range g.members {
		if m.join == nil && m.sync == nil {
			consider(m.lastHeartbeat.Add(m.sessionTimeout))
		}
	}
	for _, exp := range g.pending {
		consider(exp)
	}
	return at
}

// tick applies the deadlines that passed by now: expired sessions of
// members and of members awaiting their id, members that never sent
// SyncGroup, and the end of a rebalance's wait.
func (g *group) tick(now time.Time) {
	for id, exp := range g.pending {
		if !now.Before(exp) {
			delete(g.pending, id)
		}
	}
	for _, m := range g.sortedMembers() {
		// A removal may complete a join, which removes the members that
		// did not rejoin: only members still there count.
		if g.members[m.id] == m && !m.alive(now) {
			g.s.logger.Info("member session expired", "group", g.id, "member", m.id, "session_timeout", m.sessionTimeout)
			g.removeMemberAndUpdate(now, m)
		}
	}
	if len(g.awaitingSync) > 0 && !now.Before(g.syncDeadline) &&
		(g.state == stateCompletingRebalance || g.state == stateStable) {
		for _, m := range g.sortedMembers() {
			if g.members[m.id] == m && g.awaitingSync[m.id] {
				g.s.logger.Info("member removed: no SyncGroup in time", "group", g.id, "member", m.id)
				g.removeMember(m, kerr.UnknownMemberID.Code)
			}
		}
		g.prepareRebalance(now)
	}
	if g.state == statePreparingRebalance && !now.Before(g.rebalanceDeadline) {
		g.onRebalanceDeadline(now)
	}
	g.tryCompleteJoin(now)
}
