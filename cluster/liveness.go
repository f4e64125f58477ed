package cluster

import (
	"slices"
	"sync"
	"time"
)

// The controller decides which brokers are alive from two views, as KRaft
// does from broker heartbeats plus, here, gossip:
//
//   - heartbeats: every broker sends BrokerHeartbeat to the controller every
//     Timeouts.BrokerHeartbeat through the forwarding channel, which shares
//     the Raft port, so a broker that heartbeats can reach the metadata
//     quorum;
//   - gossip: memberlist's failure detector, which notices a crash quickly
//     but says nothing about Raft, and whose view from the controller alone
//     can be wrong (the controller's gossip cut off while Raft works).
//
// A broker is fenced only when both views agree it is gone (out of gossip
// and silent for BrokerHeartbeatMiss), or when it has not heartbeated for
// BrokerSession whatever gossip says (alive in gossip but unable to reach
// the controller: it must not keep replicas it cannot serve). Right after a
// controller failover nobody is fenced for FailoverGrace, and the new
// controller counts every broker as having heartbeated when it took over,
// so its own empty view of the heartbeats fences nobody. A fenced broker of
// the same process is unfenced only after heartbeating without a gap for
// UnfenceHold, so a flapping link costs at most one fence (and one leader
// epoch) per real failure instead of a fence/unfence storm.

// sessionConfig holds the durations of the liveness rules.
type sessionConfig struct {
	Miss        time.Duration // both views: silent this long and out of gossip
	Session     time.Duration // silent this long: fenced whatever gossip says
	Grace       time.Duration // after becoming controller, fence nobody
	UnfenceHold time.Duration // heartbeating without a gap this long before unfencing
}

// brokerSession is what the controller knows of one broker's heartbeats.
type brokerSession struct {
	member Member // as the broker last described itself
	// lastBeat is when the last heartbeat arrived; beatingSince starts the
	// current run of heartbeats without a gap longer than Miss.
	lastBeat, beatingSince time.Time
	// shuttingDown: this process asked to be fenced for a controlled
	// shutdown; it is never unfenced again.
	shuttingDown bool
	// applied is the metadata index the broker last reported applied.
	applied uint64
	// storage is what the process's heartbeats said of its storage.
	storage storageReport
}

// sessions is the controller's heartbeat table. heartbeat is called from
// the forwarding server's goroutines, the rest from the controller loop;
// mu guards everything.
type sessions struct {
	cfg sessionConfig

	mu    sync.Mutex
	since time.Time                // guarded by mu: when this broker became controller
	byID  map[int32]*brokerSession // guarded by mu
}

func newSessions(cfg sessionConfig) *sessions {
	return &sessions{cfg: cfg, byID: map[int32]*brokerSession{}}
}

// reset forgets every heartbeat: called when this broker becomes the
// controller at now, so no decision rests on heartbeats another term saw.
func (s *sessions) reset(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since = now
	clear(s.byID)
}

// heartbeat records a heartbeat of m's process at now, which had applied
// the metadata up to applied and said whether its storage is held.
func (s *sessions) heartbeat(m Member, shuttingDown, storageHeld bool, applied uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bs, ok := s.byID[m.ID]
	if !ok || bs.member.Incarnation != m.Incarnation {
		bs = &brokerSession{beatingSince: now}
		s.byID[m.ID] = bs
	} else if now.Sub(bs.lastBeat) > s.cfg.Miss {
		bs.beatingSince = now
	}
	bs.member, bs.lastBeat = m, now
	bs.shuttingDown = bs.shuttingDown || shuttingDown
	bs.applied = max(bs.applied, applied)
	bs.storage.report(storageHeld, now)
}

// lagging lists the registered, unfenced brokers other than self that
// heartbeat (fresh at now) and have not reported applying index. Brokers
// that do not heartbeat cannot confirm anything and are not waited for.
func (s *sessions) lagging(img *Image, self int32, index uint64, now time.Time) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int32
	for _, b := range img.Brokers() {
		if b.Fenced || b.ID == self {
			continue
		}
		bs, ok := s.byID[b.ID]
		if ok && bs.member.Incarnation == b.Incarnation && now.Sub(bs.lastBeat) <= s.cfg.Miss && bs.applied < index {
			out = append(out, b.ID)
		}
	}
	return out
}

// livenessPlan is the outcome of the liveness rules for one reconcile.
type livenessPlan struct {
	// register lists the processes to register (new, changed, or fenced
	// and since heartbeating steadily), by id.
	register []Member
	// fence lists the registered, unfenced brokers to fence, by id.
	fence []int32
	// alive lists the brokers that heartbeat (fresh), by id; the Raft
	// configuration treats them as live even when gossip does not.
	alive []Member
	// storageHeld lists the registered processes whose fresh heartbeats
	// say their storage is held, storageFree those that have said it has
	// room for UnfenceHold, by id (see storagehold.go).
	storageHeld, storageFree []int32
}

// plan applies the liveness rules to the image, the gossip members and the
// heartbeats at now. It is deterministic: same inputs, same plan.
func (s *sessions) plan(img *Image, gossip []Member, now time.Time) livenessPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return planLiveness(s.cfg, img, gossip, s.byID, s.since, now)
}

// planLiveness is sessions.plan without the lock: since is when this
// broker became controller.
func planLiveness(cfg sessionConfig, img *Image, gossip []Member, byID map[int32]*brokerSession,
	since, now time.Time) livenessPlan {
	var out livenessPlan
	inGossip := map[int32]bool{}
	for _, m := range gossip {
		inGossip[m.ID] = true
	}
	ids := make([]int32, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		bs := byID[id]
		if now.Sub(bs.lastBeat) > cfg.Miss {
			continue
		}
		out.alive = append(out.alive, bs.member)
		if bs.shuttingDown {
			continue
		}
		m := bs.member
		b, known := img.brokers[id]
		if known && b.Incarnation == m.Incarnation {
			switch {
			case bs.storage.held:
				out.storageHeld = append(out.storageHeld, id)
			case bs.storage.steadilyFree(now, cfg.UnfenceHold):
				out.storageFree = append(out.storageFree, id)
			}
		}
		switch {
		case !known || b.Incarnation != m.Incarnation || b.KafkaAddr != m.KafkaAddr ||
			b.RaftAddr != m.RaftAddr || b.GossipAddr != m.GossipAddr || b.HTTPAddr != m.HTTPAddr || b.Rack != m.Rack ||
			b.Listeners != m.Listeners || b.DirectoryID != m.DirectoryID:
			// A new process (or new addresses) registers at once: it is
			// what a restart waits for.
			out.register = append(out.register, m)
		case b.Fenced && bs.lastBeat.Sub(bs.beatingSince) >= cfg.UnfenceHold:
			out.register = append(out.register, m)
		}
	}
	if now.Sub(since) < cfg.Grace {
		return out
	}
	for _, b := range img.Brokers() {
		if b.Fenced {
			continue
		}
		last := since
		if bs, ok := byID[b.ID]; ok {
			if bs.member.Incarnation != b.Incarnation && now.Sub(bs.lastBeat) <= cfg.Miss {
				continue // a new process of this broker: its registration replaces this one
			}
			if bs.lastBeat.After(last) {
				last = bs.lastBeat
			}
		}
		silent := now.Sub(last)
		if (silent > cfg.Miss && !inGossip[b.ID]) || silent > cfg.Session {
			out.fence = append(out.fence, b.ID)
		}
	}
	return out
}
