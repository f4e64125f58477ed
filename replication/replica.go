package replication

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Log is the partition log a Replica drives; *storage.Log implements it.
type Log interface {
	LogEndOffset() int64
	LogStartOffset() int64
	Append(buf []byte, leaderEpoch int32) (storage.AppendResult, error)
	Validate(buf []byte) (storage.Validated, error)
	AppendValidated(v storage.Validated, leaderEpoch int32) (storage.AppendResult, error)
	AppendReplicated(buf []byte) (storage.AppendResult, error)
	TruncateTo(offset int64) error
	RestartAt(offset int64) error
	DeleteRecordsBefore(offset int64) (int64, error)
	EndOffsetForEpoch(epoch int32) (int32, int64)
	LatestEpoch() (epoch int32, startOffset int64, ok bool)
	AssignEpoch(leaderEpoch int32) error
}

// Role is what a replica does for its partition.
type Role int8

const (
	// RoleNone: not serving (before the first metadata, or stopped).
	RoleNone Role = iota
	// RoleLeader takes produces and serves fetches.
	RoleLeader
	// RoleFollower fetches from the leader.
	RoleFollower
)

// NoLeader is the leader id of an offline partition.
const NoLeader int32 = -1

// State is a partition's replication state in the metadata image.
type State struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
	// MinISR is the topic's effective min.insync.replicas.
	MinISR int
	// Adding are the replicas a move is adding: their catch-up fetches
	// are throttled (throttle.go).
	Adding []int32
}

// follower is the leader's view of one follower (§2.1).
type follower struct {
	leo                int64 // -1 until it fetched in this leader epoch
	logStart           int64
	lastFetchLeaderLEO int64
	lastFetchTime      time.Time
	lastCaughtUp       time.Time
}

// alterProposal is an ISR change the leader sends to the controller.
type alterProposal struct {
	r              *Replica
	leaderEpoch    int32
	partitionEpoch int32
	isr            []int32
	expand         bool
}

// Replica is one partition replica on this broker. Its role and leader
// state are guarded by mu; the produce path takes mu for the role check and
// the append together, so a batch is never stamped with an epoch this broker
// no longer leads (the demotion race). The high watermark, the role and the
// leader epoch are also published in atomics for lock-free readers.
type Replica struct {
	Topic     string
	TopicID   [16]byte // how v13+ Fetch requests name the topic
	Partition int32
	self      int32
	log       Log
	m         *Manager // nil in tests that drive a replica alone

	// onHW is called, without mu held, after the high watermark advanced
	// or the replica lost leadership; the broker wakes parked fetches.
	onHW func()

	hw          atomic.Int64
	isLeader    atomic.Bool
	leaderEpoch atomic.Int32

	mu             sync.Mutex
	role           Role                // guarded by mu
	epoch          int32               // guarded by mu: leader epoch of the current role
	partitionEpoch int32               // guarded by mu
	leaderID       int32               // guarded by mu
	replicas       []int32             // guarded by mu
	adding         []int32             // guarded by mu: replicas a move is adding (throttled)
	isr            []int32             // guarded by mu: the committed ISR
	maximal        []int32             // guarded by mu: isr, widened while a change is in flight (KIP-497)
	pending        bool                // guarded by mu: an AlterPartition is in flight
	minISR         int                 // guarded by mu
	epochStart     int64               // guarded by mu: log end when this leader epoch began
	followers      map[int32]*follower // guarded by mu
	waits          []hwWait            // guarded by mu: acks=all produces parked on the HW
	lowWaits       []lowWait           // guarded by mu: DeleteRecords waiting for the followers' log starts
}

// newReplica makes a replica of a partition whose log is open, with the
// high watermark it had (from the checkpoint), clamped to the log.
func newReplica(self int32, topic string, partition int32, log Log, hw int64, onHW func()) *Replica {
	r := &Replica{Topic: topic, Partition: partition, self: self, log: log, onHW: onHW, leaderID: NoLeader}
	r.hw.Store(min(max(hw, log.LogStartOffset()), log.LogEndOffset()))
	r.leaderEpoch.Store(-1)
	return r
}

