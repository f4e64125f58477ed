package group

import (
	"container/heap"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type shardState int8

const (
	shardLoading  shardState = iota // reading the log; requests get COORDINATOR_LOAD_IN_PROGRESS
	shardLoaded                     // serving
	shardFailed                     // the log could not be read; COORDINATOR_NOT_AVAILABLE
	shardUnloaded                   // no longer the leader; NOT_COORDINATOR
)

// shard is one loaded (or loading) partition of __consumer_offsets and the
// groups that live in it. mu guards the groups and everything below it;
// one goroutine (run) loads the partition and then drives its deadlines.
type shard struct {
	c           *Coordinator
	index       int32
	log         Log
	leaderEpoch int32
	logger      *slog.Logger

	mu        sync.Mutex
	state     shardState        // guarded by mu
	groups    map[string]*group // guarded by mu
	timers    timerHeap         // guarded by mu: group deadlines, lazily invalidated
	replies   []func()          // guarded by mu: responses to send once mu is released
	compactAt int64             // guarded by mu: log size that triggers a compaction check
	nextSweep time.Time         // guarded by mu: next offsets retention sweep

	wake   chan struct{} // capacity 1: a new earliest deadline or a compaction to consider
	stop   chan struct{} // closed by unload
	done   chan struct{} // closed when run returns
	loaded chan struct{} // closed when the load ended, well or not
}

func newShard(c *Coordinator, p Partition) *shard {
	return &shard{
		c:           c,
		index:       p.Index,
		log:         p.Log,
		leaderEpoch: p.LeaderEpoch,
		logger:      c.logger.With("topic", OffsetsTopic, "partition", p.Index),
		groups:      map[string]*group{},
		compactAt:   c.cfg.CompactMinBytes,
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		loaded:      make(chan struct{}),
	}
}

// availableLocked is the error for requests while the shard cannot serve.
func (s *shard) availableLocked() int16 {
	switch s.state {
	case shardLoaded:
		return 0
	case shardLoading:
		return kerr.CoordinatorLoadInProgress.Code
	case shardFailed:
		return kerr.CoordinatorNotAvailable.Code
	}
	return kerr.NotCoordinator.Code
}

// queue defers a response until mu is released. Called with mu held.
func (s *shard) queue(fn func()) { s.replies = append(s.replies, fn) }

// unlock releases mu and then sends the responses queued under it, in
// order, on the calling goroutine.
func (s *shard) unlock() {
	replies := s.replies
	s.replies = nil
	s.mu.Unlock()
	for _, fn := range replies {
		fn()
	}
}

func (s *shard) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// store appends recs to the partition and calls done with the outcome.
// Called with mu held, so writes reach the log in the order the state
// machine decided them. done runs before store returns, still under mu;
// the request paths rely on that (they queue their response after the
// store) and must change with it when writes wait for replication.
func (s *shard) store(now time.Time, recs []record, done func(error)) {
	if len(recs) == 0 {
		done(nil)
		return
	}
	buf := appendBatches(nil, recs, now.UnixMilli(), s.c.cfg.MaxBatchBytes)
	_, err := s.log.Append(buf, s.leaderEpoch)
	if err != nil {
		s.logger.Warn("writing to __consumer_offsets failed", "records", len(recs), "err", err)
	} else if s.log.Size() > s.compactAt {
		s.poke()
	}
	// With one replica per partition the append is the commit point. When
	// data replication lands, a write counts only once the high watermark
	// passes its last offset (acks=all): done must then be called from the
	// replica's high-watermark notification, with mu taken again, and not
	// here.
	done(err)
}

// scheduleLocked makes sure the timer heap holds an entry no later than g's
// next deadline.
func (s *shard) scheduleLocked(g *group) {
	at := g.nextDeadline()
	if at.IsZero() || (!g.scheduled.IsZero() && !g.scheduled.After(at)) {
		return
	}
	g.scheduled = at
	heap.Push(&s.timers, timerEntry{at: at, g: g})
	if s.timers[0].g == g && s.timers[0].at.Equal(at) {
		s.poke()
	}
}

// fireTimersLocked runs the deadlines due at now.
func (s *shard) fireTimersLocked(now time.Time) {
	for len(s.timers) > 0 && !s.timers[0].at.After(now) {
		e := heap.Pop(&s.timers).(timerEntry)
		g := e.g
		if s.groups[g.id] != g || !g.scheduled.Equal(e.at) {
			continue // superseded by an earlier entry, or the group is gone
		}
		g.scheduled = time.Time{}
		g.tick(now)
		s.afterLocked(g)
	}
}

// afterLocked reschedules g after it changed and forgets it when it holds
// nothing at all any more (a join that failed on a new group).
func (s *shard) afterLocked(g *group) {
	if g.unused() {
		if s.groups[g.id] == g {
			delete(s.groups, g.id)
		}
		return
	}
	s.scheduleLocked(g)
}

// runDueLocked does the work due at now and returns how long the driver
// may sleep.
func (s *shard) runDueLocked(now time.Time) time.Duration {
	s.fireTimersLocked(now)
	if !now.Before(s.nextSweep) {
		s.sweepLocked(now)
		s.nextSweep = now.Add(s.c.cfg.OffsetsRetentionCheckInterval)
	}
	s.maybeCompactLocked(now)
	next := s.nextSweep
	if len(s.timers) > 0 && s.timers[0].at.Before(next) {
		next = s.timers[0].at
	}
	return max(next.Sub(now), time.Millisecond)
}

// run is the shard's goroutine: it loads the partition, then sleeps until
// the next deadline or a poke, and does what is due, until unload.
func (s *shard) run() {
	defer close(s.done)
	start := time.Now()
	groups, stats, err := s.load()
	s.mu.Lock()
	if s.state != shardLoading { // unloaded meanwhile
		s.unlock()
		close(s.loaded)
		return
	}
	if err != nil {
		s.state = shardFailed
		s.unlock()
		close(s.loaded)
		s.logger.Error("loading group coordinator partition failed", "err", err)
		return
	}
	now := s.c.now()
	s.groups = groups
	for _, g := range groups {
		s.scheduleLocked(g)
	}
	s.state = shardLoaded
	s.nextSweep = now.Add(s.c.cfg.OffsetsRetentionCheckInterval)
	loadedGroups := len(groups)
	s.unlock()
	close(s.loaded)
	s.logger.Info("loaded group coordinator partition", "groups", loadedGroups, "offsets", stats.offsets,
		"records", stats.records, "bytes", stats.bytes, "skipped_batches", stats.skippedBatches,
		"bad_records", stats.badRecords, "duration", time.Since(start))

	if s.c.manualTimers {
		<-s.stop
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		d := s.runDueLocked(s.c.now())
		s.unlock()
		timer.Reset(d)
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// unload ends the shard: requests get NOT_COORDINATOR from now on, parked
// ones are answered so, and it returns once run has returned.
func (s *shard) unload() {
	s.mu.Lock()
	s.state = shardUnloaded
	for _, g := range s.groups {
		for _, m := range g.members {
			if m.join != nil {
				g.replyJoinError(m.join, kerr.NotCoordinator.Code, m.id)
				m.join = nil
			}
			if m.sync != nil {
				g.replySyncError(m.sync, kerr.NotCoordinator.Code)
				m.sync = nil
			}
		}
	}
	s.groups = map[string]*group{}
	s.timers = nil
	s.unlock()
	close(s.stop)
	<-s.done
}

// timerEntry is a group deadline in the shard's heap.
type timerEntry struct {
	at time.Time
	g  *group
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}
