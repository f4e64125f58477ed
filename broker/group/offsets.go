package group

import (
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit serves OffsetCommit v2-v8. Commits by members are checked
// against the group's generation; a commit with generation -1 and no member
// id is a simple commit (a standalone consumer), allowed while the group
// has no members. respond is called once the accepted offsets are stored.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest, respond func(*kmsg.OffsetCommitResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	finish := func() {
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
	}
	setAll := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
	}
	s, code := c.lockShard(req.Group)
	if code != 0 {
		setAll(code)
		finish()
		return
	}
	defer s.unlock()
	now := c.now()
	g := s.groups[req.Group]
	if g == nil {
		if req.Generation >= 0 {
			// A member of a generation of a group that does not exist:
			// an old generation, as far as this coordinator knows.
			setAll(kerr.IllegalGeneration.Code)
			s.queue(finish)
			return
		}
		g = newGroup(s, req.Group, now)
		s.groups[req.Group] = g
	}
	if code := g.validateCommit(now, req); code != 0 {
		setAll(code)
		s.queue(finish)
		s.afterLocked(g)
		return
	}

	expire := int64(-1)
	if req.Version <= 4 && req.RetentionTimeMillis > 0 {
		expire = now.UnixMilli() + req.RetentionTimeMillis
	}
	type accepted struct {
		key    offsetKey
		commit offsetCommit
	}
	var recs []record
	var commits []accepted
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			switch {
			case !c.opts.PartitionExists(t.Topic, p.Partition):
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				continue
			case len(meta) > c.cfg.MaxOffsetMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			k := offsetKey{strings.Clone(t.Topic), p.Partition}
			oc := offsetCommit{offset: p.Offset, leaderEpoch: p.LeaderEpoch, metadata: strings.Clone(meta),
				commitTimestamp: now.UnixMilli(), expireTimestamp: expire}
			if req.Version < 6 {
				oc.leaderEpoch = -1
			}
			recs = append(recs, offsetCommitRecord(g.id, k, oc))
			commits = append(commits, accepted{k, oc})
		}
	}
	g.s.store(now, recs, func(err error) {
		if err != nil {
			code := storeErrorCode(err, true)
			for i, t := range req.Topics {
				for j := range t.Partitions {
					if codes[i][j] == 0 {
						codes[i][j] = code
					}
				}
			}
			return
		}
		for _, a := range commits {
			g.offsets[a.key] = a.commit
		}
	})
	s.queue(finish)
	s.afterLocked(g)
}

