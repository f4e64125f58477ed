package group

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// loadStats describes a load, for the log and for tests.
type loadStats struct {
	records        int
	bytes          int64
	offsets        int
	skippedBatches int
	badRecords     int
}

// loadedGroup is what the log says of one group: the newest value of each
// of its keys.
type loadedGroup struct {
	offsets  map[offsetKey]offsetCommit
	metadata []byte // newest group metadata value, nil when deleted or never written
}

// load reads the partition from its log start to its end in chunks of
// LoadBufferBytes, keeps the newest value of every key, and builds the
// groups. It runs on the shard's goroutine without mu: nothing else touches
// the log or the groups of a loading shard. It gives up with errStopped when
// the shard is unloaded meanwhile.
func (s *shard) load() (map[string]*group, loadStats, error) {
	var st loadStats
	byGroup := map[string]*loadedGroup{}
	// Keys are decoded without copies, and the strings kept are interned:
	// a partition holds few distinct groups and topics and many records.
	topics := map[string]string{}
	intern := func(s string) string {
		if in, ok := topics[s]; ok {
			return in
		}
		s = strings.Clone(s)
		topics[s] = s
		return s
	}
	get := func(id string) *loadedGroup {
		lg := byGroup[id]
		if lg == nil {
			lg = &loadedGroup{offsets: map[offsetKey]offsetCommit{}}
			byGroup[strings.Clone(id)] = lg
		}
		return lg
	}
	apply := func(_ int64, key, value []byte) {
		st.records++
		k, err := decodeKeyAliasing(key)
		if err != nil {
			st.badRecords++
			return
		}
		switch k.kind {
		case kindOffset:
			if value == nil {
				if lg := byGroup[k.group]; lg != nil {
					delete(lg.offsets, k.offset)
				}
				return
			}
			c, err := decodeOffsetCommit(value)
			if err != nil {
				st.badRecords++
				return
			}
			c.metadata = strings.Clone(c.metadata)
			get(k.group).offsets[offsetKey{intern(k.offset.topic), k.offset.partition}] = c
		case kindGroup:
			if value == nil {
				if lg := byGroup[k.group]; lg != nil {
					lg.metadata = nil
				}
				return
			}
			get(k.group).metadata = bytes.Clone(value)
		}
	}

	logStart := s.log.LogStartOffset()
	// With one replica the log end is the high watermark; once data
	// replication lands, a new leader must read only up to its high
	// watermark here.
	end := s.log.LogEndOffset()
	for off := logStart; off < end; {
		select {
		case <-s.stop:
			return nil, st, errStopped
		default:
		}
		buf, err := s.log.ReadBatches(off, s.c.cfg.LoadBufferBytes, end)
		if err != nil {
			return nil, st, fmt.Errorf("group: read %s-%d at offset %d: %w", OffsetsTopic, s.index, off, err)
		}
		if len(buf) == 0 {
			break
		}
		st.bytes += int64(len(buf))
		next, skipped, err := walkBatches(buf, logStart, apply)
		st.skippedBatches += skipped
		if err != nil {
			return nil, st, fmt.Errorf("group: load %s-%d: %w", OffsetsTopic, s.index, err)
		}
		if next <= off {
			return nil, st, fmt.Errorf("group: load %s-%d: read at offset %d did not advance", OffsetsTopic, s.index, off)
		}
		off = next
	}
	if st.badRecords > 0 {
		s.logger.Warn("skipped undecodable records while loading", "records", st.badRecords)
	}

	now := s.c.now()
	groups := make(map[string]*group, len(byGroup))
	for id, lg := range byGroup {
		if len(lg.offsets) == 0 && lg.metadata == nil {
			continue
		}
		g := newGroup(s, id, now)
		g.offsets = lg.offsets
		st.offsets += len(lg.offsets)
		if lg.metadata != nil {
			if err := g.restore(now, lg.metadata); err != nil {
				s.logger.Warn("group metadata not restored", "group", id, "err", err)
			}
		}
		groups[id] = g
	}
	return groups, st, nil
}

// restore sets the group from its stored metadata record. A group with
// members comes back Stable with their assignments, and each member's
// session starts now: members that come back within their session timeout
// carry on without a rebalance, as after a Kafka coordinator failover.
func (g *group) restore(now time.Time, value []byte) error {
	v, err := decodeGroupMetadata(value)
	if err != nil {
		return err
	}
	if len(v.Members) > 0 && (v.Protocol == nil || *v.Protocol == "") {
		return errors.New("group: stored group has members but no protocol")
	}
	g.storedMetadata = value
	g.generation = v.Generation
	g.protocolType = v.ProtocolType
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	g.stateSince = time.Time{}
	if v.Version >= 2 && v.CurrentStateTimestamp > 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, vm := range v.Members {
		m := restoredMember(now, g.protocol, vm)
		m.seq = g.nextSeq
		g.nextSeq++
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = stateEmpty, "", ""
		return nil
	}
	g.state = stateStable
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.sortedMembers()[0].id
	}
	return nil
}

func restoredMember(now time.Time, proto string, vm kmsg.GroupMetadataValueMember) *member {
	m := &member{
		id:               vm.MemberID,
		instanceID:       vm.InstanceID,
		clientID:         vm.ClientID,
		clientHost:       vm.ClientHost,
		sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
		protocols:        []protocol{{name: proto, metadata: bytes.Clone(vm.Subscription)}},
		assignment:       bytes.Clone(vm.Assignment),
		lastHeartbeat:    now,
	}
	if m.rebalanceTimeout <= 0 {
		m.rebalanceTimeout = m.sessionTimeout
	}
	if m.protocols[0].metadata == nil {
		m.protocols[0].metadata = []byte{}
	}
	return m
}
