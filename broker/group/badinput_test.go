package group

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBadInputLeavesGroupIntact sends a stable group every kind of bad
// request and checks each gets the right Kafka error while the group's
// state, members, assignments and offsets stay as they were.
func TestBadInputLeavesGroupIntact(t *testing.T) {
	h := newHarness(t, testConfig())
	l, f, gen := h.stableGroup("g")
	h.commit("g", l, gen, map[string]map[int32]int64{"orders": {0: 100}})
	before := h.dump()

	join := func(mutate func(*kmsg.JoinGroupRequest)) int16 {
		r := joinReq(9, "g", f)
		mutate(r)
		return h.join("x", r).now(t).ErrorCode
	}
	oversized := bytes.Repeat([]byte{1}, h.cfg.MaxMemberMetadataBytes+1)
	for _, tc := range []struct {
		name string
		got  int16
		want int16
	}{
		{"join with another protocol type", join(func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" }), kerr.InconsistentGroupProtocol.Code},
		{"join with no protocol in common", join(func(r *kmsg.JoinGroupRequest) {
			r.Protocols = []kmsg.JoinGroupRequestProtocol{proto("my-own-assignor", "orders")}
		}), kerr.InconsistentGroupProtocol.Code},
		{"new member with no protocol in common", join(func(r *kmsg.JoinGroupRequest) {
			r.MemberID = ""
			r.Protocols = []kmsg.JoinGroupRequestProtocol{proto("my-own-assignor", "orders")}
		}), kerr.InconsistentGroupProtocol.Code},
		{"join without protocol type", join(func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "" }), kerr.InconsistentGroupProtocol.Code},
		{"join without protocols", join(func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }), kerr.InconsistentGroupProtocol.Code},
		{"join with oversized metadata", join(func(r *kmsg.JoinGroupRequest) {
			r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: oversized}}
		}), kerr.InvalidRequest.Code},
		{"join with a short session timeout", join(func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 1000 }), kerr.InvalidSessionTimeout.Code},
		{"join with a long session timeout", join(func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 1 << 30 }), kerr.InvalidSessionTimeout.Code},
		{"join with an unknown member id", join(func(r *kmsg.JoinGroupRequest) { r.MemberID = "ghost" }), kerr.UnknownMemberID.Code},
		{"join without group id", join(func(r *kmsg.JoinGroupRequest) { r.Group = "" }), kerr.InvalidGroupID.Code},
		{"sync with a stale generation", h.sync("g", f, gen-1, nil).now(t).ErrorCode, kerr.IllegalGeneration.Code},
		{"sync with a future generation", h.sync("g", l, gen+1, map[string]string{l: "evil"}).now(t).ErrorCode, kerr.IllegalGeneration.Code},
		{"sync of an unknown member", h.sync("g", "ghost", gen, nil).now(t).ErrorCode, kerr.UnknownMemberID.Code},
		{"sync of an unknown group", h.sync("nope", l, gen, nil).now(t).ErrorCode, kerr.UnknownMemberID.Code},
		{"heartbeat with a stale generation", h.heartbeat("g", f, gen-1), kerr.IllegalGeneration.Code},
		{"heartbeat of an unknown member", h.heartbeat("g", "ghost", gen), kerr.UnknownMemberID.Code},
		{"heartbeat of an unknown group", h.heartbeat("nope", "ghost", gen), kerr.UnknownMemberID.Code},
		{"commit with a stale generation", h.commit("g", f, gen-1, map[string]map[int32]int64{"orders": {0: 1}})["orders/0"], kerr.IllegalGeneration.Code},
		{"commit of an unknown member", h.commit("g", "ghost", gen, map[string]map[int32]int64{"orders": {0: 1}})["orders/0"], kerr.UnknownMemberID.Code},
		{"simple commit to a group with members", h.commit("g", "", -1, map[string]map[int32]int64{"orders": {0: 1}})["orders/0"], kerr.UnknownMemberID.Code},
		{"commit for an unknown topic", h.commit("g", l, gen, map[string]map[int32]int64{"unknown-topic": {0: 1}})["unknown-topic/0"], kerr.UnknownTopicOrPartition.Code},
		{"commit for an unknown partition", h.commit("g", l, gen, map[string]map[int32]int64{"orders": {500: 1}})["orders/500"], kerr.UnknownTopicOrPartition.Code},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: error %d (%v), want %d (%v)", tc.name, tc.got, kerr.ErrorForCode(tc.got), tc.want, kerr.ErrorForCode(tc.want))
		}
	}
	// Protocol checks of SyncGroup v5.
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID, sync.Generation = "g", f, gen
	other := "roundrobin"
	sync.Protocol = &other
	r := newReply[*kmsg.SyncGroupResponse]()
	h.c.SyncGroup(sync, r.respond)
	if code := r.now(t).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("sync naming another protocol: %d", code)
	}

	if after := h.dump(); after != before {
		t.Fatalf("bad requests changed the group:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if d := h.describe("g"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after bad input: %+v", d)
	}
	for _, m := range []string{l, f} {
		if code := h.heartbeat("g", m, gen); code != 0 {
			t.Fatalf("member %s after bad input: heartbeat %d", m, code)
		}
	}
}
