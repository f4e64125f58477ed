package group

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testClock is the coordinator's fake clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testConfig is a coordinator config with a short initial delay and Kafka's
// session bounds.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 100 * time.Millisecond
	return cfg
}

// harness is one coordinator over one real partition log, with a fake
// clock and manual timers: every deadline fires only in advance.
type harness struct {
	t     testing.TB
	dir   string
	cfg   Config
	clock *testClock
	log   *storage.Log
	c     *Coordinator
	epoch int32
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), cfg: cfg, clock: &testClock{now: time.Unix(1_700_000_000, 0)}}
	h.openLog(storage.DefaultConfig())
	h.start()
	t.Cleanup(func() {
		h.c.Close()
		h.log.Close()
	})
	return h
}

func (h *harness) openLog(cfg storage.Config) {
	h.t.Helper()
	l, err := storage.Open(h.dir, cfg, storage.Options{Logger: testLogger(h.t), Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	h.log = l
}

// start creates a coordinator leading partition 0 (the only one) and waits
// until it is loaded.
func (h *harness) start() {
	h.t.Helper()
	c, err := New(h.cfg, Options{
		PartitionCount:  func() int32 { return 1 },
		PartitionExists: func(topic string, p int32) bool { return topic != "unknown-topic" && p < 100 },
		Now:             h.clock.Now,
		Logger:          testLogger(h.t),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	c.manualTimers = true
	h.c = c
	h.epoch++
	c.Load(Partition{Index: 0, Log: h.log, LeaderEpoch: h.epoch})
	h.waitLoaded()
}

func (h *harness) waitLoaded() {
	h.t.Helper()
	h.c.mu.RLock()
	s := h.c.shards[0]
	h.c.mu.RUnlock()
	select {
	case <-s.loaded:
	case <-time.After(30 * time.Second):
		h.t.Fatal("partition not loaded in 30s")
	}
}

// restart closes the coordinator and the log, opens both again and loads.
func (h *harness) restart() {
	h.t.Helper()
	h.c.Close()
	if err := h.log.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.openLog(storage.DefaultConfig())
	h.start()
}

// advance moves the clock and runs what became due, as the shard's
// goroutine would.
func (h *harness) advance(d time.Duration) {
	h.clock.mu.Lock()
	h.clock.now = h.clock.now.Add(d)
	now := h.clock.now
	h.clock.mu.Unlock()
	h.c.mu.RLock()
	shards := make([]*shard, 0, len(h.c.shards))
	for _, s := range h.c.shards {
		shards = append(shards, s)
	}
	h.c.mu.RUnlock()
	for _, s := range shards {
		s.mu.Lock()
		if s.state == shardLoaded {
			s.runDueLocked(now)
		}
		s.unlock()
	}
}

// reply is a response channel for the callback APIs; every response must
// come exactly once.
type reply[T any] chan T

func newReply[T any]() reply[T] { return make(reply[T], 2) }

func (r reply[T]) respond(v T) { r <- v }

// now returns the response that must have arrived already.
func (r reply[T]) now(t testing.TB) T {
	t.Helper()
	select {
	case v := <-r:
		return v
	default:
		var zero T
		t.Fatalf("no %T yet", zero)
		return zero
	}
}

// none checks that no response arrived.
func (r reply[T]) none(t testing.TB) {
	t.Helper()
	select {
	case v := <-r:
		t.Fatalf("unexpected response %+v", v)
	default:
	}
}

// joinReq is a consumer JoinGroup for topics at version v.
func joinReq(v int16, group, memberID string, protocols ...kmsg.JoinGroupRequestProtocol) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = v
	r.Group, r.MemberID = group, memberID
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10_000, 30_000
	r.ProtocolType = "consumer"
	r.Protocols = protocols
	if len(r.Protocols) == 0 {
		r.Protocols = []kmsg.JoinGroupRequestProtocol{proto("range", "orders")}
	}
	return r
}

// proto is a consumer protocol subscribed to topics.
func proto(name string, topics ...string) kmsg.JoinGroupRequestProtocol {
	meta := kmsg.ConsumerMemberMetadata{Topics: topics}
	return kmsg.JoinGroupRequestProtocol{Name: name, Metadata: meta.AppendTo(nil)}
}

func (h *harness) join(cl string, req *kmsg.JoinGroupRequest) reply[*kmsg.JoinGroupResponse] {
	r := newReply[*kmsg.JoinGroupResponse]()
	h.c.JoinGroup(Client{ID: cl, Host: "/127.0.0.1"}, req, r.respond)
	return r
}

// joinNew takes a dynamic member through the MEMBER_ID_REQUIRED round trip
// and leaves its second join parked; it returns the member id and the
// reply of the parked join.
func (h *harness) joinNew(group, cl string, protocols ...kmsg.JoinGroupRequestProtocol) (string, reply[*kmsg.JoinGroupResponse]) {
	h.t.Helper()
	first := h.join(cl, joinReq(9, group, "", protocols...)).now(h.t)
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		h.t.Fatalf("first join: error %d, member %q; want MEMBER_ID_REQUIRED with an id", first.ErrorCode, first.MemberID)
	}
	return first.MemberID, h.join(cl, joinReq(9, group, first.MemberID, protocols...))
}

func (h *harness) sync(group, memberID string, gen int32, assign map[string]string) reply[*kmsg.SyncGroupResponse] {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, memberID, gen
	ids := make([]string, 0, len(assign))
	for id := range assign {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(assign[id])})
	}
	r := newReply[*kmsg.SyncGroupResponse]()
	h.c.SyncGroup(req, r.respond)
	return r
}

