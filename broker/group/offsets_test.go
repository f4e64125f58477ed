package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSimpleCommitsOfStandaloneConsumers(t *testing.T) {
	h := newHarness(t, testConfig())
	codes := h.commit("solo", "", -1, map[string]map[int32]int64{"orders": {0: 5, 1: 7}})
	if codes["orders/0"] != 0 || codes["orders/1"] != 0 {
		t.Fatalf("simple commit: %v", codes)
	}
	if got := h.fetch("solo"); got["orders/0"] != 5 || got["orders/1"] != 7 || len(got) != 2 {
		t.Fatalf("fetch: %v", got)
	}
	if d := h.describe("solo"); d.State != "Empty" || d.ProtocolType != "" {
		t.Fatalf("describe a simple group: %+v", d)
	}
	// A member generation of a group that does not exist is stale.
	if codes := h.commit("nobody", "m", 3, map[string]map[int32]int64{"orders": {0: 1}}); codes["orders/0"] != kerr.IllegalGeneration.Code {
		t.Fatalf("commit to an unknown group with a generation: %v", codes)
	}
}

func TestMemberCommitValidation(t *testing.T) {
	h := newHarness(t, testConfig())
	l, f, gen := h.stableGroup("g")
	one := map[string]map[int32]int64{"orders": {0: 42}}
	for _, tc := range []struct {
		name     string
		memberID string
		gen      int32
		want     int16
	}{
		{"member of the generation", f, gen, 0},
		{"simple commit while the group has members", "", -1, kerr.UnknownMemberID.Code},
		{"stale generation", l, gen - 1, kerr.IllegalGeneration.Code},
		{"unknown member", "ghost", gen, kerr.UnknownMemberID.Code},
	} {
		if got := h.commit("g", tc.memberID, tc.gen, one)["orders/0"]; got != tc.want {
			t.Errorf("%s: error %d, want %d", tc.name, got, tc.want)
		}
	}
	codes := h.commit("g", l, gen, map[string]map[int32]int64{"orders": {1: 1}, "unknown-topic": {0: 1}, "payments": {100: 1}})
	if codes["orders/1"] != 0 || codes["unknown-topic/0"] != kerr.UnknownTopicOrPartition.Code || codes["payments/100"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("mixed commit: %v", codes)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = "g", l, gen
	big := strings.Repeat("x", 4097)
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.Metadata = 2, 9, &big
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r := newReply[*kmsg.OffsetCommitResponse]()
	h.c.OffsetCommit(req, r.respond)
	if code := r.now(t).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("oversized offset metadata: %d", code)
	}
	if got := h.fetch("g"); len(got) != 2 || got["orders/0"] != 42 || got["orders/1"] != 1 {
		t.Fatalf("committed: %v", got)
	}
}

func TestOffsetFetchVersions(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit("g", "", -1, map[string]map[int32]int64{"orders": {0: 10, 3: 30}, "payments": {1: 11}})

	v1 := kmsg.NewPtrOffsetFetchRequest()
	v1.Version = 1
	v1.Group = "g"
	v1.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
	resp := h.c.OffsetFetch(v1)
	if ps := resp.Topics[0].Partitions; len(ps) != 2 || ps[0].Offset != 10 || ps[1].Offset != -1 {
		t.Fatalf("fetch v1: %+v", ps)
	}

	all := kmsg.NewPtrOffsetFetchRequest()
	all.Version = 7
	all.Group = "g"
	resp = h.c.OffsetFetch(all)
	if resp.ErrorCode != 0 || len(resp.Topics) != 2 || resp.Topics[0].Topic != "orders" || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("fetch v7 of all topics: %+v", resp)
	}

	v8 := kmsg.NewPtrOffsetFetchRequest()
	v8.Version = 8
	v8.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "payments", Partitions: []int32{1}}}},
		{Group: "unknown"},
		{Group: "unknown", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: []int32{0}}}},
	}
	resp = h.c.OffsetFetch(v8)
	if len(resp.Groups) != 3 || resp.Groups[0].Topics[0].Partitions[0].Offset != 11 ||
		len(resp.Groups[1].Topics) != 0 || resp.Groups[2].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("fetch v8: %+v", resp.Groups)
	}
}

func TestDeleteGroupsAndOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	l, _, gen := h.stableGroup("live")
	h.commit("live", l, gen, map[string]map[int32]int64{"orders": {0: 1}, "other": {0: 2}})
	h.commit("idle", "", -1, map[string]map[int32]int64{"orders": {0: 1, 1: 2}})

	del := func(groups ...string) []kmsg.DeleteGroupsResponseGroup {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 2
		req.Groups = groups
		r := newReply[*kmsg.DeleteGroupsResponse]()
		h.c.DeleteGroups(req, r.respond)
		return r.now(t).Groups
	}
	got := del("live", "idle", "nothing")
	if got[0].ErrorCode != kerr.NonEmptyGroup.Code || got[1].ErrorCode != 0 || got[2].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups: %+v", got)
	}
	if d := h.describe("idle"); d.State != "Dead" {
		t.Fatalf("deleted group: %+v", d)
	}

	offDel := func(group string, topics map[string][]int32) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		for topic, ps := range topics {
			rt := kmsg.OffsetDeleteRequestTopic{Topic: topic}
			for _, p := range ps {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
			}
			req.Topics = append(req.Topics, rt)
		}
		r := newReply[*kmsg.OffsetDeleteResponse]()
		h.c.OffsetDelete(req, r.respond)
		return r.now(t)
	}
	// The live group subscribes to "orders" (proto's metadata): its
	// offsets stay; "other" is not subscribed and goes.
	resp := offDel("live", map[string][]int32{"orders": {0}})
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete of a subscribed topic: %+v", resp)
	}
	resp = offDel("live", map[string][]int32{"other": {0}})
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete of an unsubscribed topic: %+v", resp)
	}
	if got := h.fetch("live"); len(got) != 1 || got["orders/0"] != 1 {
		t.Fatalf("offsets left: %v", got)
	}
	if resp := offDel("nothing", map[string][]int32{"orders": {0}}); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("offset delete of an unknown group: %d", resp.ErrorCode)
	}
	// Deleting an empty group's last offset deletes the group.
	h.commit("idle2", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	if resp := offDel("idle2", map[string][]int32{"orders": {0}}); resp.ErrorCode != 0 {
		t.Fatal(resp.ErrorCode)
	}
	if d := h.describe("idle2"); d.State != "Dead" {
		t.Fatalf("group without offsets: %s", d.State)
	}
	h.restart()
	if got := h.fetch("live"); len(got) != 1 || got["orders/0"] != 1 {
		t.Fatalf("offsets after a rebuild: %v", got)
	}
	if d := h.describe("idle"); d.State != "Dead" {
		t.Fatalf("deleted group came back: %+v", d)
	}
}

func TestOffsetsRetentionOfEmptyGroups(t *testing.T) {
	cfg := testConfig()
	cfg.OffsetsRetention = time.Hour
	cfg.OffsetsRetentionCheckInterval = time.Minute
	h := newHarness(t, cfg)
	h.commit("old", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	l, _, gen := h.stableGroup("busy")
	h.commit("busy", l, gen, map[string]map[int32]int64{"orders": {0: 5}})
	h.advance(30 * time.Minute)
	h.commit("old", "", -1, map[string]map[int32]int64{"orders": {1: 2}}) // younger
	// Keep busy's members alive through the hour.
	for i := 0; i < 8; i++ {
		h.advance(5 * time.Second)
		for _, m := range h.describe("busy").Members {
			h.heartbeat("busy", m.MemberID, gen)
		}
	}
	h.advance(31 * time.Minute)
	if got := h.fetch("old"); len(got) != 1 || got["orders/1"] != 2 {
		t.Fatalf("after the first expiry: %v", got)
	}
	if got := h.fetch("busy"); got["orders/0"] != 5 {
		t.Fatalf("a group with members lost its offsets: %v", got)
	}
	h.advance(31 * time.Minute)
	if d := h.describe("old"); d.State != "Dead" {
		t.Fatalf("expired empty group: %s", d.State)
	}
	h.restart()
	if d := h.describe("old"); d.State != "Dead" {
		t.Fatalf("expired group came back after a rebuild: %s", d.State)
	}
}

func TestOffsetCommitRetentionTimeOfOldVersions(t *testing.T) {
	h := newHarness(t, testConfig())
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 2
	req.Group = "g"
	req.RetentionTimeMillis = 60_000
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}
	r := newReply[*kmsg.OffsetCommitResponse]()
	h.c.OffsetCommit(req, r.respond)
	if code := r.now(t).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatal(code)
	}
	h.advance(11 * time.Minute) // past the retention time and a sweep
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("offsets with a 1 min retention time still there: %+v", h.fetch("g"))
	}
}
