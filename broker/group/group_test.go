package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinSyncHeartbeatLifecycle(t *testing.T) {
	h := newHarness(t, testConfig())
	a, ra := h.joinNew("g", "client-a", proto("range", "orders"))
	b, rb := h.joinNew("g", "client-b", proto("range", "payments"))
	if got := h.describe("g").State; got != "PreparingRebalance" {
		t.Fatalf("state %s during the initial delay", got)
	}
	// The initial delay runs again because b joined during it.
	h.advance(100 * time.Millisecond)
	ra.none(t)
	h.advance(100 * time.Millisecond)
	ja, jb := ra.now(t), rb.now(t)
	if ja.Generation != 1 || jb.Generation != 1 || ja.LeaderID != a || jb.LeaderID != a {
		t.Fatalf("join answers: gen %d/%d leader %s/%s, want gen 1 leader %s", ja.Generation, jb.Generation, ja.LeaderID, jb.LeaderID, a)
	}
	if len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("leader got %d members, follower %d; want 2 and 0", len(ja.Members), len(jb.Members))
	}
	if *ja.Protocol != "range" || *ja.ProtocolType != "consumer" {
		t.Fatalf("protocol %s/%s", *ja.ProtocolType, *ja.Protocol)
	}
	if got := h.describe("g").State; got != "CompletingRebalance" {
		t.Fatalf("state %s after the join, want CompletingRebalance", got)
	}
	// Heartbeats are fine while the leader computes the assignment; commits
	// are not (the members do not know their partitions yet).
	if code := h.heartbeat("g", b, 1); code != 0 {
		t.Fatalf("heartbeat in CompletingRebalance: %d", code)
	}
	if codes := h.commit("g", b, 1, map[string]map[int32]int64{"orders": {0: 1}}); codes["orders/0"] != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit in CompletingRebalance: %v", codes)
	}
	sb := h.sync("g", b, 1, nil)
	sb.none(t)
	sa := h.sync("g", a, 1, map[string]string{a: "assignment-a"}) // b left out
	if got := sa.now(t); got.ErrorCode != 0 || string(got.MemberAssignment) != "assignment-a" {
		t.Fatalf("leader sync: %+v", got)
	}
	if got := sb.now(t); got.ErrorCode != 0 || string(got.MemberAssignment) != string(emptyConsumerAssignment) {
		t.Fatalf("member left out of the assignment got %x, want an empty consumer assignment", got.MemberAssignment)
	}
	d := h.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	if code := h.heartbeat("g", a, 1); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	// A late SyncGroup in Stable gets the member's assignment.
	if got := h.sync("g", a, 1, nil).now(t); string(got.MemberAssignment) != "assignment-a" {
		t.Fatalf("late sync: %q", got.MemberAssignment)
	}
}

func TestNewMemberRebalancesGroup(t *testing.T) {
	h := newHarness(t, testConfig())
	l, f, gen := h.stableGroup("g")
	c, rc := h.joinNew("g", "c")
	rc.none(t)
	if code := h.heartbeat("g", l, gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	// Eager consumers commit before they rejoin: allowed with the
	// generation they have.
	if codes := h.commit("g", l, gen, map[string]map[int32]int64{"orders": {0: 10}}); codes["orders/0"] != 0 {
		t.Fatalf("commit in PreparingRebalance: %v", codes)
	}
	rl := h.join("l", joinReq(9, "g", l))
	rl.none(t)
	rf := h.join("f", joinReq(9, "g", f))
	jl, jf, jc := rl.now(t), rf.now(t), rc.now(t)
	for _, j := range []*kmsg.JoinGroupResponse{jl, jf, jc} {
		if j.ErrorCode != 0 || j.Generation != gen+1 || j.LeaderID != l {
			t.Fatalf("join answer %+v, want generation %d led by %s", j, gen+1, l)
		}
	}
	if len(jl.Members) != 3 {
		t.Fatalf("leader saw %d members", len(jl.Members))
	}
	_ = c
	if code := h.heartbeat("g", f, gen); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with the old generation: %d", code)
	}
}