func (h *harness) heartbeat(group, memberID string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, memberID, gen
	return h.c.Heartbeat(req).ErrorCode
}

// commit commits offsets (topic → partition → offset) and returns the
// error codes by "topic/partition".
func (h *harness) commit(group, memberID string, gen int32, offsets map[string]map[int32]int64) map[string]int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, memberID, gen
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = t
		for p, o := range offsets[t] {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, o
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	r := newReply[*kmsg.OffsetCommitResponse]()
	h.c.OffsetCommit(req, r.respond)
	out := map[string]int16{}
	for _, t := range r.now(h.t).Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return out
}

// fetch returns the committed offsets of a group ("topic/partition" →
// offset) via OffsetFetch v8 for all topics.
func (h *harness) fetch(group string) map[string]int64 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg)
	resp := h.c.OffsetFetch(req)
	if resp.Groups[0].ErrorCode != 0 {
		h.t.Fatalf("offset fetch %s: error %d", group, resp.Groups[0].ErrorCode)
	}
	out := map[string]int64{}
	for _, t := range resp.Groups[0].Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.Offset
		}
	}
	return out
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return h.c.DescribeGroups(req).Groups[0]
}

// dump renders the coordinator's whole durable state canonically: what a
// rebuild must reproduce.
func (h *harness) dump() string {
	h.c.mu.RLock()
	s := h.c.shards[0]
	h.c.mu.RUnlock()
	s.mu.Lock()
	defer s.unlock()
	var lines []string
	for id, g := range s.groups {
		lines = append(lines, fmt.Sprintf("group %s state=%s gen=%d type=%s proto=%s leader=%s", id, g.state, g.generation, g.protocolType, g.protocol, g.leader))
		for _, m := range g.members {
			inst := ""
			if m.instanceID != nil {
				inst = *m.instanceID
			}
			lines = append(lines, fmt.Sprintf("  member %s %s %s session=%v assignment=%x meta=%x", id, m.id, inst, m.sessionTimeout, m.assignment, m.metadataFor(g.protocol)))
		}
		for k, oc := range g.offsets {
			lines = append(lines, fmt.Sprintf("  offset %s %s/%d=%d epoch=%d meta=%q expire=%d", id, k.topic, k.partition, oc.offset, oc.leaderEpoch, oc.metadata, oc.expireTimestamp))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// stableGroup forms a two-member group and returns the member ids (leader
// first) and the generation.
func (h *harness) stableGroup(group string) (leader, follower string, gen int32) {
	h.t.Helper()
	a, ra := h.joinNew(group, "a")
	b, rb := h.joinNew(group, "b")
	ra.none(h.t)
	// b joined during the initial delay, which therefore runs once more.
	h.advance(h.cfg.InitialRebalanceDelay)
	ra.none(h.t)
	h.advance(h.cfg.InitialRebalanceDelay)
	ja, jb := ra.now(h.t), rb.now(h.t)
	if ja.ErrorCode != 0 || jb.ErrorCode != 0 {
		h.t.Fatalf("joins: %d %d", ja.ErrorCode, jb.ErrorCode)
	}
	leader, follower = ja.LeaderID, a
	if leader == a {
		follower = b
	}
	gen = ja.Generation
	rf := h.sync(group, follower, gen, nil)
	rf.none(h.t)
	rl := h.sync(group, leader, gen, map[string]string{leader: "L", follower: "F"})
	if got := rl.now(h.t); got.ErrorCode != 0 || string(got.MemberAssignment) != "L" {
		h.t.Fatalf("leader sync: %+v", got)
	}
	if got := rf.now(h.t); got.ErrorCode != 0 || string(got.MemberAssignment) != "F" {
		h.t.Fatalf("follower sync: %+v", got)
	}
	return leader, follower, gen
}