// validateCommit is Kafka's ClassicGroup.validateOffsetCommit: simple
// commits need a group without members; member commits need a known member
// of the current generation, outside CompletingRebalance (the member does
// not know its assignment yet).
func (g *group) validateCommit(now time.Time, req *kmsg.OffsetCommitRequest) int16 {
	if req.Generation < 0 && g.state == stateEmpty {
		return 0
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if g.fencedInstance(req.InstanceID, req.MemberID) {
			return kerr.FencedInstanceID.Code
		}
		m := g.members[req.MemberID]
		if m == nil {
			return kerr.UnknownMemberID.Code
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		m.lastHeartbeat = now
	} else if g.state != stateEmpty {
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// OffsetFetch serves OffsetFetch v1-v8 (v8 asks for several groups). Topics
// nil (v2+) asks for every committed offset of the group; an offset never
// committed is -1.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			code, fetched := c.fetchOffsets(rg.Group, topics)
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group, sg.ErrorCode = rg.Group, code
			for _, ft := range fetched {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = ft.Topic
				for _, fp := range ft.Partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = fp.Partition, fp.Offset, fp.LeaderEpoch, fp.Metadata, fp.ErrorCode
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	code, fetched := c.fetchOffsets(req.Group, req.Topics)
	if code != 0 && req.Version < 2 {
		// v1 has no top-level error: every partition asked for carries it.
		for _, t := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	resp.ErrorCode, resp.Topics = code, fetched
	return resp
}

// fetchOffsets answers one group of an OffsetFetch: a group-level error, or
// the offsets asked for (all of them when topics is nil).
func (c *Coordinator) fetchOffsets(groupID string, topics []kmsg.OffsetFetchRequestTopic) (int16, []kmsg.OffsetFetchResponseTopic) {
	s, code := c.lockShard(groupID)
	if code != 0 {
		return code, nil
	}
	defer s.unlock()
	g := s.groups[groupID]
	partition := func(p int32, oc offsetCommit, ok bool) kmsg.OffsetFetchResponseTopicPartition {
		sp := kmsg.NewOffsetFetchResponseTopicPartition()
		sp.Partition, sp.Offset = p, -1
		empty := ""
		sp.Metadata = &empty
		if ok {
			meta := oc.metadata
			sp.Offset, sp.LeaderEpoch, sp.Metadata = oc.offset, oc.leaderEpoch, &meta
		}
		return sp
	}
	var out []kmsg.OffsetFetchResponseTopic
	if topics == nil {
		if g == nil {
			return 0, nil
		}
		byTopic := map[string][]int32{}
		for k := range g.offsets {
			byTopic[k.topic] = append(byTopic[k.topic], k.partition)
		}
		names := make([]string, 0, len(byTopic))
		for name := range byTopic {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = name
			ps := byTopic[name]
			slices.Sort(ps)
			for _, p := range ps {
				oc := g.offsets[offsetKey{name, p}]
				st.Partitions = append(st.Partitions, partition(p, oc, true))
			}
			out = append(out, st)
		}
		return 0, out
	}
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			var oc offsetCommit
			ok := false
			if g != nil {
				oc, ok = g.offsets[offsetKey{t.Topic, p}]
			}
			st.Partitions = append(st.Partitions, partition(p, oc, ok))
		}
		out = append(out, st)
	}
	return 0, out
}

// OffsetDelete serves OffsetDelete v0: it deletes committed offsets of a
// group that is empty, or of topics a consumer group is not subscribed to.
// respond is called once the tombstones are stored.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest, respond func(*kmsg.OffsetDeleteResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	fail := func(code int16) {
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
	now := c.now()
	g := s.groups[req.Group]
	if g == nil {
		s.queue(func() { fail(kerr.GroupIDNotFound.Code) })
		return
	}
	var subscribed map[string]bool
	if g.state != stateEmpty {
		if g.protocolType != consumerProtocolType {
			s.queue(func() { fail(kerr.NonEmptyGroup.Code) })
			return
		}
		subscribed = g.subscribedTopics()
	}
	var recs []record
	var keys []offsetKey
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			k := offsetKey{t.Topic, p.Partition}
			_, committed := g.offsets[k]
			switch {
			case subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case !committed && !c.opts.PartitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case committed:
				recs = append(recs, offsetTombstone(g.id, k))
				keys = append(keys, k)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	g.deleteOffsets(now, recs, keys, func(err error) {
		if err != nil {
			resp.ErrorCode = storeErrorCode(err, true)
			resp.Topics = nil
		}
	})
	s.queue(func() { respond(resp) })
	s.afterLocked(g)
}

// subscribedTopics reads the topics of the group's consumer subscriptions.
func (g *group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			continue
		}
		for _, t := range meta.Topics {
			out[t] = true
		}
	}
	return out
}

// deleteOffsets writes tombstones for keys (recs are their records) and
// then forgets them; an empty group left without offsets is deleted too,
// with a tombstone for its metadata (Kafka's cleanupGroupMetadata).
func (g *group) deleteOffsets(now time.Time, recs []record, keys []offsetKey, done func(error)) {
	removesGroup := g.state == stateEmpty && len(g.pending) == 0 && len(keys) == len(g.offsets)
	if removesGroup && g.storedMetadata != nil {
		recs = append(recs, groupTombstone(g.id))
	}
	g.s.store(now, recs, func(err error) {
		if err == nil {
			for _, k := range keys {
				delete(g.offsets, k)
			}
			if removesGroup {
				g.storedMetadata = nil
				g.transition(stateDead, now)
				delete(g.s.groups, g.id)
			}
		}
		done(err)
	})
}

// sweepLocked applies offsets retention: in every empty group, offsets
// older than offsets.retention.minutes (counted from the later of their
// commit and the moment the group became empty), or past an explicit
// expire time of an OffsetCommit v2-v4, are deleted; an empty group left
// with no offsets is deleted.
func (s *shard) sweepLocked(now time.Time) {
	nowMs := now.UnixMilli()
	retention := s.c.cfg.OffsetsRetention.Milliseconds()
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	expired := 0
	for _, id := range ids {
		g := s.groups[id]
		if g.state != stateEmpty || len(g.pending) > 0 {
			continue
		}
		emptySince := int64(-1)
		if !g.stateSince.IsZero() {
			emptySince = g.stateSince.UnixMilli()
		}
		var recs []record
		var keys []offsetKey
		for k, oc := range g.offsets {
			if (oc.expireTimestamp >= 0 && nowMs >= oc.expireTimestamp) ||
				(oc.expireTimestamp < 0 && nowMs-max(oc.commitTimestamp, emptySince) >= retention) {
				recs = append(recs, offsetTombstone(g.id, k))
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 && len(g.offsets) > 0 {
			continue
		}
		expired += len(keys)
		g.deleteOffsets(now, recs, keys, func(err error) {
			if err != nil {
				s.logger.Warn("offsets retention: tombstones not written", "group", g.id, "err", err)
			}
		})
	}
	if expired > 0 {
		s.logger.Info("offsets retention deleted committed offsets", "offsets", expired)
	}
}