func TestLeaveGroupBatchedAndSingle(t *testing.T) {
	h := newHarness(t, testConfig())
	l, f, gen := h.stableGroup("g")
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: f}, {MemberID: "nobody"}}
	resp := h.c.LeaveGroup(req)
	if resp.ErrorCode != 0 || len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v5: %+v", resp)
	}
	if code := h.heartbeat("g", l, gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after a leave: %d", code)
	}
	j := h.join("l", joinReq(9, "g", l)).now(t)
	if j.Generation != gen+1 || len(j.Members) != 1 {
		t.Fatalf("rejoin: %+v", j)
	}
	// v0 leaves one member; the error is top-level.
	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Group, v0.MemberID = "g", "nobody"
	if resp := h.c.LeaveGroup(v0); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v0 of an unknown member: %d", resp.ErrorCode)
	}
	v0.MemberID = l
	if resp := h.c.LeaveGroup(v0); resp.ErrorCode != 0 {
		t.Fatalf("leave v0: %d", resp.ErrorCode)
	}
	if got := h.describe("g"); got.State != "Empty" || len(got.Members) != 0 {
		t.Fatalf("after everyone left: %+v", got)
	}
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	h := newHarness(t, testConfig())
	l, f, gen := h.stableGroup("g")
	h.advance(6 * time.Second)
	if code := h.heartbeat("g", l, gen); code != 0 {
		t.Fatal(code)
	}
	h.advance(5 * time.Second) // f's 10 s session is over, l's is not
	if code := h.heartbeat("g", l, gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after a member expired: %d", code)
	}
	if code := h.heartbeat("g", f, gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d", code)
	}
	j := h.join("l", joinReq(9, "g", l)).now(t)
	if j.Generation != gen+1 || len(j.Members) != 1 || j.Members[0].MemberID != l {
		t.Fatalf("rejoin: %+v", j)
	}
}

func TestRebalanceTimeoutRemovesMembersThatDoNotRejoin(t *testing.T) {
	h := newHarness(t, testConfig())
	l, f, gen := h.stableGroup("g")
	_, rc := h.joinNew("g", "c")
	rl := h.join("l", joinReq(9, "g", l))
	// f keeps heartbeating but never rejoins; the rebalance timeout is 30 s.
	for i := 0; i < 5; i++ {
		h.advance(5 * time.Second)
		if code := h.heartbeat("g", f, gen); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat %d: %d", i, code)
		}
	}
	rl.none(t)
	h.advance(5 * time.Second)
	jl, jc := rl.now(t), rc.now(t)
	if jl.Generation != gen+1 || jc.Generation != gen+1 || len(jl.Members) != 2 {
		t.Fatalf("after the rebalance timeout: %+v / %+v", jl, jc)
	}
	if code := h.heartbeat("g", f, gen+1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("member that did not rejoin: heartbeat %d", code)
	}
}

func TestSyncDeadlineRemovesMembersThatNeverSync(t *testing.T) {
	h := newHarness(t, testConfig())
	a, ra := h.joinNew("g", "a")
	h.advance(100 * time.Millisecond)
	j := ra.now(t)
	_ = a
	// The leader never sends SyncGroup, but heartbeats.
	for i := 0; i < 6; i++ {
		h.advance(5 * time.Second)
		h.heartbeat("g", a, j.Generation)
	}
	if got := h.describe("g"); got.State != "Empty" {
		t.Fatalf("state %s after the sync deadline; want the member removed", got.State)
	}
}

func TestProtocolSelectionByVote(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members [][]string
		want    string
	}{
		{"only common protocol", [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin"}}, "roundrobin"},
		{"majority preference", [][]string{{"range", "roundrobin"}, {"range", "roundrobin"}, {"roundrobin", "range"}}, "range"},
		{"tie goes to the first member", [][]string{{"sticky", "range"}, {"range", "sticky"}}, "sticky"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			var replies []reply[*kmsg.JoinGroupResponse]
			for i, names := range tc.members {
				var ps []kmsg.JoinGroupRequestProtocol
				for _, n := range names {
					ps = append(ps, proto(n, "orders"))
				}
				_, r := h.joinNew("g", string(rune('a'+i)), ps...)
				replies = append(replies, r)
			}
			for i := 0; i < len(tc.members); i++ {
				h.advance(100 * time.Millisecond)
			}
			for _, r := range replies {
				if got := *r.now(t).Protocol; got != tc.want {
					t.Fatalf("protocol %s, want %s", got, tc.want)
				}
			}
		})
	}
}

func TestStaticMemberReplacedWithoutRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	static := func(inst, memberID string, protocols ...kmsg.JoinGroupRequestProtocol) *kmsg.JoinGroupRequest {
		r := joinReq(9, "g", memberID, protocols...)
		r.InstanceID = &inst
		return r
	}
	both := []kmsg.JoinGroupRequestProtocol{proto("range", "orders"), proto("roundrobin", "orders")}
	// Static members skip MEMBER_ID_REQUIRED.
	r1 := h.join("c1", static("i1", "", both...))
	r2 := h.join("c2", static("i2", "", both...))
	h.advance(100 * time.Millisecond)
	h.advance(100 * time.Millisecond)
	j1, j2 := r1.now(t), r2.now(t)
	if j1.ErrorCode != 0 || j2.ErrorCode != 0 {
		t.Fatalf("static joins: %d %d", j1.ErrorCode, j2.ErrorCode)
	}
	leader, gen := j1.LeaderID, j1.Generation
	other := j2.MemberID
	if leader == other {
		other = j1.MemberID
	}
	rs := h.sync("g", other, gen, nil)
	h.sync("g", leader, gen, map[string]string{j1.MemberID: "A1", j2.MemberID: "A2"}).now(t)
	rs.now(t)

	// i2 restarts: same protocols, new member id, no rebalance.
	j := h.join("c2", static("i2", "", both...)).now(t)
	if j.ErrorCode != 0 || j.Generation != gen || j.MemberID == j2.MemberID {
		t.Fatalf("static rejoin: %+v", j)
	}
	if wasLeader := j2.MemberID == leader; j.SkipAssignment != wasLeader || (len(j.Members) > 0) != wasLeader {
		t.Fatalf("static rejoin of a member (leader: %v): skip assignment %v, %d members", wasLeader, j.SkipAssignment, len(j.Members))
	}
	if got := h.describe("g"); got.State != "Stable" {
		t.Fatalf("state %s after a static rejoin, want Stable", got.State)
	}
	if code := h.heartbeat("g", j1.MemberID, gen); code != 0 {
		t.Fatalf("other member's heartbeat: %d", code)
	}
	if got := h.sync("g", j.MemberID, gen, nil).now(t); string(got.MemberAssignment) != "A2" {
		t.Fatalf("replacement got assignment %q, want A2", got.MemberAssignment)
	}
	// The old instance is fenced.
	inst := "i2"
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", j2.MemberID, gen, &inst
	if code := h.c.Heartbeat(hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("fenced instance heartbeat: %d", code)
	}
	// A static rejoin that changes the protocol the group would choose
	// rebalances: i1 (the earliest member) now prefers roundrobin, and
	// the 1-1 vote goes its way.
	rj := h.join("c1", static("i1", "", proto("roundrobin", "orders"), proto("range", "orders")))
	rj.none(t)
	if got := h.describe("g"); got.State != "PreparingRebalance" {
		t.Fatalf("state %s after a static rejoin with new protocols", got.State)
	}
	// Leaving by instance id.
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 4
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}}
	if resp := h.c.LeaveGroup(req); resp.Members[0].ErrorCode != 0 || resp.Members[0].MemberID != j.MemberID {
		t.Fatalf("leave by instance id: %+v", resp.Members)
	}
}

func TestMemberIDRequiredExpires(t *testing.T) {
	h := newHarness(t, testConfig())
	first := h.join("a", joinReq(4, "g", "")).now(t)
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("join v4 without id: %d", first.ErrorCode)
	}
	h.advance(10 * time.Second)
	// The id expired with its session: joining with it fails.
	if j := h.join("a", joinReq(4, "g", first.MemberID)).now(t); j.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("join with an expired pending id: %d", j.ErrorCode)
	}
	if got := h.c.ListGroups(kmsg.NewPtrListGroupsRequest()).Groups; len(got) != 0 {
		t.Fatalf("groups left: %+v", got)
	}
}

func TestJoinBeforeV4NeedsNoMemberID(t *testing.T) {
	h := newHarness(t, testConfig())
	r := joinReq(0, "g", "")
	r.RebalanceTimeoutMillis = -1
	rj := h.join("old", r)
	h.advance(100 * time.Millisecond)
	j := rj.now(t)
	if j.ErrorCode != 0 || j.MemberID == "" || j.Generation != 1 {
		t.Fatalf("join v0: %+v", j)
	}
}

func TestUnloadAnswersParkedRequests(t *testing.T) {
	h := newHarness(t, testConfig())
	_, r := h.joinNew("g", "a")
	h.c.Unload(0)
	if j := r.now(t); j.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after unload: %d", j.ErrorCode)
	}
	if j := h.join("a", joinReq(9, "g", "")).now(t); j.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join after unload: %d", j.ErrorCode)
	}
}

func TestListGroupsStatesFilter(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup("stable")
	h.commit("simple", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	h.joinNew("joining", "x")
	list := func(states ...string) map[string]string {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = 4
		req.StatesFilter = states
		out := map[string]string{}
		for _, g := range h.c.ListGroups(req).Groups {
			out[g.Group] = g.GroupState + "/" + g.ProtocolType
		}
		return out
	}
	all := list()
	if len(all) != 3 || all["stable"] != "Stable/consumer" || all["simple"] != "Empty/" || all["joining"] != "PreparingRebalance/consumer" {
		t.Fatalf("all groups: %v", all)
	}
	if got := list("Empty", "Stable"); len(got) != 2 || got["joining"] != "" {
		t.Fatalf("filtered: %v", got)
	}
}