// HighWatermark is the offset below which records are committed: what
// consumers may read.
func (r *Replica) HighWatermark() int64 { return r.hw.Load() }

// IsLeader reports whether this replica leads its partition now.
func (r *Replica) IsLeader() bool { return r.isLeader.Load() }

// LeaderEpoch is the partition's leader epoch as this replica last applied it.
func (r *Replica) LeaderEpoch() int32 { return r.leaderEpoch.Load() }

// FollowerLags adds, for each follower of a partition this replica leads,
// how many records it is behind the leader's log end (followers that have
// not fetched in this epoch count from 0). Called at metrics scrapes.
func (r *Replica) FollowerLags(into map[int32]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != RoleLeader {
		return
	}
	leo := r.log.LogEndOffset()
	for id, f := range r.followers {
		into[id] += max(0, leo-max(f.leo, 0))
	}
}

// HighWatermarkReachedEpochStart reports whether the leader's HW has
// reached the start of its leader epoch. Until then a new leader's HW may
// be below the old leader's, and ListOffsets answers OFFSET_NOT_AVAILABLE
// rather than an offset that moved back (KIP-207).
func (r *Replica) HighWatermarkReachedEpochStart() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.role == RoleLeader && r.hw.Load() >= r.epochStart
}

// Log returns the replica's log.
func (r *Replica) Log() Log { return r.log }

// ISRInfo reports the committed ISR size, the replica count and the
// effective min.insync.replicas, for metrics and health; ok is false when
// this replica does not lead.
func (r *Replica) ISRInfo() (isr, replicas, minISR int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != RoleLeader {
		return 0, 0, 0, false
	}
	return len(r.isr), len(r.replicas), r.effectiveMinISRLocked(), true
}

func (r *Replica) effectiveMinISRLocked() int { return max(1, min(r.minISR, len(r.replicas))) }

// transition is what update changed, for the manager's fetchers.
type transition struct {
	becameLeader   bool
	followLeader   int32 // leader to fetch from, NoLeader for none
	followerChange bool  // the fetch source or epoch changed
}

