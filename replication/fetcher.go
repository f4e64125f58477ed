package replication

import (
	"context"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchVersion is the Fetch version followers send: v12+ carry
// LastFetchedEpoch and answer with DivergingEpoch (§1.1, §1.6); v15 adds the
// follower's broker epoch (KIP-903), without which the leader does not take
// a fetch for a follower's. v13+ name topics by id.
const fetchVersion = 15

// fetcher pulls every partition this broker follows on one source broker,
// all of them in one Fetch request per round. It is owned by the Manager;
// its goroutine (run) owns the connection.
type fetcher struct {
	m      *Manager
	source int32
	logger *slog.Logger

	mu    sync.Mutex
	parts map[*Replica]*fetchPartition // guarded by mu
	// inFlight is the connection of the fetch waiting at the leader now
	// (nil when none), and interrupted whether add cut that wait short.
	inFlight    net.Conn // guarded by mu
	interrupted bool     // guarded by mu

	wake   chan struct{} // cap 1: partitions were added
	cancel context.CancelFunc
	done   chan struct{}
}

// fetchPartition is a partition's place in a fetcher.
type fetchPartition struct {
	epoch      int32     // the leader epoch it follows at
	delayUntil time.Time // back-off after an error
}

func newFetcher(m *Manager, source int32) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetcher{
		m: m, source: source,
		logger: m.logger.With("source_broker", source),
		parts:  map[*Replica]*fetchPartition{},
		wake:   make(chan struct{}, 1),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go f.run(ctx)
	return f
}

// add starts fetching r at epoch. A fetch parked at the leader does not
// name r and could sit there for replica.fetch.wait.max.ms while r's
// acks=all writes wait for this follower (a new topic, or partitions moving
// to this leader in a failover), so add cuts that wait short: the
// connection is dropped and the next request, naming r, goes out at once.
func (f *fetcher) add(r *Replica, epoch int32) {
	f.mu.Lock()
	f.parts[r] = &fetchPartition{epoch: epoch}
	if f.inFlight != nil && !f.interrupted {
		f.interrupted = true
		f.inFlight.SetDeadline(time.Now())
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(r *Replica) {
	f.mu.Lock()
	delete(f.parts, r)
	f.mu.Unlock()
}

// stop ends the goroutine and waits for it.
func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

// sent is one partition of a request in flight.
type sent struct {
	r         *Replica
	epoch     int32
	offset    int64
	maxBytes  int32 // PartitionMaxBytes asked for it
	throttled bool  // a replica being added: its bytes count against the follower throttle
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	var conn *brokerConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// A cancelled context closes the connection, ending a blocked read.
	var connMu sync.Mutex
	stopWatch := context.AfterFunc(ctx, func() {
		connMu.Lock()
		if conn != nil {
			conn.conn.SetDeadline(time.Now())
		}
		connMu.Unlock()
	})
	defer stopWatch()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if f.m.cfg.FetchesHeld() {
			// The disk is below its reserve: appending would eat the room
			// the metadata log and the operator's deletions need.
			backoff = fetchHeldRecheck
			continue
		}
		req, batch, nextWake := f.buildRequest(time.Now())
		if len(batch) == 0 {
			var timer <-chan time.Time
			var t *time.Timer
			if !nextWake.IsZero() {
				t = time.NewTimer(time.Until(nextWake))
				timer = t.C
			}
			select {
			case <-ctx.Done():
			case <-f.wake:
			case <-timer:
			}
			if t != nil {
				t.Stop()
			}
			backoff = 0
			continue
		}
		if conn == nil {
			addr, ok := f.m.cfg.BrokerAddr(f.source)
			if !ok {
				backoff = nextBackoff(backoff)
				continue
			}
			c, err := dialBroker(ctx, addr, f.m.clientID)
			if err != nil {
				f.logger.Debug("follower fetch: cannot connect", "addr", addr, "err", err)
				backoff = nextBackoff(backoff)
				continue
			}
			connMu.Lock()
			conn = c
			connMu.Unlock()
		}
		resp := kmsg.NewPtrFetchResponse()
		deadline := time.Now().Add(f.m.cfg.FetchMaxWait + 10*time.Second)
		f.mu.Lock()
		f.inFlight, f.interrupted = conn.conn, false
		f.mu.Unlock()
		err := conn.roundTrip(req, resp, deadline)
		f.mu.Lock()
		interrupted := f.interrupted
		f.inFlight, f.interrupted = nil, false
		f.mu.Unlock()
		if err != nil {
			switch {
			case interrupted:
				f.logger.Debug("follower fetch cut short: partitions were added", "err", err)
			case ctx.Err() == nil:
				f.logger.Info("follower fetch failed", "err", err)
			}
			connMu.Lock()
			conn.Close()
			conn = nil
			connMu.Unlock()
			if !interrupted {
				backoff = nextBackoff(backoff)
			}
			continue
		}
		backoff = 0
		f.apply(batch, resp)
	}
}

// fetchHeldRecheck is how often a fetcher held by a full disk looks again.
const fetchHeldRecheck = 250 * time.Millisecond

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 50 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// buildRequest collects the partitions ready to fetch. When none is, it
// returns when the next backed-off one will be.
func (f *fetcher) buildRequest(now time.Time) (*kmsg.FetchRequest, []sent, time.Time) {
	f.mu.Lock()
	var batch []sent
	var next time.Time
	type pos struct {
		s         sent
		lastEpoch int32
		logStart  int64
	}
	var ready []pos
	for r, fp := range f.parts {
		if now.Before(fp.delayUntil) {
			if next.IsZero() || fp.delayUntil.Before(next) {
				next = fp.delayUntil
			}
			continue
		}
		offset, lastEpoch, logStart, ok := r.fetchPosition(fp.epoch)
		if !ok {
			continue
		}
		maxBytes := int64(f.m.cfg.PartitionMaxBytes)
		throttled := r.throttledHere()
		if throttled {
			// A replica being added catches up within the follower
			// throttle; the partitions in sync are never held back.
			allowed, wait := f.m.followerThrottle.Allow(now, maxBytes)
			if allowed == 0 {
				fp.delayUntil = now.Add(wait)
				if next.IsZero() || fp.delayUntil.Before(next) {
					next = fp.delayUntil
				}
				continue
			}
			maxBytes = allowed
		}
		ready = append(ready, pos{sent{r, fp.epoch, offset, int32(maxBytes), throttled}, lastEpoch, logStart})
	}
	f.mu.Unlock()
	if len(ready) == 0 {
		return nil, nil, next
	}
	// Deterministic order: topics sorted, partitions sorted.
	sort.Slice(ready, func(i, j int) bool {
		a, b := ready[i].s.r, ready[j].s.r
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	req := kmsg.NewPtrFetchRequest()
	req.Version = fetchVersion
	req.ReplicaID = -1 // v15 moved it into ReplicaState
	req.ReplicaState.ID = f.m.cfg.BrokerID
	req.ReplicaState.Epoch = f.m.cfg.BrokerEpoch()
	// A partition backing off is not in this request; the leader must not
	// hold the request past the end of that back-off, or the partition
	// waits out the whole replica.fetch.wait.max.ms as well.
	wait := f.m.cfg.FetchMaxWait
	if !next.IsZero() {
		wait = min(wait, max(time.Until(next), time.Millisecond))
	}
	req.MaxWaitMillis = int32(wait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = f.m.cfg.FetchMaxBytes
	req.SessionEpoch = -1 // sessionless full fetches (§1.5)
	for _, p := range ready {
		r := p.s.r
		if n := len(req.Topics); n == 0 || req.Topics[n-1].TopicID != r.TopicID {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = r.Topic, r.TopicID
			req.Topics = append(req.Topics, t)
		}
		t := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = r.Partition
		rp.CurrentLeaderEpoch = p.s.epoch
		rp.FetchOffset = p.s.offset
		rp.LastFetchedEpoch = p.lastEpoch
		rp.LogStartOffset = p.logStart
		rp.PartitionMaxBytes = p.s.maxBytes
		t.Partitions = append(t.Partitions, rp)
		batch = append(batch, p.s)
	}
	return req, batch, time.Time{}
}

// apply hands each partition of the response to its replica.
func (f *fetcher) apply(batch []sent, resp *kmsg.FetchResponse) {
	type key struct {
		topicID   [16]byte
		partition int32
	}
	got := map[key]*kmsg.FetchResponseTopicPartition{}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			got[key{t.TopicID, t.Partitions[pi].Partition}] = &t.Partitions[pi]
		}
	}
	now := time.Now()
	for _, s := range batch {
		rp := got[key{s.r.TopicID, s.r.Partition}]
		if rp == nil {
			continue // a sessionless leader lists every partition; be lenient
		}
		fp := FetchedPartition{ErrorCode: rp.ErrorCode, HighWatermark: rp.HighWatermark,
			LogStartOffset: rp.LogStartOffset, Records: rp.RecordBatches}
		if resp.ErrorCode != 0 {
			fp.ErrorCode = resp.ErrorCode
		}
		if rp.DivergingEpoch.Epoch >= 0 {
			fp.Diverging = &Diverging{Epoch: rp.DivergingEpoch.Epoch, EndOffset: rp.DivergingEpoch.EndOffset}
		}
		backoff, n, err := s.r.applyFetched(s.epoch, s.offset, fp)
		if err != nil {
			f.logger.Warn("follower fetch not applied", "topic", s.r.Topic, "partition", s.r.Partition, "offset", s.offset, "err", err)
		}
		f.m.metrics.fetched(f.source, n)
		if n > 0 {
			f.m.cfg.Appended(n)
		}
		if s.throttled {
			f.m.followerThrottle.Take(now, n)
		}
		if backoff > 0 {
			f.logger.Debug("follower fetch backs off", "topic", s.r.Topic, "partition", s.r.Partition, "offset", s.offset,
				"error", kerr.ErrorForCode(fp.ErrorCode), "backoff", backoff)
			f.mu.Lock()
			if p := f.parts[s.r]; p != nil && p.epoch == s.epoch {
				p.delayUntil = now.Add(backoff)
			}
			f.mu.Unlock()
		}
	}
}