// update applies the partition's state from the metadata image. Called on
// the metadata apply goroutine, in log order.
func (r *Replica) update(st State, now time.Time) (transition, error) {
	var tr transition
	var finished []hwWait // produce waits completed or failed by this change
	advanced := false
	r.mu.Lock()
	r.adding = slices.Clone(st.Adding)
	if st.Leader == r.self {
		if r.role != RoleLeader || r.epoch != st.LeaderEpoch {
			// A new leader starts its epoch at its log end (KIP-101,
			// KAFKA-7415) before any append.
			if err := r.log.AssignEpoch(st.LeaderEpoch); err != nil {
				r.mu.Unlock()
				return tr, fmt.Errorf("become leader of %s-%d at epoch %d: %w", r.Topic, r.Partition, st.LeaderEpoch, err)
			}
			r.epochStart = r.log.LogEndOffset()
			r.followers = map[int32]*follower{}
			for _, id := range st.Replicas {
				if id == r.self {
					continue
				}
				f := &follower{leo: -1, logStart: -1}
				if slices.Contains(st.ISR, id) {
					f.lastCaughtUp = now // §2.1: ISR members start caught up
				}
				r.followers[id] = f
			}
			r.pending = false
			tr.becameLeader = true
		}
		if r.pending && st.PartitionEpoch != r.partitionEpoch {
			r.pending = false // the change (or another) was committed
		}
		r.role, r.epoch, r.leaderID = RoleLeader, st.LeaderEpoch, st.Leader
		r.partitionEpoch, r.minISR = st.PartitionEpoch, st.MinISR
		r.replicas, r.isr = slices.Clone(st.Replicas), slices.Clone(st.ISR)
		for _, id := range r.replicas {
			if _, ok := r.followers[id]; !ok && id != r.self {
				r.followers[id] = &follower{leo: -1, logStart: -1}
			}
		}
		// A replica a move took away is no follower any more: its fetches
		// must not count, nor make it a candidate for the ISR.
		for id := range r.followers {
			if !slices.Contains(r.replicas, id) {
				delete(r.followers, id)
			}
		}
		if !r.pending {
			r.maximal = r.isr
		}
		r.leaderEpoch.Store(st.LeaderEpoch)
		r.isLeader.Store(true)
		// An ISR change moves the HW too (KAFKA-13091).
		finished, advanced = r.maybeAdvanceHWLocked()
	} else {
		wasLeader := r.role == RoleLeader
		if wasLeader || r.role == RoleNone || r.epoch != st.LeaderEpoch || r.leaderID != st.Leader {
			tr.followerChange = true
		}
		r.isLeader.Store(false)
		r.role, r.epoch, r.leaderID = RoleFollower, st.LeaderEpoch, st.Leader
		r.partitionEpoch, r.minISR = st.PartitionEpoch, st.MinISR
		r.replicas, r.isr, r.maximal, r.pending = slices.Clone(st.Replicas), slices.Clone(st.ISR), nil, false
		r.wakeLowWaitsLocked(true)
		r.followers = nil
		r.leaderEpoch.Store(st.LeaderEpoch)
		finished, r.waits = r.waits, nil
		for i := range finished {
			finished[i].code = kerr.NotLeaderForPartition.Code
		}
		advanced = wasLeader // wake parked fetches: they answer NOT_LEADER_OR_FOLLOWER
	}
	tr.followLeader = NoLeader
	if r.role == RoleFollower {
		tr.followLeader = r.leaderID
	}
	r.mu.Unlock()
	finishWaits(finished)
	if advanced && r.onHW != nil {
		r.onHW()
	}
	return tr, nil
}

// stop ends the replica's role (the partition is no longer hosted here):
// parked produces fail with NOT_LEADER_OR_FOLLOWER.
func (r *Replica) stop() {
	r.mu.Lock()
	r.isLeader.Store(false)
	r.wakeLowWaitsLocked(true)
	r.role = RoleNone
	failed := r.waits
	r.waits, r.followers = nil, nil
	r.mu.Unlock()
	for i := range failed {
		failed[i].code = kerr.NotLeaderForPartition.Code
	}
	finishWaits(failed)
	if r.onHW != nil {
		r.onHW()
	}
}

// AppendAsLeader appends a producer's batches if, and only if, this replica
// leads at the moment of the append, stamping them with the epoch it leads:
// the role check and the append are one step under mu. With acksAll, an
// ISR below min.insync.replicas refuses the append (NOT_ENOUGH_REPLICAS,
// nothing written). Called on connection goroutines.
func (r *Replica) AppendAsLeader(buf []byte, acksAll bool) (storage.AppendResult, error) {
	return r.AppendAtEpoch(buf, -1, acksAll)
}

// AppendAtEpoch is AppendAsLeader for a writer bound to one leader epoch
// (the group coordinator): it refuses with ErrNotLeader unless this replica
// leads at epoch (-1: any epoch).
func (r *Replica) AppendAtEpoch(buf []byte, epoch int32, acksAll bool) (storage.AppendResult, error) {
	// The CRCs are checked before the replica's lock: they have no side
	// effects, and other produces to this partition need not wait for them.
	v, err := r.log.Validate(buf)
	if err != nil {
		return storage.AppendResult{}, err
	}
	r.mu.Lock()
	if r.role != RoleLeader || (epoch >= 0 && epoch != r.epoch) {
		r.mu.Unlock()
		return storage.AppendResult{}, ErrNotLeader
	}
	if acksAll && len(r.isr) < r.effectiveMinISRLocked() {
		isr, minISR := len(r.isr), r.effectiveMinISRLocked()
		r.mu.Unlock()
		return storage.AppendResult{}, fmt.Errorf("%w: %s-%d has %d in sync, needs %d", ErrNotEnoughReplicas, r.Topic, r.Partition, isr, minISR)
	}
	res, err := r.log.AppendValidated(v, r.epoch)
	var wake []hwWait
	advanced := false
	if err == nil {
		wake, advanced = r.maybeAdvanceHWLocked()
	}
	r.mu.Unlock()
	finishWaits(wake)
	if advanced && r.onHW != nil {
		r.onHW()
	}
	return res, err
}

// maybeAdvanceHWLocked applies §2.2: no advance while the committed ISR is
// below the effective min ISR (KIP-966); otherwise the HW becomes the lowest
// LEO over the maximal ISR, forward only. It returns the produce waits the
// new HW completes and whether it advanced.
func (r *Replica) maybeAdvanceHWLocked() ([]hwWait, bool) {
	if r.role != RoleLeader || len(r.isr) < r.effectiveMinISRLocked() {
		return nil, false
	}
	cand := r.log.LogEndOffset()
	for _, id := range r.maximal {
		if id == r.self {
			continue
		}
		f := r.followers[id]
		if f == nil || f.leo < 0 {
			return nil, false // not fetched in this epoch yet: its LEO is unknown
		}
		cand = min(cand, f.leo)
	}
	if cand <= r.hw.Load() {
		return nil, false
	}
	r.hw.Store(cand)
	return r.takeWaitsLocked(cand), true
}

// takeWaitsLocked removes and returns the waits the HW hw completes, each
// with its outcome: NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when the
// maximal ISR is below the minimum (§2.5).
func (r *Replica) takeWaitsLocked(hw int64) []hwWait {
	var done []hwWait
	code := int16(0)
	if len(r.maximal) < r.effectiveMinISRLocked() {
		code = kerr.NotEnoughReplicasAfterAppend.Code
	}
	kept := r.waits[:0]
	for _, w := range r.waits {
		if w.offset <= hw {
			w.code = code
			done = append(done, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(r.waits[len(kept):])
	r.waits = kept
	return done
}

// lowWait is a DeleteRecords waiting until every replica's log start is at
// or past offset.
type lowWait struct {
	offset int64
	done   chan struct{}
}

// lowWatermarkLocked is the lowest log start over the replicas, or -1 while
// a follower's is unknown.
func (r *Replica) lowWatermarkLocked() int64 {
	low := r.log.LogStartOffset()
	for _, id := range r.replicas {
		if id == r.self {
			continue
		}
		f := r.followers[id]
		if f == nil || f.logStart < 0 {
			return -1
		}
		low = min(low, f.logStart)
	}
	return low
}

// WaitLowWatermark returns a channel closed once every replica's log start
// is at or past offset (DeleteRecords, §2.4), or when this replica stops
// leading; the caller bounds the wait. ok is false when it does not lead.
func (r *Replica) WaitLowWatermark(offset int64) (done <-chan struct{}, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != RoleLeader {
		return nil, false
	}
	ch := make(chan struct{})
	if r.lowWatermarkLocked() >= offset {
		close(ch)
		return ch, true
	}
	r.lowWaits = append(r.lowWaits, lowWait{offset, ch})
	return ch, true
}

// wakeLowWaitsLocked closes the DeleteRecords waits the low watermark (or
// a lost leadership, with all) completes.
func (r *Replica) wakeLowWaitsLocked(all bool) {
	if len(r.lowWaits) == 0 {
		return
	}
	low := r.lowWatermarkLocked()
	kept := r.lowWaits[:0]
	for _, w := range r.lowWaits {
		if all || low >= w.offset {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(r.lowWaits[len(kept):])
	r.lowWaits = kept
}

// FollowerFetch is one partition of a Fetch from a follower (ReplicaID >= 0).
type FollowerFetch struct {
	ReplicaID          int32
	FetchOffset        int64
	LastFetchedEpoch   int32 // -1: unknown (Fetch below v12, or an empty log)
	CurrentLeaderEpoch int32 // -1: not checked
	LogStartOffset     int64
}

// Diverging is the end of the follower's last fetched epoch on the leader,
// when the follower's log diverged from the leader's (Fetch v12 DivergingEpoch).
type Diverging struct {
	Epoch     int32
	EndOffset int64
}

// FollowerFetchResult is the leader's decision for a follower fetch.
type FollowerFetchResult struct {
	ErrorCode      int16
	Diverging      *Diverging
	HighWatermark  int64 // taken before the follower's state is updated (KAFKA-7104)
	LogStartOffset int64
	ReadUpTo       int64 // the LEO the follower may read to
}

// HandleFollowerFetch is the leader's side of a follower fetch (§1.3): it
// checks the epochs and the fetch position, records the follower's log end
// offset and caught-up time, proposes an ISR expansion when the follower
// has caught up, and advances the high watermark. Called on connection
// goroutines; the caller reads records up to ReadUpTo when ErrorCode is 0
// and Diverging nil.
func (r *Replica) HandleFollowerFetch(ff FollowerFetch, now time.Time) FollowerFetchResult {
	res := FollowerFetchResult{HighWatermark: -1, LogStartOffset: -1, ReadUpTo: -1}
	r.mu.Lock()
	if r.role != RoleLeader {
		r.mu.Unlock()
		res.ErrorCode = kerr.NotLeaderForPartition.Code
		return res
	}
	if ff.CurrentLeaderEpoch >= 0 && ff.CurrentLeaderEpoch != r.epoch {
		r.mu.Unlock()
		res.ErrorCode = kerr.FencedLeaderEpoch.Code
		if ff.CurrentLeaderEpoch > r.epoch {
			res.ErrorCode = kerr.UnknownLeaderEpoch.Code
		}
		return res
	}
	f := r.followers[ff.ReplicaID]
	if f == nil {
		r.mu.Unlock()
		// Kafka: the epoch matched but the broker is not a replica
		// (KRaft can get here after a reassignment).
		res.ErrorCode = kerr.NotLeaderForPartition.Code
		if ff.CurrentLeaderEpoch >= 0 {
			res.ErrorCode = kerr.UnknownLeaderEpoch.Code
		}
		return res
	}
	hw, logStart, leo := r.hw.Load(), r.log.LogStartOffset(), r.log.LogEndOffset()
	res.HighWatermark, res.LogStartOffset, res.ReadUpTo = hw, logStart, leo
	if ff.LastFetchedEpoch >= 0 {
		e, end := r.log.EndOffsetForEpoch(ff.LastFetchedEpoch)
		switch {
		case e < 0 || ff.FetchOffset < logStart:
			r.mu.Unlock()
			res.ErrorCode = kerr.OffsetOutOfRange.Code
			return res
		case e < ff.LastFetchedEpoch || end < ff.FetchOffset:
			r.mu.Unlock()
			res.Diverging = &Diverging{Epoch: e, EndOffset: end}
			return res
		}
	}
	if ff.FetchOffset > leo || ff.FetchOffset < logStart {
		r.mu.Unlock()
		res.ErrorCode = kerr.OffsetOutOfRange.Code
		return res
	}
	// §2.1: caught up at this fetch if it reached the leader's LEO, or
	// since the previous fetch if it reached what the leader had then.
	if ff.FetchOffset >= leo {
		f.lastCaughtUp = now
	} else if ff.FetchOffset >= f.lastFetchLeaderLEO && f.lastFetchTime.After(f.lastCaughtUp) {
		f.lastCaughtUp = f.lastFetchTime
	}
	f.lastFetchLeaderLEO, f.lastFetchTime = max(leo, f.lastFetchLeaderLEO), now
	f.leo, f.logStart = ff.FetchOffset, ff.LogStartOffset
	r.wakeLowWaitsLocked(false)
	r.maybeExpandLocked(ff.ReplicaID, f)
	wake, advanced := r.maybeAdvanceHWLocked()
	r.mu.Unlock()
	finishWaits(wake)
	if advanced && r.onHW != nil {
		r.onHW()
	}
	return res
}

// maybeExpandLocked proposes adding a follower to the ISR once it holds
// everything up to the HW and the start of this leader epoch (§3.2,
// KAFKA-7128). While the proposal is in flight the maximal ISR holds it.
func (r *Replica) maybeExpandLocked(id int32, f *follower) {
	if r.pending || slices.Contains(r.isr, id) || r.m == nil {
		return
	}
	if f.leo < r.hw.Load() || f.leo < r.epochStart {
		return
	}
	if eligible := r.m.cfg.BrokerEligible; eligible != nil && !eligible(id) {
		return
	}
	isr := append(slices.Clone(r.isr), id)
	p := alterProposal{r: r, leaderEpoch: r.epoch, partitionEpoch: r.partitionEpoch, isr: isr, expand: true}
	if r.m.propose(p) {
		r.pending, r.maximal = true, isr
	}
}

// maybeShrink proposes removing the ISR members that have not caught up
// within lagMax (§3.1); while it is in flight the maximal ISR stays the old
// one, so the HW never counts on the shrink before it is committed.
func (r *Replica) maybeShrink(now time.Time, lagMax time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != RoleLeader || r.pending || r.m == nil {
		return
	}
	leo := r.log.LogEndOffset()
	var out []int32
	for _, id := range r.isr {
		if id == r.self {
			continue
		}
		f := r.followers[id]
		if f == nil || (f.leo != leo && now.Sub(f.lastCaughtUp) > lagMax) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return
	}
	isr := slices.DeleteFunc(slices.Clone(r.isr), func(id int32) bool { return slices.Contains(out, id) })
	p := alterProposal{r: r, leaderEpoch: r.epoch, partitionEpoch: r.partitionEpoch, isr: isr}
	if r.m.propose(p) {
		r.pending = true // maximal stays the old ISR
	}
}

// alterFailed reverts an ISR proposal the controller refused (or that never
// reached it): the committed ISR holds again, so a new proposal can follow.
func (r *Replica) alterFailed(p alterProposal) {
	r.mu.Lock()
	if r.pending && r.epoch == p.leaderEpoch && r.partitionEpoch == p.partitionEpoch {
		r.pending, r.maximal = false, r.isr
	}
	wake, advanced := r.maybeAdvanceHWLocked()
	r.mu.Unlock()
	finishWaits(wake)
	if advanced && r.onHW != nil {
		r.onHW()
	}
}

// fetchPosition is what a follower fetch asks for: its log end, the epoch of
// its last batch, its log start. ok is false unless it follows at epoch.
func (r *Replica) fetchPosition(epoch int32) (offset int64, lastEpoch int32, logStart int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != RoleFollower || r.epoch != epoch {
		return 0, 0, 0, false
	}
	lastEpoch = -1
	if e, _, ok := r.log.LatestEpoch(); ok {
		lastEpoch = e
	}
	return r.log.LogEndOffset(), lastEpoch, r.log.LogStartOffset(), true
}

// FetchedPartition is one partition of a follower's Fetch response.
type FetchedPartition struct {
	ErrorCode      int16
	HighWatermark  int64
	LogStartOffset int64
	Diverging      *Diverging
	Records        []byte
}

// applyFetched applies the leader's answer to a fetch sent at (epoch,
// offset) (§1.4). A response to a fetch whose position changed meanwhile
// (a new epoch, a truncation) is dropped. It returns how long to wait
// before fetching this partition again (0: at once) and the bytes appended.
func (r *Replica) applyFetched(epoch int32, offset int64, fp FetchedPartition) (backoff time.Duration, appended int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.role != RoleFollower || r.epoch != epoch || r.log.LogEndOffset() != offset {
		return 0, 0, nil
	}
	switch fp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		if fp.LogStartOffset > offset {
			// Below the leader's log start: nothing to fetch from there.
			if err := r.log.RestartAt(fp.LogStartOffset); err != nil {
				return time.Second, 0, fmt.Errorf("restart log at the leader's log start %d: %w", fp.LogStartOffset, err)
			}
			r.hw.Store(max(r.hw.Load(), fp.LogStartOffset))
			return 0, 0, nil
		}
		if fp.HighWatermark >= 0 && fp.HighWatermark < offset {
			// Past the leader's end with no epoch to compare: what the
			// leader has committed is safe to fetch again.
			if err := r.log.TruncateTo(fp.HighWatermark); err != nil {
				return time.Second, 0, err
			}
			r.hw.Store(min(r.hw.Load(), r.log.LogEndOffset()))
			return 0, 0, nil
		}
		return time.Second, 0, nil
	case kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code, kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.UnknownTopicID.Code, kerr.StaleBrokerEpoch.Code:
		return 200 * time.Millisecond, 0, nil // new metadata is on its way
	default:
		return time.Second, 0, nil
	}
	if d := fp.Diverging; d != nil && d.Epoch >= 0 {
		// Truncate to the divergence point (§1.6), never applying the
		// HW or log start of this response (KAFKA-14704). When the local
		// epoch found differs, the next fetch asks again with the new
		// latest epoch: the KIP-279 walk-back.
		leo := r.log.LogEndOffset()
		to := min(d.EndOffset, leo)
		if e, end := r.log.EndOffsetForEpoch(d.Epoch); e >= 0 {
			if e == d.Epoch {
				to = min(d.EndOffset, end, leo)
			} else {
				to = min(end, leo)
			}
		}
		if err := r.log.TruncateTo(to); err != nil {
			return time.Second, 0, fmt.Errorf("truncate to %d (leader epoch %d ends at %d): %w", to, d.Epoch, d.EndOffset, err)
		}
		r.hw.Store(min(r.hw.Load(), r.log.LogEndOffset()))
		return 0, 0, nil
	}
	recs := wholeBatches(fp.Records)
	if len(recs) > 0 {
		if _, err := r.log.AppendReplicated(recs); err != nil {
			return time.Second, 0, fmt.Errorf("append fetched batches at %d: %w", offset, err)
		}
	}
	// The follower's HW follows the leader's, capped at its own LEO; it
	// never moves back, so a failover never shows consumers less.
	if hw := min(fp.HighWatermark, r.log.LogEndOffset()); hw > r.hw.Load() {
		r.hw.Store(hw)
	}
	if fp.LogStartOffset > r.log.LogStartOffset() && fp.LogStartOffset <= r.hw.Load() {
		if _, err := r.log.DeleteRecordsBefore(fp.LogStartOffset); err != nil {
			return 0, len(recs), fmt.Errorf("follow the leader's log start %d: %w", fp.LogStartOffset, err)
		}
	}
	return 0, len(recs), nil
}

// wholeBatches cuts a trailing partial batch (a leader may cut a fetch
// response at its size limit mid-batch).
func wholeBatches(b []byte) []byte {
	pos := 0
	for pos+12 <= len(b) {
		n := int(int32(uint32(b[pos+8])<<24 | uint32(b[pos+9])<<16 | uint32(b[pos+10])<<8 | uint32(b[pos+11])))
		if n <= 0 || pos+12+n > len(b) {
			break
		}
		pos += 12 + n
	}
	return b[:pos]
}
